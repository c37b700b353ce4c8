import type { Random } from '../random.js';
import type { ServerState } from '../server.js';

/**
 * A picker is a synchronous snapshot of the balancer's choice set (grpc-js's model): the balancer
 * builds a new one whenever the set of eligible servers changes. `pick` does no I/O, allocates
 * nothing and never throws; it returns undefined only when the set is empty.
 *
 * Pickers may read live fields of the servers (estimate, active, effWeight, rtt) so load and
 * slow-start changes take effect without a rebuild.
 */
export interface Picker {
  /** `hash` is the key's 32-bit hash (see sdk/core/hash.ts), or -1 when the pick has no key. */
  pick(hash: number): ServerState | undefined;
}

export interface PickerContext {
  random: Random;
  /** consistent-hash: bounded-load factor (> 1), as HAProxy's hash-balance-factor / 100. */
  hashBalanceFactor?: number;
  /** consistent-hash: ring points per server at the mean weight (Envoy/ketama use 100–160). */
  ringPointsPerServer?: number;
}

export type PickerFactory = (servers: readonly ServerState[], ctx: PickerContext) => Picker;

export const EMPTY_PICKER: Picker = { pick: () => undefined };
