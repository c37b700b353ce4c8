/**
 * The sub-linear pickers against the scans they replace: smooth WRR (per-weight-group heaps) must
 * give exactly nginx's sequence, and the least-connections / least-load heap (cost-heap.ts) must
 * keep its invariants and return a cheapest server after any sequence of changes fed through the
 * change journal (server.ts), including more changes than the journal holds.
 */
import { describe, expect, it } from 'vitest';
import { STRATEGIES } from '../../../../../sdk/core/pickers/index.js';
import { CostHeap } from '../../../../../sdk/core/pickers/cost-heap.js';
import { connectionCost } from '../../../../../sdk/core/pickers/least-connections.js';
import { loadCost } from '../../../../../sdk/core/pickers/least-load.js';
import { SmoothWrr } from '../../../../../sdk/core/pickers/weighted-round-robin.js';
import { XorShiftRandom } from '../../../../../sdk/core/random.js';
import { CHANGE_RING, ServerState, touched } from '../../../../../sdk/core/server.js';

const make = (weights: number[]) =>
  weights.map((weight, i) => new ServerState({ id: `s${i}`, service: 'game', host: '127.0.0.1', tcpPort: 1, weight, health: 'healthy' }));

/** nginx's loop, verbatim: the reference. */
function naiveWrr(list: ServerState[]) {
  const cur = new Float64Array(list.length);
  return () => {
    let best = 0;
    let total = 0;
    let bc = -Infinity;
    for (let i = 0; i < list.length; i++) {
      const w = list[i]!.effWeight;
      const c = cur[i]! + w;
      cur[i] = c;
      total += w;
      if (c > bc) {
        bc = c;
        best = i;
      }
    }
    cur[best] = bc - total;
    return best;
  };
}

const setWeight = (s: ServerState, w: number) => {
  s.effWeight = w;
  touched(s);
};

describe('smooth weighted round robin', () => {
  it('weights 5,1,1 give a a b a c a a, twice over', () => {
    const list = make([5, 1, 1]);
    const p = STRATEGIES['weighted-round-robin'](list, { random: new XorShiftRandom(1) });
    const seq = Array.from({ length: 14 }, () => 'abc'[Number(p.pick(-1)!.id.slice(1))]).join(' ');
    expect(seq).toBe('a a b a c a a a a b a c a a');
  });

  it('matches the naive nginx loop on random weights, with weight changes, over thousands of picks', () => {
    const r = new XorShiftRandom(42);
    let compared = 0;
    let groupPicks = 0;
    for (let round = 0; round < 40; round++) {
      const n = 1 + r.int(60);
      const palette = Array.from({ length: 1 + r.int(6) }, () => r.int(30)); // duplicates, sometimes 0
      const list = make(Array.from({ length: n }, () => palette[r.int(palette.length)]! + (round % 3 === 0 ? 1 : 0)));
      if (list.every((s) => s.effWeight === 0)) setWeight(list[0]!, 1);
      const fast = new SmoothWrr(list);
      const ref = naiveWrr(list);
      for (let k = 0; k < 3000; k++) {
        if (k % 500 === 499) {
          // a weight change mid-schedule: an integer one, or a slow-start-like fraction
          const s = list[r.int(n)]!;
          setWeight(s, k % 1000 === 999 ? 0.5 + r.int(10) * 0.25 : 1 + r.int(30));
        }
        if (k === 2600) for (const s of list) setWeight(s, Math.round(s.effWeight) || 1); // back to integers
        const scanning = fast.scanning;
        expect(list.indexOf(fast.pick()!)).toBe(ref());
        if (!scanning) groupPicks++;
        compared++;
      }
    }
    expect(compared).toBe(40 * 3000);
    // most of it ran through the groups, not the scan fallback
    expect(groupPicks).toBeGreaterThan(compared / 2);
  });

  it('matches the naive loop with many distinct weights (the kinetic tournament over groups)', () => {
    const r = new XorShiftRandom(9);
    let bad = 0;
    let picks = 0;
    for (let round = 0; round < 12; round++) {
      const n = 9 + r.int(300);
      const list = make(Array.from({ length: n }, () => r.int(round % 2 ? 200 : 40)));
      if (list.every((s) => s.effWeight === 0)) setWeight(list[0]!, 1);
      const fast = new SmoothWrr(list);
      const ref = naiveWrr(list);
      for (let k = 0; k < 4000; k++) {
        if (k % 700 === 699) setWeight(list[r.int(n)]!, r.int(300));
        if (list.indexOf(fast.pick()!) !== ref()) bad++;
        picks++;
      }
    }
    expect(picks).toBe(12 * 4000);
    expect(bad).toBe(0);
  });

  it('stays exact across the re-base (2^20 picks), few and many groups', () => {
    const many = make(Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 23)));
    const f2 = new SmoothWrr(many);
    const r2 = naiveWrr(many);
    let bad2 = 0;
    for (let k = 0; k < 2 ** 20 + 5000; k++) if (many.indexOf(f2.pick()!) !== r2()) bad2++;
    expect(bad2).toBe(0);

    const list = make([7, 3, 3, 2, 1]);
    const fast = new SmoothWrr(list);
    const ref = naiveWrr(list);
    let bad = 0;
    for (let k = 0; k < 2 ** 20 + 5000; k++) if (list.indexOf(fast.pick()!) !== ref()) bad++;
    expect(fast.scanning).toBe(false);
    expect(bad).toBe(0);
  });

  it('a picker that fell more than the journal behind still follows the new weights', () => {
    const list = make([3, 2, 1]);
    const fast = new SmoothWrr(list);
    const ref = naiveWrr(list);
    for (let k = 0; k < 10; k++) expect(list.indexOf(fast.pick()!)).toBe(ref());
    setWeight(list[2]!, 7);
    const other = make([1]);
    for (let k = 0; k < CHANGE_RING + 10; k++) touched(other[0]!);
    for (let k = 0; k < 100; k++) expect(list.indexOf(fast.pick()!)).toBe(ref());
  });
});

describe.each([
  ['least-connections', connectionCost],
  ['least-load', loadCost],
] as const)('%s heap', (name, cost) => {
  it('keeps its invariants and returns a cheapest server under random changes', () => {
    const r = new XorShiftRandom(7);
    let checked = 0;
    for (let round = 0; round < 20; round++) {
      const n = 1 + r.int(80);
      const list = make(Array.from({ length: n }, () => 1 + r.int(4) * 50));
      const heap = new CostHeap(list, new XorShiftRandom(round), cost);
      heap.check();
      for (let k = 0; k < 1500; k++) {
        const op = r.int(10);
        const s = list[r.int(n)]!;
        if (op < 4) {
          s.active++;
          s.refreshEstimate();
        } else if (op < 7) {
          if (s.active > 0) s.active--;
          s.refreshEstimate();
        } else if (op < 8) {
          setWeight(s, r.int(5) * 50); // 0 sometimes: last
        } else if (op < 9) {
          s.reportedActive = r.int(20);
          s.reportW = r.next();
          s.refreshEstimate();
        } else if (k % 97 === 0) {
          for (let q = 0; q < CHANGE_RING + 1; q++) touched(s); // overflow: a rebuild
        }
        const got = heap.take();
        heap.check();
        const min = Math.min(...list.map(cost));
        expect(cost(got)).toBe(min);
        checked++;
      }
    }
    expect(checked).toBe(20 * 1500);
  });

  it('equal servers take turns from a random start, as the scan did', () => {
    const list = make(Array.from({ length: 9 }, () => 100));
    const p = STRATEGIES[name](list, { random: new XorShiftRandom(3) });
    const ids = Array.from({ length: 18 }, () => Number(p.pick(-1)!.id.slice(1)));
    const start = ids[0]!;
    expect(ids).toEqual(Array.from({ length: 18 }, (_, k) => (start + k) % 9));
  });

  it('a connection opened through the balancer path moves the next pick elsewhere', () => {
    const list = make([100, 100, 100]);
    const p = STRATEGIES[name](list, { random: new XorShiftRandom(5) });
    const a = p.pick(-1)!;
    a.active += 5;
    a.reportW = 1;
    a.reportedActive = 5;
    a.refreshEstimate();
    for (let k = 0; k < 6; k++) expect(p.pick(-1)).not.toBe(a);
  });
});
