/**
 * Outlier ejection (sdk/core/balancer/outlier.ts): the functions on their own, then through the
 * balancer's outcomes and ticks on a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import { outlierTick, recordFailure, recordSuccess, type OutlierOptions } from '../../../../../sdk/core/balancer/outlier.js';
import { balancer, rec, state } from './fixtures.js';

const O: OutlierOptions = { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 5000, maxEjectedShare: 0.5 };

describe('recordFailure', () => {
  it('ejects at the third failure in a row, for the base period; a success in between starts the run again', () => {
    const all = [state('a'), state('b')];
    const a = all[0]!;
    expect(recordFailure(a, all, 0, O)).toBeUndefined();
    recordSuccess(a);
    expect(recordFailure(a, all, 0, O)).toBeUndefined();
    expect(recordFailure(a, all, 0, O)).toBeUndefined();
    expect(recordFailure(a, all, 10, O)).toEqual({ until: 1010, consecutiveFailures: 3, level: 0 });
    expect(a).toMatchObject({ ejected: true, ejections: 1, ejectionLevel: 1, failures: 4 });
    // Already ejected: counted, not ejected again.
    expect(recordFailure(a, all, 20, O)).toBeUndefined();
    expect(a).toMatchObject({ ejections: 1, failures: 5, consecutiveFailures: 4 });
  });

  it('the backoff doubles per level and stops at maxEjectionMs', () => {
    const table: [level: number, ms: number][] = [[0, 1000], [1, 2000], [2, 4000], [3, 5000], [9, 5000]];
    for (const [level, ms] of table) {
      const a = state('a', {}, { ejectionLevel: level, consecutiveFailures: 2 });
      expect(recordFailure(a, [a, state('b')], 100, O)).toEqual({ until: 100 + ms, consecutiveFailures: 3, level });
    }
  });

  it('never ejects more than maxEjectedShare of the servers (at least one; none at share 0)', () => {
    const table: [n: number, share: number, most: number][] = [[4, 0.5, 2], [5, 0.5, 2], [3, 0.1, 1], [1, 0.5, 1], [4, 0, 0], [10, 1, 10]];
    for (const [n, share, most] of table) {
      const all = Array.from({ length: n }, (_, i) => state(`s${i}`));
      let ejected = 0;
      for (const s of all) for (let k = 0; k < 3; k++) if (recordFailure(s, all, 0, { ...O, maxEjectedShare: share })) ejected++;
      expect(ejected, `${n} servers at ${share}`).toBe(most);
      expect(all.filter((s) => s.ejected).length).toBe(most);
    }
  });

  it('a server no longer in the view is counted, never ejected', () => {
    const a = state('a', {}, { consecutiveFailures: 2 });
    expect(recordFailure(a, [a], 0, O, false)).toBeUndefined();
    expect(a).toMatchObject({ ejected: false, failures: 1 });
  });
});

describe('outlierTick', () => {
  it('ends the ejection at `until` (not before) and clears the run of failures', () => {
    const a = state('a', {}, { consecutiveFailures: 2 });
    const e = recordFailure(a, [a, state('b')], 0, O)!;
    expect(outlierTick(a, e.until - 1, O)).toBe(false);
    expect(a.ejected).toBe(true);
    expect(outlierTick(a, e.until, O)).toBe(true);
    expect(a).toMatchObject({ ejected: false, consecutiveFailures: 0, lastEjectionEnd: e.until });
  });

  it('forgets one level of backoff per two base periods without an ejection', () => {
    const a = state('a', {}, { ejectionLevel: 3, lastEjectionEnd: 0 });
    expect(outlierTick(a, 1999, O)).toBe(false);
    expect(a.ejectionLevel).toBe(3);
    outlierTick(a, 2000, O);
    expect(a.ejectionLevel).toBe(2);
    outlierTick(a, 3999, O);
    expect(a.ejectionLevel).toBe(2);
    outlierTick(a, 4000, O);
    outlierTick(a, 6000, O);
    outlierTick(a, 8000, O);
    expect(a.ejectionLevel).toBe(0);
  });
});

describe('through the balancer', () => {
  it('eject and recover events, the choice set without the ejected server meanwhile, slow start after', () => {
    const { b, clock } = balancer([rec('a'), rec('b'), rec('c')], { outlier: { consecutiveFailures: 2, baseEjectionMs: 1000 }, slowStartMs: 1000 });
    const ev: string[] = [];
    b.on('eject', (s, info) => ev.push(`eject ${s.id} until ${info.until} level ${info.level}`));
    b.on('recover', (s) => ev.push(`recover ${s.id} at ${clock.now()}`));
    const a = b.get('a')!;
    b.outcome(a, false, 5);
    b.outcome(a, false, 5);
    expect(ev).toEqual(['eject a until 1000 level 0']);
    for (let i = 0; i < 100; i++) expect(b.pick(-1)!.id).not.toBe('a');
    clock.advance(900);
    expect(a.ejected).toBe(true);
    clock.advance(100); // the tick at 1000
    expect(ev).toEqual(['eject a until 1000 level 0', 'recover a at 1000']);
    expect(a.ejected).toBe(false);
    expect(a.effWeight).toBeLessThan(a.weight); // ramping again
    clock.advance(1000);
    expect(a.effWeight).toBe(a.weight);
    b.close();
  });

  it('a failure feeds the RTT as a slow sample of at least the penalty', () => {
    const { b } = balancer([rec('a'), rec('b')]);
    const a = b.get('a')!;
    b.outcome(a, false, 3, 700);
    expect(a.rtt).toBe(700);
    b.outcome(b.get('b')!, false, 900, 700);
    expect(b.get('b')!.rtt).toBe(900);
    b.close();
  });
});
