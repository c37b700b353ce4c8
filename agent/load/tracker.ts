/**
 * The agent's view of its server's load: what the server reports, what the agent measures
 * (established connections, host CPU), combined into the LoadReport (sdk/core/protocol.ts) that gossip,
 * mDNS and `/v1/watch` carry to clients.
 *
 * Combining:
 *  - connections: the server's reported figure while fresh, else the measured count, else the
 *    last reported figure, else 0;
 *  - sessions: the last reported figure (no other source knows sessions; whether a silent server is
 *    alive is health's question — the `ttl` check — not load's);
 *  - utilization: the server's reported figure while fresh; else, with a `capacity`,
 *    max(connections, sessions) / capacity (capped at 1); else host CPU; else 0;
 *  - seats (with a capacity): the seat ledger's capacity, held and claimed at each report
 *    (agent/seats/), so every view knows each server's free seats; a seat change is published
 *    at once when it is news (`seatsNews`: full, room again, or a large move).
 *
 * Publishing: at least every `intervalMs`, and at once when the load changed a lot
 * (`shouldPublish`), but never twice within `minGapMs`. Each publish carries the next `seq`.
 *
 * All timing goes through the Clock; the decision is a pure function with table tests.
 */
import { EventEmitter } from 'node:events';
import { systemClock, every, type Clock, type TimerHandle } from '../../sdk/core/clock.js';
import { BadOptionError } from '../../sdk/core/errors.js';
import { freeSeats, type LoadReport, type LoadSeats } from '../../sdk/core/protocol.js';
import { MAX_COUNT, parseLoadInput, type LoadInput } from './input.js';

/** When a new report is worth sending before the interval is up. */
export interface PublishPolicy {
  /** Publish at least this often, ms (a heartbeat of load). */
  intervalMs: number;
  /** Never publish two reports closer than this, ms: a server whose load swings every few ms must
   *  not turn gossip into a stream. */
  minGapMs: number;
  /** A change in connections or sessions is large when it is at least this share of the previous
   *  value … */
  relativeChange: number;
  /** … and at least this many units. Both must hold: 0 → 1 or 1000 → 1010 are not news. */
  absoluteChange: number;
  /** Or when utilization moves by at least this much (absolute, on the 0..1 scale). */
  utilizationChange: number;
}

/**
 * Defaults: 1 s matches the SDK's report interval (sdk/core/timing.ts `reportWeight` gives a report full
 * weight for one interval). 20 % and 2 units, or 0.1 utilization: about the smallest change that
 * moves a power-of-two-choices pick between two servers with different load, without publishing
 * every connection on a busy server. 200 ms gap: at most 5 immediate reports a second per server.
 */
export const DEFAULT_PUBLISH_POLICY: Readonly<PublishPolicy> = Object.freeze({
  intervalMs: 1000,
  minGapMs: 200,
  relativeChange: 0.2,
  absoluteChange: 2,
  utilizationChange: 0.1,
});

function unitsChanged(prev: number, next: number, p: PublishPolicy): boolean {
  const d = Math.abs(next - prev);
  return d > 0 && d >= p.absoluteChange && d >= p.relativeChange * prev;
}

/**
 * Did the seats change enough to tell the cluster at once? When they appear or go, when the
 * capacity changes, when the server becomes full or has room again (what a client choosing whom
 * to ask most needs to know), or when the seats in use move as much as a large change of
 * sessions. A single grant on a roomy server waits for the heartbeat: a server whose seats churn
 * every millisecond publishes no more than it would for its sessions. Pure.
 */
export function seatsNews(prev: LoadSeats | undefined, next: LoadSeats | undefined, p: PublishPolicy): boolean {
  if (!prev || !next) return prev !== next;
  if (prev.capacity !== next.capacity) return true;
  if ((freeSeats(prev) === 0) !== (freeSeats(next) === 0)) return true;
  return unitsChanged(prev.held + prev.claimed, next.held + next.claimed, p);
}

/** Did the load change enough to tell the cluster before the interval is up? Pure. */
export function isLargeChange(prev: LoadReport, next: LoadReport, p: PublishPolicy): boolean {
  return (
    unitsChanged(prev.connections, next.connections, p) ||
    unitsChanged(prev.sessions, next.sessions, p) ||
    seatsNews(prev.seats, next.seats, p) ||
    // a tiny epsilon so that 0.3 → 0.4 (0.10000000000000003 or 0.09999999999999998) counts
    Math.abs(next.utilization - prev.utilization) >= p.utilizationChange - 1e-9
  );
}

/**
 * Publish `next` now? `prev` is the last published report (undefined: nothing published yet),
 * `sinceMs` the time since it was published. Pure.
 *
 *  - nothing published yet → yes;
 *  - the interval is up → yes (a heartbeat, even without change: receivers learn the report is
 *    current, and its age restarts);
 *  - within `minGapMs` → no;
 *  - otherwise → only on a large change.
 */
export function shouldPublish(prev: LoadReport | undefined, next: LoadReport, sinceMs: number, p: PublishPolicy): boolean {
  if (!prev) return true;
  if (sinceMs >= p.intervalMs) return true;
  if (sinceMs < p.minGapMs) return false;
  return isLargeChange(prev, next, p);
}

export type UtilizationSource = 'reported' | 'capacity' | 'cpu' | 'none';

export interface LoadTrackerOptions {
  /** Default: the system clock. */
  clock?: Clock;
  /** Publish at least this often, ms. Default 1000. Also how often connections are measured. */
  intervalMs?: number;
  /** Default 200 (see DEFAULT_PUBLISH_POLICY). Must be ≤ intervalMs. */
  minGapMs?: number;
  /** Default 0.2. */
  relativeChange?: number;
  /** Default 2. */
  absoluteChange?: number;
  /** Default 0.1. */
  utilizationChange?: number;
  /**
   * How long a server-reported figure counts, ms. Default 3 × intervalMs: a server reporting at
   * our interval may miss two reports before its figures give way to measured ones (the same
   * three intervals after which the SDK drops a report, sdk/core/timing.ts `reportWeight`).
   */
  reportTtlMs?: number;
  /** Most connections/sessions the server takes; enables utilization = active / capacity. */
  capacity?: number;
  /** Measures established connections, e.g. `() => countEstablished(tcpPort)`. Called every interval. */
  measureConnections?: () => number | Promise<number>;
  /** Host CPU utilization 0..1 or undefined while unknown, e.g. `() => cpuSampler.utilization`. */
  hostCpu?: () => number | undefined;
  /** First seq is seqStart + 1. Default 0. */
  seqStart?: number;
  /**
   * Seats in use (issue 17: held + claimed, agent/seats/): published as sessions when larger than
   * the reported figure, so every client's view (and so `reserve`'s choice) reflects the grants.
   */
  seatsInUse?: () => number;
  /**
   * The seats to publish with each report (LoadReport.seats: capacity, held, claimed), or
   * undefined without a capacity; read at every report.
   */
  seats?: () => LoadSeats | undefined;
}

export interface LoadTrackerEvents {
  /** A new report to gossip. A fresh object each time; ageMs is 0. */
  publish: [report: LoadReport];
  /** The server reported (validated input); health's `ttl` check listens to this. */
  report: [input: LoadInput];
  /** The server's last report became older than reportTtlMs. Once per silence. */
  expired: [ageMs: number];
  /** measureConnections failed (emitted on the first failure after a success, not on every one). */
  measureError: [error: Error];
}

/** How a report was put together, for logs, metrics and the dashboard. */
export interface LoadDetails {
  report: LoadReport;
  utilizationSource: UtilizationSource;
  connectionsSource: 'reported' | 'measured' | 'stale-report' | 'none';
  reported: LoadInput;
  /** Age of the server's last report, ms; undefined when it never reported. */
  reportAgeMs: number | undefined;
  measuredConnections: number | undefined;
  hostCpu: number | undefined;
}

function num(option: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new BadOptionError(option, `must be a number in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** A report whose seats are its own object too (listeners may keep or change what they get). */
function copyReport(r: LoadReport): LoadReport {
  return r.seats ? { ...r, seats: { ...r.seats } } : { ...r };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === 'function';
}

export class LoadTracker extends EventEmitter<LoadTrackerEvents> {
  readonly policy: Readonly<PublishPolicy>;
  readonly reportTtlMs: number;
  readonly capacity: number | undefined;
  private readonly clock: Clock;
  private readonly measureFn: (() => number | Promise<number>) | undefined;
  private readonly cpuFn: (() => number | undefined) | undefined;
  private readonly seatsFn: (() => number) | undefined;
  private readonly seatReportFn: (() => LoadSeats | undefined) | undefined;

  private reported: LoadInput = {};
  private reportedAt: number | undefined;
  private expiredSignalled = false;
  private measured: number | undefined;
  private measureFailing = false;
  private measuring = false;

  private last: LoadReport | undefined;
  private lastSource: UtilizationSource | undefined;
  private lastAt = 0;
  private seqNo: number;

  private running = false;
  private stopSampling: (() => void) | undefined;
  private publishTimer: TimerHandle | undefined;
  private publishTimerAt = Infinity;
  private expiryTimer: TimerHandle | undefined;

  constructor(opts: LoadTrackerOptions = {}) {
    super();
    const intervalMs = num('load.intervalMs', opts.intervalMs, DEFAULT_PUBLISH_POLICY.intervalMs, 10, 3_600_000);
    this.policy = Object.freeze({
      intervalMs,
      minGapMs: num('load.minGapMs', opts.minGapMs, Math.min(DEFAULT_PUBLISH_POLICY.minGapMs, intervalMs), 0, intervalMs),
      relativeChange: num('load.relativeChange', opts.relativeChange, DEFAULT_PUBLISH_POLICY.relativeChange, 0, 100),
      absoluteChange: num('load.absoluteChange', opts.absoluteChange, DEFAULT_PUBLISH_POLICY.absoluteChange, 0, MAX_COUNT),
      utilizationChange: num('load.utilizationChange', opts.utilizationChange, DEFAULT_PUBLISH_POLICY.utilizationChange, 0, 1),
    });
    this.reportTtlMs = num('load.reportTtlMs', opts.reportTtlMs, 3 * intervalMs, 1, 86_400_000);
    if (opts.capacity !== undefined && (!Number.isInteger(opts.capacity) || opts.capacity < 1 || opts.capacity > MAX_COUNT))
      throw new BadOptionError('capacity', `must be an integer in 1..${MAX_COUNT}, got ${JSON.stringify(opts.capacity)}`);
    this.capacity = opts.capacity;
    if (opts.measureConnections !== undefined && typeof opts.measureConnections !== 'function')
      throw new BadOptionError('load.measureConnections', 'must be a function');
    if (opts.hostCpu !== undefined && typeof opts.hostCpu !== 'function') throw new BadOptionError('load.hostCpu', 'must be a function');
    this.seqNo = num('load.seqStart', opts.seqStart, 0, 0, Number.MAX_SAFE_INTEGER / 2);
    if (!Number.isInteger(this.seqNo)) throw new BadOptionError('load.seqStart', 'must be an integer');
    this.clock = opts.clock ?? systemClock;
    this.measureFn = opts.measureConnections;
    this.cpuFn = opts.hostCpu;
    this.seatsFn = opts.seatsInUse;
    this.seatReportFn = opts.seats;
  }

  /** Start measuring and publishing: a first measurement and report now, then every interval. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopSampling = every(this.clock, this.policy.intervalMs, () => this.sample());
    // Publishes the first report once the first measurement is in (at once when it is synchronous).
    this.sample();
    this.armExpiry();
  }

  /** Stop all timers. Reports can still be given and read; nothing is published until start(). */
  stop(): void {
    this.running = false;
    this.stopSampling?.();
    this.stopSampling = undefined;
    this.clock.clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
    this.publishTimerAt = Infinity;
    this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  /**
   * The server's own figures. Validated: throws InvalidLoadError (naming the field) on bad input,
   * and then changes nothing. Fields not given keep their last value; the report's freshness is
   * renewed for all of them.
   */
  report(input: unknown): void {
    const clean = parseLoadInput(input);
    this.reported = { ...this.reported, ...clean };
    this.reportedAt = this.clock.now();
    this.expiredSignalled = false;
    this.armExpiry();
    this.emit('report', clean);
    if (this.running) this.evaluate();
  }

  /** Age of the server's last report, ms; undefined when it never reported. */
  reportAgeMs(): number | undefined {
    return this.reportedAt === undefined ? undefined : this.clock.now() - this.reportedAt;
  }

  /** 'none' (never reported), 'fresh' (within reportTtlMs) or 'expired'. */
  reportState(): 'none' | 'fresh' | 'expired' {
    const age = this.reportAgeMs();
    if (age === undefined) return 'none';
    return age <= this.reportTtlMs ? 'fresh' : 'expired';
  }

  /**
   * The sessions the server reported, while its reports are fresh (within reportTtlMs), else
   * undefined. What a drain waits for: a figure the server stopped renewing is not evidence of
   * work in progress (the same expiry as for the reported connections and utilization).
   */
  freshSessions(): number | undefined {
    return this.reportState() === 'fresh' ? this.reported.sessions : undefined;
  }

  /** The last published report with its age now, or undefined before the first publish. */
  current(): LoadReport | undefined {
    if (!this.last) return undefined;
    return { ...copyReport(this.last), ageMs: Math.max(0, this.clock.now() - this.lastAt) };
  }

  /**
   * What the utilization of the last published report is: the server's report, active/capacity,
   * host CPU (the server reported none and has no capacity) or nothing. Undefined before the first.
   */
  get utilizationSource(): UtilizationSource | undefined {
    return this.lastSource;
  }

  /** The seq of the last published report (seqStart before the first). */
  get seq(): number {
    return this.seqNo;
  }

  /** What a report would say now, and where each figure came from. Publishes nothing. */
  details(): LoadDetails {
    const fresh = this.reportState() === 'fresh';
    const r = this.reported;
    let connections = 0;
    let connectionsSource: LoadDetails['connectionsSource'] = 'none';
    if (fresh && r.connections !== undefined) [connections, connectionsSource] = [r.connections, 'reported'];
    else if (this.measured !== undefined) [connections, connectionsSource] = [this.measured, 'measured'];
    else if (r.connections !== undefined) [connections, connectionsSource] = [r.connections, 'stale-report'];
    const sessions = Math.max(r.sessions ?? 0, this.seatsFn?.() ?? 0);
    const cpu = this.readCpu();
    let utilization = 0;
    let utilizationSource: UtilizationSource = 'none';
    if (fresh && r.utilization !== undefined) [utilization, utilizationSource] = [r.utilization, 'reported'];
    else if (this.capacity !== undefined) [utilization, utilizationSource] = [Math.min(1, Math.max(connections, sessions) / this.capacity), 'capacity'];
    else if (cpu !== undefined) [utilization, utilizationSource] = [cpu, 'cpu'];
    const report: LoadReport = { connections, sessions, utilization, seq: this.seqNo, ageMs: 0 };
    const seats = this.seatReportFn?.();
    if (seats) report.seats = { capacity: seats.capacity, held: seats.held, claimed: seats.claimed };
    return {
      report,
      utilizationSource,
      connectionsSource,
      reported: { ...r },
      reportAgeMs: this.reportAgeMs(),
      measuredConnections: this.measured,
      hostCpu: cpu,
    };
  }

  /** Seats changed (a grant, claim, release or expiry): publish if warranted, without measuring. */
  seatsChanged(): void {
    if (this.running) this.evaluate();
  }

  /** Measure connections now (if a measurer is set) and publish if warranted. */
  sample(): void {
    if (!this.measureFn) {
      this.evaluate();
      return;
    }
    // A measurement slower than the interval (a huge /proc/net/tcp) is not stacked on, and does
    // not hold up publishing: the last figures go out meanwhile.
    if (this.measuring) {
      this.evaluate();
      return;
    }
    let r: number | Promise<number>;
    try {
      r = this.measureFn();
    } catch (err) {
      this.measureFailed(err);
      return;
    }
    if (isThenable(r)) {
      this.measuring = true;
      Promise.resolve(r).then(
        (n) => {
          this.measuring = false;
          this.measuredValue(n);
        },
        (err: unknown) => {
          this.measuring = false;
          this.measureFailed(err);
        },
      );
    } else {
      this.measuredValue(r);
    }
  }

  private measuredValue(n: unknown): void {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_COUNT) {
      this.measureFailed(new Error(`measureConnections returned ${JSON.stringify(n)}, not a count`));
      return;
    }
    this.measureFailing = false;
    this.measured = n;
    this.evaluate();
  }

  private measureFailed(err: unknown): void {
    // Keep the last good figure: dropping to 0 on a transient read error would make this server
    // look idle to every client at once.
    const e = err instanceof Error ? err : new Error(String(err));
    if (!this.measureFailing) this.emit('measureError', e);
    this.measureFailing = true;
    this.evaluate();
  }

  private readCpu(): number | undefined {
    if (!this.cpuFn) return undefined;
    try {
      const u = this.cpuFn();
      if (typeof u !== 'number' || Number.isNaN(u)) return undefined;
      return u < 0 ? 0 : u > 1 ? 1 : u;
    } catch {
      return undefined;
    }
  }

  /** Publish now if `shouldPublish` says so; otherwise make sure a timer will look again. */
  private evaluate(): void {
    if (!this.running) return;
    const now = this.clock.now();
    const d = this.details();
    const next = d.report;
    const since = now - this.lastAt;
    if (shouldPublish(this.last, next, since, this.policy)) {
      this.lastSource = d.utilizationSource;
      this.publish(next, now);
      return;
    }
    // A large change held back by minGapMs goes out as soon as the gap is over.
    if (this.last && since < this.policy.minGapMs && isLargeChange(this.last, next, this.policy))
      this.armPublish(this.lastAt + this.policy.minGapMs);
  }

  private publish(next: LoadReport, now: number): void {
    this.seqNo += 1;
    const report: LoadReport = { ...next, seq: this.seqNo, ageMs: 0 };
    this.last = report;
    this.lastAt = now;
    // The heartbeat: the next report is due one interval from now, whatever measurement does.
    this.clock.clearTimeout(this.publishTimer);
    this.publishTimerAt = Infinity;
    this.armPublish(now + this.policy.intervalMs);
    this.emit('publish', copyReport(report));
  }

  private armPublish(at: number): void {
    if (at >= this.publishTimerAt) return;
    this.clock.clearTimeout(this.publishTimer);
    this.publishTimerAt = at;
    this.publishTimer = this.clock.setTimeout(() => {
      this.publishTimer = undefined;
      this.publishTimerAt = Infinity;
      this.evaluate();
      // evaluate() re-arms on publish; if it held back (cannot happen at the heartbeat, which is
      // ≥ intervalMs), make sure a heartbeat stays scheduled.
      if (this.running && this.publishTimer === undefined) this.armPublish(this.lastAt + this.policy.intervalMs);
    }, Math.max(0, at - this.clock.now()));
    this.publishTimer.unref?.();
  }

  /** One timer for report expiry, re-armed lazily: a server reporting 1,000×/s costs no timers. */
  private armExpiry(): void {
    if (!this.running || this.reportedAt === undefined || this.expiryTimer !== undefined || this.expiredSignalled) return;
    const due = this.reportedAt + this.reportTtlMs + 1 - this.clock.now();
    this.expiryTimer = this.clock.setTimeout(() => {
      this.expiryTimer = undefined;
      if (this.reportState() === 'expired') {
        this.expiredSignalled = true;
        this.emit('expired', this.reportAgeMs()!);
        this.evaluate(); // the figures just changed source
      } else {
        this.armExpiry();
      }
    }, Math.max(0, due));
    this.expiryTimer.unref?.();
  }
}
