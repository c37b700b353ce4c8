/**
 * Subset views: which k of a service's eligible servers each `/v1/watch` subscriber is sent.
 *
 * After Finagle's deterministic aperture (finagle-core `DeterministicOrdering` / `Ring`: servers
 * and clients on one unit ring, a client's coordinate from its index among its peers, not a hash)
 * and gRPC A68 (random subsetting: a subset per client, chosen by the client's own seed). Hashed
 * client coordinates are Poisson-uneven: at 1,000 clients × 32 / 10,000 servers = 3.2 clients per
 * server, a hash puts 11 on some server; evenly spaced ones put 3 or 4 on every one.
 *
 * - **The ring of servers**: the eligible servers (healthy, not draining, alive) ordered by a hash
 *   of their id, server i at position i/n: evenly spaced, and the same order on every agent.
 * - **A subscriber's coordinate**: this agent's arc of the ring (its index among the agents that
 *   serve subscribers, `position()`) plus the van der Corput sequence of the subscriber's slot,
 *   scaled to the arc: slots 0, 1, 2, 3… land at 0, 1/2, 1/4, 3/4… of the arc, so any number of
 *   subscribers is spread about evenly (a low-discrepancy sequence), and the agents' arcs together
 *   cover the ring. A slot is the lowest free one; it stays with the client id for `graceMs`
 *   after the subscriber goes, so a reconnect (a restart of the watch, a blip) gets the same
 *   coordinate and so the same subset.
 * - **The first subset**: the k servers from index ⌊c·n⌋ on (a window of the ring).
 * - **Sticky after that**: when a server leaves the ring (fails, drains, leaves), only its holders
 *   change: each takes the least-held server near its window that it lacks. When a server joins,
 *   only subscribers whose window covers its position take it, each in place of its most-held
 *   member, and only while that evens the counts. Recomputing windows from scratch (Finagle's
 *   way) would move about half the clients by one server on every change, since i/n shifts.
 *
 * Pure: no sockets, no timers; time comes in through `now`. agent/subscriptions.ts holds one table
 * per service and turns the changes it returns into `remove` / `upsert` frames.
 */
import { fmix32 } from '../sdk/core/hash.js';

/** The SDK's default (`subset: 'auto'`): a subset of this many servers… */
export const AUTO_SUBSET_SIZE = 32;
/** …once at least this many are eligible; below it, every server (Finagle's minAperture idea: small clusters gain nothing). */
export const AUTO_SUBSET_MIN_SERVERS = 64;
/** Largest subset a client may ask for (the wire parser's cap); larger asks are 'all' in effect. */
export const MAX_SUBSET_SIZE = 1024;
/** How long a client id keeps its slot after its subscriber goes: a reconnect within it keeps its subset. */
export const SLOT_GRACE_MS = 30_000;
/** Client ids remembered for their grace at most (oldest forgotten first): an outsider's churn of ids is bounded. */
export const MAX_REMEMBERED_CLIENTS = 4096;

/** The van der Corput sequence in base 2: the bits of `i` mirrored after the binary point (0, .5, .25, .75, .125…). */
export function vanDerCorput(i: number): number {
  let x = 0;
  let f = 0.5;
  for (let n = i >>> 0; n > 0; n >>>= 1, f /= 2) if (n & 1) x += f;
  return x;
}

/** A subscriber's coordinate in [0, 1): its agent's arc `index` of `of`, and its slot's place in that arc. */
export function coordinate(index: number, of: number, slot: number): number {
  const n = Math.max(1, of);
  return (Math.min(Math.max(0, index), n - 1) + vanDerCorput(slot)) / n;
}

/** A server's place on the ring: a 32-bit mix of its id (FNV-1a, then murmur3's finalizer). */
export function ringHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return fmix32(h) >>> 0;
}

/** What a ring change did to one subscriber's subset. */
export interface SubsetChange<S> {
  sub: S;
  removed?: string;
  added?: string;
}

export interface SubsetTableOptions {
  /** This agent's arc: its index among the agents that serve subscribers, and how many there are. Default 0 of 1. */
  position?: () => { index: number; of: number };
  now?: () => number;
  graceMs?: number;
  maxRemembered?: number;
}

interface Held<S> {
  sub: S;
  k: number;
  slot: number;
  client: string | undefined;
  coord: number;
  members: Set<string>;
}

/** One service's eligible servers and the subset each subscriber holds of them. */
export class SubsetTable<S> {
  /** Eligible server ids in ring order (by ringHash, then id). */
  private ring: { id: string; h: number }[] = [];
  private readonly index = new Set<string>();
  /** Subscribers holding each server. */
  private readonly holders = new Map<string, Set<S>>();
  private readonly held = new Map<S, Held<S>>();
  private readonly slots = new Set<number>();
  /** Client id → its slot, kept for graceMs after the subscriber went (insertion order = age). */
  private readonly remembered = new Map<string, { slot: number; until: number }>();
  private readonly now: () => number;

  constructor(private readonly opts: SubsetTableOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  /** Eligible servers. */
  get size(): number {
    return this.ring.length;
  }

  has(id: string): boolean {
    return this.index.has(id);
  }

  /** The subset `sub` holds (undefined when it is not in the table). */
  membersOf(sub: S): ReadonlySet<string> | undefined {
    return this.held.get(sub)?.members;
  }

  /** Subscribers holding `id`. */
  holdersOf(id: string): ReadonlySet<S> {
    return this.holders.get(id) ?? EMPTY;
  }

  /** How many subscribers hold each eligible server (for tests, the bench and /metrics). */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { id } of this.ring) out.set(id, this.holders.get(id)?.size ?? 0);
    return out;
  }

  /** The subscriber's coordinate (for tests and the bench). */
  coordinateOf(sub: S): number | undefined {
    return this.held.get(sub)?.coord;
  }

  /** Eligible ids in ring order. */
  ringOrder(): string[] {
    return this.ring.map((e) => e.id);
  }

  /** Take `sub` in with a subset of `k` (client id optional: with it, a reconnect within the grace keeps its slot). Returns its subset. */
  add(sub: S, k: number, client?: string): ReadonlySet<string> {
    this.delete(sub);
    const slot = this.slotFor(client);
    const pos = this.opts.position?.() ?? { index: 0, of: 1 };
    const h: Held<S> = { sub, k, slot, client, coord: coordinate(pos.index, pos.of, slot), members: new Set() };
    this.held.set(sub, h);
    const n = this.ring.length;
    const start = this.startOf(h.coord);
    for (let i = 0; i < Math.min(k, n); i++) this.hold(h, this.ring[(start + i) % n]!.id);
    return h.members;
  }

  /** `sub` is gone: its servers lose a holder, its slot is kept for its client id's grace. */
  delete(sub: S): void {
    const h = this.held.get(sub);
    if (!h) return;
    this.held.delete(sub);
    for (const id of h.members) this.holders.get(id)?.delete(sub);
    if (h.client !== undefined) {
      this.remembered.delete(h.client);
      this.remembered.set(h.client, { slot: h.slot, until: this.now() + (this.opts.graceMs ?? SLOT_GRACE_MS) });
      this.trimRemembered();
    } else this.slots.delete(h.slot);
  }

  /**
   * `id` is eligible (or not) now. Returns the subscribers whose subset changed and how: a server
   * that leaves the ring is replaced in each subset that held it; one that joins goes into the
   * subsets whose window covers it, in place of their most-held member while that evens counts,
   * and into every subset smaller than its k.
   */
  setEligible(id: string, eligible: boolean): SubsetChange<S>[] {
    if (eligible === this.index.has(id)) return [];
    return eligible ? this.join(id) : this.leave(id);
  }

  private join(id: string): SubsetChange<S>[] {
    const h = ringHash(id);
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const e = this.ring[mid]!;
      if (e.h < h || (e.h === h && e.id < id)) lo = mid + 1;
      else hi = mid;
    }
    this.ring.splice(lo, 0, { id, h });
    this.index.add(id);
    this.holders.set(id, new Set());
    const n = this.ring.length;
    const out: SubsetChange<S>[] = [];
    let total = 0;
    for (const x of this.held.values()) total += x.members.size;
    const mean = total / n;
    for (const x of this.held.values()) {
      if (x.members.size < x.k) {
        this.hold(x, id);
        out.push({ sub: x.sub, added: id });
        continue;
      }
      // Does its window [start, start + k) (in the ring with `id` in it) cover `id`'s index?
      const start = this.startOf(x.coord);
      if ((lo - start + n) % n >= x.k) continue;
      const count = this.holders.get(id)!.size;
      if (count + 1 > Math.ceil(mean)) break;
      let worst: string | undefined;
      let worstCount = -1;
      for (const m of x.members) {
        const c = this.holders.get(m)!.size;
        if (c > worstCount) [worst, worstCount] = [m, c];
      }
      if (worst === undefined || worstCount <= count + 1) continue;
      this.drop(x, worst);
      this.hold(x, id);
      out.push({ sub: x.sub, removed: worst, added: id });
    }
    return out;
  }

  private leave(id: string): SubsetChange<S>[] {
    const at = this.ring.findIndex((e) => e.id === id);
    this.ring.splice(at, 1);
    this.index.delete(id);
    const subs = [...(this.holders.get(id) ?? [])];
    this.holders.delete(id);
    const out: SubsetChange<S>[] = [];
    for (const sub of subs) {
      const x = this.held.get(sub)!;
      x.members.delete(id);
      const add = this.replacement(x);
      if (add !== undefined) this.hold(x, add);
      out.push(add === undefined ? { sub, removed: id } : { sub, removed: id, added: add });
    }
    return out;
  }

  /**
   * The server `x` should take in place of one it lost: the least-held one it lacks within a
   * window's width either side of its own window (so subsets stay local to their coordinate and
   * the counts even), nearest the window's middle among equals.
   */
  private replacement(x: Held<S>): string | undefined {
    const n = this.ring.length;
    if (x.members.size >= n) return undefined;
    const start = this.startOf(x.coord);
    const mid = start + x.k / 2;
    const span = Math.min(n, 3 * x.k);
    let best: string | undefined;
    let bestCount = Infinity;
    let bestDist = Infinity;
    for (let j = 0; j < span; j++) {
      const i = start - x.k + j;
      const e = this.ring[((i % n) + n) % n]!;
      if (x.members.has(e.id)) continue;
      const c = this.holders.get(e.id)!.size;
      const d = Math.abs(i - mid);
      if (c < bestCount || (c === bestCount && d < bestDist)) [best, bestCount, bestDist] = [e.id, c, d];
    }
    if (best !== undefined) return best;
    // Everything near is held already (a k close to n): any server it lacks.
    return this.ring.find((e) => !x.members.has(e.id))?.id;
  }

  private startOf(coord: number): number {
    const n = this.ring.length;
    return n === 0 ? 0 : Math.min(n - 1, Math.floor(coord * n));
  }

  private hold(x: Held<S>, id: string): void {
    x.members.add(id);
    this.holders.get(id)!.add(x.sub);
  }

  private drop(x: Held<S>, id: string): void {
    x.members.delete(id);
    this.holders.get(id)?.delete(x.sub);
  }

  /** The client's remembered slot (within its grace), else the lowest free one. */
  private slotFor(client: string | undefined): number {
    const at = this.now();
    for (const [c, r] of this.remembered) {
      if (r.until > at) break;
      this.remembered.delete(c);
      this.slots.delete(r.slot);
    }
    if (client !== undefined) {
      const r = this.remembered.get(client);
      if (r) {
        this.remembered.delete(client);
        return r.slot;
      }
      // The same id already subscribed (two watches of one cluster object): a slot of its own.
    }
    let s = 0;
    while (this.slots.has(s)) s++;
    this.slots.add(s);
    return s;
  }

  private trimRemembered(): void {
    const max = this.opts.maxRemembered ?? MAX_REMEMBERED_CLIENTS;
    for (const [c, r] of this.remembered) {
      if (this.remembered.size <= max) break;
      this.remembered.delete(c);
      this.slots.delete(r.slot);
    }
  }
}

const EMPTY: ReadonlySet<never> = new Set();

/**
 * Finagle's fractional load share: a subscriber at coordinate c with subset k covers the ring
 * from c·n to c·n + k (in servers), all of each server inside and a fraction of the two at the
 * edges. Returns each ring index's share (sums to Σk). With evenly spaced coordinates it is flat
 * where integer counts cannot be: 3.2 clients per server means some hold 3 and some 4.
 */
export function fractionalShares(coords: readonly number[], k: number, n: number): Float64Array {
  const share = new Float64Array(n);
  for (const c of coords) {
    let from = c * n;
    let left = Math.min(k, n);
    while (left > 1e-12) {
      const i = Math.floor(from);
      const take = Math.min(left, i + 1 - from);
      share[((i % n) + n) % n]! += take;
      left -= take;
      from += take;
    }
  }
  return share;
}
