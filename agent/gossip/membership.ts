/**
 * Membership and failure detection among agents: SWIM (Das, Gupta, Motivala, 2002) with
 * Lifeguard's refinements (Dadgar et al., 2018), after hashicorp/memberlist (state.go).
 *
 * A pure state machine: no sockets and no timers of its own. Frames go through a Transport, time
 * through a Clock, choices through a Random, so a whole cluster runs deterministically on a
 * ManualClock and a MemoryNetwork.
 *
 *  - Probe: every probe interval, ping the next member of a shuffled round-robin list. No ack within
 *    probeTimeout → ask `indirectChecks` others to ping it (ping-req, with nacks), and ping it
 *    directly once more. Nothing by the end of the interval → suspect it.
 *  - A closed socket (Transport.onPeerClosed) is a hint: probe that member at once. A failed probe
 *    makes it suspect, never dead: death needs the suspicion to time out.
 *  - Suspicion (suspicion.ts): the timeout shrinks from max to min as other members confirm it
 *    (Lifeguard LHA-Suspicion). A suspected member learns of it — piggybacked on the pings of
 *    those who probe it (Lifeguard's "buddy system") and sent to it by whoever suspects it first — and
 *    refutes by incarnating (incarnation + 1), sending the refutation straight to the suspecter too.
 *  - Beyond memberlist, for peerlb's 1 s / 3 s goals: a member that hears of someone else's
 *    suspicion probes the suspect itself, soon. A dead member then gets confirmations within a
 *    probe interval instead of waiting for the others' round-robin to reach it; a live one answers
 *    the ping (which carries the suspicion) with its refutation, so no holder of the suspicion
 *    depends on catching a short-lived broadcast. And a member that already has X dead tells
 *    whoever still suspects X.
 *  - Local health (awareness.ts): missed nacks and refutations raise a score that stretches our
 *    own probe interval (Lifeguard LHA-Probe).
 *  - Beyond memberlist: the probe timeout follows the measured round trip (rtt.ts, as TCP's RTO),
 *    never below the configured one, and the indirect deadline and the suspicion time scale with
 *    it, so a slow or lossy network (over TCP, loss is delay) slows detection instead of causing
 *    false suspicions.
 *  - Dissemination: updates ride on every frame (pings, acks, gossip rounds) from a
 *    transmit-limited queue (broadcast-queue.ts); loads ride on the same frames, with far fewer
 *    retransmissions since each is superseded a second later.
 *  - Anti-entropy: full state push-pull with a random member every pushPullInterval; also used to
 *    join through seeds, and with a dead member that answers a reconnect ping (partition heal).
 *  - A member restarting with the same name learns its old incarnation (from push-pull, or from a
 *    member that still has it dead) and incarnates above it: it never reuses one the cluster has seen.
 */
import { EventEmitter } from 'node:events';
import { systemClock, every, type Clock, type TimerHandle } from '../../sdk/core/clock.js';
import { XorShiftRandom, type Random } from '../../sdk/core/random.js';
import { ConfigError } from '../../sdk/core/errors.js';
import { LIMITS, type LoadReport } from '../../sdk/core/protocol.js';
import { resolveGossipConfig, pushPullInterval, type GossipConfig } from './config.js';
import { Awareness, probeAwarenessDelta } from './awareness.js';
import { RttEstimator } from './rtt.js';
import { Suspicion, suspicionTimeout } from './suspicion.js';
import { BroadcastQueue, retransmitLimit } from './broadcast-queue.js';
import { DialBudget, keepsName, nextIncarnation, plausibleJump, powerOfTwo, MAX_INCARNATION, PREVIOUS_LIFE_MAX_INCARNATION, SELF_NEWS_GRACE_MS } from './guard.js';
import { pageOf, pageStates, PAGE_BYTES, PUSH_PULL_OVERHEAD_BYTES } from './push-pull.js';
import { Tombstones } from './tombstones.js';
import {
  encodeFrame,
  tryDecodeFrame,
  updateSize,
  loadEntrySize,
  loadKey,
  loadSeqAfter,
  LOAD_SEQ_MOD,
  nodeHash,
  PIGGYBACK_ARRAY_OVERHEAD,
  type GossipFrame,
  type LoadEntry,
  type MemberMeta,
  type MemberState,
  type MemberStatus,
  type Piggyback,
  type Sender,
  type StateUpdate,
} from './messages.js';
import type { Transport, Via } from './transport.js';

export type { MemberMeta, MemberStatus } from './messages.js';

export type { Member, GossipLogger, MembershipOptions, MembershipEvents, MembershipStats } from './membership-types.js';
import type { LogFn, Member, GossipLogger, MembershipOptions, MembershipEvents, MembershipStats } from './membership-types.js';

type Counter = Exclude<keyof MembershipStats, 'awareness' | 'probeTimeoutMs' | 'queuedUpdates' | 'queuedLoads' | 'alive' | 'suspect' | 'dead' | 'left'>;

interface Rec {
  node: string;
  addr: string;
  status: MemberStatus;
  incarnation: number;
  meta: MemberMeta;
  load: LoadReport | undefined;
  /** Our incarnation of this member when its current load was accepted (see applyLoad). */
  loadInc: number;
  /**
   * The member's load seq when it took its current incarnation (from its own alive update): a
   * load of this incarnation older than that is an in-flight report of the one before.
   */
  loadFloor: number | undefined;
  loadHeardAt: number;
  statusSince: number;
  updatedAt: number;
  suspicion: Suspicion | undefined;
  /** Seq of the probe of it in flight. */
  probing: number | undefined;
  lastHintProbeAt: number;
  lastNudgeAt: number;
}

interface Probe {
  seq: number;
  node: string;
  addr: string;
  incarnation: number;
  kind: 'round' | 'hint' | 'confirm' | 'reconnect';
  phase: 'direct' | 'indirect';
  startedAt: number;
  /** extraWait() when the probe started: its deadlines do not move while fast acks shrink the estimate. */
  extra: number;
  expectedNacks: number;
  nacks: number;
  timer: TimerHandle | undefined;
}

interface Relay {
  origin: string;
  originSeq: number;
  timers: TimerHandle[];
  /** The socket the ping-req came in on: the ack and nack go back on it. */
  via: Via | undefined;
}

interface QueuedLoad {
  origin: string;
  /** Who we heard it from (it has it already). */
  from: string | undefined;
  report: LoadReport;
  heardAt: number;
}

function sameMeta(a: MemberMeta, b: MemberMeta): boolean {
  return (
    a.id === b.id &&
    a.service === b.service &&
    a.host === b.host &&
    a.udpPort === b.udpPort &&
    a.tcpPort === b.tcpPort &&
    a.weight === b.weight &&
    a.zone === b.zone &&
    a.health === b.health
  );
}

function copyMeta(m: MemberMeta): MemberMeta {
  const c: MemberMeta = { id: m.id, service: m.service, host: m.host, weight: m.weight, health: m.health };
  if (m.udpPort !== undefined) c.udpPort = m.udpPort;
  if (m.tcpPort !== undefined) c.tcpPort = m.tcpPort;
  if (m.zone !== undefined) c.zone = m.zone;
  if (m.sig !== undefined && m.sigv !== undefined) {
    c.sig = m.sig;
    c.sigv = m.sigv;
  }
  return c;
}

/** How long the mod-128 seq window of load entries is trusted after the last report (see applyLoad). */
const LOAD_SEQ_TRUST_MS = 10_000;

/** Members a new member announces itself to directly, besides its seed. */
const JOIN_ANNOUNCE_FANOUT = 4;

/** How long a reaped member's tombstone is kept (Serf keeps its own 24 h). */
const TOMBSTONE_KEEP_MS = 24 * 3600_000;

/** Members a leaving member tells directly (the rest hear it by gossip). */
const LEAVE_DIRECT_MAX = 64;

/** Confirmation probes (of a member someone else suspects) in flight at once, at most. */
const MAX_CONFIRM_PROBES = 3;

/**
 * Hint probes (a socket to the member closed) in flight at once, at most. A probe's ping-reqs go
 * to members whose sockets may fail too, each failure a hint: among thousands of unreachable
 * members (a flood of made-up ones, a partition) hints would breed probes without end.
 */
const MAX_HINT_PROBES = 4;

const noop: LogFn = () => {};
const silentLog: GossipLogger = { debug: noop, info: noop, warn: noop, error: noop };

export class Membership extends EventEmitter<MembershipEvents> {
  readonly node: string;
  readonly config: Readonly<GossipConfig>;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: GossipLogger;
  private readonly maxFrameBytes: number;
  private readonly maxMembers: number;
  private readonly signMeta: MembershipOptions['signMeta'];
  private readonly awareness: Awareness;
  private readonly rtt = new RttEstimator();
  /**
   * Start times of recent probes that ended without an ack (seq → ms), the last 64: an ack that
   * comes after its probe gave up is still a round-trip sample — on a network slower than the
   * configured timeout, the only kind there is — and is how the timeout learns to wait longer.
   */
  private readonly lateProbes = new Map<number, number>();

  private readonly recs = new Map<string, Rec>();
  /** Reaped members (tombstones.ts): a stale alive of one of them is not a new member. */
  private readonly tombstones: Tombstones;
  private readonly byAddr = new Map<string, string>();
  /** nodeHash → node, or null when two members share a hash. */
  private readonly byHash = new Map<number, string | null>();
  private readonly me: Rec;
  private selfLoadAt = 0;

  private readonly updates: BroadcastQueue<StateUpdate>;
  private readonly loads = new BroadcastQueue<QueuedLoad>(() => 1);
  private readonly probes = new Map<number, Probe>();
  private readonly relays = new Map<number, Relay>();
  private probeList: string[] = [];
  private probeIndex = 0;
  private seq = 0;

  private started = false;
  private stopped = false;
  private leaving = false;
  private joined = false;
  /** Clock ms we joined; and whether a previous life's incarnation has been taken since (guard.ts). */
  private joinedAt = -Infinity;
  private tookPreviousLife = false;
  private seeds: string[] = [];
  private probeTimer: TimerHandle | undefined;
  private pushPullTimer: TimerHandle | undefined;
  private joinTimer: TimerHandle | undefined;
  private stoppers: (() => void)[] = [];
  private leavePromise: Promise<void> | undefined;
  private readonly toldAlive = new Map<string, number>();
  /** Confirmation probes in flight. */
  private confirming = 0;
  /** Hint probes in flight. */
  private hinting = 0;
  private readonly counters: Record<Counter, number> = {
    framesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    decodeErrors: 0,
    misdirectedPings: 0,
    probes: 0,
    hintProbes: 0,
    confirmProbes: 0,
    indirectProbes: 0,
    probesFailed: 0,
    acks: 0,
    nacks: 0,
    hints: 0,
    suspicions: 0,
    confirmations: 0,
    refutations: 0,
    deathsDeclared: 0,
    pushPulls: 0,
    joinAttempts: 0,
    reconnectPings: 0,
    loadsApplied: 0,
    loadsStale: 0,
    loadsUnknown: 0,
    membersRefused: 0,
    implausibleIncarnations: 0,
    addrConflicts: 0,
    idConflicts: 0,
    dialsRefused: 0,
    replies: 0,
  };
  /** Alive and suspect members, this one included (kept as statuses change: it is read per frame). */
  private live = 0;
  /** Dials to addresses no member has (guard.ts). */
  private readonly dials: DialBudget;
  /** The frame being handled: who sent it, and the socket to answer on. */
  private inFrame: { from: string; node: string; addr: string; via: Via | undefined } | undefined;
  /** Our ping to another agent that claims our node id, before we joined: an ack means it is live. */
  private conflictProbe: { seq: number; addr: string } | undefined;
  private incarnationCapLogged = false;

  constructor(opts: MembershipOptions) {
    super();
    if (typeof opts.node !== 'string' || opts.node.length === 0 || opts.node.length > LIMITS.maxStringLength)
      throw new ConfigError(`membership: node must be a non-empty string of at most ${LIMITS.maxStringLength} chars`);
    this.node = opts.node;
    this.config = Object.freeze(resolveGossipConfig(opts.config));
    this.transport = opts.transport;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? new XorShiftRandom();
    this.log = opts.log ?? silentLog;
    this.maxFrameBytes = opts.maxFrameBytes ?? LIMITS.maxFrameBytes;
    this.maxMembers = Math.min(opts.maxMembers ?? LIMITS.maxServers, LIMITS.maxServers);
    this.signMeta = opts.signMeta;
    this.awareness = new Awareness(this.config.awarenessMaxMultiplier);
    this.tombstones = new Tombstones(TOMBSTONE_KEEP_MS, this.maxMembers);
    this.updates = new BroadcastQueue<StateUpdate>(() => retransmitLimit(this.config.retransmitMult, this.liveCount()));
    this.dials = new DialBudget(this.clock);
    const now = this.clock.now();
    this.me = {
      node: opts.node,
      addr: opts.transport.addr,
      status: 'alive',
      incarnation: 1,
      meta: copyMeta(opts.meta),
      load: undefined,
      loadInc: 0,
      loadFloor: undefined,
      loadHeardAt: now,
      statusSince: now,
      updatedAt: now,
      suspicion: undefined,
      probing: undefined,
      lastHintProbeAt: -Infinity,
      lastNudgeAt: -Infinity,
    };
    this.signSelf();
    this.addRec(this.me);
    this.transport.onFrame((from, frame, via) => this.onFrame(from, frame, via));
    this.transport.onPeerClosed((addr) => this.onPeerClosed(addr));
  }

  // -------------------------------------------------------------------------------------------
  // Public API

  /** Start probing and gossiping, and join through `seeds` (agent addresses), retrying until one answers. */
  start(seeds: string[]): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.broadcast(this.aliveUpdate(this.me));
    const c = this.config;
    this.scheduleProbe();
    this.stoppers.push(every(this.clock, c.gossipIntervalMs, () => this.gossipRound()));
    this.stoppers.push(every(this.clock, c.reconnectIntervalMs, () => this.reconnectRound()));
    if (c.pushPullIntervalMs > 0) this.schedulePushPull(true);
    this.seeds = [...new Set(seeds)].filter((s) => s !== this.me.addr);
    if (this.seeds.length === 0) this.markJoined();
    else this.tryJoin();
  }

  /** New meta (weight, zone, health…): incarnate and tell everyone. */
  setMeta(meta: MemberMeta): void {
    if (this.stopped || this.leaving) return;
    this.me.meta = copyMeta(meta);
    this.me.incarnation = nextIncarnation(this.me.incarnation);
    this.signSelf();
    this.me.updatedAt = this.clock.now();
    this.broadcast(this.aliveUpdate(this.me));
    this.emit('change', this.snapshot(this.me), this.me.status);
  }

  /**
   * A new load report of this node: gossiped as a load entry, no incarnation. Its `seq` is kept if
   * it is above the last one, else the last one + 1 (receivers drop what is not newer).
   */
  setLoad(load: Omit<LoadReport, 'ageMs'> & { ageMs?: number }): void {
    if (this.stopped) return;
    const last = this.me.load?.seq ?? 0;
    const seq = Number.isSafeInteger(load.seq) && load.seq > last ? load.seq : last + 1;
    const now = this.clock.now();
    this.me.load = { connections: load.connections, sessions: load.sessions, utilization: load.utilization, seq, ageMs: 0, ...(load.source ? { source: load.source } : {}) };
    this.selfLoadAt = now;
    this.me.updatedAt = now;
    const q: QueuedLoad = { origin: this.node, from: undefined, report: this.me.load, heardAt: now };
    this.loads.push(this.node, q, this.loadSize(q), { limit: this.config.loadOriginTransmits });
  }

  /**
   * Leave gracefully: tell everyone we left (a `left` update, and a direct leave frame to a few),
   * wait until that update has been sent its full count of times or `timeoutMs` passed, then stop.
   */
  leave(timeoutMs = 1000): Promise<void> {
    if (this.leavePromise) return this.leavePromise;
    if (!this.started || this.stopped) return Promise.resolve();
    this.leaving = true;
    this.me.incarnation = nextIncarnation(this.me.incarnation);
    this.setStatus(this.me, 'left');
    const u: StateUpdate = { kind: 'left', node: this.node, incarnation: this.me.incarnation };
    // Straight to every member (up to LEAVE_DIRECT_MAX, the rest by gossip): one small frame each,
    // once, and the leave is in every view after one hop instead of an epidemic's tail.
    for (const r of this.pick(LEAVE_DIRECT_MAX, this.others())) {
      this.send(r.addr, { type: 'leave', from: this.sender(), incarnation: this.me.incarnation });
    }
    this.leavePromise = new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        this.clock.clearTimeout(timer);
        this.stop();
        resolve();
      };
      const timer = this.after(finish, timeoutMs);
      if (this.others().length === 0) finish();
      else this.updates.push(this.node, u, updateSize(u), { onDone: finish, group: this.node });
    });
    return this.leavePromise;
  }

  /** Stop every timer and ignore frames from now on, without a goodbye (a crash, in simulations). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.stoppers) s();
    this.stoppers = [];
    this.clock.clearTimeout(this.probeTimer);
    this.clock.clearTimeout(this.pushPullTimer);
    this.clock.clearTimeout(this.joinTimer);
    for (const p of this.probes.values()) this.clock.clearTimeout(p.timer);
    this.probes.clear();
    this.confirming = 0;
    this.hinting = 0;
    for (const r of this.relays.values()) for (const t of r.timers) this.clock.clearTimeout(t);
    this.relays.clear();
    for (const r of this.recs.values()) {
      r.suspicion?.cancel();
      r.suspicion = undefined;
    }
  }

  /** Every member known, this node included, dead and left ones until they are reaped. */
  members(): Member[] {
    return [...this.recs.values()].map((r) => this.snapshot(r));
  }

  /** One member by node name. */
  member(node: string): Member | undefined {
    const r = this.recs.get(node);
    return r && this.snapshot(r);
  }

  self(): Member {
    return this.snapshot(this.me);
  }

  /** The status of one member, without copying it (undefined: unknown or reaped). */
  statusOf(node: string): MemberStatus | undefined {
    return this.recs.get(node)?.status;
  }

  get addr(): string {
    return this.me.addr;
  }

  stats(): MembershipStats {
    const s: MembershipStats = {
      ...this.counters,
      awareness: this.awareness.score,
      probeTimeoutMs: this.probeTimeout(),
      queuedUpdates: this.updates.size,
      queuedLoads: this.loads.size,
      alive: 0,
      suspect: 0,
      dead: 0,
      left: 0,
    };
    for (const r of this.recs.values()) s[r.status]++;
    return s;
  }

  // -------------------------------------------------------------------------------------------
  // Members

  private snapshot(r: Rec): Member {
    const m: Member = { node: r.node, addr: r.addr, status: r.status, incarnation: r.incarnation, meta: copyMeta(r.meta), statusSince: r.statusSince, updatedAt: r.updatedAt };
    if (r.load) m.load = r === this.me ? { ...r.load, ageMs: this.clock.now() - this.selfLoadAt } : { ...r.load };
    return m;
  }

  private addRec(r: Rec): void {
    this.recs.set(r.node, r);
    this.byAddr.set(r.addr, r.node);
    const h = nodeHash(r.node);
    const had = this.byHash.get(h);
    this.byHash.set(h, had === undefined || had === r.node ? r.node : null);
    if (this.isLive(r)) this.live++;
    if (r !== this.me) {
      // Put it at a random place of the probe list (memberlist): appending would delay the first
      // probe of a new member by a whole round. By swapping with the member there (memberlist),
      // not by inserting: an insert moves the rest of the list, N times for N new members.
      const n = this.probeList.length;
      const i = this.probeIndex + this.random.int(n - this.probeIndex + 1);
      this.probeList.push(r.node);
      if (i < n) [this.probeList[i], this.probeList[n]] = [this.probeList[n]!, this.probeList[i]!];
    }
  }

  private removeRec(r: Rec): void {
    if (this.recs.get(r.node) === r && this.isLive(r)) this.live--;
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
    this.updates.deleteGroup(r.node);
    this.loads.delete(r.node);
  }

  private setAddr(r: Rec, addr: string): void {
    if (r.addr === addr) return;
    if (this.byAddr.get(r.addr) === r.node) this.byAddr.delete(r.addr);
    r.addr = addr;
    this.byAddr.set(addr, r.node);
  }

  private setStatus(r: Rec, status: MemberStatus): void {
    const prev = r.status;
    if (prev === status) return;
    const now = this.clock.now();
    if (this.recs.get(r.node) === r) this.live += (status === 'alive' || status === 'suspect' ? 1 : 0) - (this.isLive(r) ? 1 : 0);
    r.status = status;
    r.statusSince = now;
    r.updatedAt = now;
    if (status !== 'suspect') {
      r.suspicion?.cancel();
      r.suspicion = undefined;
    }
    this.log[status === 'dead' ? 'info' : 'debug']({ member: r.node, status, previous: prev, incarnation: r.incarnation }, 'member status');
    this.emit('change', this.snapshot(r), prev);
  }

  private isLive(r: Rec): boolean {
    return r.status === 'alive' || r.status === 'suspect';
  }

  /** Alive and suspect members, this one included: the N of the formulas. */
  private liveCount(): number {
    return this.live;
  }

  private others(): Rec[] {
    const out: Rec[] = [];
    for (const r of this.recs.values()) if (r !== this.me && this.isLive(r)) out.push(r);
    return out;
  }

  /** k distinct random items (partial Fisher–Yates). */
  private pick<T>(k: number, from: T[]): T[] {
    const a = from;
    const n = Math.min(k, a.length);
    for (let i = 0; i < n; i++) {
      const j = i + this.random.int(a.length - i);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a.slice(0, n);
  }

  private aliveUpdate(r: Rec): StateUpdate {
    // Our own: say where our load seq stands at this incarnation (see Rec.loadFloor).
    if (r === this.me && r.load) return { kind: 'alive', node: r.node, incarnation: r.incarnation, addr: r.addr, meta: r.meta, loadSeq: r.load.seq };
    return { kind: 'alive', node: r.node, incarnation: r.incarnation, addr: r.addr, meta: r.meta };
  }

  private memberState(r: Rec): MemberState {
    const s: MemberState = { node: r.node, addr: r.addr, incarnation: r.incarnation, status: r.status, meta: r.meta };
    if (r.load) {
      const age = r === this.me ? this.clock.now() - this.selfLoadAt : r.load.ageMs + (this.clock.now() - r.loadHeardAt);
      s.load = { ...r.load, ageMs: age };
    }
    return s;
  }

  private fullState(): MemberState[] {
    return [...this.recs.values()].map((r) => this.memberState(r));
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  private sender(): { node: string; addr: string } {
    return { node: this.node, addr: this.me.addr };
  }

  /** A one-shot timer on our clock that never keeps the process alive. */
  private after(fn: () => void, ms: number): TimerHandle {
    const t = this.clock.setTimeout(fn, ms);
    t.unref?.();
    return t;
  }

  private nextSeq(): number {
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    return this.seq;
  }

  private send(to: string, frame: GossipFrame): void {
    let bytes: Buffer;
    try {
      bytes = encodeFrame(frame);
    } catch (err) {
      this.log.error({ err, type: frame.type }, 'gossip: cannot encode frame');
      return;
    }
    if (bytes.length > this.maxFrameBytes) {
      // (A full state never gets here whole: it goes in pages, push-pull.ts.)
      this.log.warn({ type: frame.type, bytes: bytes.length }, 'gossip: frame over the size limit not sent');
      return;
    }
    const c = this.inFrame;
    if (c?.via && (to === c.addr || to === c.from)) {
      // An answer goes back on the socket the question came in on: never a dial to the address a
      // frame claims (an agent must not be a connection reflector).
      this.counters.replies++;
    } else if (!this.byAddr.has(to) && !this.seeds.includes(to) && !this.dials.take()) {
      this.counters.dialsRefused++;
      return;
    }
    this.counters.framesOut++;
    this.counters.bytesOut += bytes.length;
    if (c?.via && (to === c.addr || to === c.from)) c.via.reply(bytes);
    else this.transport.send(to, bytes);
  }

  /** Whether the frame being handled came from `node` itself, over a socket we dialed to `addr`. */
  private firstHand(node: string, addr: string): boolean {
    const c = this.inFrame;
    return c !== undefined && c.via?.dialed === true && c.node === node && c.from === addr;
  }

  private broadcast(u: StateUpdate): void {
    if (u.kind === 'suspect') {
      // One entry per suspecter: Lifeguard needs k independent confirmations, and with one entry
      // per member (memberlist) a frame carries one of them at a time. We pass on at most k + 1
      // suspicions of a member (ours and the confirmations counted), so this stays small.
      this.updates.delete(u.node);
      this.updates.push(`${u.node}\u0000${u.from}`, u, updateSize(u), { group: u.node });
      return;
    }
    // Any other news of the member (alive, dead, left) supersedes everything queued about it.
    this.updates.deleteGroup(u.node);
    this.updates.push(u.node, u, updateSize(u), { group: u.node });
  }

  private loadSize(q: QueuedLoad): number {
    return loadEntrySize(this.loadEntry(q));
  }

  private loadEntry(q: QueuedLoad): LoadEntry {
    const r = q.report;
    return { key: loadKey(q.origin), seq: r.seq, connections: r.connections, sessions: r.sessions, utilization: r.utilization, ageMs: r.ageMs + (this.clock.now() - q.heardAt), source: r.source };
  }

  /**
   * Updates and load entries for one frame to `target`: `first` (always), then queued updates, then
   * load entries the target is not known to have (it is not their origin and did not send them to us).
   */
  private piggyback(target: string | undefined, first: StateUpdate[] = []): Piggyback | undefined {
    let budget = this.config.maxPiggybackBytes - PIGGYBACK_ARRAY_OVERHEAD;
    for (const u of first) budget -= updateSize(u);
    const ups = this.updates.take(budget, 0);
    budget -= ups.bytes;
    const lds = this.loads.take(budget, 0, (item) => item.value.origin === target || item.value.from === target);
    if (first.length === 0 && ups.values.length === 0 && lds.values.length === 0) return undefined;
    return { updates: [...first, ...ups.values], loads: lds.values.map((q) => this.loadEntry(q)) };
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  private scheduleProbe(): void {
    if (this.stopped) return;
    // Lifeguard LHA-Probe: a member in poor health probes (and so accuses) less often.
    this.probeTimer = this.after(() => {
      this.probeRound();
      this.scheduleProbe();
    }, this.awareness.scaleTimeout(this.config.probeIntervalMs));
  }

  private schedulePushPull(first: boolean): void {
    if (this.stopped) return;
    const interval = pushPullInterval(this.config.pushPullIntervalMs, this.liveCount());
    // Stagger the first one (memberlist): members started together must not sync in lockstep.
    const delay = first ? Math.max(1, Math.floor(this.random.next() * interval)) : interval;
    this.pushPullTimer = this.after(() => {
      const [r] = this.pick(1, this.others());
      if (r) this.pushPull(r.addr, false);
      this.schedulePushPull(false);
    }, delay);
  }

  private tryJoin(): void {
    if (this.stopped || this.joined) return;
    this.counters.joinAttempts++;
    for (const s of this.seeds) this.pushPull(s, true);
    this.joinTimer = this.after(() => this.tryJoin(), this.config.joinRetryMs);
  }

  private gossipRound(): void {
    if (this.stopped) return;
    for (const r of this.pick(this.config.gossipNodes, this.others())) {
      const p = this.piggyback(r.node);
      if (!p) continue;
      this.send(r.addr, { type: 'gossip', from: this.sender(), piggyback: p });
    }
  }

  /**
   * Ping one random dead member with its death piggybacked: if it is in fact alive (a healed
   * partition, a false death) it refutes, and on its ack we exchange full state. Also reaps.
   */
  private reconnectRound(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    this.tombstones.sweep(now);
    const dead: Rec[] = [];
    for (const r of [...this.recs.values()]) {
      if (r === this.me) continue;
      if (r.status === 'dead' && now - r.statusSince >= this.config.deadReapMs) this.reap(r);
      else if (r.status === 'left' && now - r.statusSince >= this.config.leftReapMs) this.reap(r);
      else if (r.status === 'dead' && r.probing === undefined) dead.push(r);
    }
    const [r] = this.pick(1, dead);
    if (r && !this.leaving) {
      this.counters.reconnectPings++;
      this.probe(r, 'reconnect');
    }
  }

  private reap(r: Rec): void {
    this.removeRec(r);
    if (r.status === 'dead' || r.status === 'left') this.tombstones.add(r.node, r.status, r.incarnation, this.clock.now());
    this.emit('reap', this.snapshot(r));
  }

  // -------------------------------------------------------------------------------------------
  // Probing

  /**
   * How long to wait for a direct ack: the configured timeout, or the measured round trip's
   * srtt + 4·rttvar when that is longer, at most awarenessMaxMultiplier probe intervals.
   */
  private probeTimeout(): number {
    return this.rtt.timeout(this.config.probeTimeoutMs, this.timeoutCap());
  }

  /** The most probeTimeout() can be. */
  private timeoutCap(): number {
    return this.config.probeIntervalMs * this.config.awarenessMaxMultiplier;
  }

  /** What the round trip adds to the configured probe timeout: 0 on a network as fast as planned. */
  private extraWait(): number {
    return this.probeTimeout() - this.config.probeTimeoutMs;
  }

  /** probeTimeout() over its configured value: ≥ 1, how much slower than planned the network is. */
  private slowness(): number {
    return this.probeTimeout() / this.config.probeTimeoutMs;
  }

  private probeRound(): void {
    if (this.stopped) return;
    const r = this.nextProbeTarget();
    if (r) this.probe(r, 'round');
  }

  private nextProbeTarget(): Rec | undefined {
    for (let tries = 0; tries <= this.probeList.length + 1; tries++) {
      if (this.probeIndex >= this.probeList.length) {
        // Wrapped: reshuffle the live members (memberlist resetNodes).
        this.probeList = this.pick(Infinity, this.others().map((r) => r.node));
        this.probeIndex = 0;
        if (this.probeList.length === 0) return undefined;
      }
      const r = this.recs.get(this.probeList[this.probeIndex++]!);
      if (r && r !== this.me && this.isLive(r) && r.probing === undefined) return r;
    }
    return undefined;
  }

  private probe(r: Rec, kind: Probe['kind']): void {
    if (r.probing !== undefined || this.stopped) return;
    const seq = this.nextSeq();
    const extra = this.extraWait();
    const p: Probe = { seq, node: r.node, addr: r.addr, incarnation: r.incarnation, kind, phase: 'direct', startedAt: this.clock.now(), extra, expectedNacks: 0, nacks: 0, timer: undefined };
    this.probes.set(seq, p);
    r.probing = seq;
    if (kind !== 'reconnect') this.counters.probes++;
    if (kind === 'hint') {
      this.counters.hintProbes++;
      this.hinting++;
    }
    if (kind === 'confirm') {
      this.counters.confirmProbes++;
      this.confirming++;
    }
    this.send(r.addr, { type: 'ping', from: this.sender(), seq, target: r.node, piggyback: this.piggyback(r.node, this.buddy(r)) });
    if (kind === 'reconnect') {
      p.timer = this.after(() => this.endProbe(p), this.config.probeIntervalMs + 3 * extra);
    } else {
      p.timer = this.after(() => this.indirectProbe(p), this.config.probeTimeoutMs + extra);
    }
  }

  /**
   * What a member should hear about itself when we talk to it: that it is suspect, dead or gone
   * (Lifeguard's buddy system), so that it refutes at once if it is in fact alive.
   */
  private buddy(r: Rec): StateUpdate[] {
    if (r.status === 'suspect') return [{ kind: 'suspect', node: r.node, incarnation: r.incarnation, from: this.node }];
    if (r.status === 'dead') return [{ kind: 'dead', node: r.node, incarnation: r.incarnation, from: this.node }];
    if (r.status === 'left') return [{ kind: 'left', node: r.node, incarnation: r.incarnation }];
    return [];
  }

  private indirectProbe(p: Probe): void {
    if (this.probes.get(p.seq) !== p || this.stopped) return;
    const r = this.recs.get(p.node);
    p.phase = 'indirect';
    const helpers = this.pick(
      this.config.indirectChecks,
      this.others().filter((h) => h.node !== p.node),
    );
    for (const h of helpers) {
      this.send(h.addr, { type: 'ping-req', from: this.sender(), seq: p.seq, target: p.node, targetAddr: p.addr, nack: true, piggyback: this.piggyback(h.node) });
    }
    this.counters.indirectProbes += helpers.length;
    p.expectedNacks = helpers.length;
    // memberlist falls back to a TCP ping at this point; over one socket per peer the equivalent
    // is one more direct ping, which on a lossy path doubles the chance of the direct route.
    if (r) this.send(p.addr, { type: 'ping', from: this.sender(), seq: p.seq, target: p.node, piggyback: this.piggyback(p.node, this.buddy(r)) });
    // The helpers' path is two round trips: on a slow network, wait that much longer.
    const deadline = p.startedAt + this.awareness.scaleTimeout(this.config.probeIntervalMs) + 3 * p.extra;
    p.timer = this.after(() => this.probeFailed(p), Math.max(0, deadline - this.clock.now()));
  }

  private endProbe(p: Probe): void {
    this.clock.clearTimeout(p.timer);
    if (this.probes.delete(p.seq)) {
      if (p.kind === 'confirm') this.confirming--;
      if (p.kind === 'hint') this.hinting--;
    }
    const r = this.recs.get(p.node);
    if (r && r.probing === p.seq) r.probing = undefined;
  }

  private probeFailed(p: Probe): void {
    if (this.probes.get(p.seq) !== p || this.stopped) return;
    this.endProbe(p);
    this.lateProbes.set(p.seq, p.startedAt);
    if (this.lateProbes.size > 64) this.lateProbes.delete(this.lateProbes.keys().next().value!);
    this.counters.probesFailed++;
    // Lifeguard's score follows the regular probe cycle (and hints); confirmation probes come in
    // bursts when many members fail together, and would pin it at the maximum.
    if (p.kind !== 'confirm') this.awareness.applyDelta(probeAwarenessDelta('failed', p.expectedNacks, p.nacks));
    const r = this.recs.get(p.node);
    if (!r || !this.isLive(r)) return;
    this.log.debug({ member: p.node, kind: p.kind, nacks: p.nacks, expectedNacks: p.expectedNacks }, 'probe failed');
    // Suspect at the incarnation the probe started with: if it refuted meanwhile, this is stale.
    this.onSuspect({ kind: 'suspect', node: p.node, incarnation: p.incarnation, from: this.node });
  }

  private onAck(seq: number, from: string): void {
    const cp = this.conflictProbe;
    if (cp && cp.seq === seq) {
      // The other agent with our id answered, on the socket we dialed to it: it is live and holds the id.
      this.conflictProbe = undefined;
      if (from === this.node && this.firstHand(this.node, cp.addr)) this.yieldName(cp.addr);
      return;
    }
    const relay = this.relays.get(seq);
    if (relay) {
      this.relays.delete(seq);
      for (const t of relay.timers) this.clock.clearTimeout(t);
      this.sendRelay(relay, { type: 'ack', from: this.sender(), seq: relay.originSeq, piggyback: this.piggyback(this.byAddr.get(relay.origin)) });
      return;
    }
    const p = this.probes.get(seq);
    if (!p) {
      const startedAt = this.lateProbes.get(seq);
      if (startedAt !== undefined) {
        this.lateProbes.delete(seq);
        // An ack later than the cap says nothing the cap does not (a stall, a healed partition
        // delivering old pings): not a sample, or one event would pin the timeout for seconds.
        const ms = this.clock.now() - startedAt;
        if (ms <= this.timeoutCap()) this.rtt.sample(ms);
      }
      return;
    }
    this.counters.acks++;
    this.endProbe(p);
    if (p.kind !== 'reconnect') {
      const ms = this.clock.now() - p.startedAt;
      this.rtt.sample(Math.min(ms, this.timeoutCap()));
      this.emit('rtt', { node: p.node, ms, phase: p.phase });
    }
    if (p.kind === 'reconnect') {
      // A member we have as dead answered: exchange full state (it has heard it is dead and refuted).
      this.log.info({ member: p.node, from }, 'dead member answered: exchanging state');
      this.pushPull(p.addr, false);
      return;
    }
    if (p.kind !== 'confirm') this.awareness.applyDelta(probeAwarenessDelta(p.phase === 'direct' ? 'direct-ack' : 'indirect-ack', p.expectedNacks, p.nacks));
  }

  private onPeerClosed(addr: string): void {
    if (this.stopped || this.leaving) return;
    this.counters.hints++;
    const node = this.byAddr.get(addr);
    const r = node === undefined ? undefined : this.recs.get(node);
    if (!r || r === this.me || !this.isLive(r)) return;
    // A closed socket is a strong hint but not proof (a restart, a proxy, a flap): probe now
    // instead of waiting for its turn, at most once per probe interval.
    const now = this.clock.now();
    if (now - r.lastHintProbeAt < this.config.probeIntervalMs || this.hinting >= MAX_HINT_PROBES) return;
    r.lastHintProbeAt = now;
    this.probe(r, 'hint');
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  /** Frames whose handling threw (see onFrame); for rate-limiting the warning. */
  private frameFailures = 0;

  private onFrame(from: string, bytes: Uint8Array, via?: Via): void {
    if (this.stopped) return;
    this.counters.framesIn++;
    const res = tryDecodeFrame(bytes, this.maxFrameBytes);
    if (!res.ok) {
      this.counters.decodeErrors++;
      this.log.debug({ err: res.error.message, code: res.error.code }, 'gossip: bad frame dropped');
      return;
    }
    // The transport calls this from a socket's 'message' handler: anything thrown here (a bug, or
    // a 'change' listener choking on what a peer sent) would be an uncaught exception that kills
    // the process. It is a frame we could not take: counted with the decode errors, and logged
    // at warn once per 2^n failures, so that a peer repeating it cannot flood the log.
    this.inFrame = { from, node: res.frame.from.node, addr: res.frame.from.addr, via };
    try {
      this.dispatch(res.frame);
    } catch (err) {
      this.counters.decodeErrors++;
      const n = ++this.frameFailures;
      if ((n & (n - 1)) === 0) this.log.warn({ err: (err as Error)?.message ?? String(err), type: res.frame.type, peer: from, failures: n }, 'gossip: handling a frame failed; dropped');
    } finally {
      this.inFrame = undefined;
    }
  }

  private dispatch(f: GossipFrame): void {
    if (f.from.node === this.node && f.from.addr === this.me.addr) return;
    // Updates first: a ping that tells us we are suspect gets an ack that carries our refutation.
    if ('piggyback' in f && f.piggyback) this.applyPiggyback(f.piggyback, f.from);
    switch (f.type) {
      case 'ping':
        if (f.target !== this.node) {
          this.counters.misdirectedPings++;
          return;
        }
        {
          // A member we have as dead or gone is pinging us: tell it, so that it refutes.
          const sr = this.recs.get(f.from.node);
          const extra = sr && sr !== this.me && !this.isLive(sr) ? this.buddy(sr) : [];
          this.send(f.from.addr, { type: 'ack', from: this.sender(), seq: f.seq, piggyback: this.piggyback(f.from.node, extra) });
        }
        return;
      case 'ack':
        this.onAck(f.seq, f.from.node);
        return;
      case 'nack': {
        const p = this.probes.get(f.seq);
        if (p) {
          p.nacks++;
          this.counters.nacks++;
        }
        return;
      }
      case 'ping-req':
        this.onPingReq(f);
        return;
      case 'gossip':
        return;
      case 'push-pull-req': {
        // Answer with what we knew before this request (memberlist sends its state before merging):
        // a member that just started must learn what the cluster remembers of its previous life,
        // not its own new state echoed back. Our own entry is taken after the merge, so that a
        // refutation it caused goes back at once.
        // A state in pages is answered once, on its first page.
        const answer = !f.page || f.page.index === 0;
        const states = answer ? this.fullState().filter((s) => s.node !== this.node) : [];
        this.merge(f.states, f.from);
        if (!answer || this.stopped) return;
        states.push(this.memberState(this.me));
        this.sendState(f.from.addr, states, undefined);
        return;
      }
      case 'push-pull-resp': {
        this.merge(f.states, f.from);
        // Joined once the seed's whole state is in: a previous life of ours may be on any page,
        // and until we joined its incarnation is taken however far above ours (plausible).
        // Not joined while another live agent may hold our id (see onIdConflict).
        if (f.page && f.page.index !== f.page.count - 1) return;
        if (!this.joined && !this.stopped && this.conflictProbe === undefined) {
          this.markJoined();
          this.clock.clearTimeout(this.joinTimer);
          this.log.info({ via: f.from.node, members: this.liveCount() }, 'joined');
          // Only the seed knows us yet: start the epidemic of our alive from a few more places
          // (each round of gossip multiplies the informed members, so more starting points save
          // rounds) — a handful of small frames, once.
          const me = this.aliveUpdate(this.me);
          for (const r of this.pick(JOIN_ANNOUNCE_FANOUT, this.others().filter((x) => x.node !== f.from.node))) {
            this.send(r.addr, { type: 'gossip', from: this.sender(), piggyback: { updates: [me], loads: [] } });
          }
        }
        return;
      }
      case 'leave':
        this.onLeft({ kind: 'left', node: f.from.node, incarnation: f.incarnation }, f.from);
        return;
    }
  }

  private onPingReq(f: Extract<GossipFrame, { type: 'ping-req' }>): void {
    if (f.target === this.node) {
      this.send(f.from.addr, { type: 'ack', from: this.sender(), seq: f.seq });
      return;
    }
    const seq = this.nextSeq();
    const relay: Relay = { origin: f.from.addr, originSeq: f.seq, timers: [], via: this.inFrame?.via };
    this.relays.set(seq, relay);
    const target = this.recs.get(f.target);
    // Pinged where the asker says (its view may differ from ours: two agents with one id). An
    // address no member of ours has is an unconfirmed dial, within the budget (see send).
    this.send(f.targetAddr, { type: 'ping', from: this.sender(), seq, target: f.target, piggyback: this.piggyback(f.target, target ? this.buddy(target) : []) });
    if (f.nack) {
      // Nack before the asker's deadline (it waits until the end of its probe interval, which
      // started probeTimeout before it asked us): "I could not reach it either, but I am here".
      // Unscaled: the asker's wait depends on its own round-trip estimate, not ours, and a nack
      // that comes early does no harm (the ack, when it comes, still ends the probe).
      const nackAfter = Math.max(1, Math.floor((this.config.probeIntervalMs - this.config.probeTimeoutMs) * 0.8));
      relay.timers.push(
        this.after(() => {
          if (this.relays.get(seq) === relay) this.sendRelay(relay, { type: 'nack', from: this.sender(), seq: relay.originSeq });
        }, nackAfter),
      );
    }
    relay.timers.push(this.after(() => this.relays.delete(seq), this.config.probeIntervalMs * 2 + 4 * (this.timeoutCap() - this.config.probeTimeoutMs)));
  }

  /** An ack or nack for the asker of a ping-req, on the socket its request came in on. */
  private sendRelay(relay: Relay, frame: GossipFrame): void {
    const saved = this.inFrame;
    this.inFrame = relay.via ? { from: relay.origin, node: '', addr: relay.origin, via: relay.via } : undefined;
    try {
      this.send(relay.origin, frame);
    } finally {
      this.inFrame = saved;
    }
  }

  private applyPiggyback(p: Piggyback, from: Sender): void {
    for (const u of p.updates) this.applyUpdate(u, from);
    for (const e of p.loads) this.applyLoadEntry(e, from.node);
  }

  private applyUpdate(u: StateUpdate, from: Sender): void {
    switch (u.kind) {
      case 'alive':
        return this.onAlive(u, from);
      case 'suspect':
        return this.onSuspect(u, from);
      case 'dead':
        return this.onDead(u, from);
      case 'left':
        return this.onLeft(u, from);
    }
  }

  /** Our meta with our own signature at our current incarnation (none without signMeta): after every change of it. */
  private signSelf(): void {
    const { sig: _s, sigv: _v, ...meta } = this.me.meta;
    this.me.meta = this.signMeta ? { ...meta, sig: this.signMeta(meta, this.me.addr, this.me.incarnation), sigv: this.me.incarnation } : meta;
  }

  /** Refute a suspicion or death of ourselves: incarnate above `incarnation` and say we are alive. */
  private refute(incarnation: number, penalize: boolean, tell: (string | undefined)[] = []): void {
    // Never past what every agent can decode (guard.ts). At the cap a suspicion at the cap cannot
    // be refuted: said once, loudly; only a forged jump could get a member there (4 billion
    // refutations or meta changes otherwise), and those are refused from third parties.
    const next = nextIncarnation(Math.max(this.me.incarnation, incarnation));
    if (next <= incarnation && !this.incarnationCapLogged) {
      this.incarnationCapLogged = true;
      this.log.error({ node: this.node, incarnation: next, max: MAX_INCARNATION }, 'incarnation at its maximum: this agent can no longer refute a suspicion; restart it under another node id');
    }
    this.me.incarnation = next;
    this.signSelf();
    this.counters.refutations++;
    // Lifeguard: being suspected suggests we may be the slow one.
    if (penalize) this.awareness.applyDelta(1);
    this.broadcast(this.aliveUpdate(this.me));
    this.log.debug({ incarnation: this.me.incarnation }, 'refuted');
    // The refutation spreads like any update, fast but briefly (a dozen sends per member within a
    // few hundred ms); the member that raised the suspicion must not miss it, or it declares us
    // dead when its suspicion runs out. Tell it (and whoever told us) directly.
    for (const addr of new Set(tell)) if (addr) this.tellAlive(addr);
  }

  /** Send our alive state straight to `addr`, at most once per probe interval per address. */
  private tellAlive(addr: string): void {
    if (addr === this.me.addr) return;
    const now = this.clock.now();
    if (now - (this.toldAlive.get(addr) ?? -Infinity) < this.config.probeIntervalMs) return;
    if (this.toldAlive.size >= 1024) this.toldAlive.clear();
    this.toldAlive.set(addr, now);
    this.send(addr, { type: 'gossip', from: this.sender(), piggyback: { updates: [this.aliveUpdate(this.me)], loads: [] } });
  }

  private addrOf(node: string): string | undefined {
    return this.recs.get(node)?.addr;
  }

  /**
   * Whether news at incarnation `inc` about `r` may be applied (guard.ts): within
   * INCARNATION_WINDOW of what we have, or from the member itself (over a socket we dialed to
   * it), or about ourselves before we joined (a previous life). Else it is counted, logged now
   * and then, and the member is asked for its own state.
   */
  private plausible(r: Rec, inc: number, fromItself: boolean): boolean {
    if (plausibleJump(r.incarnation, inc) || (r === this.me && !this.joined) || fromItself) return true;
    if (r === this.me && !this.tookPreviousLife && inc <= PREVIOUS_LIFE_MAX_INCARNATION && this.clock.now() - this.joinedAt < SELF_NEWS_GRACE_MS) {
      // A previous life of ours, told after we joined (a tombstone's holder): once, bounded.
      this.tookPreviousLife = true;
      this.log.info({ node: this.node, incarnation: this.me.incarnation, previous: inc }, 'gossip: taking the incarnation of a previous life of ours');
      return true;
    }
    const n = ++this.counters.implausibleIncarnations;
    if (powerOfTwo(n)) this.log.warn({ member: r.node, known: r.incarnation, claimed: inc, from: this.inFrame?.node, count: n }, 'gossip: implausible incarnation jump not taken from a third party');
    if (r !== this.me) this.nudge(r);
    return false;
  }

  private markJoined(): void {
    this.joined = true;
    this.joinedAt = this.clock.now();
  }

  /**
   * Ask a member for its own state: a suspicion of it just below what we know, which it answers
   * with its alive (never a refutation: it has a later incarnation already) on the socket we
   * dialed, so that the answer counts as its own word. At most once per probe interval.
   */
  private nudge(r: Rec): void {
    const now = this.clock.now();
    if (now - r.lastNudgeAt < this.config.probeIntervalMs || r.incarnation === 0) return;
    r.lastNudgeAt = now;
    const saved = this.inFrame;
    this.inFrame = undefined; // a dial to the member's address, not a reply to whoever told us
    try {
      this.send(r.addr, { type: 'gossip', from: this.sender(), piggyback: { updates: [{ kind: 'suspect', node: r.node, incarnation: r.incarnation - 1, from: this.node }], loads: [] } });
    } finally {
      this.inFrame = saved;
    }
  }

  /**
   * Another agent says it is alive under our node id at `addr` (a duplicate id: two agents on one
   * host, host-network containers). Never fought over with refutations (memberlist reports a
   * conflict): logged as an error here and there. Before we joined, we ping it: if it answers,
   * it holds the id and we give it up (yieldName); if not, it is a previous life of ours and we
   * join once the cluster has it dead. After we joined, keepsName decides, the same way on both.
   */
  private onIdConflict(addr: string, incarnation: number): void {
    if (this.stopped || this.leaving) return;
    const n = ++this.counters.idConflicts;
    if (powerOfTwo(n))
      this.log.error({ node: this.node, other: addr, theirIncarnation: incarnation, ourIncarnation: this.me.incarnation, count: n }, `node id conflict: another agent at ${addr} uses node id ${JSON.stringify(this.node)}; give every agent its own node id`);
    if (!this.joined) {
      if (this.conflictProbe) return;
      const seq = this.nextSeq();
      const cp = { seq, addr };
      this.conflictProbe = cp;
      this.send(addr, { type: 'ping', from: this.sender(), seq, target: this.node });
      this.after(() => {
        if (this.conflictProbe === cp) this.conflictProbe = undefined;
      }, 2 * this.config.probeIntervalMs + 3 * this.extraWait());
      return;
    }
    // Incarnation 0 is the notice of an agent that gave the id up (no agent incarnates at 0).
    if (incarnation === 0 || keepsName(this.me, { incarnation, addr })) {
      this.tellAlive(addr); // so that it decides too
      return;
    }
    this.yieldName(addr);
  }

  /** Give our node id up to the agent at `addr`: tell it (so that it logs too), then stop. */
  private yieldName(addr: string): void {
    this.log.error({ node: this.node, holder: addr }, `node id ${JSON.stringify(this.node)} is in use by the agent at ${addr}: this agent stops gossiping and stays out of the cluster; restart it with its own node id`);
    const notice: StateUpdate = { kind: 'alive', node: this.node, incarnation: 0, addr: this.me.addr, meta: this.me.meta };
    this.send(addr, { type: 'gossip', from: this.sender(), piggyback: { updates: [notice], loads: [] } });
    this.stop();
    this.emit('conflict', { node: this.node, addr });
  }

  private onAlive(u: Extract<StateUpdate, { kind: 'alive' }>, from?: Sender): void {
    if (u.node === this.node) {
      if (this.leaving) return;
      if (u.addr !== this.me.addr) return this.onIdConflict(u.addr, u.incarnation);
      if (u.incarnation < this.me.incarnation) return;
      if (!this.plausible(this.me, u.incarnation, false)) return;
      if (u.incarnation === this.me.incarnation && u.addr === this.me.addr && sameMeta(u.meta, this.me.meta)) return;
      // Someone says we are alive with other details or a newer incarnation: a previous life of ours.
      this.refute(u.incarnation, false);
      return;
    }
    const r = this.recs.get(u.node);
    const now = this.clock.now();
    if (!r) {
      const tomb = this.tombstones.get(u.node, now);
      if (tomb && u.incarnation <= tomb.incarnation) {
        // A member we reaped, alive at an incarnation it had died or left at, or before: stale
        // news from a member that missed its end, or a fresh process under its name. Tell that
        // address, so that a live one incarnates above (at most once per probe interval).
        if (now - tomb.toldAt >= this.config.probeIntervalMs) {
          tomb.toldAt = now;
          const end: StateUpdate = tomb.status === 'dead' ? { kind: 'dead', node: u.node, incarnation: tomb.incarnation, from: this.node } : { kind: 'left', node: u.node, incarnation: tomb.incarnation };
          this.send(u.addr, { type: 'gossip', from: this.sender(), piggyback: { updates: [end], loads: [] } });
        }
        return;
      }
      this.tombstones.delete(u.node);
      if (this.recs.size >= this.maxMembers) {
        // Whatever peers say, we do not remember more members than a snapshot may carry.
        // Said once per 2^n refusals, so a flood cannot flood the log.
        const n = ++this.counters.membersRefused;
        if ((n & (n - 1)) === 0) this.log.warn({ member: u.node, maxMembers: this.maxMembers, refused: n }, `member limit reached (maxMembers ${this.maxMembers}): new members are refused`);
        return;
      }
      const rec: Rec = {
        node: u.node,
        addr: u.addr,
        status: 'alive',
        incarnation: u.incarnation,
        meta: copyMeta(u.meta),
        load: undefined,
        loadInc: 0,
        loadFloor: u.loadSeq,
        loadHeardAt: now,
        statusSince: now,
        updatedAt: now,
        suspicion: undefined,
        probing: undefined,
        lastHintProbeAt: -Infinity,
        lastNudgeAt: -Infinity,
      };
      this.addRec(rec);
      this.broadcast(u);
      this.log.debug({ member: u.node, addr: u.addr, incarnation: u.incarnation }, 'member joined');
      this.emit('change', this.snapshot(rec), undefined);
      return;
    }
    if (u.addr !== r.addr && this.isLive(r)) return this.addrConflict(r, u, from);
    if (u.incarnation <= r.incarnation) {
      // Old news, or a member restarting below the incarnation we remember. If we have it dead or
      // left, tell it so that it incarnates above (otherwise it would stay dead to us until reaped).
      if (r.status === 'dead' || r.status === 'left') this.tellDeath(r, u.addr);
      return;
    }
    const fromItself = this.firstHand(u.node, u.addr);
    if (!this.plausible(r, u.incarnation, fromItself)) return;
    if (u.addr !== r.addr && !fromItself) return this.addrConflict(r, u, from);
    this.broadcast(u);
    const prev = r.status;
    const changed = r.addr !== u.addr || !sameMeta(r.meta, u.meta);
    // Reports that overtook this alive on the way (sent after the member took the incarnation,
    // heard just before the alive: at or above its floor, within the mod-128 window, moments
    // ago) are of this incarnation already: what comes next must be newer than them.
    const held = r.load;
    if (prev === 'alive' && held && u.loadSeq !== undefined && held.seq >= u.loadSeq && held.seq - u.loadSeq < LOAD_SEQ_MOD / 2 && now - r.loadHeardAt <= this.config.probeIntervalMs) r.loadInc = u.incarnation;
    r.incarnation = u.incarnation;
    r.loadFloor = u.loadSeq;
    this.setAddr(r, u.addr);
    r.meta = copyMeta(u.meta);
    r.updatedAt = now;
    if (prev !== 'alive') this.setStatus(r, 'alive');
    else if (changed) this.emit('change', this.snapshot(r), prev);
  }

  /**
   * memberlist: a live member's address does not move (two agents with one id, or a forgery:
   * logged, not fought over), whatever the incarnation; a dead or gone member's does, on its own
   * word only (firstHand). We tell the claimed address what we hold: a member restarted there
   * answers on our socket; a second agent with the same id sees the conflict itself.
   */
  private addrConflict(r: Rec, u: Extract<StateUpdate, { kind: 'alive' }>, from: Sender | undefined): void {
    const n = ++this.counters.addrConflicts;
    if (powerOfTwo(n)) this.log.warn({ member: u.node, addr: r.addr, status: r.status, claimed: u.addr, from: from?.node, count: n }, 'gossip: conflicting address for a member not taken');
    if (this.isLive(r)) this.tellHolder(r, u.addr);
    else this.tellDeath(r, u.addr);
  }

  /**
   * Tell the agent at `to`, which claims to be the live member `r`, whom we hold under that name
   * (rate-limited per member): if it is a second agent with the same id, it now sees the
   * conflict itself and it and the holder settle it (onIdConflict) instead of splitting the cluster.
   */
  private tellHolder(r: Rec, to: string): void {
    const now = this.clock.now();
    if (now - r.lastNudgeAt < this.config.probeIntervalMs) return;
    r.lastNudgeAt = now;
    const saved = this.inFrame;
    this.inFrame = undefined; // dialed, as tellDeath
    try {
      this.send(to, { type: 'gossip', from: this.sender(), piggyback: { updates: [this.aliveUpdate(r)], loads: [] } });
    } finally {
      this.inFrame = saved;
    }
  }

  /** Send `to` the death (or leave) of `r` we know, rate-limited per member. */
  private tellDeath(r: Rec, to: string): void {
    const now = this.clock.now();
    if (now - r.lastNudgeAt < this.config.probeIntervalMs) return;
    r.lastNudgeAt = now;
    // Dialed, never a reply: the answer then comes on a socket we opened to `to`, which is what
    // lets a member that restarted at a new address move there (firstHand).
    const saved = this.inFrame;
    this.inFrame = undefined;
    try {
      this.send(to, { type: 'gossip', from: this.sender(), piggyback: { updates: this.buddy(r), loads: [] } });
    } finally {
      this.inFrame = saved;
    }
  }

  private onSuspect(u: Extract<StateUpdate, { kind: 'suspect' }>, sender?: Sender): void {
    const r = this.recs.get(u.node);
    if (!r || !this.plausible(r, u.incarnation, false)) return;
    if (sender && (r.status === 'dead' || r.status === 'left') && u.incarnation <= r.incarnation) {
      // It is news to the sender, old news to us: a member that missed every broadcast of this
      // death (an epidemic's tail) found it by probing and would wait out a whole suspicion with
      // nobody left to confirm it. Tell it (at most once per probe interval and member).
      this.tellDeath(r, sender.addr);
      return;
    }
    if (u.incarnation < r.incarnation) {
      // Someone still suspects an older us: it missed our refutation.
      if (r === this.me && sender && !this.leaving) this.tellAlive(sender.addr);
      return;
    }
    if (r.suspicion) {
      // Already suspect: another member's independent suspicion shortens the timeout; pass it on
      // so that confirmations reach everyone (memberlist suspectNode).
      if (r.suspicion.confirm(u.from)) {
        this.counters.confirmations++;
        this.broadcast(u);
      }
      return;
    }
    if (r.status !== 'alive') return;
    if (r === this.me) {
      if (!this.leaving) this.refute(u.incarnation, true, [this.addrOf(u.from), sender?.addr]);
      return;
    }
    this.broadcast(u);
    if (u.incarnation > r.incarnation) r.loadFloor = undefined; // its alive update (with the floor) has not reached us
    r.incarnation = u.incarnation;
    this.counters.suspicions++;
    const n = this.liveCount();
    let k = this.config.suspicionConfirmations;
    // Fewer members than ourselves, it, and k others: no confirmations can be expected.
    if (n - 2 < k) k = 0;
    // On a slow network a refutation takes as much longer to come back: scale with the timeout.
    const min = Math.floor(suspicionTimeout(this.config.suspicionMult, n, this.config.probeIntervalMs) * this.slowness());
    const max = this.config.suspicionMaxTimeoutMult * min;
    const since = this.clock.now();
    const s = new Suspicion({
      from: u.from,
      k,
      minMs: min,
      maxMs: max,
      clock: this.clock,
      onTimeout: (confirmations) => {
        if (r.suspicion !== s || r.status !== 'suspect' || this.stopped) return;
        r.suspicion = undefined;
        this.counters.deathsDeclared++;
        this.log.info({ member: r.node, confirmations, incarnation: r.incarnation, minMs: min, maxMs: max, afterMs: this.clock.now() - since }, 'suspicion timed out: dead');
        this.onDead({ kind: 'dead', node: r.node, incarnation: r.incarnation, from: this.node });
      },
    });
    this.setStatus(r, 'suspect');
    r.suspicion = s;
    if (u.from !== this.node) {
      // Someone else's suspicion: check it ourselves, soon (spread over one probe timeout so the
      // holders do not all ping at once). Our ping carries the suspicion, so a live member refutes
      // before it acks and the ack brings the refutation back, even if we would have missed its
      // broadcast; a dead one gives us an independent confirmation.
      // At most a few at once: when many fail together (a partition, a rack) the regular probes
      // and the gossip of others' confirmations do the rest.
      const delay = Math.floor(this.random.next() * this.config.probeTimeoutMs);
      this.after(() => {
        if (r.suspicion !== s || r.status !== 'suspect' || this.stopped || this.leaving) return;
        if (this.confirming >= MAX_CONFIRM_PROBES) return;
        this.probe(r, 'confirm');
      }, delay);
    }
    if (u.from === this.node) {
      // Our own suspicion: tell the member at once, so that it can refute before anyone else
      // times out (Lifeguard's buddy system, without waiting for the next probe of it).
      this.send(r.addr, { type: 'gossip', from: this.sender(), piggyback: { updates: [u], loads: [] } });
    }
  }

  private onDead(u: Extract<StateUpdate, { kind: 'dead' }>, sender?: Sender): void {
    const r = this.recs.get(u.node);
    if (!r || !this.plausible(r, u.incarnation, false)) return;
    if (u.incarnation < r.incarnation) {
      if (r === this.me && sender && !this.leaving) this.tellAlive(sender.addr);
      return;
    }
    if (r.status === 'dead' || r.status === 'left') return;
    if (r === this.me) {
      if (!this.leaving) this.refute(u.incarnation, true, [this.addrOf(u.from), sender?.addr]);
      return;
    }
    this.broadcast(u);
    if (u.incarnation > r.incarnation) r.loadFloor = undefined; // its alive update (with the floor) has not reached us
    r.incarnation = u.incarnation;
    this.setStatus(r, 'dead');
  }

  private onLeft(u: Extract<StateUpdate, { kind: 'left' }>, from?: Sender): void {
    const r = this.recs.get(u.node);
    if (!r || u.incarnation < r.incarnation) return;
    if (!this.plausible(r, u.incarnation, r !== this.me && this.firstHand(u.node, r.addr))) return;
    if (r.status === 'left') return;
    if (r === this.me) {
      if (!this.leaving) this.refute(u.incarnation, false);
      return;
    }
    this.broadcast(u);
    if (u.incarnation > r.incarnation) r.loadFloor = undefined; // its alive update (with the floor) has not reached us
    r.incarnation = u.incarnation;
    this.setStatus(r, 'left');
  }

  // -------------------------------------------------------------------------------------------
  // Push-pull

  private pushPull(addr: string, join: boolean): void {
    this.counters.pushPulls++;
    this.sendState(addr, this.fullState(), join);
  }

  /**
   * Our full state to `addr`: a push-pull request (`join` set) or response (undefined), in as many
   * frames as it takes (push-pull.ts). A request's first page has our own state.
   */
  private sendState(addr: string, states: MemberState[], join: boolean | undefined): void {
    const pages = pageStates(states, Math.min(PAGE_BYTES, this.maxFrameBytes - PUSH_PULL_OVERHEAD_BYTES));
    // One page per turn of the event loop: encoding 10,000 members at once would stall it. The
    // socket is the one we answer on, if this is an answer (see send), on every page.
    const via = this.inFrame;
    const sendPage = (i: number) => {
      if (this.stopped) return;
      const page = pageOf(i, pages.length);
      const p = pages[i]!;
      const frame: GossipFrame = join === undefined ? { type: 'push-pull-resp', from: this.sender(), states: p } : { type: 'push-pull-req', from: this.sender(), join, states: p };
      if (page) frame.page = page;
      const saved = this.inFrame;
      this.inFrame = via;
      try {
        this.send(addr, frame);
      } finally {
        this.inFrame = saved;
      }
      if (i + 1 < pages.length) this.after(() => sendPage(i + 1), 0);
    };
    sendPage(0);
  }

  /** Merge a peer's full state (memberlist mergeState): its dead are only suspects to us. */
  private merge(states: MemberState[], from: Sender): void {
    const fromNode = from.node;
    for (const s of states) {
      if (this.stopped) return;
      if (s.node === this.node) {
        this.mergeSelf(s);
        continue;
      }
      switch (s.status) {
        case 'alive':
          this.onAlive({ kind: 'alive', node: s.node, incarnation: s.incarnation, addr: s.addr, meta: s.meta }, from);
          break;
        case 'suspect':
        case 'dead':
          this.onSuspect({ kind: 'suspect', node: s.node, incarnation: s.incarnation, from: fromNode });
          break;
        case 'left':
          this.onLeft({ kind: 'left', node: s.node, incarnation: s.incarnation });
          break;
      }
      if (s.load) this.applyLoad(s.node, s.load, fromNode, false);
    }
  }

  private mergeSelf(s: MemberState): void {
    if (this.leaving) return;
    const mine = this.me;
    // Our id, live at another address: another agent uses it. Dead or gone there: a previous life.
    if (s.addr !== mine.addr && (s.status === 'alive' || s.status === 'suspect')) return this.onIdConflict(s.addr, s.incarnation);
    if (!this.plausible(mine, s.incarnation, false)) return;
    if (!this.joined && s.incarnation >= mine.incarnation) {
      // We have just started and the cluster remembers a previous life of ours: never reuse an
      // incarnation it has seen, whatever it says about it.
      this.refute(s.incarnation, false);
      return;
    }
    if (s.status === 'alive') {
      if (s.incarnation > mine.incarnation || (s.incarnation === mine.incarnation && (s.addr !== mine.addr || !sameMeta(s.meta, mine.meta)))) this.refute(s.incarnation, false);
    } else if (s.incarnation >= mine.incarnation) {
      this.refute(s.incarnation, s.status !== 'left');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Loads

  private applyLoadEntry(e: LoadEntry, fromNode: string): void {
    const node = typeof e.key === 'string' ? e.key : this.byHash.get(e.key);
    if (node === undefined || node === null) {
      this.counters.loadsUnknown++;
      return;
    }
    this.applyLoad(node, e, fromNode, true);
  }

  /**
   * A load report of `node`, from gossip (`gossip`: its seq is mod 128, and it is passed on) or from
   * push-pull (full seq, not passed on). Newer seq wins; after the member incarnated (a restart
   * counts from 0 again) any seq is news.
   */
  private applyLoad(node: string, l: Omit<LoadEntry, 'key'>, fromNode: string, gossip: boolean): void {
    const r = this.recs.get(node);
    if (!r || r === this.me || !this.isLive(r)) {
      this.counters.loadsUnknown++;
      return;
    }
    const now = this.clock.now();
    const reset = !r.load || r.incarnation > r.loadInc;
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
    else seq = loadSeqAfter(r.load!.seq, l.seq, now - r.loadHeardAt > LOAD_SEQ_TRUST_MS);
    if (seq === undefined) {
      this.counters.loadsStale++;
      return;
    }
    r.load = { connections: l.connections, sessions: l.sessions, utilization: l.utilization, seq, ageMs: l.ageMs, ...(l.source ? { source: l.source } : {}) };
    r.loadInc = r.incarnation;
    r.loadHeardAt = now;
    r.updatedAt = now;
    this.counters.loadsApplied++;
    this.emit('load', this.snapshot(r));
    if (!gossip) return;
    // Pass it on R times, R possibly fractional: floor(R), plus one with probability frac(R).
    const R = this.config.loadRetransmits;
    const limit = Math.floor(R) + (this.random.next() < R - Math.floor(R) ? 1 : 0);
    if (limit <= 0) return;
    const q: QueuedLoad = { origin: node, from: fromNode, report: r.load, heardAt: now };
    this.loads.push(node, q, this.loadSize(q), { limit });
  }
}
