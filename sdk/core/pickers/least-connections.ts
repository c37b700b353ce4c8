import { EMPTY_PICKER, type PickerFactory } from './picker.js';
import { CostHeap } from './cost-heap.js';
import type { ServerState } from '../server.js';

/** Open connections this client holds per unit of weight (weight 0: last). */
export const connectionCost = (s: ServerState): number => (s.effWeight > 0 ? s.active / s.effWeight : Infinity);

/**
 * nginx's least_conn from this client's point of view: the fewest open connections *this client*
 * holds, per unit of weight. Equal servers take turns, from a random start, instead of the first
 * one taking everything. An indexed heap kept current by the change journal (cost-heap.ts):
 * O(log n) per pick and per connection opened or closed.
 */
export const leastConnections: PickerFactory = (servers, { random }) => {
  if (servers.length === 0) return EMPTY_PICKER;
  const heap = new CostHeap(servers, random, connectionCost);
  return { pick: () => heap.take() };
};
