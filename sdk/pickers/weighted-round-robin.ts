import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/**
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every pick adds each server's
 * weight to its current value, takes the largest, and subtracts the total from it. For weights
 * 5,1,1 this gives a a b a c a a: heavy servers are spread out instead of served in bursts.
 * O(n) per pick. Reads `effWeight` live, so slow start applies without a rebuild.
 */
export const weightedRoundRobin: PickerFactory = (servers) => {
  if (servers.length === 0) return EMPTY_PICKER;
  const list = servers.slice();
  for (const s of list) s.current = 0;
  return {
    pick() {
      let best = list[0]!;
      let total = 0;
      let bestCurrent = -Infinity;
      for (let i = 0; i < list.length; i++) {
        const s = list[i]!;
        s.current += s.effWeight;
        total += s.effWeight;
        if (s.current > bestCurrent) {
          bestCurrent = s.current;
          best = s;
        }
      }
      best.current -= total;
      return best;
    },
  };
};
