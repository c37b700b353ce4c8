import { describe, expect, it } from 'vitest';
import { fmix32, hashKey } from '../../../../sdk/core/hash.js';
import { buildRing, consistentHash, DEFAULT_RING_POINTS, ringIndex, ringTable } from '../../../../sdk/core/pickers/consistent-hash.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import type { ServerState } from '../../../../sdk/core/server.js';
import { states } from '../../../support/balancer-fixtures.js';

const keys = (n: number) => Array.from({ length: n }, (_, i) => hashKey(`player-${i}`));

function owners(servers: ServerState[], ks: number[]): string[] {
  const p = consistentHash(servers, { random: new XorShiftRandom(1) });
  return ks.map((h) => p.pick(h)!.id);
}

describe('hashKey', () => {
  it('is a deterministic unsigned 32-bit hash of strings, numbers and bytes', () => {
    expect(hashKey('player-1')).toBe(hashKey('player-1'));
    for (const k of ['', 'a', 'player-1', 'é', 0, 1, -1, 2 ** 40, new Uint8Array([1, 2, 3])]) {
      const h = hashKey(k);
      expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
    }
    // ASCII strings and their bytes hash alike (FNV-1a over code units / bytes).
    expect(hashKey('player-1')).toBe(hashKey(new TextEncoder().encode('player-1')));
    expect(hashKey(1)).not.toBe(hashKey(2));
    expect(hashKey(2 ** 32 + 1)).not.toBe(hashKey(1)); // the high word counts
  });

  it('spreads nearby keys evenly: each of 16 buckets gets 1/16 of 64k sequential keys ± 5 %', () => {
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 65_536; i++) buckets[hashKey(`player-${i}`) >>> 28]!++;
    for (const b of buckets) expect(Math.abs(b - 4096)).toBeLessThan(4096 * 0.05);
  });

  it('fmix32 is murmur3 fmix32', () => {
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(0x514e28b7); // reference value of murmur3's fmix32(1)
  });
});

describe('hash ring', () => {
  it('has sorted points, owners in range and points in proportion to weight', () => {
    const servers = states(4, (i) => ({ weight: i === 3 ? 200 : 100 }));
    const { points, owners: own } = buildRing(servers);
    expect(points.length).toBe(5 * DEFAULT_RING_POINTS);
    for (let i = 1; i < points.length; i++) expect(points[i]!).toBeGreaterThanOrEqual(points[i - 1]!);
    const count = [0, 0, 0, 0];
    for (const o of own) count[o]!++;
    expect(count).toEqual([160, 160, 160, 320]);
  });

  it('ringIndex finds the first point at or after the hash and wraps', () => {
    const pts = Uint32Array.from([10, 20, 30]);
    expect([0, 10, 11, 20, 29, 30, 31, 2 ** 32 - 1].map((h) => ringIndex(pts, h))).toEqual([0, 0, 1, 1, 2, 2, 0, 0]);
  });

  it('ringIndex through the prefix table finds what the full search finds, at the edges too', () => {
    const { points } = buildRing(states(50, () => ({})));
    const sparse = Uint32Array.from([5, 65536, 65537, 2 ** 31, 2 ** 32 - 2]);
    let compared = 0;
    for (const pts of [points, sparse, new Uint32Array(0).fill(0)]) {
      if (pts.length === 0) continue;
      const table = ringTable(pts);
      const hs = [0, 1, 4, 5, 6, 65535, 65536, 65537, 65538, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1];
      for (let i = 0; i < 5000; i++) hs.push((i * 2654435761) >>> 0);
      for (const p of pts) hs.push(p, (p + 1) >>> 0, (p - 1) >>> 0);
      for (const h of hs) {
        expect(ringIndex(pts, h, table)).toBe(ringIndex(pts, h));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(10_000);
  });

  it('a server owns a share of keys near its share of weight', () => {
    const servers = states(10, (i) => ({ weight: i === 0 ? 300 : 100 }));
    const o = owners(servers, keys(100_000));
    const n = new Map<string, number>();
    for (const id of o) n.set(id, (n.get(id) ?? 0) + 1);
    // s0 has weight 300 of 1200: 25 %; the rest 100/1200 = 8.3 % each. 160 points per 100 of weight
    // gives a spread of a few percent of the total (ketama), so allow ± 3 percentage points.
    expect(n.get('s0')! / 100_000).toBeGreaterThan(0.22);
    expect(n.get('s0')! / 100_000).toBeLessThan(0.28);
    for (let i = 1; i < 10; i++) expect(Math.abs(n.get(`s${i}`)! / 100_000 - 1 / 12)).toBeLessThan(0.03);
  });

  it('when one of 10 servers leaves, ≤ 1/N + 5 % of 10,000 keys move, and only that server’s keys', () => {
    const servers = states(10);
    const ks = keys(10_000);
    const before = owners(servers, ks);
    for (const leaving of [0, 3, 9]) {
      const after = owners(servers.filter((_, i) => i !== leaving), ks);
      let moved = 0;
      let movedFromStayers = 0;
      for (let i = 0; i < ks.length; i++) {
        if (before[i] !== after[i]) moved++;
        if (before[i] !== `s${leaving}` && before[i] !== after[i]) movedFromStayers++;
        expect(after[i]).not.toBe(`s${leaving}`);
      }
      expect(movedFromStayers).toBe(0);
      expect(moved).toBeGreaterThan(0);
      expect(moved / ks.length).toBeLessThanOrEqual(1 / 10 + 0.05);
      // exactly the keys the leaver owned moved
      expect(moved).toBe(before.filter((id) => id === `s${leaving}`).length);
    }
  });

  it('when a server joins, keys move only to it', () => {
    const servers = states(11);
    const ks = keys(10_000);
    const before = owners(servers.slice(0, 10), ks);
    const after = owners(servers, ks);
    let moved = 0;
    for (let i = 0; i < ks.length; i++)
      if (before[i] !== after[i]) {
        moved++;
        expect(after[i]).toBe('s10');
      }
    expect(moved / ks.length).toBeLessThanOrEqual(1 / 11 + 0.05);
    expect(moved / ks.length).toBeGreaterThan(1 / 11 - 0.05);
  });

  it('does not depend on the order servers are listed in', () => {
    const servers = states(10);
    const ks = keys(2000);
    expect(owners([...servers].reverse(), ks)).toEqual(owners(servers, ks));
  });

  it('bounded load: a server over c × the mean load per weight is skipped for the next on the ring', () => {
    const servers = states(4);
    const ks = keys(4000);
    const plain = owners(servers, ks);
    const hot = plain[0]!;
    const hotState = servers.find((s) => s.id === hot)!;
    // The mean load is 10 per server; hot is at 40 > 1.25 × mean: its keys go elsewhere.
    for (const s of servers) s.estimate = s === hotState ? 37 : 1;
    const p = consistentHash(servers, { random: new XorShiftRandom(1), hashBalanceFactor: 1.25 });
    const moved = ks.filter((h, i) => plain[i] === hot && p.pick(h)!.id !== hot).length;
    const hotKeys = plain.filter((id) => id === hot).length;
    expect(moved).toBe(hotKeys);
    // keys of the others stay where they were
    for (let i = 0; i < ks.length; i++) if (plain[i] !== hot) expect(p.pick(ks[i]!)!.id).toBe(plain[i]);
    // under the bound, nothing moves
    for (const s of servers) s.estimate = 10;
    const relaxed = consistentHash(servers, { random: new XorShiftRandom(1), hashBalanceFactor: 1.25 });
    expect(ks.map((h) => relaxed.pick(h)!.id)).toEqual(plain);
  });
});
