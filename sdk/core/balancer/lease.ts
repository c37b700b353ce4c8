/**
 * One handle per pick (a connection attempt, then the connection): the outcome of the pick flows
 * back through it, as grpc-js's call callbacks and tower's in-flight handle do, instead of the
 * caller pairing "opened", "closed" and "outcome" calls by hand on every path.
 *
 *   const lease = balancer.lease(server, { timeoutMs, onTimeout })
 *   lease.connected(rttMs?)  the connect succeeded: a round-trip sample, the failure run ends;
 *                            the lease stays open (counted as a connection) until closed()
 *   lease.failed(err)        the attempt failed: a failure (outlier ejection) and a slow sample
 *                            max(penalty, time taken), and the lease ends
 *   lease.closed()           the connection closed, or the attempt was abandoned (abort):
 *                            the lease ends, no outcome
 *
 * The server counts as one open connection (`active`) from `lease()` until the lease ends, exactly
 * once: every method is idempotent and a lease ends once, whatever is called after. With a
 * deadline, a lease not yet connected at `timeoutMs` fails by itself (ETIMEDOUT) after telling
 * `onTimeout`, so an attempt cannot stay counted: deadlines are on the balancer's clock, swept by
 * one repeating timer per balancer (see Deadlines).
 */
import type { Clock } from '../clock.js';
import { every } from '../clock.js';
import type { ServerState } from '../server.js';
import { BadOptionError } from '../errors.js';

/** Where a lease reports to (the Balancer). */
export interface LeaseOwner {
  readonly clock: Clock;
  /** The lease ended: the connection no longer counts. */
  released(s: ServerState): void;
  /** An outcome: ok with a round trip, or a failure with its sample. */
  outcome(s: ServerState, ok: boolean, rttMs: number | undefined, penaltyMs?: number): void;
}

export type LeaseState = 'connecting' | 'open' | 'ended';

export interface LeaseOptions {
  /** Fail the lease (ETIMEDOUT) if it is not connected within this many ms (default: no deadline). */
  timeoutMs?: number;
  /** Called when the deadline passes, before the lease fails: abandon the attempt here. */
  onTimeout?: (err: Error) => void;
  /** The slow sample a failure counts as, at least (default: timeoutMs, else the cluster's connectTimeoutMs). */
  penaltyMs?: number;
}

/**
 * The budget of one connect or WebSocket open: `attempts` servers, `timeoutMs` each (the call's
 * values, else the cluster's). Checked per call like join's options: attempts 0 would otherwise
 * report "no servers", and a NaN or negative timeout would fail every attempt at once.
 */
export function attemptBudget(
  opts: { timeoutMs?: number | undefined; attempts?: number | undefined },
  defaults: { connectTimeoutMs: number; connectAttempts: number },
): { timeoutMs: number; attempts: number } | BadOptionError {
  const timeoutMs = opts.timeoutMs ?? defaults.connectTimeoutMs;
  const attempts = opts.attempts ?? defaults.connectAttempts;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100) return new BadOptionError('attempts', `must be an integer in 1..100, got ${JSON.stringify(attempts)}`);
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 600_000)
    return new BadOptionError('timeoutMs', `must be a number in 1..600000, got ${JSON.stringify(timeoutMs)}`);
  return { timeoutMs, attempts };
}

/** A connect that passed its deadline. */
export function timeoutError(timeoutMs: number): Error {
  return Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
}

export class Lease {
  /** When the lease began, on the owner's clock. */
  readonly startedAt: number;
  /** The deadline (startedAt + timeoutMs), or Infinity. */
  readonly deadline: number;
  private st: LeaseState = 'connecting';

  /** @internal made by Balancer.lease, which counts the connection. */
  constructor(
    readonly server: ServerState,
    private readonly owner: LeaseOwner,
    private readonly deadlines: Deadlines | undefined,
    private readonly timeoutMs: number | undefined,
    private readonly onTimeout: ((err: Error) => void) | undefined,
    private readonly penaltyMs: number | undefined,
  ) {
    this.startedAt = owner.clock.now();
    this.deadline = timeoutMs === undefined ? Infinity : this.startedAt + timeoutMs;
    if (timeoutMs !== undefined) deadlines?.add(this);
  }

  get state(): LeaseState {
    return this.st;
  }

  /** The connect succeeded, `rttMs` after it began (default: the time since `lease()` on the balancer's clock). */
  connected(rttMs?: number): void {
    if (this.st !== 'connecting') return;
    this.st = 'open';
    this.deadlines?.delete(this);
    this.owner.outcome(this.server, true, rttMs ?? this.owner.clock.now() - this.startedAt);
  }

  /**
   * The attempt (or the connection) failed: counts a failure and ends the lease. Before
   * `connected`, the sample is max(penalty, time taken); after, the penalty.
   */
  failed(_err?: unknown): void {
    if (this.st === 'ended') return;
    const took = this.st === 'connecting' ? this.owner.clock.now() - this.startedAt : undefined;
    this.end();
    this.owner.outcome(this.server, false, took, this.penaltyMs ?? this.timeoutMs);
  }

  /** The connection closed, or the attempt was abandoned: ends the lease without an outcome. */
  closed(): void {
    if (this.st === 'ended') return;
    this.end();
  }

  /** @internal the deadline passed (Deadlines' sweep). */
  expire(): void {
    if (this.st !== 'connecting') return;
    const err = timeoutError(this.timeoutMs!);
    if (this.onTimeout) this.onTimeout(err);
    this.failed(err);
  }

  private end(): void {
    this.st = 'ended';
    this.deadlines?.delete(this);
    this.owner.released(this.server);
  }
}

/**
 * Connect deadlines of one balancer. A timer per attempt (setTimeout + clearTimeout) adds about
 * 6 µs to a loopback connect that takes 70 µs, so pending leases share one repeating timer on the
 * balancer's clock (unref'd on the system clock) that fires every SWEEP_MS and expires the leases
 * past their deadline: a timeout is late by at most SWEEP_MS. The timer stops once no lease has
 * been pending for IDLE_SWEEPS sweeps (a second).
 */
export class Deadlines {
  static readonly SWEEP_MS = 10;
  static readonly IDLE_SWEEPS = 100;
  private readonly pending = new Set<Lease>();
  private stop: (() => void) | undefined;
  private idle = 0;

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.pending.size;
  }

  /** Is the sweep timer running? */
  get sweeping(): boolean {
    return this.stop !== undefined;
  }

  add(l: Lease): void {
    this.pending.add(l);
    this.idle = 0;
    if (this.stop === undefined) this.stop = every(this.clock, Deadlines.SWEEP_MS, () => this.sweep());
  }

  delete(l: Lease): void {
    this.pending.delete(l);
  }

  private sweep(): void {
    if (this.pending.size === 0) {
      if (++this.idle >= Deadlines.IDLE_SWEEPS) {
        this.stop?.();
        this.stop = undefined;
      }
      return;
    }
    this.idle = 0;
    const now = this.clock.now();
    for (const l of this.pending) if (l.deadline <= now) l.expire();
  }
}
