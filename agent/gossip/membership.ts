/**
 * Membership and failure detection among agents: SWIM (Das, Gupta, Motivala, 2002) with
 * Lifeguard's refinements (Dadgar et al., 2018), after hashicorp/memberlist (state.go).
 *
 * A pure state machine: no sockets and no timers of its own. Frames go through a Transport, time
 * through a Clock, choices through a Random, so a whole cluster runs deterministically on a
 * ManualClock and a MemoryNetwork.
 *
 * This class is the façade; the ideas live beside it:
 *  - member-table.ts: the records (status, incarnation, address, meta), their indexes, the live
 *    count and the tombstones of reaped members;
 *  - member-updates.ts: the incarnation rules — which news changes a record, refutation, a second
 *    agent under our id;
 *  - failure-detector.ts: probe, indirect probe, suspicion, the RTT-driven timeouts, relays;
 *  - load-delegate.ts: load gossip behind a piggyback delegate (Serf's delegate.go): application
 *    state never enters the SWIM state machine. Membership asks it for entries within the bytes a
 *    frame has left after the state updates, and hands it those that come in;
 *  - dissemination.ts: what rides on every frame (pings, acks, gossip rounds): state updates from
 *    a transmit-limited queue (broadcast-queue.ts), then the delegate's entries in the bytes left;
 *  - here: the public API, the frames (send, dispatch), gossip rounds and anti-entropy.
 *
 *  - Anti-entropy: full state push-pull with a random member every pushPullInterval; also used to
 *    join through seeds, and with a dead member that answers a reconnect ping (partition heal).
 */
import { Emitter } from '../../sdk/core/emitter.js';
import { systemClock, every, type Clock, type TimerHandle } from '../../sdk/core/clock.js';
import { XorShiftRandom, type Random } from '../../sdk/core/random.js';
import { ConfigError } from '../../sdk/core/errors.js';
import { LIMITS, type LoadReport } from '../../sdk/core/protocol.js';
import { resolveGossipConfig, pushPullInterval, type GossipConfig } from './config.js';
import { Dissemination } from './dissemination.js';
import { DialBudget, nextIncarnation } from './guard.js';
import { pageOf, pageStates, PAGE_BYTES, PUSH_PULL_OVERHEAD_BYTES } from './push-pull.js';
import { encodeFrame, tryDecodeFrame, type GossipFrame, type MemberMeta, type MemberState, type MemberStatus, type StateUpdate } from './messages.js';
import { MemberTable, copyMeta, isLive, newRec, pick, buddy, type Rec } from './member-table.js';
import { MemberUpdates } from './member-updates.js';
import { FailureDetector } from './failure-detector.js';
import { LoadGossip } from './load-delegate.js';
import { newCounters, type Counter, type GossipHost, type InFrame } from './host.js';
import type { Transport, Via } from './transport.js';

export type { MemberMeta, MemberStatus } from './messages.js';

export type { Member, GossipLogger, MembershipOptions, MembershipEvents, MembershipStats } from './membership-types.js';
import type { LogFn, Member, GossipLogger, MembershipOptions, MembershipEvents, MembershipStats } from './membership-types.js';

/** Members a new member announces itself to directly, besides its seed. */
const JOIN_ANNOUNCE_FANOUT = 4;

/** Members a leaving member tells directly (the rest hear it by gossip). */
const LEAVE_DIRECT_MAX = 64;

const noop: LogFn = () => {};
const silentLog: GossipLogger = { debug: noop, info: noop, warn: noop, error: noop };

export class Membership extends Emitter<MembershipEvents> {
  readonly node: string;
  readonly config: Readonly<GossipConfig>;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: GossipLogger;
  private readonly maxFrameBytes: number;

  private readonly table: MemberTable;
  private readonly me: Rec;
  private readonly host: GossipHost;
  private readonly detector: FailureDetector;
  private readonly rules: MemberUpdates;
  private readonly loads: LoadGossip;

  private readonly updates: Dissemination;

  private started = false;
  private stopped = false;
  private leaving = false;
  private seeds: string[] = [];
  private pushPullTimer: TimerHandle | undefined;
  private joinTimer: TimerHandle | undefined;
  private stoppers: (() => void)[] = [];
  private leavePromise: Promise<void> | undefined;
  private readonly counters: Record<Counter, number> = newCounters();

  /** Dials to addresses no member has (guard.ts). */
  private readonly dials: DialBudget;
  /** The frame being handled: who sent it, and the socket to answer on. */
  private inFrame: InFrame | undefined;

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
    const maxMembers = Math.min(opts.maxMembers ?? LIMITS.maxServers, LIMITS.maxServers);
    this.dials = new DialBudget(this.clock);
    this.me = newRec(opts.node, opts.transport.addr, 1, opts.meta, this.clock.now());
    this.table = new MemberTable(this.me, maxMembers);
    this.host = this.makeHost();
    this.loads = new LoadGossip({
      members: {
        self: this.node,
        liveIncarnation: (node) => {
          const r = this.table.get(node);
          return r && r !== this.me && isLive(r) ? r.incarnation : undefined;
        },
        nodeOfKey: (key) => (typeof key === 'string' ? key : this.table.nodeOfHash(key)),
      },
      clock: this.clock,
      random: this.random,
      config: this.config,
      onLoad: (node) => {
        const r = this.table.get(node)!;
        r.updatedAt = this.clock.now();
        this.emit('load', this.snapshot(r));
      },
    });
    this.updates = new Dissemination(this.config.retransmitMult, () => this.table.liveCount(), this.config.maxPiggybackBytes, this.loads);
    this.detector = new FailureDetector(this.host, {
      suspect: (u) => this.rules.onSuspect(u),
      dead: (u) => this.rules.onDead(u),
    });
    this.rules = new MemberUpdates(this.host, this.detector, this.loads, opts.signMeta);
    this.rules.signSelf();
    this.transport.onFrame((from, frame, via) => this.onFrame(from, frame, via));
    this.transport.onPeerClosed((addr) => this.detector.onPeerClosed(addr));
  }

  private makeHost(): GossipHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const m = this;
    return {
      node: this.node,
      config: this.config,
      clock: this.clock,
      random: this.random,
      log: this.log,
      counters: this.counters,
      table: this.table,
      get stopped() {
        return m.stopped;
      },
      get leaving() {
        return m.leaving;
      },
      get joined() {
        return m.rules.joined;
      },
      send: (to, frame) => this.send(to, frame),
      sendIn: (ctx, to, frame) => this.sendIn(ctx, to, frame),
      inFrame: () => this.inFrame,
      sender: () => this.sender(),
      after: (fn, ms) => this.after(fn, ms),
      piggyback: (target, first) => this.updates.piggyback(target, first),
      broadcast: (u) => this.updates.broadcast(u),
      pushPull: (addr, join) => this.pushPull(addr, join),
      statusChanged: (r, prev) => {
        this.log[r.status === 'dead' ? 'info' : 'debug']({ member: r.node, status: r.status, previous: prev, incarnation: r.incarnation }, 'member status');
        this.emit('change', this.snapshot(r), prev);
      },
      changed: (r, prev) => this.emit('change', this.snapshot(r), prev),
      emitRtt: (info) => this.emit('rtt', info),
      emitConflict: (info) => this.emit('conflict', info),
      stop: () => this.stop(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Public API

  /** Start probing and gossiping, and join through `seeds` (agent addresses), retrying until one answers. */
  start(seeds: string[]): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.updates.broadcast(this.rules.aliveUpdate(this.me));
    const c = this.config;
    this.detector.start();
    this.stoppers.push(every(this.clock, c.gossipIntervalMs, () => this.gossipRound()));
    this.stoppers.push(every(this.clock, c.reconnectIntervalMs, () => this.reconnectRound()));
    if (c.pushPullIntervalMs > 0) this.schedulePushPull(true);
    this.seeds = [...new Set(seeds)].filter((s) => s !== this.me.addr);
    if (this.seeds.length === 0) this.rules.markJoined();
    else this.tryJoin();
  }

  /** New meta (weight, zone, health…): incarnate and tell everyone. */
  setMeta(meta: MemberMeta): void {
    if (this.stopped || this.leaving) return;
    this.me.meta = copyMeta(meta);
    this.me.incarnation = nextIncarnation(this.me.incarnation);
    this.rules.signSelf();
    this.me.updatedAt = this.clock.now();
    this.updates.broadcast(this.rules.aliveUpdate(this.me));
    this.emit('change', this.snapshot(this.me), this.me.status);
  }

  /**
   * A new load report of this node: gossiped as a load entry, no incarnation. Its `seq` is kept if
   * it is above the last one, else the last one + 1 (receivers drop what is not newer).
   */
  setLoad(load: Omit<LoadReport, 'ageMs'> & { ageMs?: number }): void {
    if (this.stopped) return;
    this.loads.setSelf(load);
    this.me.updatedAt = this.clock.now();
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
    const prev = this.table.setStatus(this.me, 'left', this.clock.now());
    if (prev !== undefined) this.host.statusChanged(this.me, prev);
    const u: StateUpdate = { kind: 'left', node: this.node, incarnation: this.me.incarnation };
    // Straight to every member (up to LEAVE_DIRECT_MAX, the rest by gossip): one small frame each,
    // once, and the leave is in every view after one hop instead of an epidemic's tail.
    for (const r of pick(this.random, LEAVE_DIRECT_MAX, this.table.others())) {
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
      if (this.table.others().length === 0) finish();
      else this.updates.leave(u, finish);
    });
    return this.leavePromise;
  }

  /** Stop every timer and ignore frames from now on, without a goodbye (a crash, in simulations). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.stoppers) s();
    this.stoppers = [];
    this.clock.clearTimeout(this.pushPullTimer);
    this.clock.clearTimeout(this.joinTimer);
    this.detector.stop();
    this.table.cancelSuspicions();
  }

  /** Every member known, this node included, dead and left ones until they are reaped. */
  members(): Member[] {
    return [...this.table.values()].map((r) => this.snapshot(r));
  }

  /** One member by node name. */
  member(node: string): Member | undefined {
    const r = this.table.get(node);
    return r && this.snapshot(r);
  }

  self(): Member {
    return this.snapshot(this.me);
  }

  /** The status of one member, without copying it (undefined: unknown or reaped). */
  statusOf(node: string): MemberStatus | undefined {
    return this.table.get(node)?.status;
  }

  get addr(): string {
    return this.me.addr;
  }

  stats(): MembershipStats {
    const l = this.loads.stats();
    const s: MembershipStats = {
      ...this.counters,
      loadsApplied: l.loadsApplied,
      loadsStale: l.loadsStale,
      loadsUnknown: l.loadsUnknown,
      awareness: this.detector.awareness.score,
      probeTimeoutMs: this.detector.probeTimeout(),
      queuedUpdates: this.updates.size,
      queuedLoads: l.queuedLoads,
      alive: 0,
      suspect: 0,
      dead: 0,
      left: 0,
    };
    for (const r of this.table.values()) s[r.status]++;
    return s;
  }

  // -------------------------------------------------------------------------------------------
  // Members

  private snapshot(r: Rec): Member {
    const m: Member = { node: r.node, addr: r.addr, status: r.status, incarnation: r.incarnation, meta: copyMeta(r.meta), statusSince: r.statusSince, updatedAt: r.updatedAt };
    const load = this.loads.current(r.node);
    if (load) m.load = load;
    return m;
  }

  private memberState(r: Rec): MemberState {
    const s: MemberState = { node: r.node, addr: r.addr, incarnation: r.incarnation, status: r.status, meta: r.meta };
    const load = this.loads.localState(r.node);
    if (load) s.load = load;
    return s;
  }

  private fullState(): MemberState[] {
    return [...this.table.values()].map((r) => this.memberState(r));
  }

  private reap(r: Rec): void {
    this.table.reap(r, this.clock.now());
    this.updates.forget(r.node);
    this.loads.notifyForget(r.node);
    this.emit('reap', this.snapshot(r));
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
    } else if (!this.table.hasAddr(to) && !this.seeds.includes(to) && !this.dials.take()) {
      this.counters.dialsRefused++;
      return;
    }
    this.counters.framesOut++;
    this.counters.bytesOut += bytes.length;
    if (c?.via && (to === c.addr || to === c.from)) c.via.reply(bytes);
    else this.transport.send(to, bytes);
  }

  /** send() as if handling a frame with `ctx` (undefined: a dial, never a reply). */
  private sendIn(ctx: InFrame | undefined, to: string, frame: GossipFrame): void {
    const saved = this.inFrame;
    this.inFrame = ctx;
    try {
      this.send(to, frame);
    } finally {
      this.inFrame = saved;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  private schedulePushPull(first: boolean): void {
    if (this.stopped) return;
    const interval = pushPullInterval(this.config.pushPullIntervalMs, this.table.liveCount());
    // Stagger the first one (memberlist): members started together must not sync in lockstep.
    const delay = first ? Math.max(1, Math.floor(this.random.next() * interval)) : interval;
    this.pushPullTimer = this.after(() => {
      const [r] = pick(this.random, 1, this.table.others());
      if (r) this.pushPull(r.addr, false);
      this.schedulePushPull(false);
    }, delay);
  }

  private tryJoin(): void {
    if (this.stopped || this.rules.joined) return;
    this.counters.joinAttempts++;
    for (const s of this.seeds) this.pushPull(s, true);
    this.joinTimer = this.after(() => this.tryJoin(), this.config.joinRetryMs);
  }

  private gossipRound(): void {
    if (this.stopped) return;
    for (const r of pick(this.random, this.config.gossipNodes, this.table.others())) {
      const p = this.updates.piggyback(r.node);
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
    this.table.tombstones.sweep(now);
    const dead: Rec[] = [];
    for (const r of [...this.table.values()]) {
      if (r === this.me) continue;
      if (r.status === 'dead' && now - r.statusSince >= this.config.deadReapMs) this.reap(r);
      else if (r.status === 'left' && now - r.statusSince >= this.config.leftReapMs) this.reap(r);
      else if (r.status === 'dead' && r.probing === undefined) dead.push(r);
    }
    this.detector.reconnect(dead);
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
    if ('piggyback' in f && f.piggyback) {
      for (const u of f.piggyback.updates) this.rules.apply(u, f.from);
      this.loads.notify(f.piggyback.loads, f.from.node);
    }
    switch (f.type) {
      case 'ping':
        if (f.target !== this.node) {
          this.counters.misdirectedPings++;
          return;
        }
        {
          // A member we have as dead or gone is pinging us: tell it, so that it refutes.
          const sr = this.table.get(f.from.node);
          const extra = sr && sr !== this.me && !isLive(sr) ? buddy(sr, this.node) : [];
          this.send(f.from.addr, { type: 'ack', from: this.sender(), seq: f.seq, piggyback: this.updates.piggyback(f.from.node, extra) });
        }
        return;
      case 'ack':
        if (!this.rules.onConflictAck(f.seq, f.from.node)) this.detector.onAck(f.seq, f.from.node);
        return;
      case 'nack':
        this.detector.onNack(f.seq);
        return;
      case 'ping-req':
        this.detector.onPingReq(f);
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
        this.rules.merge(f.states, f.from);
        if (!answer || this.stopped) return;
        states.push(this.memberState(this.me));
        this.sendState(f.from.addr, states, undefined);
        return;
      }
      case 'push-pull-resp': {
        this.rules.merge(f.states, f.from);
        // Joined once the seed's whole state is in: a previous life of ours may be on any page,
        // and until we joined its incarnation is taken however far above ours (plausible).
        // Not joined while another live agent may hold our id (see member-updates.ts onIdConflict).
        if (f.page && f.page.index !== f.page.count - 1) return;
        if (!this.rules.joined && !this.stopped && this.rules.conflictProbe === undefined) {
          this.rules.markJoined();
          this.clock.clearTimeout(this.joinTimer);
          this.log.info({ via: f.from.node, members: this.table.liveCount() }, 'joined');
          // Only the seed knows us yet: start the epidemic of our alive from a few more places
          // (each round of gossip multiplies the informed members, so more starting points save
          // rounds) — a handful of small frames, once.
          const me = this.rules.aliveUpdate(this.me);
          for (const r of pick(
            this.random,
            JOIN_ANNOUNCE_FANOUT,
            this.table.others().filter((x) => x.node !== f.from.node),
          )) {
            this.send(r.addr, { type: 'gossip', from: this.sender(), piggyback: { updates: [me], loads: [] } });
          }
        }
        return;
      }
      case 'leave':
        this.rules.onLeft({ kind: 'left', node: f.from.node, incarnation: f.incarnation }, f.from);
        return;
    }
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
      this.sendIn(via, addr, frame);
      if (i + 1 < pages.length) this.after(() => sendPage(i + 1), 0);
    };
    sendPage(0);
  }
}
