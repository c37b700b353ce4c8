import { describe, expect, it } from 'vitest';
import { coordinate, fractionalShares, SubsetTable, vanDerCorput } from '../../../agent/subset.js';

const ids = (n: number, prefix = 's') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** A table over `servers`, `subs` subscribers of subset k, at arc `index` of `of`. */
function table(servers: string[], subs: number, k: number, pos = { index: 0, of: 1 }, clock = { t: 0 }) {
  const t = new SubsetTable<number>({ position: () => pos, now: () => clock.t });
  for (const id of servers) t.setEligible(id, true);
  for (let s = 0; s < subs; s++) t.add(s, k, `client-${s}`);
  return t;
}

function maxOverMean(counts: Iterable<number>): number {
  const a = [...counts];
  const mean = a.reduce((x, y) => x + y, 0) / a.length;
  return Math.max(...a) / mean;
}

describe('van der Corput and coordinates', () => {
  it('mirrors the bits of the slot after the binary point', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(vanDerCorput)).toEqual([0, 0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875]);
  });

  it('puts each agent\'s subscribers in its own arc of the ring', () => {
    expect(coordinate(0, 10, 0)).toBe(0);
    expect(coordinate(3, 10, 1)).toBeCloseTo(0.35);
    for (let s = 0; s < 200; s++) {
      const c = coordinate(7, 10, s);
      expect(c).toBeGreaterThanOrEqual(0.7);
      expect(c).toBeLessThan(0.8);
    }
  });
});

describe('SubsetTable', () => {
  it('gives each subscriber k distinct eligible servers, all of them when fewer', () => {
    const t = table(ids(8), 5, 3);
    for (let s = 0; s < 5; s++) {
      const m = t.membersOf(s)!;
      expect(m.size).toBe(3);
      for (const id of m) expect(t.has(id)).toBe(true);
    }
    const small = table(ids(2), 1, 3);
    expect([...small.membersOf(0)!].sort()).toEqual(['s0', 's1']);
  });

  it('is deterministic: the same servers and slots give the same subsets, in any insertion order', () => {
    const a = table(ids(500), 40, 16);
    const b = new SubsetTable<number>();
    for (const id of ids(500).reverse()) b.setEligible(id, true);
    for (let s = 0; s < 40; s++) b.add(s, 16, `client-${s}`);
    for (let s = 0; s < 40; s++) expect([...b.membersOf(s)!].sort()).toEqual([...a.membersOf(s)!].sort());
  });

  it('spreads 1,000 subscribers over 10 arcs, 10,000 servers, k = 32: integer counts 1..5, fractional share max/mean ≤ 1.5 (not yet the 1.10 goal)', () => {
    const servers = ids(10_000);
    const counts = new Map<string, number>(servers.map((id) => [id, 0]));
    const coords: number[] = [];
    let order: string[] = [];
    for (let a = 0; a < 10; a++) {
      const t = table(servers, 100, 32, { index: a, of: 10 });
      order = t.ringOrder();
      for (let s = 0; s < 100; s++) {
        coords.push(t.coordinateOf(s)!);
        for (const id of t.membersOf(s)!) counts.set(id, counts.get(id)! + 1);
      }
    }
    // 3.2 per server on average: an integer count can do no better than 4 / 3.2 = 1.25; 100 van der
    // Corput points in an arc are spaced 1/128 or 1/64 of it (100 is no power of two), so some get 5.
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(5);
    expect(Math.min(...counts.values())).toBeGreaterThanOrEqual(1);
    const share = fractionalShares(coords, 32, order.length);
    // Measured 1.48: 100 slots per arc are not evenly spaced by van der Corput (gaps of 1/64 and
    // 1/128 of the arc, alternating at about a window's width), so the fractional share is not flat.
    expect(maxOverMean(share)).toBeLessThanOrEqual(1.5);
  });

  it('a server that leaves changes only the subsets that held it, each refilled to k', () => {
    const servers = ids(10_000);
    const t = table(servers, 1000, 32);
    const before = new Map([...Array(1000).keys()].map((s) => [s, new Set(t.membersOf(s))]));
    const gone = 's1234';
    const holders = new Set(t.holdersOf(gone));
    expect(holders.size).toBeGreaterThan(0);
    const changes = t.setEligible(gone, false);
    expect(new Set(changes.map((c) => c.sub))).toEqual(holders);
    for (const c of changes) {
      expect(c.removed).toBe(gone);
      expect(c.added).toBeDefined();
    }
    let changed = 0;
    for (let s = 0; s < 1000; s++) {
      const now = t.membersOf(s)!;
      expect(now.size).toBe(32);
      expect(now.has(gone)).toBe(false);
      if ([...now].some((id) => !before.get(s)!.has(id))) changed++;
    }
    expect(changed).toBe(holders.size);
    // Refilled with the least-held servers: the counts stay within 3..4.
    expect(Math.max(...t.counts().values())).toBeLessThanOrEqual(Math.ceil((1000 * 32) / 9_999));
  });

  it('a server that joins moves only subscribers whose window covers it, and no more than the mean', () => {
    const t = table(ids(1000), 100, 32);
    const before = new Map([...Array(100).keys()].map((s) => [s, new Set(t.membersOf(s))]));
    const changes = t.setEligible('new-one', true);
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.length).toBeLessThanOrEqual(Math.ceil((100 * 32) / 1001));
    expect(t.holdersOf('new-one').size).toBe(changes.length);
    let changed = 0;
    for (let s = 0; s < 100; s++) {
      expect(t.membersOf(s)!.size).toBe(32);
      if ([...t.membersOf(s)!].some((id) => !before.get(s)!.has(id))) changed++;
    }
    expect(changed).toBe(changes.length);
  });

  it('a subset below its k grows as servers join, and shrinks when nothing is left to refill it', () => {
    const t = table(ids(2), 1, 3);
    expect(t.setEligible('s2', true)).toEqual([{ sub: 0, added: 's2' }]);
    expect(t.membersOf(0)!.size).toBe(3);
    expect(t.setEligible('s0', false)).toEqual([{ sub: 0, removed: 's0' }]);
    expect(t.membersOf(0)!.size).toBe(2);
  });

  it('a reconnect with the same client id within the grace keeps its slot and subset; after it, the slot is free', () => {
    const clock = { t: 0 };
    const t = table(ids(300), 8, 10, { index: 0, of: 1 }, clock);
    const mine = [...t.membersOf(5)!].sort();
    t.delete(5);
    clock.t = 10_000;
    t.add(100, 4, 'stranger'); // takes a free slot, not the remembered one
    t.add(105, 10, 'client-5');
    expect([...t.membersOf(105)!].sort()).toEqual(mine);
    t.delete(105);
    clock.t = 10_000 + 31_000;
    t.add(200, 10, 'someone-else');
    expect([...t.membersOf(200)!].sort()).toEqual(mine); // slot 5 was free again: the lowest free
  });

  it('remembers at most maxRemembered client ids', () => {
    const t = new SubsetTable<number>({ maxRemembered: 3, now: () => 0 });
    for (const id of ids(50)) t.setEligible(id, true);
    for (let s = 0; s < 10; s++) t.add(s, 4, `c${s}`);
    for (let s = 0; s < 10; s++) t.delete(s);
    // Slots of the 7 forgotten ids are free: a new client gets slot 0 (c0 was forgotten first).
    const fresh = new SubsetTable<number>({ now: () => 0 });
    for (const id of ids(50)) fresh.setEligible(id, true);
    fresh.add(0, 4, 'c0');
    t.add(99, 4, 'new');
    expect([...t.membersOf(99)!].sort()).toEqual([...fresh.membersOf(0)!].sort());
  });

  it('under churn (servers leave and join, subscribers come and go) every subset stays k and counts stay even', () => {
    const servers = ids(2000);
    const t = table(servers, 200, 32);
    let next = 0;
    for (let round = 0; round < 200; round++) {
      t.setEligible(`s${(round * 37) % 2000}`, round % 2 === 1);
      if (round % 10 === 0) {
        t.delete(round % 200);
        t.add(1000 + next++, 32, `late-${next}`);
      }
    }
    for (const c of t.counts().values()) expect(c).toBeLessThanOrEqual(6);
    expect(maxOverMean(t.counts().values())).toBeLessThan(1.9);
  });
});
