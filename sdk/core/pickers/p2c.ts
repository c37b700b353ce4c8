import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/**
 * Power of two choices (Mitzenmacher 2001; Envoy's LEAST_REQUEST with choice_count 2): take two
 * distinct servers at random and keep the one with the lower expected load per unit of weight
 * (`ServerState.expected`: the last report plus this client's changes since, scaled to the cluster).
 * The randomness, and counting what this client did since the report as what every client did,
 * are what stop many clients holding the same stale report from herding onto the same "least
 * loaded" servers, while still steering away from the busy ones. O(1) per pick.
 *
 * The loop is written out here rather than shared with ewma.ts through a cost callback: a call per
 * comparison is what a picker must not pay (ARCHITECTURE.md, practice 1; the bench's ns per pick).
 */
export const p2c: PickerFactory = (servers, { random }) => {
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
      return b.expected * a.effWeight < a.expected * b.effWeight ? b : a;
    },
  };
};
