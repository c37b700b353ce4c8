/**
 * Slow start (Envoy's slow_start_config): a server that joins after the first snapshot, turns
 * healthy again or comes back from ejection takes a growing share of its weight over
 * `slowStartMs` (see `slowStartFactor` in timing.ts). The balancer starts ramps and refreshes
 * `effWeight` on every change and tick; pickers read `effWeight` live.
 */
import { touched, type ServerState } from '../server.js';
import { slowStartFactor } from '../timing.js';

export interface SlowStartOptions {
  /** The ramp's length, ms; 0 turns slow start off. */
  slowStartMs: number;
  slowStartAggression: number;
  slowStartMinShare: number;
}

/** Begin a ramp for `s` at `now` (no-op with slow start off). */
export function startRamp(s: ServerState, now: number, o: SlowStartOptions): void {
  if (o.slowStartMs > 0) s.rampStart = now;
}

/** Is `s` ramping (its effective weight below its weight)? */
export const isRamping = (s: ServerState): boolean => s.rampStart !== -Infinity;

/** Set `s.effWeight` from its weight and ramp at `now`; a ramp that is over ends here. */
export function refreshWeight(s: ServerState, now: number, o: SlowStartOptions): void {
  if (s.rampStart === -Infinity) {
    if (s.effWeight !== s.weight) touched(s);
    s.effWeight = s.weight;
    return;
  }
  const f = slowStartFactor(now - s.rampStart, o.slowStartMs, o.slowStartAggression, o.slowStartMinShare);
  if (f >= 1) s.rampStart = -Infinity;
  s.effWeight = s.weight * f;
  touched(s);
}
