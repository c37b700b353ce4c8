import { EMPTY_PICKER, type PickerFactory } from './picker.js';
import { hashKey } from '../hash.js';
import { DEFAULT_WEIGHT } from '../protocol.js';
import type { ServerState } from '../server.js';

/** Ring points for a server of the default weight (ketama uses 160; Envoy's ring_hash ~ that order). */
export const DEFAULT_RING_POINTS = 160;
const MAX_POINTS_PER_SERVER = 16_000;

export interface Ring {
  /** Sorted 32-bit positions. */
  points: Uint32Array;
  /** owners[i] = index into `servers` of the server owning points[i]. */
  owners: Int32Array;
}

/**
 * A ketama-style hash ring. A server's points depend only on its id and its own weight, never on
 * the other servers, so when a server leaves only the keys on its points move, and keys of the
 * servers that stayed never do (a Maglev table cannot promise that).
 */
export function buildRing(servers: readonly ServerState[], pointsPerServer = DEFAULT_RING_POINTS): Ring {
  let total = 0;
  const counts = new Int32Array(servers.length);
  for (let i = 0; i < servers.length; i++) {
    const c = Math.min(MAX_POINTS_PER_SERVER, Math.max(1, Math.round((pointsPerServer * servers[i]!.weight) / DEFAULT_WEIGHT)));
    counts[i] = c;
    total += c;
  }
  // point (32 bits) · 2^21 + owner (21 bits) fits a double exactly, so one numeric sort orders both.
  const packed = new Float64Array(total);
  let k = 0;
  for (let i = 0; i < servers.length; i++) {
    const id = servers[i]!.id;
    for (let v = 0; v < counts[i]!; v++) packed[k++] = hashKey(`${id}#${v}`) * 2097152 + i;
  }
  packed.sort();
  const points = new Uint32Array(total);
  const owners = new Int32Array(total);
  for (let j = 0; j < total; j++) {
    const p = packed[j]!;
    const owner = p % 2097152;
    owners[j] = owner;
    points[j] = (p - owner) / 2097152;
  }
  return { points, owners };
}

/** Top bits of a hash that index the ring's lookup table (`ringTable`). */
const TABLE_BITS = 16;

/**
 * start[p] = the first ring point whose top TABLE_BITS bits are ≥ p (p = 0 … 2^TABLE_BITS), so a
 * lookup binary-searches only the points sharing the hash's prefix: a few steps on a ring of
 * millions of points, instead of ~20 scattered reads.
 */
export function ringTable(points: Uint32Array): Uint32Array {
  const size = 1 << TABLE_BITS;
  const start = new Uint32Array(size + 1);
  let j = 0;
  for (let p = 0; p <= size; p++) {
    while (j < points.length && points[j]! >>> (32 - TABLE_BITS) < p) j++;
    start[p] = j;
  }
  return start;
}

/** Index of the first ring point at or after `hash` (wrapping to 0); `table` from ringTable narrows the search. */
export function ringIndex(points: Uint32Array, hash: number, table?: Uint32Array): number {
  let lo = 0;
  let hi = points.length;
  if (table) {
    const p = hash >>> (32 - TABLE_BITS);
    lo = table[p]!;
    hi = table[p + 1]!;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

/**
 * Consistent hashing: a key goes to the owner of the first ring point at or after its hash.
 * With `hashBalanceFactor` c > 1 (consistent hashing with bounded loads, Mirrokni et al. 2016;
 * HAProxy's hash-balance-factor), a server whose estimated load per weight exceeds c × the mean is
 * skipped and the walk goes on clockwise; that costs O(n) per pick for the mean. A pick without a
 * key uses a random position.
 */
export const consistentHash: PickerFactory = (servers, { random, hashBalanceFactor, ringPointsPerServer }) => {
  const n = servers.length;
  if (n === 0) return EMPTY_PICKER;
  const list = servers.slice();
  const { points, owners } = buildRing(list, ringPointsPerServer);
  const table = ringTable(points);
  const len = points.length;
  const bounded = hashBalanceFactor !== undefined && hashBalanceFactor > 1 && n > 1;
  const c = hashBalanceFactor ?? 0;
  return {
    pick(hash) {
      const h = hash < 0 ? (random.next() * 4294967296) >>> 0 : hash;
      const at = ringIndex(points, h, table);
      const first = list[owners[at]!]!;
      if (!bounded) return first;
      let load = 0;
      let weight = 0;
      for (let i = 0; i < n; i++) {
        load += list[i]!.estimate;
        weight += list[i]!.effWeight;
      }
      // Capacity per unit of weight, counting the pick being made (+1).
      const cap = (c * (load + 1)) / weight;
      for (let step = 0; step < len; step++) {
        const s = list[owners[(at + step) % len]!]!;
        if (s.estimate + 1 <= cap * s.effWeight) return s;
      }
      return first;
    },
  };
};
