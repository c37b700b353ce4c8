import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/**
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every pick adds each server's
 * weight to its current value, takes the largest, and subtracts the total from it. For weights
 * 5,1,1 this gives a a b a c a a: heavy servers are spread out instead of served in bursts.
 * O(n) per pick. Reads `effWeight` live, so slow start applies without a rebuild.
 *
 * The current values are this picker's own (one array, allocated when it is built), never a field
 * of the shared ServerState: the balancer runs several pickers over the same servers at once (the
 * TCP one and the UDP one of a mixed view), and a shared value would let each skew the other.
 */
export const weightedRoundRobin: PickerFactory = (servers) => {
  if (servers.length === 0) return EMPTY_PICKER;
  const list = servers.slice();
  const n = list.length;
  const current = new Float64Array(n);
  return {
    pick() {
      let best = 0;
      let total = 0;
      let bestCurrent = -Infinity;
      for (let i = 0; i < n; i++) {
        const w = list[i]!.effWeight;
        const c = current[i]! + w;
        current[i] = c;
        total += w;
        if (c > bestCurrent) {
          bestCurrent = c;
          best = i;
        }
      }
      current[best] = bestCurrent - total;
      return list[best];
    },
  };
};
