/**
 * Timing math of the SDK, as pure functions with table tests (ARCHITECTURE.md, practice 3).
 * Nothing here reads a clock: callers pass the times in.
 */

/**
 * How much a load report still counts, 0..1, given its age.
 * Full weight for one report interval (the next report is not late yet), then a linear decay to 0
 * when the report is `expireAfter` intervals old: after that the client counts only what it knows
 * itself. With the defaults (1 s, 3 intervals) a report counts fully for 1 s and is gone at 3 s.
 */
export function reportWeight(ageMs: number, intervalMs: number, expireAfter: number): number {
  if (!(ageMs >= 0)) return 1;
  if (ageMs <= intervalMs) return 1;
  const end = intervalMs * expireAfter;
  if (ageMs >= end) return 0;
  return (end - ageMs) / (end - intervalMs);
}

/**
 * Estimated load of a server in "active units" (connections or sessions) as this client sees it:
 * the reported figure plus what this client added since that report, blended by the report's
 * weight with this client's own count when the report goes stale.
 *
 *   est = w · max(0, reported + scale · localSinceReport) + (1 − w) · scale · localActive
 *
 * `scale` converts this client's counts into cluster load (see `shareScale`): 1 gives the client's
 * own view (only its own changes since the report); the pickers use the client's inverse share.
 */
export function estimateLoad(reported: number, localSinceReport: number, localActive: number, w: number, scale = 1): number {
  if (w <= 0) return scale * localActive;
  const fromReport = reported + scale * localSinceReport;
  return w * (fromReport > 0 ? fromReport : 0) + (1 - w) * scale * localActive;
}

/**
 * How much cluster load one unit of this client's load stands for: the load the reports show over
 * the load this client held when they were taken (its inverse share), at least 1; 1 when this
 * client held nothing (nothing to scale by).
 *
 * Why: every client acts on the same stale report with the same strategy, so what this client did
 * since the report (picked the servers the report shows as light, saw its connections close) the
 * other clients did too, in proportion to their load. Counting only its own changes, as if it were
 * the only client, under-counts the change since the report by about the number of clients: all
 * clients then keep piling onto the servers the report shows as light until the next report
 * (herding; test/unit/sdk/core/pickers/herding.test.ts measures it). An unbiased extrapolation when clients behave
 * alike, in the spirit of Dahlin's interpretation of stale load information (IEEE TPDS 2000).
 */
export function shareScale(reportedTotal: number, ownTotal: number): number {
  if (!(ownTotal > 0) || !(reportedTotal > ownTotal)) return 1;
  return reportedTotal / ownTotal;
}

/**
 * Slow start factor, 0..1, as Envoy's slow_start_config: a server that has just joined or recovered
 * gets `max(minShare, (t / window) ^ (1 / aggression))` of its weight until `window` has passed.
 * aggression 1 is a linear ramp; larger values ramp faster at the start.
 */
export function slowStartFactor(sinceMs: number, windowMs: number, aggression = 1, minShare = 0.1): number {
  if (windowMs <= 0 || sinceMs >= windowMs) return 1;
  if (sinceMs <= 0) return minShare;
  const f = Math.pow(sinceMs / windowMs, 1 / aggression);
  return f < minShare ? minShare : f;
}

/**
 * How long to eject a server that failed again: `base · 2^level`, capped at `max` (Envoy ejects for
 * base × times ejected, capped at 300 s; we double, so a flapping server backs off faster).
 */
export function ejectionDuration(level: number, baseMs: number, maxMs: number): number {
  const d = baseMs * Math.pow(2, Math.max(0, level));
  return d > maxMs ? maxMs : d;
}

/**
 * Peak EWMA of latency (Finagle's PeakEwma, as used by linkerd): a sample above the average replaces
 * it at once (react to trouble immediately); below it, the average decays towards the sample with
 * time constant `tauMs` (forget trouble slowly).
 */
export function peakEwma(prev: number, sample: number, elapsedMs: number, tauMs: number): number {
  if (!(prev > 0)) return sample;
  if (sample > prev) return sample;
  const w = Math.exp(-Math.max(0, elapsedMs) / tauMs);
  return prev * w + sample * (1 - w);
}
