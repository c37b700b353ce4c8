/**
 * Slow start (sdk/core/balancer/slow-start.ts): the ramp of one server, and which servers the
 * balancer ramps (joined after the first snapshot, healthy again, back from ejection).
 */
import { describe, expect, it } from 'vitest';
import { isRamping, refreshWeight, startRamp, type SlowStartOptions } from '../../../../../sdk/core/balancer/slow-start.js';
import { balancer, rec, state } from './fixtures.js';

const O: SlowStartOptions = { slowStartMs: 1000, slowStartAggression: 1, slowStartMinShare: 0.1 };

describe('the ramp', () => {
  it('linear from the minimum share to the full weight over the window, then over', () => {
    const s = state('a', { weight: 200 });
    startRamp(s, 0, O);
    expect(isRamping(s)).toBe(true);
    const table: [t: number, w: number][] = [[0, 20], [50, 20], [100, 20], [500, 100], [900, 180]];
    for (const [t, w] of table) {
      refreshWeight(s, t, O);
      expect(s.effWeight, `at ${t}`).toBeCloseTo(w, 9);
    }
    refreshWeight(s, 1000, O);
    expect(s.effWeight).toBe(200);
    expect(isRamping(s)).toBe(false);
  });

  it('aggression 2 ramps faster at the start (√ of the fraction)', () => {
    const s = state('a');
    startRamp(s, 0, { ...O, slowStartAggression: 2 });
    refreshWeight(s, 250, { ...O, slowStartAggression: 2 });
    expect(s.effWeight).toBeCloseTo(50, 9);
  });

  it('off (slowStartMs 0): no ramp, the weight as it is', () => {
    const s = state('a', { weight: 30 });
    startRamp(s, 0, { ...O, slowStartMs: 0 });
    expect(isRamping(s)).toBe(false);
    refreshWeight(s, 0, { ...O, slowStartMs: 0 });
    expect(s.effWeight).toBe(30);
  });
});

describe('which servers the balancer ramps', () => {
  it('not the first snapshot; a server added later; one that turns healthy again', () => {
    const { b, clock } = balancer([rec('a'), rec('b', { health: 'unhealthy' })], { slowStartMs: 1000 });
    expect(b.get('a')!.effWeight).toBe(100);
    b.upsert(rec('c'));
    expect(b.get('c')!.effWeight).toBe(10);
    b.upsert(rec('b'));
    expect(b.get('b')!.effWeight).toBe(10);
    clock.advance(500); // ticks every 100 ms advance the ramps
    expect(b.get('c')!.effWeight).toBeCloseTo(50, 6);
    expect(b.get('b')!.effWeight).toBeCloseTo(50, 6);
    clock.advance(500);
    expect(b.list().map((s) => s.effWeight)).toEqual([100, 100, 100]);
    b.close();
  });

  it('weighted-random, whose picker captures weights, is rebuilt on every tick while a ramp runs, and not after', () => {
    const { b, clock } = balancer([rec('a')], { slowStartMs: 300, strategy: 'weighted-random' });
    b.upsert(rec('c'));
    const v0 = b.version;
    clock.advance(300);
    const ramped = b.version - v0;
    expect(ramped).toBeGreaterThanOrEqual(3);
    clock.advance(1000);
    expect(b.version - v0).toBe(ramped);
    b.close();
  });
});
