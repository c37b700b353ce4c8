import { EMPTY_PICKER, type PickerFactory } from './picker.js';
import { CostHeap } from './cost-heap.js';
import type { ServerState } from '../server.js';

/** Expected load per unit of weight (weight 0: last). */
export const loadCost = (s: ServerState): number => (s.effWeight > 0 ? s.expected / s.effWeight : Infinity);

/**
 * The server with the lowest expected load per unit of weight (`ServerState.expected`: the
 * reported load plus this client's changes since the report, scaled to the cluster).
 * Deterministic: clients acting on the same stale report start from the same ranking; only the
 * scaled count of their own picks spreads them, which is why the randomized `p2c` is the default
 * (see test/unit/sdk/core/pickers/herding.test.ts). Ties rotate from a random start. An indexed
 * heap kept current by the change journal (cost-heap.ts): O(log n) per pick and per change.
 */
export const leastLoad: PickerFactory = (servers, { random }) => {
  if (servers.length === 0) return EMPTY_PICKER;
  const heap = new CostHeap(servers, random, loadCost);
  return { pick: () => heap.take() };
};
