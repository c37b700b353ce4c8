/**
 * Key hashing for affinity. 32-bit FNV-1a over UTF-16 code units for strings (no allocation),
 * over bytes for buffers, and a murmur3 finalizer for integers, then one more avalanche step so
 * nearby keys ("player-1", "player-2") land far apart on the ring.
 */
export type Key = string | number | Uint8Array;

export function hashKey(key: Key): number {
  let h = 0x811c9dc5;
  if (typeof key === 'string') {
    for (let i = 0; i < key.length; i++) {
      h ^= key.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  } else if (typeof key === 'number') {
    h ^= key | 0;
    h = Math.imul(h, 0x01000193);
    h ^= (key / 4294967296) | 0;
    h = Math.imul(h, 0x01000193);
  } else {
    for (let i = 0; i < key.length; i++) {
      h ^= key[i]!;
      h = Math.imul(h, 0x01000193);
    }
  }
  return fmix32(h);
}

/** murmur3's 32-bit finalizer. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
