import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/**
 * The server with the lowest estimated load per unit of weight (reported load plus this client's
 * picks since the report). Deterministic: every client acting on the same stale report picks the
 * same server, which is why `p2c` is the default (see test/sdk/herding.test.ts). Ties rotate.
 * O(n) per pick.
 */
export const leastLoad: PickerFactory = (servers, { random }) => {
  if (servers.length === 0) return EMPTY_PICKER;
  const list = servers.slice();
  const n = list.length;
  let start = random.int(n);
  return {
    pick() {
      let best = list[start]!;
      for (let k = 1; k < n; k++) {
        const s = list[(start + k) % n]!;
        if (s.estimate * best.effWeight < best.estimate * s.effWeight) best = s;
      }
      start = start + 1 === n ? 0 : start + 1;
      return best;
    },
  };
};
