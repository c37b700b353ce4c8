/** The agent's load-aware choice (agent/choose.ts): the SDK's p2c and consistent hash over records. */
import { describe, expect, it } from 'vitest';
import { chooseServers } from '../../../agent/choose.js';
import { XorShiftRandom } from '../../../sdk/core/random.js';
import type { Health, ServerRecord } from '../../../sdk/core/protocol.js';

const rec = (id: string, connections: number, extra: { health?: Health; weight?: number; zone?: string; ageMs?: number } = {}): ServerRecord => ({
  id,
  service: 'game',
  host: '127.0.0.1',
  udpPort: 9000,
  weight: extra.weight ?? 100,
  health: extra.health ?? 'healthy',
  ...(extra.zone ? { zone: extra.zone } : {}),
  load: { connections, sessions: 0, utilization: connections / 100, seq: 1, ageMs: extra.ageMs ?? 100 },
});

/** How often each id comes first in `rounds` choices. */
function firsts(records: ServerRecord[], rounds: number, seed: number, key?: (i: number) => string): Map<string, number> {
  const random = new XorShiftRandom(seed);
  const counts = new Map<string, number>(records.map((r) => [r.id, 0]));
  for (let i = 0; i < rounds; i++) {
    const [first] = chooseServers(records, 1, { random, ...(key ? { key: key(i) } : {}) });
    counts.set(first!.id, counts.get(first!.id)! + 1);
  }
  return counts;
}

describe('chooseServers', () => {
  it('spreads first choices over equally loaded servers (seeded: each within 20 % of its fair share)', () => {
    const records = ['a', 'b', 'c', 'd'].map((id) => rec(id, 10));
    const counts = firsts(records, 4000, 1);
    for (const [, c] of counts) {
      expect(c).toBeGreaterThan(800);
      expect(c).toBeLessThan(1200);
    }
  });

  it('a server with 4× the load of the others gets at most half its fair share of first choices', () => {
    const records = [rec('a', 10), rec('b', 10), rec('c', 10), rec('hot', 40)];
    const counts = firsts(records, 4000, 2);
    expect(counts.get('hot')!).toBeLessThanOrEqual(4000 / 4 / 2);
    // The others share the rest evenly.
    for (const id of ['a', 'b', 'c']) expect(counts.get(id)!).toBeGreaterThan(1000);
  });

  it('weighs load by weight: a server of twice the weight and twice the load is an equal choice', () => {
    const records = [rec('big', 20, { weight: 200 }), rec('small', 10, { weight: 100 })];
    const counts = firsts(records, 2000, 3);
    // Equal load per weight: p2c keeps the first drawn, so each is first about half the time.
    expect(counts.get('big')!).toBeGreaterThan(800);
    expect(counts.get('small')!).toBeGreaterThan(800);
  });

  it('a stale report no longer counts: a server whose heavy report is 3 intervals old is chosen again', () => {
    const records = [rec('a', 10), rec('stale', 1000, { ageMs: 3500 })];
    const counts = firsts(records, 2000, 4);
    expect(counts.get('stale')!).toBeGreaterThan(800);
  });

  it('orders up to n distinct servers, all of them when n is larger', () => {
    const records = ['a', 'b', 'c'].map((id) => rec(id, 0));
    const random = new XorShiftRandom(5);
    const two = chooseServers(records, 2, { random });
    expect(two).toHaveLength(2);
    expect(new Set(two.map((r) => r.id)).size).toBe(2);
    const all = chooseServers(records, 10, { random });
    expect(all.map((r) => r.id).sort()).toEqual(['a', 'b', 'c']);
    expect(all[0]).toBe(records.find((r) => r.id === all[0]!.id)); // the records themselves
    expect(chooseServers(records, 0, { random })).toEqual([]);
  });

  it('the least loaded server comes before the most loaded in the order', () => {
    const records = [rec('hot', 100), rec('cold', 0)];
    const order = chooseServers(records, 2, { random: new XorShiftRandom(6) });
    expect(order.map((r) => r.id)).toEqual(['cold', 'hot']);
  });

  it('never chooses draining, unhealthy or excluded servers; none eligible gives an empty list', () => {
    const records = [rec('d', 0, { health: 'draining' }), rec('u', 0, { health: 'unhealthy' }), rec('x', 0), rec('ok', 50)];
    const counts = firsts(records, 500, 7);
    expect(counts.get('d')).toBe(0);
    expect(counts.get('u')).toBe(0);
    expect(counts.get('x')! + counts.get('ok')!).toBe(500);
    const random = new XorShiftRandom(8);
    expect(chooseServers(records, 5, { random, exclude: new Set(['x']) }).map((r) => r.id)).toEqual(['ok']);
    expect(chooseServers([rec('d', 0, { health: 'draining' })], 3, { random })).toEqual([]);
    expect(chooseServers([], 3, { random })).toEqual([]);
  });

  it('prefers the given zone, and lists the other zones after it; spills when the zone is overloaded (the SDK rule)', () => {
    const records = [rec('a1', 5, { zone: 'a' }), rec('a2', 5, { zone: 'a' }), rec('b1', 5, { zone: 'b' })];
    const random = new XorShiftRandom(9);
    for (let i = 0; i < 50; i++) {
      const order = chooseServers(records, 3, { random, zone: 'a' });
      expect(order[0]!.zone).toBe('a');
      expect(order[2]!.id).toBe('b1');
    }
    // Zone a at 10× zone b's load per weight: spill over, b1 (idle) wins most first choices.
    const hot = [rec('a1', 50, { zone: 'a' }), rec('a2', 50, { zone: 'a' }), rec('b1', 0, { zone: 'b' })];
    let b = 0;
    for (let i = 0; i < 300; i++) if (chooseServers(hot, 1, { random, zone: 'a' })[0]!.id === 'b1') b++;
    expect(b).toBeGreaterThan(150);
  });

  it('a key gives the same servers every time, and keys spread over the servers', () => {
    const records = ['a', 'b', 'c', 'd'].map((id) => rec(id, 0));
    const random = new XorShiftRandom(10);
    const first = chooseServers(records, 2, { random, key: 'player-42' }).map((r) => r.id);
    for (let i = 0; i < 20; i++) expect(chooseServers(records, 2, { random, key: 'player-42' }).map((r) => r.id)).toEqual(first);
    const counts = firsts(records, 2000, 11, (i) => `key-${i}`);
    for (const [, c] of counts) expect(c).toBeGreaterThan(250);
  });

  it('with a key, only the keys of a server that left move (to the next server on the ring)', () => {
    const records = ['a', 'b', 'c', 'd'].map((id) => rec(id, 0));
    const random = new XorShiftRandom(12);
    let moved = 0;
    for (let i = 0; i < 500; i++) {
      const [first, second] = chooseServers(records, 2, { random, key: `k${i}` });
      const after = chooseServers(
        records.filter((r) => r.id !== 'a'),
        1,
        { random, key: `k${i}` },
      )[0]!;
      if (first!.id === 'a') {
        moved++;
        expect(after.id).toBe(second!.id);
      } else expect(after.id).toBe(first!.id);
    }
    expect(moved).toBeGreaterThan(50);
  });
});
