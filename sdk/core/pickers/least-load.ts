import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/**
 * The server with the lowest expected load per unit of weight (`ServerState.expected`: the
 * reported load plus this client's changes since the report, scaled to the cluster).
 * Deterministic: clients acting on the same stale report start from the same ranking; only the
 * scaled count of their own picks spreads them, which is why the randomized `p2c` is the default
 * (see test/unit/sdk/core/pickers/herding.test.ts). Ties rotate. O(n) per pick.
 *
 * The loop is written out here rather than shared with least-connections.ts through a cost callback: a call per
 * comparison is what a picker must not pay (ARCHITECTURE.md, practice 1; the bench's ns per pick).
 */
export const leastLoad: PickerFactory = (servers, { random }) => {
  if (servers.length === 0) return EMPTY_PICKER;
  const list = servers.slice();
  const n = list.length;
  let start = random.int(n);
  return {
    pick() {
      // From the rotating start to the end, then from 0 up to it: no modulo in the loop.
      let best = list[start]!;
      for (let k = start + 1; k < n; k++) {
        const s = list[k]!;
        if (s.expected * best.effWeight < best.expected * s.effWeight) best = s;
      }
      for (let k = 0; k < start; k++) {
        const s = list[k]!;
        if (s.expected * best.effWeight < best.expected * s.effWeight) best = s;
      }
      start = start + 1 === n ? 0 : start + 1;
      return best;
    },
  };
};
