/**
 * Outlier ejection (Envoy's consecutive-failure detector): after `consecutiveFailures` failed
 * outcomes in a row a server is ejected for `base · 2^level` (capped), unless that would eject more
 * than `maxEjectedShare` of the servers (at least one may always be ejected, none when the share
 * is 0). When the time is up it takes picks again (through slow start), and its level of backoff
 * decays by one for every two base periods without an ejection. Times are on the balancer's clock,
 * passed in.
 */
import type { ServerState } from '../server.js';
import { ejectionDuration } from '../timing.js';

export interface OutlierOptions {
  consecutiveFailures: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectedShare: number;
}

export interface Ejection {
  /** When it ends, on the balancer's clock. */
  until: number;
  consecutiveFailures: number;
  /** The backoff level this ejection was timed with (0 for the first). */
  level: number;
}

/** A success: the run of failures is over. */
export function recordSuccess(s: ServerState): void {
  s.consecutiveFailures = 0;
}

/**
 * A failure of `s`, one of `all` (the view, for the share cap): counts it and ejects `s` if it is
 * due. Returns the ejection, or undefined when `s` stays in (not enough failures in a row, already
 * ejected, or the cap reached). `all` must be the current list (the balancer flushes first).
 */
export function recordFailure(s: ServerState, all: readonly ServerState[], now: number, o: OutlierOptions, present = true): Ejection | undefined {
  s.failures++;
  s.consecutiveFailures++;
  if (s.ejected || s.consecutiveFailures < o.consecutiveFailures || !present) return undefined;
  let ejectedNow = 0;
  for (const x of all) if (x.ejected) ejectedNow++;
  const allowed = o.maxEjectedShare === 0 ? 0 : Math.max(1, Math.floor(o.maxEjectedShare * all.length));
  if (ejectedNow >= allowed) return undefined;
  s.ejected = true;
  s.ejectedUntil = now + ejectionDuration(s.ejectionLevel, o.baseEjectionMs, o.maxEjectionMs);
  const level = s.ejectionLevel;
  s.ejectionLevel++;
  s.ejections++;
  return { until: s.ejectedUntil, consecutiveFailures: s.consecutiveFailures, level };
}

/**
 * Time passes for `s`: an ejection that is over ends (returns true: the server recovered; the
 * caller starts its slow start), and an idle level of backoff decays.
 */
export function outlierTick(s: ServerState, now: number, o: OutlierOptions): boolean {
  if (s.ejected && now >= s.ejectedUntil) {
    s.ejected = false;
    s.consecutiveFailures = 0;
    s.lastEjectionEnd = now;
    return true;
  }
  if (!s.ejected && s.ejectionLevel > 0 && now - s.lastEjectionEnd >= 2 * o.baseEjectionMs) {
    // Forget one level of backoff for every two base periods without an ejection (Envoy decrements likewise).
    s.ejectionLevel--;
    s.lastEjectionEnd = now;
  }
  return false;
}
