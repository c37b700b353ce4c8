/**
 * Graceful drain, the waiting part. On SIGTERM the agent first publishes `draining` (clients stop
 * picking the server at once), then waits here, boundedly, for the server's existing connections
 * to finish, then leaves the cluster. Same idea as Envoy's drain and Kubernetes'
 * terminationGracePeriodSeconds: new work goes elsewhere, old work gets a deadline.
 *
 * The wait polls a count (usually `() => countEstablished(tcpPort)`, or the sessions the server
 * reports) on the injected clock, so it is tested by advancing a ManualClock.
 */
import { systemClock, type Clock, type TimerHandle } from '../sdk/core/clock.js';
import { BadOptionError } from '../sdk/core/errors.js';

export interface DrainOptions {
  /** What is still in progress: established connections, sessions. */
  count: () => number | Promise<number>;
  /** Longest wait, ms (the agent's `drainTimeoutMs`, default 30 s there). 0 = one look, no wait. */
  timeoutMs: number;
  /**
   * Time between counts, ms. Default 250: four looks a second make the drain end within a quarter
   * second of the last connection closing, and reading /proc/net/tcp that often costs little.
   */
  pollMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
  /** Abort the wait (a second SIGTERM: stop now). The promise then resolves with `aborted: true`. */
  signal?: AbortSignal;
}

export interface DrainResult {
  /** The count reached 0 before the deadline. */
  drained: boolean;
  /** The last count seen (at most pollMs old), or -1 if no count ever succeeded. */
  remaining: number;
  /** Time from the call to the verdict, ms. */
  waitedMs: number;
  /** Set when `signal` ended the wait. */
  aborted?: boolean;
  /** The last error of `count`, when the last look failed. Failing looks are retried until the deadline. */
  error?: Error;
}

export const DEFAULT_DRAIN_POLL_MS = 250;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === 'function';
}

/**
 * Wait until `count()` is 0 or `timeoutMs` has passed, whichever comes first. Never rejects for
 * anything `count` does (its errors and bad values are retried); rejects with BadOptionError only
 * for bad options. The verdict comes at the deadline even if a count never returns.
 */
export async function waitForDrain(opts: DrainOptions): Promise<DrainResult> {
  if (typeof opts !== 'object' || opts === null) throw new BadOptionError('drain', 'must be an object');
  const { count, timeoutMs, signal } = opts;
  const pollMs = opts.pollMs ?? DEFAULT_DRAIN_POLL_MS;
  if (typeof count !== 'function') throw new BadOptionError('drain.count', 'must be a function returning a number');
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0 && timeoutMs <= 86_400_000))
    throw new BadOptionError('drainTimeoutMs', `must be a number in 0..86400000, got ${JSON.stringify(timeoutMs)}`);
  if (typeof pollMs !== 'number' || !(pollMs >= 1 && pollMs <= 3_600_000))
    throw new BadOptionError('drain.pollMs', `must be a number in 1..3600000, got ${JSON.stringify(pollMs)}`);
  const clock = opts.clock ?? systemClock;
  const start = clock.now();

  return new Promise<DrainResult>((resolve) => {
    let remaining = -1;
    let lastError: Error | undefined;
    let settled = false;
    let inFlight = false;
    let pollTimer: TimerHandle | undefined;
    let deadline: TimerHandle | undefined;

    const done = (drained: boolean, extra: Partial<DrainResult> = {}) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(pollTimer);
      clock.clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
      const r: DrainResult = { drained, remaining: drained ? 0 : remaining, waitedMs: clock.now() - start, ...extra };
      if (!drained && lastError) r.error = lastError;
      resolve(r);
    };
    const onAbort = () => done(false, { aborted: true });

    const scheduleNext = () => {
      if (settled) return;
      pollTimer = clock.setTimeout(poll, pollMs);
      pollTimer.unref?.();
    };
    const seen = (n: unknown) => {
      inFlight = false;
      if (settled) return;
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
        lastError = new Error(`count returned ${JSON.stringify(n)}, not a number ≥ 0`);
      } else {
        remaining = n;
        lastError = undefined;
        if (n === 0) return done(true);
      }
      scheduleNext();
    };
    const failed = (err: unknown) => {
      inFlight = false;
      lastError = err instanceof Error ? err : new Error(String(err));
      scheduleNext();
    };
    // Bounded: one count at a time, at most one per pollMs, and the deadline ends it all.
    function poll(): void {
      if (settled || inFlight) return;
      inFlight = true;
      let r: number | Promise<number>;
      try {
        r = count();
      } catch (err) {
        failed(err);
        return;
      }
      if (isThenable(r)) Promise.resolve(r).then(seen, failed);
      else seen(r);
    }

    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    deadline = clock.setTimeout(() => done(false), timeoutMs);
    deadline.unref?.();
    poll();
  });
}
