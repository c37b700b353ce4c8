import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/**
 * Random in proportion to (slow-start adjusted) weight: cumulative weights and a binary search,
 * O(log n) per pick. Weights are captured when the picker is built; the balancer rebuilds it
 * while slow start is ramping.
 */
export const weightedRandom: PickerFactory = (servers, { random }) => {
  const n = servers.length;
  if (n === 0) return EMPTY_PICKER;
  const list = servers.slice();
  const cum = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += list[i]!.effWeight;
    cum[i] = total;
  }
  return {
    pick() {
      const r = random.next() * total;
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cum[mid]! > r) hi = mid;
        else lo = mid + 1;
      }
      return list[lo];
    },
  };
};
