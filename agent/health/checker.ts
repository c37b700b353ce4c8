/**
 * The agent checks its own server and says whether clients should pick it.
 *
 * Checks:
 *  - `tcp`: connect to the server's port and close gracefully (HAProxy's default layer-4 check, but
 *    with a FIN, not a reset: see probeTcp);
 *  - `ws`: open a WebSocket to the server's ws endpoint and close it (probeWs);
 *  - `udp`: send a datagram and wait for a reply, optionally one that starts with `expect`;
 *  - `ttl`: no probe; healthy while the server keeps reporting (`reported()`), as Consul's TTL
 *    checks ("dead man's switch");
 *  - `none`: always healthy.
 *
 * Probe outcomes go through HAProxy's rise/fall thresholds (HAProxy configuration manual, server
 * options `rise` and `fall`): `rise` consecutive successes make an unhealthy server healthy, `fall`
 * consecutive failures make a healthy one unhealthy, so one lost probe does not flap the state that
 * every client acts on. The threshold logic is the pure `nextHealth`; scheduling goes through the
 * Clock; probes use real sockets.
 *
 * Probes: agent/health/probes.ts. Defaults: agent/health/defaults.ts (shared with the option schema).
 *
 * Nothing here throws after construction: socket errors are probe failures, except those of the
 * agent's own resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), which are "cannot tell": the state stays.
 */
import { EventEmitter } from 'node:events';
import { every, systemClock, type Clock, type TimerHandle } from '../../sdk/core/clock.js';
import { BadOptionError } from '../../sdk/core/errors.js';
import { int } from '../../sdk/core/validate.js';
import { MAX_UDP_PAYLOAD, probeTcp, probeUdp, probeWs, type ProbeResult } from './probes.js';
import { wsPathProblem } from '../../sdk/core/protocol.js';
import { DEFAULT_FALL, DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_RISE, DEFAULT_TTL_FALL, DEFAULT_TTL_RISE, defaultProbeTimeoutMs, HEALTH_RANGES } from './defaults.js';

export type HealthCheck =
  | { type: 'tcp'; host: string; port: number; timeoutMs?: number }
  | { type: 'udp'; host: string; port: number; send: string | Uint8Array; expect?: string | RegExp | Uint8Array; timeoutMs?: number }
  | { type: 'ttl'; ttlMs: number }
  | { type: 'none' }
  /** A WebSocket open to ws[s]://host:port/path (path default '/'). */
  | { type: 'ws'; host: string; port: number; path?: string; tls?: boolean; timeoutMs?: number };

export type HealthState = 'healthy' | 'unhealthy';

export interface HealthCheckerOptions {
  /**
   * Consecutive successes before an unhealthy server is healthy. Default 2, HAProxy's `rise`
   * default; 1 for `ttl` checks (a report is proof of life, not a sample that could be a fluke).
   */
  rise?: number;
  /**
   * Consecutive failures before a healthy server is unhealthy. Default 3, HAProxy's `fall`
   * default; 1 for `ttl` checks (the TTL already is the grace period, as in Consul).
   */
  fall?: number;
  /**
   * Time between probes, ms. Default 1000, where HAProxy's `inter` is 2000: HAProxy itself stops
   * sending to a dead server, while here the verdict still has to spread by gossip before clients
   * act on it, so the probe runs twice as often to keep detection (≈ fall × interval + gossip)
   * near HAProxy's 6 s. The probe goes over loopback to the server beside the agent, so 1/s costs
   * nothing. For `ttl` checks it is how often a missing report counts as a further failure.
   */
  intervalMs?: number;
  /**
   * State before the first verdict. Default 'unhealthy': a server must prove itself before clients
   * are sent to it (Consul registers checks as critical; HAProxy ≥ 3.1 offers this as
   * `init-state down`). 'healthy' starts healthy and needs `fall` failures to go down (HAProxy's
   * `init-state fully-up`); a `ttl` check then allows one ttlMs for the first report.
   */
  initial?: HealthState;
  /** Default: the system clock. */
  clock?: Clock;
}

export interface HealthChangeDetail {
  /** The reason of the probe that tipped the state. */
  reason: string;
  /** How many consecutive results of that kind it took (≥ rise or fall). */
  consecutive: number;
}

export interface HealthCheckerEvents {
  change: [state: HealthState, detail: HealthChangeDetail];
  /** Every probe result, before any change it causes. */
  result: [result: ProbeResult];
}

// ---------------------------------------------------------------------------------------------
// The threshold state machine, pure.

export interface HealthCounters {
  state: HealthState;
  /** Consecutive successes (0 after a failure). */
  successes: number;
  /** Consecutive failures (0 after a success). */
  failures: number;
}

/** Apply one result. Pure: table-tested, no clock, no I/O. */
export function nextHealth(c: HealthCounters, ok: boolean, t: { rise: number; fall: number }): { counters: HealthCounters; changed: boolean } {
  const successes = ok ? c.successes + 1 : 0;
  const failures = ok ? 0 : c.failures + 1;
  let state = c.state;
  if (state === 'unhealthy' && successes >= t.rise) state = 'healthy';
  else if (state === 'healthy' && failures >= t.fall) state = 'unhealthy';
  return { counters: { state, successes, failures }, changed: state !== c.state };
}

// ---------------------------------------------------------------------------------------------
// Option validation: at the edge, naming the option (ARCHITECTURE.md, "Practices"; the generic checks are sdk/core/validate.ts).

function host(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 255)
    throw new BadOptionError('health.host', `must be an address or host name, got ${JSON.stringify(v)}`);
  return v;
}

function bytes(option: string, v: unknown, allowRegExp: boolean): void {
  const ok =
    (typeof v === 'string' && v.length > 0) ||
    (v instanceof Uint8Array && v.length > 0) ||
    (allowRegExp && v instanceof RegExp);
  if (!ok) throw new BadOptionError(option, `must be a non-empty string${allowRegExp ? ', RegExp' : ''} or Buffer`);
  const len = typeof v === 'string' ? Buffer.byteLength(v) : v instanceof Uint8Array ? v.length : 0;
  if (len > MAX_UDP_PAYLOAD) throw new BadOptionError(option, `must be at most ${MAX_UDP_PAYLOAD} bytes, got ${len}`);
}

type ResolvedCheck =
  | { type: 'tcp'; host: string; port: number; timeoutMs: number }
  | { type: 'udp'; host: string; port: number; send: string | Uint8Array; expect?: string | RegExp | Uint8Array; timeoutMs: number }
  | { type: 'ttl'; ttlMs: number }
  | { type: 'none' }
  | { type: 'ws'; host: string; port: number; path: string; tls: boolean; timeoutMs: number };

function resolveCheck(c: unknown, intervalMs: number): ResolvedCheck {
  if (typeof c !== 'object' || c === null) throw new BadOptionError('health', 'must be an object with a type');
  const o = c as Record<string, unknown>;
  // Default timeout: half the interval (defaultProbeTimeoutMs), as the option schema says.
  const timeoutMs = () => int('health.timeoutMs', o.timeoutMs, defaultProbeTimeoutMs(intervalMs), ...HEALTH_RANGES.timeoutMs);
  switch (o.type) {
    case 'tcp':
      return { type: 'tcp', host: host(o.host), port: int('health.port', o.port, 0, 1, 65535), timeoutMs: timeoutMs() };
    case 'udp': {
      bytes('health.send', o.send, false);
      if (o.expect !== undefined) bytes('health.expect', o.expect, true);
      const r: ResolvedCheck = {
        type: 'udp',
        host: host(o.host),
        port: int('health.port', o.port, 0, 1, 65535),
        send: o.send as string | Uint8Array,
        timeoutMs: timeoutMs(),
      };
      if (o.expect !== undefined) r.expect = o.expect as string | RegExp | Uint8Array;
      return r;
    }
    case 'ws': {
      const path = o.path ?? '/';
      const problem = wsPathProblem(path);
      if (problem) throw new BadOptionError('health.path', problem);
      if (o.tls !== undefined && typeof o.tls !== 'boolean') throw new BadOptionError('health.tls', 'must be true or false');
      return { type: 'ws', host: host(o.host), port: int('health.port', o.port, 0, 1, 65535), path: path as string, tls: o.tls === true, timeoutMs: timeoutMs() };
    }
    case 'ttl':
      if (o.ttlMs === undefined) throw new BadOptionError('health.ttlMs', "is required for a 'ttl' check");
      return { type: 'ttl', ttlMs: int('health.ttlMs', o.ttlMs, 0, 1, 86_400_000) };
    case 'none':
      return { type: 'none' };
    default:
      throw new BadOptionError('health.type', `must be tcp, udp, ws, ttl or none, got ${JSON.stringify(o.type)}`);
  }
}

// ---------------------------------------------------------------------------------------------

export class HealthChecker extends EventEmitter<HealthCheckerEvents> {
  readonly check: Readonly<ResolvedCheck>;
  readonly rise: number;
  readonly fall: number;
  readonly intervalMs: number;
  private readonly clock: Clock;
  private readonly initial: HealthState;
  private counters: HealthCounters;
  private last: ProbeResult | undefined;
  private lastRtt: number | undefined;
  private running = false;
  private timer: TimerHandle | undefined;
  private stopTicks: (() => void) | undefined;
  private abort: AbortController | undefined;
  private inFlight: Promise<ProbeResult> | undefined;
  private startedAt = 0;
  private reportedAt: number | undefined;
  /** Bumped by stop(): a probe of an earlier run does not schedule the next one. */
  private generation = 0;

  constructor(check: HealthCheck, opts: HealthCheckerOptions = {}) {
    super();
    this.intervalMs = int('health.intervalMs', opts.intervalMs, DEFAULT_HEALTH_INTERVAL_MS, ...HEALTH_RANGES.intervalMs);
    this.check = Object.freeze(resolveCheck(check, this.intervalMs));
    const ttl = this.check.type === 'ttl';
    this.rise = int('health.rise', opts.rise, ttl ? DEFAULT_TTL_RISE : DEFAULT_RISE, ...HEALTH_RANGES.rise);
    this.fall = int('health.fall', opts.fall, ttl ? DEFAULT_TTL_FALL : DEFAULT_FALL, ...HEALTH_RANGES.fall);
    if (opts.initial !== undefined && opts.initial !== 'healthy' && opts.initial !== 'unhealthy')
      throw new BadOptionError('health.initial', `must be 'healthy' or 'unhealthy', got ${JSON.stringify(opts.initial)}`);
    this.initial = opts.initial ?? 'unhealthy';
    this.clock = opts.clock ?? systemClock;
    // A server without a check is taken at its word.
    this.counters = { state: this.check.type === 'none' ? 'healthy' : this.initial, successes: 0, failures: 0 };
  }

  get state(): HealthState {
    return this.counters.state;
  }

  /** The last probe result, undefined before the first. */
  get lastResult(): ProbeResult | undefined {
    return this.last;
  }

  /** Round trip of the last successful probe, ms. */
  get rttMs(): number | undefined {
    return this.lastRtt;
  }

  /** Consecutive successes and failures so far. */
  get consecutive(): { successes: number; failures: number } {
    return { successes: this.counters.successes, failures: this.counters.failures };
  }

  /** Begin checking: the first probe runs now, then one every intervalMs. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = this.clock.now();
    switch (this.check.type) {
      case 'none':
        return;
      case 'ttl':
        this.stopTicks = every(this.clock, this.intervalMs, () => this.evaluateTtl());
        // Reports that came before start() count at once.
        if (this.reportedAt !== undefined) this.evaluateTtl();
        // With an initial 'healthy' state the first report has one ttlMs to arrive.
        this.armTtl();
        return;
      default:
        void this.tick();
    }
  }

  /** Stop probing; an in-flight probe is aborted and reports nothing. start() resumes. */
  stop(): void {
    this.running = false;
    this.generation++;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.stopTicks?.();
    this.stopTicks = undefined;
    this.abort?.abort();
    this.inFlight = undefined; // a start() right after must not share the aborted probe
  }

  /**
   * The server reported (a load report, a heartbeat): what keeps a `ttl` check healthy. A no-op
   * for other checks. While unhealthy, the first report counts as a success at once, so recovery
   * does not wait for the next tick.
   */
  reported(): void {
    if (this.check.type !== 'ttl') return;
    this.reportedAt = this.clock.now();
    if (this.running && this.last?.ok !== true) this.evaluateTtl();
    this.armTtl();
  }

  /**
   * Probe now and apply the result (also what the schedule calls). Concurrent calls share one
   * probe. Resolves with the result; never rejects.
   */
  checkNow(): Promise<ProbeResult> {
    if (this.inFlight) return this.inFlight;
    const c = this.check;
    if (c.type === 'ttl') return Promise.resolve(this.evaluateTtl());
    if (c.type === 'none') return Promise.resolve(this.apply({ ok: true, reason: 'no check configured', rttMs: undefined, at: this.clock.now() }));
    const abort = new AbortController();
    this.abort = abort;
    const ctx = { clock: this.clock, signal: abort.signal };
    const p: Promise<ProbeResult> = (c.type === 'tcp' ? probeTcp(c, ctx) : c.type === 'ws' ? probeWs(c, ctx) : probeUdp(c, ctx)).then((r) => {
      if (this.inFlight === p) this.inFlight = undefined;
      // A probe aborted by stop() tells nothing about the server.
      return abort.signal.aborted ? r : this.apply(r);
    });
    this.inFlight = p;
    return p;
  }

  private async tick(): Promise<void> {
    if (!this.running) return;
    const gen = this.generation;
    const started = this.clock.now();
    try {
      await this.checkNow();
    } finally {
      // Keep probing even if a listener threw (its error still propagates, as with any emitter);
      // but not for a run that stop() ended, even if start() began another meanwhile.
      if (this.running && gen === this.generation) this.scheduleTick(started);
    }
  }

  private scheduleTick(started: number): void {
    // Next probe one interval after this one started (at once if the probe took longer).
    this.timer = this.clock.setTimeout(() => void this.tick(), Math.max(0, started + this.intervalMs - this.clock.now()));
    this.timer.unref?.();
  }

  private evaluateTtl(): ProbeResult {
    const c = this.check as { type: 'ttl'; ttlMs: number };
    const now = this.clock.now();
    const since = this.reportedAt ?? (this.initial === 'healthy' ? this.startedAt : undefined);
    let r: ProbeResult;
    if (since === undefined) r = { ok: false, reason: 'no report received yet', rttMs: undefined, at: now };
    else if (now - since <= c.ttlMs)
      r = { ok: true, reason: this.reportedAt === undefined ? 'waiting for the first report' : 'reports arriving', rttMs: undefined, at: now };
    else
      r = {
        ok: false,
        reason: this.reportedAt === undefined ? `no report within ${c.ttlMs} ms of start` : `no report for ${now - since} ms (ttl ${c.ttlMs} ms)`,
        rttMs: undefined,
        at: now,
      };
    return this.apply(r);
  }

  /** One timer at the moment the last report goes stale, so expiry is not late by up to an interval. */
  private armTtl(): void {
    if (!this.running || this.timer !== undefined) return;
    const c = this.check as { type: 'ttl'; ttlMs: number };
    const since = this.reportedAt ?? (this.initial === 'healthy' ? this.startedAt : undefined);
    if (since === undefined) return;
    const due = since + c.ttlMs + 1 - this.clock.now();
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const s = this.reportedAt ?? since;
      // Re-armed lazily: a report that came meanwhile moved the deadline.
      if (this.clock.now() - s > c.ttlMs) {
        if (this.last?.ok !== false) this.evaluateTtl();
      } else this.armTtl();
    }, Math.max(0, due));
    this.timer.unref?.();
  }

  private apply(r: ProbeResult): ProbeResult {
    if (r.inconclusive) {
      // Cannot tell: the last state and the counters stay as they are.
      this.emit('result', r);
      return r;
    }
    this.last = r;
    if (r.ok && r.rttMs !== undefined) this.lastRtt = r.rttMs;
    this.emit('result', r);
    const { counters, changed } = nextHealth(this.counters, r.ok, this);
    this.counters = counters;
    if (changed) this.emit('change', counters.state, { reason: r.reason, consecutive: r.ok ? counters.successes : counters.failures });
    return r;
  }
}
