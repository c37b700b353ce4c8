/**
 * The failure detector of membership.ts: SWIM's probe (Das, Gupta, Motivala, 2002) with
 * Lifeguard's refinements (Dadgar et al., 2018), after hashicorp/memberlist (state.go).
 *
 *  - Probe: every probe interval, ping the next member of a shuffled round-robin list. No ack within
 *    probeTimeout → ask `indirectChecks` others to ping it (ping-req, with nacks), and ping it
 *    directly once more. Nothing by the end of the interval → suspect it (member-updates.ts).
 *  - A closed socket (Transport.onPeerClosed) is a hint: probe that member at once.
 *  - Suspicion (suspicion.ts): the timeout shrinks from max to min as other members confirm it
 *    (Lifeguard LHA-Suspicion); a member that hears of someone else's suspicion probes the
 *    suspect itself, soon (a confirmation probe).
 *  - Local health (awareness.ts): missed nacks raise a score that stretches our own probe
 *    interval (Lifeguard LHA-Probe).
 *  - The probe timeout follows the measured round trip (rtt.ts, as TCP's RTO), never below the
 *    configured one; the indirect deadline and the suspicion time scale with it.
 *  - Relays: a ping-req from another member is pinged on, and answered with the ack, or a nack.
 */
import type { TimerHandle } from '../../sdk/core/clock.js';
import { Awareness, probeAwarenessDelta } from './awareness.js';
import type { GossipHost } from './host.js';
import { buddy, isLive, pick, type Rec } from './member-table.js';
import type { GossipFrame, StateUpdate } from './messages.js';
import { RttEstimator } from './rtt.js';
import { Suspicion, suspicionTimeout } from './suspicion.js';
import type { Via } from './transport.js';

export interface Probe {
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

/** What the detector concludes, for the rules of member-updates.ts to apply. */
export interface DetectorVerdicts {
  /** A probe failed: suspect the member (at the incarnation the probe started with). */
  suspect(u: Extract<StateUpdate, { kind: 'suspect' }>): void;
  /** A suspicion timed out: the member is dead. */
  dead(u: Extract<StateUpdate, { kind: 'dead' }>): void;
}

/** Confirmation probes (of a member someone else suspects) in flight at once, at most. */
const MAX_CONFIRM_PROBES = 3;

/**
 * Hint probes (a socket to the member closed) in flight at once, at most. A probe's ping-reqs go
 * to members whose sockets may fail too, each failure a hint: among thousands of unreachable
 * members (a flood of made-up ones, a partition) hints would breed probes without end.
 */
const MAX_HINT_PROBES = 4;

export class FailureDetector {
  readonly awareness: Awareness;
  private readonly rtt = new RttEstimator();
  /**
   * Start times of recent probes that ended without an ack (seq → ms), the last 64: an ack that
   * comes after its probe gave up is still a round-trip sample — on a network slower than the
   * configured timeout, the only kind there is — and is how the timeout learns to wait longer.
   */
  private readonly lateProbes = new Map<number, number>();
  private readonly probes = new Map<number, Probe>();
  private readonly relays = new Map<number, Relay>();
  private probeList: string[] = [];
  private probeIndex = 0;
  private seq = 0;
  private probeTimer: TimerHandle | undefined;
  /** Confirmation probes in flight. */
  private confirming = 0;
  /** Hint probes in flight. */
  private hinting = 0;

  constructor(
    private readonly h: GossipHost,
    private readonly verdicts: DetectorVerdicts,
  ) {
    this.awareness = new Awareness(h.config.awarenessMaxMultiplier);
  }

  /** Start the probe rounds. */
  start(): void {
    this.scheduleProbe();
  }

  stop(): void {
    const clock = this.h.clock;
    clock.clearTimeout(this.probeTimer);
    for (const p of this.probes.values()) clock.clearTimeout(p.timer);
    this.probes.clear();
    this.confirming = 0;
    this.hinting = 0;
    for (const r of this.relays.values()) for (const t of r.timers) clock.clearTimeout(t);
    this.relays.clear();
  }

  nextSeq(): number {
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    return this.seq;
  }

  /**
   * A new member: put it at a random place of the probe list (memberlist): appending would delay
   * the first probe of a new member by a whole round. By swapping with the member there
   * (memberlist), not by inserting: an insert moves the rest of the list, N times for N new members.
   */
  add(node: string): void {
    const n = this.probeList.length;
    const i = this.probeIndex + this.h.random.int(n - this.probeIndex + 1);
    this.probeList.push(node);
    if (i < n) [this.probeList[i], this.probeList[n]] = [this.probeList[n]!, this.probeList[i]!];
  }

  /**
   * How long to wait for a direct ack: the configured timeout, or the measured round trip's
   * srtt + 4·rttvar when that is longer, at most awarenessMaxMultiplier probe intervals.
   */
  probeTimeout(): number {
    return this.rtt.timeout(this.h.config.probeTimeoutMs, this.timeoutCap());
  }

  /** The most probeTimeout() can be. */
  timeoutCap(): number {
    return this.h.config.probeIntervalMs * this.h.config.awarenessMaxMultiplier;
  }

  /** What the round trip adds to the configured probe timeout: 0 on a network as fast as planned. */
  extraWait(): number {
    return this.probeTimeout() - this.h.config.probeTimeoutMs;
  }

  /** probeTimeout() over its configured value: ≥ 1, how much slower than planned the network is. */
  slowness(): number {
    return this.probeTimeout() / this.h.config.probeTimeoutMs;
  }

  private scheduleProbe(): void {
    if (this.h.stopped) return;
    // Lifeguard LHA-Probe: a member in poor health probes (and so accuses) less often.
    this.probeTimer = this.h.after(() => {
      this.probeRound();
      this.scheduleProbe();
    }, this.awareness.scaleTimeout(this.h.config.probeIntervalMs));
  }

  private probeRound(): void {
    if (this.h.stopped) return;
    const r = this.nextProbeTarget();
    if (r) this.probe(r, 'round');
  }

  private nextProbeTarget(): Rec | undefined {
    const t = this.h.table;
    for (let tries = 0; tries <= this.probeList.length + 1; tries++) {
      if (this.probeIndex >= this.probeList.length) {
        // Wrapped: reshuffle the live members (memberlist resetNodes).
        this.probeList = pick(
          this.h.random,
          Infinity,
          t.others().map((r) => r.node),
        );
        this.probeIndex = 0;
        if (this.probeList.length === 0) return undefined;
      }
      const r = t.get(this.probeList[this.probeIndex++]!);
      if (r && r !== t.me && isLive(r) && r.probing === undefined) return r;
    }
    return undefined;
  }

  /** Ping one random dead member (not being probed) with its death piggybacked: see reconnectRound. */
  reconnect(dead: Rec[]): void {
    const [r] = pick(this.h.random, 1, dead);
    if (r && !this.h.leaving) {
      this.h.counters.reconnectPings++;
      this.probe(r, 'reconnect');
    }
  }

  probe(r: Rec, kind: Probe['kind']): void {
    const h = this.h;
    if (r.probing !== undefined || h.stopped) return;
    const seq = this.nextSeq();
    const extra = this.extraWait();
    const p: Probe = { seq, node: r.node, addr: r.addr, incarnation: r.incarnation, kind, phase: 'direct', startedAt: h.clock.now(), extra, expectedNacks: 0, nacks: 0, timer: undefined };
    this.probes.set(seq, p);
    r.probing = seq;
    if (kind !== 'reconnect') h.counters.probes++;
    if (kind === 'hint') {
      h.counters.hintProbes++;
      this.hinting++;
    }
    if (kind === 'confirm') {
      h.counters.confirmProbes++;
      this.confirming++;
    }
    h.send(r.addr, { type: 'ping', from: h.sender(), seq, target: r.node, piggyback: h.piggyback(r.node, buddy(r, h.node)) });
    if (kind === 'reconnect') {
      p.timer = h.after(() => this.endProbe(p), h.config.probeIntervalMs + 3 * extra);
    } else {
      p.timer = h.after(() => this.indirectProbe(p), h.config.probeTimeoutMs + extra);
    }
  }

  private indirectProbe(p: Probe): void {
    const h = this.h;
    if (this.probes.get(p.seq) !== p || h.stopped) return;
    const r = h.table.get(p.node);
    p.phase = 'indirect';
    const helpers = pick(
      h.random,
      h.config.indirectChecks,
      h.table.others().filter((x) => x.node !== p.node),
    );
    for (const x of helpers) {
      h.send(x.addr, { type: 'ping-req', from: h.sender(), seq: p.seq, target: p.node, targetAddr: p.addr, nack: true, piggyback: h.piggyback(x.node) });
    }
    h.counters.indirectProbes += helpers.length;
    p.expectedNacks = helpers.length;
    // memberlist falls back to a TCP ping at this point; over one socket per peer the equivalent
    // is one more direct ping, which on a lossy path doubles the chance of the direct route.
    if (r) h.send(p.addr, { type: 'ping', from: h.sender(), seq: p.seq, target: p.node, piggyback: h.piggyback(p.node, buddy(r, h.node)) });
    // The helpers' path is two round trips: on a slow network, wait that much longer.
    const deadline = p.startedAt + this.awareness.scaleTimeout(h.config.probeIntervalMs) + 3 * p.extra;
    p.timer = h.after(() => this.probeFailed(p), Math.max(0, deadline - h.clock.now()));
  }

  private endProbe(p: Probe): void {
    this.h.clock.clearTimeout(p.timer);
    if (this.probes.delete(p.seq)) {
      if (p.kind === 'confirm') this.confirming--;
      if (p.kind === 'hint') this.hinting--;
    }
    const r = this.h.table.get(p.node);
    if (r && r.probing === p.seq) r.probing = undefined;
  }

  private probeFailed(p: Probe): void {
    const h = this.h;
    if (this.probes.get(p.seq) !== p || h.stopped) return;
    this.endProbe(p);
    this.lateProbes.set(p.seq, p.startedAt);
    if (this.lateProbes.size > 64) this.lateProbes.delete(this.lateProbes.keys().next().value!);
    h.counters.probesFailed++;
    // Lifeguard's score follows the regular probe cycle (and hints); confirmation probes come in
    // bursts when many members fail together, and would pin it at the maximum.
    if (p.kind !== 'confirm') this.awareness.applyDelta(probeAwarenessDelta('failed', p.expectedNacks, p.nacks));
    const r = h.table.get(p.node);
    if (!r || !isLive(r)) return;
    h.log.debug({ member: p.node, kind: p.kind, nacks: p.nacks, expectedNacks: p.expectedNacks }, 'probe failed');
    // Suspect at the incarnation the probe started with: if it refuted meanwhile, this is stale.
    this.verdicts.suspect({ kind: 'suspect', node: p.node, incarnation: p.incarnation, from: h.node });
  }

  /** An ack of `seq` from the member `from`: ends a probe, or goes back to whom we relayed for. */
  onAck(seq: number, from: string): void {
    const h = this.h;
    const relay = this.relays.get(seq);
    if (relay) {
      this.relays.delete(seq);
      for (const t of relay.timers) h.clock.clearTimeout(t);
      this.sendRelay(relay, { type: 'ack', from: h.sender(), seq: relay.originSeq, piggyback: h.piggyback(h.table.nodeAt(relay.origin)) });
      return;
    }
    const p = this.probes.get(seq);
    if (!p) {
      const startedAt = this.lateProbes.get(seq);
      if (startedAt !== undefined) {
        this.lateProbes.delete(seq);
        // An ack later than the cap says nothing the cap does not (a stall, a healed partition
        // delivering old pings): not a sample, or one event would pin the timeout for seconds.
        const ms = h.clock.now() - startedAt;
        if (ms <= this.timeoutCap()) this.rtt.sample(ms);
      }
      return;
    }
    h.counters.acks++;
    this.endProbe(p);
    if (p.kind !== 'reconnect') {
      const ms = h.clock.now() - p.startedAt;
      this.rtt.sample(Math.min(ms, this.timeoutCap()));
      h.emitRtt({ node: p.node, ms, phase: p.phase });
    }
    if (p.kind === 'reconnect') {
      // A member we have as dead answered: exchange full state (it has heard it is dead and refuted).
      h.log.info({ member: p.node, from }, 'dead member answered: exchanging state');
      h.pushPull(p.addr, false);
      return;
    }
    if (p.kind !== 'confirm') this.awareness.applyDelta(probeAwarenessDelta(p.phase === 'direct' ? 'direct-ack' : 'indirect-ack', p.expectedNacks, p.nacks));
  }

  onNack(seq: number): void {
    const p = this.probes.get(seq);
    if (p) {
      p.nacks++;
      this.h.counters.nacks++;
    }
  }

  onPeerClosed(addr: string): void {
    const h = this.h;
    if (h.stopped || h.leaving) return;
    h.counters.hints++;
    const node = h.table.nodeAt(addr);
    const r = node === undefined ? undefined : h.table.get(node);
    if (!r || r === h.table.me || !isLive(r)) return;
    // A closed socket is a strong hint but not proof (a restart, a proxy, a flap): probe now
    // instead of waiting for its turn, at most once per probe interval.
    const now = h.clock.now();
    if (now - r.lastHintProbeAt < h.config.probeIntervalMs || this.hinting >= MAX_HINT_PROBES) return;
    r.lastHintProbeAt = now;
    this.probe(r, 'hint');
  }

  onPingReq(f: Extract<GossipFrame, { type: 'ping-req' }>): void {
    const h = this.h;
    if (f.target === h.node) {
      h.send(f.from.addr, { type: 'ack', from: h.sender(), seq: f.seq });
      return;
    }
    const seq = this.nextSeq();
    const relay: Relay = { origin: f.from.addr, originSeq: f.seq, timers: [], via: h.inFrame()?.via };
    this.relays.set(seq, relay);
    const target = h.table.get(f.target);
    // Pinged where the asker says (its view may differ from ours: two agents with one id). An
    // address no member of ours has is an unconfirmed dial, within the budget (see send).
    h.send(f.targetAddr, { type: 'ping', from: h.sender(), seq, target: f.target, piggyback: h.piggyback(f.target, target ? buddy(target, h.node) : []) });
    const c = h.config;
    if (f.nack) {
      // Nack before the asker's deadline (it waits until the end of its probe interval, which
      // started probeTimeout before it asked us): "I could not reach it either, but I am here".
      // Unscaled: the asker's wait depends on its own round-trip estimate, not ours, and a nack
      // that comes early does no harm (the ack, when it comes, still ends the probe).
      const nackAfter = Math.max(1, Math.floor((c.probeIntervalMs - c.probeTimeoutMs) * 0.8));
      relay.timers.push(
        h.after(() => {
          if (this.relays.get(seq) === relay) this.sendRelay(relay, { type: 'nack', from: h.sender(), seq: relay.originSeq });
        }, nackAfter),
      );
    }
    relay.timers.push(h.after(() => this.relays.delete(seq), c.probeIntervalMs * 2 + 4 * (this.timeoutCap() - c.probeTimeoutMs)));
  }

  /** An ack or nack for the asker of a ping-req, on the socket its request came in on. */
  private sendRelay(relay: Relay, frame: GossipFrame): void {
    this.h.sendIn(relay.via ? { from: relay.origin, node: '', addr: relay.origin, via: relay.via } : undefined, relay.origin, frame);
  }

  /**
   * `r` is suspect now (`u`): start its suspicion timer, and if the suspicion is someone else's,
   * check it ourselves soon; if it is ours, tell the member at once.
   */
  suspect(r: Rec, u: Extract<StateUpdate, { kind: 'suspect' }>): Suspicion {
    const h = this.h;
    const c = h.config;
    const n = h.table.liveCount();
    let k = c.suspicionConfirmations;
    // Fewer members than ourselves, it, and k others: no confirmations can be expected.
    if (n - 2 < k) k = 0;
    // On a slow network a refutation takes as much longer to come back: scale with the timeout.
    const min = Math.floor(suspicionTimeout(c.suspicionMult, n, c.probeIntervalMs) * this.slowness());
    const max = c.suspicionMaxTimeoutMult * min;
    const since = h.clock.now();
    const s: Suspicion = new Suspicion({
      from: u.from,
      k,
      minMs: min,
      maxMs: max,
      clock: h.clock,
      onTimeout: (confirmations) => {
        if (r.suspicion !== s || r.status !== 'suspect' || h.stopped) return;
        r.suspicion = undefined;
        h.counters.deathsDeclared++;
        h.log.info({ member: r.node, confirmations, incarnation: r.incarnation, minMs: min, maxMs: max, afterMs: h.clock.now() - since }, 'suspicion timed out: dead');
        this.verdicts.dead({ kind: 'dead', node: r.node, incarnation: r.incarnation, from: h.node });
      },
    });
    return s;
  }

  /** After `r` became suspect with suspicion `s` raised by `u.from`: confirm or tell (see suspect). */
  followSuspicion(r: Rec, s: Suspicion, u: Extract<StateUpdate, { kind: 'suspect' }>): void {
    const h = this.h;
    if (u.from !== h.node) {
      // Someone else's suspicion: check it ourselves, soon (spread over one probe timeout so the
      // holders do not all ping at once). Our ping carries the suspicion, so a live member refutes
      // before it acks and the ack brings the refutation back, even if we would have missed its
      // broadcast; a dead one gives us an independent confirmation.
      // At most a few at once: when many fail together (a partition, a rack) the regular probes
      // and the gossip of others' confirmations do the rest.
      const delay = Math.floor(h.random.next() * h.config.probeTimeoutMs);
      h.after(() => {
        if (r.suspicion !== s || r.status !== 'suspect' || h.stopped || h.leaving) return;
        if (this.confirming >= MAX_CONFIRM_PROBES) return;
        this.probe(r, 'confirm');
      }, delay);
    }
    if (u.from === h.node) {
      // Our own suspicion: tell the member at once, so that it can refute before anyone else
      // times out (Lifeguard's buddy system, without waiting for the next probe of it).
      h.send(r.addr, { type: 'gossip', from: h.sender(), piggyback: { updates: [u], loads: [] } });
    }
  }
}
