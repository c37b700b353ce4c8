/**
 * The health check's defaults, in one place: the option schema (agent/options-schema.ts: what
 * `--help`, the README table and the resolver say and apply) and the checker (agent/health/checker.ts,
 * when built directly) both read them, so they cannot drift apart again (issue 14: `--health-interval
 * 200` had a 500 ms timeout while the checker used half the interval).
 */

/** Time between probes, ms (see HealthCheckerOptions.intervalMs for why 1 s). */
export const DEFAULT_HEALTH_INTERVAL_MS = 1000;
/** HAProxy's `rise` and `fall` defaults. */
export const DEFAULT_RISE = 2;
export const DEFAULT_FALL = 3;
/** A `ttl` check: a report is proof of life, and the TTL already is the grace period (as in Consul). */
export const DEFAULT_TTL_RISE = 1;
export const DEFAULT_TTL_FALL = 1;

/**
 * Default probe timeout: half the interval (500 ms at 1 s), so a probe always ends with time to
 * spare before the next. HAProxy uses all of `inter` when `timeout check` is unset; a server on the
 * same host that takes 500 ms to accept a connection is in trouble anyway.
 */
export function defaultProbeTimeoutMs(intervalMs: number): number {
  return Math.max(1, Math.floor(intervalMs / 2));
}

/** Ranges of the health options (the schema's, and the checker's when built directly). */
export const HEALTH_RANGES = {
  intervalMs: [10, 3_600_000],
  timeoutMs: [1, 600_000],
  rise: [1, 100],
  fall: [1, 100],
} as const;
