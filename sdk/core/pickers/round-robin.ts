import { EMPTY_PICKER, type Picker, type PickerFactory } from './picker.js';
import type { ServerState } from '../server.js';

/** Each server in turn, ignoring weights. Starts at a random place so clients don't move in step. */
export const roundRobin: PickerFactory = (servers, { random }) => {
  if (servers.length === 0) return EMPTY_PICKER;
  const list: readonly ServerState[] = servers.slice();
  const n = list.length;
  let next = random.int(n);
  return {
    pick() {
      const s = list[next]!;
      next = next + 1 === n ? 0 : next + 1;
      return s;
    },
  } satisfies Picker;
};
