/**
 * The member table of membership.ts: one record per member (this node included) with its state
 * (status, incarnation, address, meta), the indexes by address and by node hash, the count of live
 * members (the N of the formulas), and the tombstones of reaped members (tombstones.ts).
 *
 * It holds SWIM state only: no load (load-delegate.ts keeps that), no timers, no frames. The rules
 * for what news changes a record (incarnations, plausibility, refutation) are in member-updates.ts;
 * probing and suspicion in failure-detector.ts.
 */
import type { Random } from '../../sdk/core/random.js';
import { nodeHash, type MemberMeta, type MemberStatus, type StateUpdate } from './messages.js';
import type { Suspicion } from './suspicion.js';
import { Tombstones } from './tombstones.js';

/** One member as the table holds it (mutable: the pieces of membership.ts share it). */
export interface Rec {
  node: string;
  addr: string;
  status: MemberStatus;
  incarnation: number;
  meta: MemberMeta;
  statusSince: number;
  /** Clock ms of the last news of this member (state or load). */
  updatedAt: number;
  suspicion: Suspicion | undefined;
  /** Seq of the probe of it in flight. */
  probing: number | undefined;
  lastHintProbeAt: number;
  lastNudgeAt: number;
}

/** A new record, alive since `now`. */
export function newRec(node: string, addr: string, incarnation: number, meta: MemberMeta, now: number): Rec {
  return {
    node,
    addr,
    status: 'alive',
    incarnation,
    meta: copyMeta(meta),
    statusSince: now,
    updatedAt: now,
    suspicion: undefined,
    probing: undefined,
    lastHintProbeAt: -Infinity,
    lastNudgeAt: -Infinity,
  };
}

export function sameMeta(a: MemberMeta, b: MemberMeta): boolean {
  return (
    a.id === b.id &&
    a.service === b.service &&
    a.host === b.host &&
    a.udpPort === b.udpPort &&
    a.tcpPort === b.tcpPort &&
    a.wsPort === b.wsPort &&
    a.wsPath === b.wsPath &&
    a.wsTls === b.wsTls &&
    a.weight === b.weight &&
    a.zone === b.zone &&
    a.health === b.health
  );
}

export function copyMeta(m: MemberMeta): MemberMeta {
  const c: MemberMeta = { id: m.id, service: m.service, host: m.host, weight: m.weight, health: m.health };
  if (m.udpPort !== undefined) c.udpPort = m.udpPort;
  if (m.tcpPort !== undefined) c.tcpPort = m.tcpPort;
  if (m.wsPort !== undefined) c.wsPort = m.wsPort;
  if (m.wsPath !== undefined) c.wsPath = m.wsPath;
  if (m.wsTls !== undefined) c.wsTls = m.wsTls;
  if (m.zone !== undefined) c.zone = m.zone;
  if (m.sig !== undefined && m.sigv !== undefined) {
    c.sig = m.sig;
    c.sigv = m.sigv;
  }
  return c;
}

export function isLive(r: Rec): boolean {
  return r.status === 'alive' || r.status === 'suspect';
}

/**
 * What a member should hear about itself when we talk to it: that it is suspect, dead or gone
 * (Lifeguard's buddy system), so that it refutes at once if it is in fact alive. `self`: our node.
 */
export function buddy(r: Rec, self: string): StateUpdate[] {
  if (r.status === 'suspect') return [{ kind: 'suspect', node: r.node, incarnation: r.incarnation, from: self }];
  if (r.status === 'dead') return [{ kind: 'dead', node: r.node, incarnation: r.incarnation, from: self }];
  if (r.status === 'left') return [{ kind: 'left', node: r.node, incarnation: r.incarnation }];
  return [];
}

/** k distinct random items of `from` (partial Fisher–Yates; reorders `from`). */
export function pick<T>(random: Random, k: number, from: T[]): T[] {
  const a = from;
  const n = Math.min(k, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + random.int(a.length - i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

/** How long a reaped member's tombstone is kept (Serf keeps its own 24 h). */
export const TOMBSTONE_KEEP_MS = 24 * 3600_000;

export class MemberTable {
  private readonly recs = new Map<string, Rec>();
  private readonly byAddr = new Map<string, string>();
  /** nodeHash → node, or null when two members share a hash. */
  private readonly byHash = new Map<number, string | null>();
  /** Alive and suspect members, this one included (kept as statuses change: it is read per frame). */
  private live = 0;
  /** Reaped members: a stale alive of one of them is not a new member. */
  readonly tombstones: Tombstones;

  constructor(
    /** This node's record (added at once). */
    readonly me: Rec,
    /** Most members remembered, this one included. */
    readonly maxMembers: number,
  ) {
    this.tombstones = new Tombstones(TOMBSTONE_KEEP_MS, maxMembers);
    this.add(me);
  }

  get size(): number {
    return this.recs.size;
  }

  get(node: string): Rec | undefined {
    return this.recs.get(node);
  }

  /** The node at `addr`, if a member has it. */
  nodeAt(addr: string): string | undefined {
    return this.byAddr.get(addr);
  }

  hasAddr(addr: string): boolean {
    return this.byAddr.has(addr);
  }

  /** The node whose nodeHash is `h`: undefined when none, null when two members share it. */
  nodeOfHash(h: number): string | null | undefined {
    return this.byHash.get(h);
  }

  values(): IterableIterator<Rec> {
    return this.recs.values();
  }

  /** Alive and suspect members, this one included: the N of the formulas. */
  liveCount(): number {
    return this.live;
  }

  /** Alive and suspect members other than this one (a new array). */
  others(): Rec[] {
    const out: Rec[] = [];
    for (const r of this.recs.values()) if (r !== this.me && isLive(r)) out.push(r);
    return out;
  }

  add(r: Rec): void {
    this.recs.set(r.node, r);
    this.byAddr.set(r.addr, r.node);
    const h = nodeHash(r.node);
    const had = this.byHash.get(h);
    this.byHash.set(h, had === undefined || had === r.node ? r.node : null);
    if (isLive(r)) this.live++;
  }

  remove(r: Rec): void {
    if (this.recs.get(r.node) === r && isLive(r)) this.live--;
    this.recs.delete(r.node);
    if (this.byAddr.get(r.addr) === r.node) this.byAddr.delete(r.addr);
    const h = nodeHash(r.node);
    if (this.byHash.get(h) === r.node) this.byHash.delete(h);
    else if (this.byHash.get(h) === null) {
      // Recompute the collision slot (rare).
      const owners = [...this.recs.values()].filter((x) => nodeHash(x.node) === h);
      if (owners.length === 0) this.byHash.delete(h);
      else this.byHash.set(h, owners.length === 1 ? owners[0]!.node : null);
    }
    r.suspicion?.cancel();
  }

  /** Remove a dead or left member and keep its tombstone. */
  reap(r: Rec, now: number): void {
    this.remove(r);
    if (r.status === 'dead' || r.status === 'left') this.tombstones.add(r.node, r.status, r.incarnation, now);
  }

  setAddr(r: Rec, addr: string): void {
    if (r.addr === addr) return;
    if (this.byAddr.get(r.addr) === r.node) this.byAddr.delete(r.addr);
    r.addr = addr;
    this.byAddr.set(addr, r.node);
  }

  /** Change a member's status (its suspicion goes unless it is suspect); the previous one, or undefined when unchanged. */
  setStatus(r: Rec, status: MemberStatus, now: number): MemberStatus | undefined {
    const prev = r.status;
    if (prev === status) return undefined;
    if (this.recs.get(r.node) === r) this.live += (status === 'alive' || status === 'suspect' ? 1 : 0) - (isLive(r) ? 1 : 0);
    r.status = status;
    r.statusSince = now;
    r.updatedAt = now;
    if (status !== 'suspect') {
      r.suspicion?.cancel();
      r.suspicion = undefined;
    }
    return prev;
  }

  /** Cancel every suspicion (on stop). */
  cancelSuspicions(): void {
    for (const r of this.recs.values()) {
      r.suspicion?.cancel();
      r.suspicion = undefined;
    }
  }
}
