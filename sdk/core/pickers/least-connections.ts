import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/**
 * nginx's least_conn from this client's point of view: the fewest open connections *this client*
 * holds, per unit of weight. Ties are broken by scanning from a rotating start, so equal servers
 * take turns instead of the first one taking everything. O(n) per pick.
 *
 * The loop is written out here rather than shared with least-load.ts through a cost callback: a call per
 * comparison is what a picker must not pay (ARCHITECTURE.md, practice 1; the bench's ns per pick).
 */
export const leastConnections: PickerFactory = (servers, { random }) => {
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
        // s.active / s.w < best.active / best.w, without dividing
        if (s.active * best.effWeight < best.active * s.effWeight) best = s;
      }
      for (let k = 0; k < start; k++) {
        const s = list[k]!;
        // s.active / s.w < best.active / best.w, without dividing
        if (s.active * best.effWeight < best.active * s.effWeight) best = s;
      }
      start = start + 1 === n ? 0 : start + 1;
      return best;
    },
  };
};
