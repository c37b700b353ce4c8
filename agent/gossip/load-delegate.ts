/**
 * Load gossip as a piggyback delegate of membership, as Serf's serf/delegate.go is memberlist's
 * Delegate (GetBroadcasts → broadcasts, NotifyMsg → notify, LocalState → localState,
 * MergeRemoteState → mergeRemoteState) and its event delegate hears of member changes (notifyJoin,
 * notifyAlive, notifyIncarnation, notifyForget). Application state — the load
 * reports of agent/load — never enters the SWIM state machine: membership.ts asks the delegate
 * for what to piggyback on a frame within the bytes the frame has left, hands it what came in on
 * one, and tells it of member events (memberlist's EventDelegate: join, new incarnation, forget)
 * so that it can tell a report of a member's previous life from a newer one.
 *
 * Every load is passed on a few times (`loadRetransmits`, the origin `loadOriginTransmits`) from
 * a transmit-limited queue (broadcast-queue.ts): each is superseded a second later, so far fewer
 * sends than a state update. Seqs on the wire are mod 128 (messages.ts); push-pull carries full ones.
 */
import type { Clock } from '../../sdk/core/clock.js';
import type { Random } from '../../sdk/core/random.js';
import type { LoadReport } from '../../sdk/core/protocol.js';
import { BroadcastQueue } from './broadcast-queue.js';
import type { GossipConfig } from './config.js';
import { loadEntrySize, loadKey, loadSeqAfter, LOAD_SEQ_MOD, type LoadEntry, type MemberStatus } from './messages.js';

/**
 * What membership asks of the application state it carries (Serf's delegate). Every method is
 * called from inside the frame or timer being handled; none may throw.
 */
export interface PiggybackDelegate {
  /** Entries for one frame to the member `target` (undefined: unknown), at most `budget` bytes in all. */
  broadcasts(target: string | undefined, budget: number): LoadEntry[];
  /** Entries that came piggybacked on a frame from the member `from`. */
  notify(entries: readonly LoadEntry[], from: string): void;
  /** The state of `node` for a push-pull (what a member joining should learn), aged to now. */
  localState(node: string): LoadReport | undefined;
  /** The state of `node` in a peer's push-pull. */
  mergeRemoteState(node: string, load: LoadReport, from: string): void;
  /** Where this node's own state stands, said in its alive updates (the load seq). */
  selfSeq(): number | undefined;
  /** A new member, at `loadSeq` (from its alive update) if it said. */
  notifyJoin(node: string, loadSeq: number | undefined): void;
  /** A member's alive update at a higher incarnation (`prev`: its status before). */
  notifyAlive(node: string, prev: MemberStatus, incarnation: number, loadSeq: number | undefined): void;
  /** A member took a higher incarnation by news other than its own alive (suspect, dead, left). */
  notifyIncarnation(node: string): void;
  /** A member was reaped. */
  notifyForget(node: string): void;
}

/** What the delegate reads of the member table: no more (it never changes member state). */
export interface MemberView {
  readonly self: string;
  /** The incarnation of a live (alive or suspect) member other than this one; undefined otherwise. */
  liveIncarnation(node: string): number | undefined;
  /** The node a load key (a name or nodeHash) stands for: undefined if none, null if ambiguous. */
  nodeOfKey(key: string | number): string | null | undefined;
}

export interface LoadGossipOptions {
  members: MemberView;
  clock: Clock;
  random: Random;
  config: Pick<Readonly<GossipConfig>, 'loadRetransmits' | 'loadOriginTransmits' | 'probeIntervalMs'> & Partial<Pick<Readonly<GossipConfig>, 'loadBytesPerSec'>>;
  /** A newer load of another member was taken. */
  onLoad?: (node: string) => void;
}

export interface LoadGossipStats {
  loadsApplied: number;
  loadsStale: number;
  loadsUnknown: number;
  queuedLoads: number;
}

interface QueuedLoad {
  origin: string;
  /** Who we heard it from (it has it already). */
  from: string | undefined;
  report: LoadReport;
  heardAt: number;
}

interface LoadRec {
  load: LoadReport | undefined;
  /** The member's incarnation when its current load was accepted (see apply). */
  loadInc: number;
  /**
   * The member's load seq when it took its current incarnation (from its own alive update): a
   * load of this incarnation older than that is an in-flight report of the one before.
   */
  loadFloor: number | undefined;
  heardAt: number;
}

/** `{ seats }` as a copy of the report's own (nobody outside shares the delegate's objects), or nothing. */
function seatsOf(l: { seats?: LoadReport['seats'] }): Pick<LoadReport, 'seats'> {
  return l.seats ? { seats: { capacity: l.seats.capacity, held: l.seats.held, claimed: l.seats.claimed } } : {};
}

/** How long the mod-128 seq window of load entries is trusted after the last report (see apply). */
const LOAD_SEQ_TRUST_MS = 10_000;

export class LoadGossip implements PiggybackDelegate {
  private readonly members: MemberView;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly config: LoadGossipOptions['config'];
  private readonly onLoad: (node: string) => void;
  private readonly recs = new Map<string, LoadRec>();
  private readonly queue = new BroadcastQueue<QueuedLoad>(() => 1);
  private self: LoadReport | undefined;
  private selfAt = 0;
  private readonly counters = { loadsApplied: 0, loadsStale: 0, loadsUnknown: 0 };
  /** Bytes of load entries we may still send (config.loadBytesPerSec; refilled by the clock). */
  private tokens: number;
  private tokensAt: number;

  constructor(opts: LoadGossipOptions) {
    this.members = opts.members;
    this.clock = opts.clock;
    this.random = opts.random;
    this.config = opts.config;
    this.onLoad = opts.onLoad ?? (() => {});
    this.tokens = this.config.loadBytesPerSec ?? 0;
    this.tokensAt = this.clock.now();
  }

  stats(): LoadGossipStats {
    return { ...this.counters, queuedLoads: this.queue.size };
  }

  /**
   * A new load report of this node: its `seq` is kept if it is above the last one, else the last
   * one + 1 (receivers drop what is not newer). Queued for the origin's transmits.
   */
  setSelf(load: Omit<LoadReport, 'ageMs'> & { ageMs?: number }): LoadReport {
    const last = this.self?.seq ?? 0;
    const seq = Number.isSafeInteger(load.seq) && load.seq > last ? load.seq : last + 1;
    const now = this.clock.now();
    this.self = { connections: load.connections, sessions: load.sessions, utilization: load.utilization, seq, ageMs: 0, ...(load.source ? { source: load.source } : {}), ...seatsOf(load) };
    this.selfAt = now;
    const q: QueuedLoad = { origin: this.members.self, from: undefined, report: this.self, heardAt: now };
    this.queue.push(this.members.self, q, this.size(q), { limit: this.config.loadOriginTransmits });
    return this.self;
  }

  /** The load of `node` as a member snapshot shows it (this node's aged to now; others' as heard). */
  current(node: string): LoadReport | undefined {
    if (node === this.members.self) return this.self && { ...this.self, ...seatsOf(this.self), ageMs: this.clock.now() - this.selfAt };
    const l = this.recs.get(node)?.load;
    return l && { ...l, ...seatsOf(l) };
  }

  selfSeq(): number | undefined {
    return this.self?.seq;
  }

  localState(node: string): LoadReport | undefined {
    if (node === this.members.self) return this.current(node);
    const r = this.recs.get(node);
    if (!r?.load) return undefined;
    return { ...r.load, ...seatsOf(r.load), ageMs: r.load.ageMs + (this.clock.now() - r.heardAt) };
  }

  broadcasts(target: string | undefined, budget: number): LoadEntry[] {
    const rate = this.config.loadBytesPerSec ?? 0;
    if (rate > 0) {
      // The token bucket of loadBytesPerSec: at most one second's worth saved up.
      const now = this.clock.now();
      this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) * rate) / 1000);
      this.tokensAt = now;
      budget = Math.min(budget, Math.floor(this.tokens));
      if (budget <= 0) return [];
    }
    // Not what the target is known to have: it is their origin, or sent them to us.
    const lds = this.queue.take(budget, 0, (item) => item.value.origin === target || item.value.from === target);
    if (rate > 0) this.tokens -= lds.bytes;
    return lds.values.map((q) => this.entry(q));
  }

  notify(entries: readonly LoadEntry[], from: string): void {
    for (const e of entries) {
      const node = this.members.nodeOfKey(e.key);
      if (node === undefined || node === null) {
        this.counters.loadsUnknown++;
        continue;
      }
      this.apply(node, e, from, true);
    }
  }

  mergeRemoteState(node: string, load: LoadReport, from: string): void {
    this.apply(node, load, from, false);
  }

  notifyJoin(node: string, loadSeq: number | undefined): void {
    this.recs.set(node, { load: undefined, loadInc: 0, loadFloor: loadSeq, heardAt: this.clock.now() });
  }

  notifyAlive(node: string, prev: MemberStatus, incarnation: number, loadSeq: number | undefined): void {
    const r = this.rec(node);
    // Reports that overtook this alive on the way (sent after the member took the incarnation,
    // heard just before the alive: at or above its floor, within the mod-128 window, moments
    // ago) are of this incarnation already: what comes next must be newer than them.
    const held = r.load;
    if (prev === 'alive' && held && loadSeq !== undefined && held.seq >= loadSeq && held.seq - loadSeq < LOAD_SEQ_MOD / 2 && this.clock.now() - r.heardAt <= this.config.probeIntervalMs) r.loadInc = incarnation;
    r.loadFloor = loadSeq;
  }

  notifyIncarnation(node: string): void {
    // Its alive update (with the floor) has not reached us.
    const r = this.recs.get(node);
    if (r) r.loadFloor = undefined;
  }

  notifyForget(node: string): void {
    this.recs.delete(node);
    this.queue.delete(node);
  }

  private rec(node: string): LoadRec {
    let r = this.recs.get(node);
    if (!r) this.recs.set(node, (r = { load: undefined, loadInc: 0, loadFloor: undefined, heardAt: this.clock.now() }));
    return r;
  }

  private size(q: QueuedLoad): number {
    return loadEntrySize(this.entry(q));
  }

  private entry(q: QueuedLoad): LoadEntry {
    const r = q.report;
    const e: LoadEntry = { key: loadKey(q.origin), seq: r.seq, connections: r.connections, sessions: r.sessions, utilization: r.utilization, ageMs: r.ageMs + (this.clock.now() - q.heardAt), source: r.source };
    if (r.seats) e.seats = r.seats;
    return e;
  }

  /**
   * A load report of `node`, from gossip (`gossip`: its seq is mod 128, and it is passed on) or from
   * push-pull (full seq, not passed on). Newer seq wins; after the member incarnated (a restart
   * counts from 0 again) any seq is news.
   */
  private apply(node: string, l: Omit<LoadEntry, 'key'>, fromNode: string, gossip: boolean): void {
    const inc = this.members.liveIncarnation(node);
    if (inc === undefined) {
      this.counters.loadsUnknown++;
      return;
    }
    const r = this.rec(node);
    const now = this.clock.now();
    const reset = !r.load || inc > r.loadInc;
    let seq: number | undefined;
    if (reset && r.loadFloor !== undefined) {
      // A new incarnation of a member that said where its load seq stood when it took it (a meta
      // change or a refutation; a restarted process counts from 1 again and says so): a report
      // below that is from before, still in flight — old news; one above it has its full seq
      // rebuilt from the floor (a gossip seq is mod 128), so the seq never jumps.
      const floor = r.loadFloor;
      const d = gossip ? (l.seq - (floor % LOAD_SEQ_MOD) + LOAD_SEQ_MOD) % LOAD_SEQ_MOD : l.seq - floor;
      seq = d < 0 || (gossip && d >= LOAD_SEQ_MOD / 2) ? undefined : floor + d;
    } else if (!gossip) seq = reset || l.seq > r.load!.seq ? l.seq : undefined;
    else if (reset) seq = l.seq;
    // At most 5 reports a second (agent/load minGapMs): after 10 s without news the mod-128 window
    // can no longer tell newer from older, and anything is newer.
    else seq = loadSeqAfter(r.load!.seq, l.seq, now - r.heardAt > LOAD_SEQ_TRUST_MS);
    if (seq === undefined) {
      this.counters.loadsStale++;
      return;
    }
    r.load = { connections: l.connections, sessions: l.sessions, utilization: l.utilization, seq, ageMs: l.ageMs, ...(l.source ? { source: l.source } : {}), ...seatsOf(l) };
    r.loadInc = inc;
    r.heardAt = now;
    this.counters.loadsApplied++;
    this.onLoad(node);
    if (!gossip) return;
    // Pass it on R times, R possibly fractional: floor(R), plus one with probability frac(R).
    const R = this.config.loadRetransmits;
    const limit = Math.floor(R) + (this.random.next() < R - Math.floor(R) ? 1 : 0);
    if (limit <= 0) return;
    const q: QueuedLoad = { origin: node, from: fromNode, report: r.load, heardAt: now };
    this.queue.push(node, q, this.size(q), { limit });
  }
}
