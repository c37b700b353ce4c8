import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/**
 * Peak-EWMA latency (Finagle's / linkerd's balancer): cost = rtt · (active + 1) / weight, with
 * `rtt` the peak EWMA of connect times and outcomes (failures count as a slow sample, see the
 * balancer). Two random choices, keep the cheaper. A server with no sample yet has cost 0, so new
 * servers are tried and measured. O(1).
 *
 * The loop is written out here rather than shared with p2c.ts through a cost callback: a call per
 * comparison is what a picker must not pay (ARCHITECTURE.md, practice 1; the bench's ns per pick).
 */
export const ewma: PickerFactory = (servers, { random }) => {
  const n = servers.length;
  if (n === 0) return EMPTY_PICKER;
  const list = servers.slice();
  if (n === 1) {
    const only = list[0]!;
    return { pick: () => only };
  }
  return {
    pick() {
      const i = random.int(n);
      let j = random.int(n - 1);
      if (j >= i) j++;
      const a = list[i]!;
      const b = list[j]!;
      const ca = a.rtt * (a.active + 1) * b.effWeight;
      const cb = b.rtt * (b.active + 1) * a.effWeight;
      return cb < ca ? b : a;
    },
  };
};
