import type { PickerFactory } from './picker.js';
import { roundRobin } from './round-robin.js';
import { weightedRoundRobin } from './weighted-round-robin.js';
import { leastConnections } from './least-connections.js';
import { leastLoad } from './least-load.js';
import { p2c } from './p2c.js';
import { randomPicker } from './random.js';
import { weightedRandom } from './weighted-random.js';
import { consistentHash } from './consistent-hash.js';
import { ewma } from './ewma.js';

export type { Picker, PickerContext, PickerFactory } from './picker.js';

/** Every strategy by the name users pass as `strategy`. */
export const STRATEGIES = {
  'round-robin': roundRobin,
  'weighted-round-robin': weightedRoundRobin,
  'least-connections': leastConnections,
  'least-load': leastLoad,
  p2c,
  random: randomPicker,
  'weighted-random': weightedRandom,
  'consistent-hash': consistentHash,
  ewma,
} as const satisfies Record<string, PickerFactory>;

export type StrategyName = keyof typeof STRATEGIES;
export const STRATEGY_NAMES = Object.keys(STRATEGIES) as StrategyName[];
