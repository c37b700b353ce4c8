/**
 * The agent checks its own server and says whether clients should pick it.
 *
 * Checks:
 *  - `tcp`: connect to the server's port and close gracefully (HAProxy's default layer-4 check, but
 *    with a FIN, not a reset: see probeTcp);
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
 * Nothing here throws after construction: socket errors are probe failures, except those of the
 * agent's own resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), which are "cannot tell": the state stays.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { every, systemClock, type Clock, type TimerHandle } from '../sdk/core/clock.js';
import { BadOptionError } from '../sdk/core/errors.js';

export type HealthCheck =
  | { type: 'tcp'; host: string; port: number; timeoutMs?: number }
  | { type: 'udp'; host: string; port: number; send: string | Uint8Array; expect?: string | RegExp | Uint8Array; timeoutMs?: number }
  | { type: 'ttl'; ttlMs: number }
  | { type: 'none' };

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

/** Outcome of one probe (or, for `ttl`, one look at the report age). */
export interface ProbeResult {
  ok: boolean;
  /** What happened, for logs and the `change` event: "tcp connect 127.0.0.1:7000: ECONNREFUSED". */
  reason: string;
  /** Probe round trip, ms, when it succeeded (connect time for tcp, request→reply for udp). */
  rttMs: number | undefined;
  /** Clock time the probe finished. */
  at: number;
  /**
   * The probe could not be made for a reason of the agent's own (EMFILE, ENFILE: out of file
   * descriptors; ENOBUFS: out of socket buffers): it says nothing about the server. The checker
   * keeps its state and counters; the agent logs it.
   */
  inconclusive?: true;
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
// Probes on real sockets. Timeouts go through the clock; an AbortSignal ends a probe early.

/** Largest UDP payload over IPv4 (65,535 − 8 UDP − 20 IP header bytes). */
export const MAX_UDP_PAYLOAD = 65_507;

/**
 * Errors of the agent's own resources, not of the server: a probe failing with one of these
 * "cannot tell" (ProbeResult.inconclusive) instead of counting as the server down.
 */
export const LOCAL_RESOURCE_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

function isLocalResourceError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && LOCAL_RESOURCE_ERRORS.has(code);
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ?? e?.message ?? String(err);
}

function preview(b: Uint8Array): string {
  const s = JSON.stringify(Buffer.from(b.subarray(0, 32)).toString('latin1'));
  return b.length > 32 ? `${s}… (${b.length} bytes)` : s;
}

interface ProbeContext {
  clock: Clock;
  signal?: AbortSignal;
}

/** Run `body` with a clock timeout and abort support; `finish` settles exactly once. */
function probe(
  ctx: ProbeContext,
  timeoutMs: number,
  what: string,
  body: (finish: (ok: boolean, reason: string, err?: unknown) => void, started: number) => () => void,
): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    const { clock, signal } = ctx;
    const started = clock.now();
    let settled = false;
    let cleanup: (() => void) | undefined;
    let timer: TimerHandle | undefined;
    const onAbort = () => finish(false, `${what}: aborted`);
    const finish = (ok: boolean, reason: string, err?: unknown) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      try {
        cleanup?.();
      } catch {
        // closing an already closed socket: nothing left to release
      }
      const at = clock.now();
      const r: ProbeResult = { ok, reason, rttMs: ok ? at - started : undefined, at };
      if (!ok && isLocalResourceError(err)) {
        r.inconclusive = true;
        r.reason = `${reason} (the agent's own resources ran out: cannot tell whether the server is up)`;
      }
      resolve(r);
    };
    if (signal?.aborted) {
      finish(false, `${what}: aborted`);
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    timer = clock.setTimeout(() => finish(false, `${what}: no answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref?.();
    try {
      const c = body(finish, started);
      if (settled) c();
      else cleanup = c;
    } catch (err) {
      finish(false, `${what}: ${errText(err)}`, err);
    }
  });
}

/**
 * How long a tcp probe's socket may take to close after its FIN, ms, before it is destroyed. The
 * server normally answers the FIN at once with its own (Node's default, `allowHalfOpen: false`).
 */
export const TCP_CLOSE_GRACE_MS = 1000;

/**
 * Connect to host:port and close gracefully. Success = the three-way handshake completed.
 *
 * The close is a FIN (`end()`), reading and discarding whatever the server sends meanwhile (a
 * greeting: SMTP's 220, a game's banner), and a destroy only once the server closed too or after
 * TCP_CLOSE_GRACE_MS. Destroying at once, as HAProxy's bare connect check does with a RST, makes
 * the kernel answer a greeting that arrives after the close with a reset: a server without an
 * 'error' handler on its sockets then dies of ECONNRESET, killed by its own health check.
 */
export function probeTcp(check: { host: string; port: number; timeoutMs: number }, ctx: ProbeContext = { clock: systemClock }): Promise<ProbeResult> {
  const what = `tcp connect ${check.host}:${check.port}`;
  return probe(ctx, check.timeoutMs, what, (finish) => {
    const sock = net.connect({ host: check.host, port: check.port });
    let connected = false;
    // Stays attached after the probe: a late error (a reset during the close) must not become an
    // unhandled 'error' event.
    sock.on('error', (err) => finish(false, `${what}: ${errText(err)}`, err));
    sock.once('connect', () => {
      connected = true;
      finish(true, `${what}: ok`);
    });
    return () => {
      if (!connected) {
        sock.destroy(); // timed out or aborted before the handshake: nothing to close politely
        return;
      }
      // Real timers, not the clock: this is socket hygiene after the verdict, not part of it.
      const grace = setTimeout(() => sock.destroy(), TCP_CLOSE_GRACE_MS);
      grace.unref();
      sock.once('close', () => clearTimeout(grace));
      sock.resume(); // read the greeting (unread data at close time would make the close a RST)
      sock.end();
    };
  });
}

function matcher(expect: string | RegExp | Uint8Array | undefined): (msg: Buffer) => boolean {
  if (expect === undefined) return () => true;
  if (expect instanceof RegExp) {
    // A fresh copy without g/y: those flags make test() stateful through lastIndex.
    const re = new RegExp(expect.source, expect.flags.replace(/[gy]/g, ''));
    return (msg) => re.test(msg.toString('utf8'));
  }
  const want = typeof expect === 'string' ? Buffer.from(expect, 'utf8') : Buffer.from(expect);
  return (msg) => msg.length >= want.length && msg.subarray(0, want.length).equals(want);
}

function describeExpect(expect: string | RegExp | Uint8Array): string {
  if (expect instanceof RegExp) return String(expect);
  return typeof expect === 'string' ? JSON.stringify(expect) : preview(expect);
}

/**
 * Send `send` to host:port from a connected UDP socket and wait for one reply.
 * With `expect`, the reply must start with it (string or bytes) or match it (RegExp, tested on the
 * UTF-8 text); the first reply decides, so a wrong one fails at once instead of at the timeout.
 * Prefix rather than HAProxy's substring match (`tcp-check expect string`) so that "NOT OK" does
 * not pass for "OK". A connected socket also hears ICMP port unreachable (ECONNREFUSED): a dead
 * server on the same host fails fast.
 */
export function probeUdp(
  check: { host: string; port: number; send: string | Uint8Array; expect?: string | RegExp | Uint8Array; timeoutMs: number },
  ctx: ProbeContext = { clock: systemClock },
): Promise<ProbeResult> {
  const what = `udp ${check.host}:${check.port}`;
  const matches = matcher(check.expect);
  const payload = typeof check.send === 'string' ? Buffer.from(check.send, 'utf8') : Buffer.from(check.send);
  return probe(ctx, check.timeoutMs, what, (finish) => {
    const sock = dgram.createSocket(net.isIPv6(check.host) ? 'udp6' : 'udp4');
    let closed = false;
    sock.on('error', (err) => finish(false, `${what}: ${errText(err)}`, err));
    sock.on('message', (msg) => {
      if (matches(msg)) finish(true, `${what}: reply ok`);
      else finish(false, `${what}: reply ${preview(msg)} does not match ${describeExpect(check.expect!)}`);
    });
    const close = () => {
      closed = true;
      try {
        sock.close();
      } catch {
        // already closed
      }
    };
    try {
      sock.connect(check.port, check.host, () => {
        if (closed) return;
        try {
          sock.send(payload, (err) => {
            if (err) finish(false, `${what}: send failed: ${errText(err)}`, err);
          });
        } catch (err) {
          finish(false, `${what}: send failed: ${errText(err)}`, err);
        }
      });
    } catch (err) {
      close(); // a bad port throws before any handler could release the socket
      throw err;
    }
    return close;
  });
}

// ---------------------------------------------------------------------------------------------
// Option validation (STYLE.md practice 6: at the edge, naming the option).

function int(option: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
    throw new BadOptionError(option, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v as number;
}

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
  | { type: 'none' };

function resolveCheck(c: unknown, intervalMs: number): ResolvedCheck {
  if (typeof c !== 'object' || c === null) throw new BadOptionError('health', 'must be an object with a type');
  const o = c as Record<string, unknown>;
  // Default timeout: half the interval (500 ms at 1 s), so a probe always ends with time to spare
  // before the next. HAProxy uses all of `inter` when `timeout check` is unset; a server on the
  // same host that takes 500 ms to accept a connection is in trouble anyway.
  const timeoutMs = () => int('health.timeoutMs', o.timeoutMs, Math.max(1, Math.floor(intervalMs / 2)), 1, 600_000);
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
    case 'ttl':
      if (o.ttlMs === undefined) throw new BadOptionError('health.ttlMs', "is required for a 'ttl' check");
      return { type: 'ttl', ttlMs: int('health.ttlMs', o.ttlMs, 0, 1, 86_400_000) };
    case 'none':
      return { type: 'none' };
    default:
      throw new BadOptionError('health.type', `must be tcp, udp, ttl or none, got ${JSON.stringify(o.type)}`);
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
    this.intervalMs = int('health.intervalMs', opts.intervalMs, 1000, 10, 3_600_000);
    this.check = Object.freeze(resolveCheck(check, this.intervalMs));
    const ttl = this.check.type === 'ttl';
    this.rise = int('health.rise', opts.rise, ttl ? 1 : 2, 1, 100);
    this.fall = int('health.fall', opts.fall, ttl ? 1 : 3, 1, 100);
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
    const p: Promise<ProbeResult> = (c.type === 'tcp' ? probeTcp(c, ctx) : probeUdp(c, ctx)).then((r) => {
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
