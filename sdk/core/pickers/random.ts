import { EMPTY_PICKER, type PickerFactory } from './picker.js';

/** Uniformly random, ignoring weights and load. O(1). */
export const randomPicker: PickerFactory = (servers, { random }) => {
  const n = servers.length;
  if (n === 0) return EMPTY_PICKER;
  const list = servers.slice();
  return { pick: () => list[random.int(n)] };
};
