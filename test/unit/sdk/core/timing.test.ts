import { describe, expect, it } from 'vitest';
import { ejectionDuration, estimateLoad, peakEwma, reportWeight, shareScale, slowStartFactor } from '../../../../sdk/core/timing.js';

describe('reportWeight(ageMs, intervalMs, expireAfter)', () => {
  it.each([
    // age, interval, expire, weight
    [0, 1000, 3, 1],
    [999, 1000, 3, 1],
    [1000, 1000, 3, 1], // the next report is not late yet
    [1500, 1000, 3, 0.75],
    [2000, 1000, 3, 0.5],
    [2500, 1000, 3, 0.25],
    [3000, 1000, 3, 0], // expired: only local counts remain
    [60_000, 1000, 3, 0],
    [150, 100, 2, 0.5],
    [-5, 1000, 3, 1], // a report "from the future" (sender's clock ahead) counts fully
    [Number.NaN, 1000, 3, 1],
  ])('age %s, interval %s, expire after %s → %s', (age, interval, expire, w) => {
    expect(reportWeight(age, interval, expire)).toBeCloseTo(w, 12);
  });

  it('never rises with age', () => {
    let prev = 1;
    for (let age = 0; age <= 4000; age += 37) {
      const w = reportWeight(age, 1000, 3);
      expect(w).toBeLessThanOrEqual(prev);
      expect(w).toBeGreaterThanOrEqual(0);
      prev = w;
    }
  });
});

describe('estimateLoad(reported, localSinceReport, localActive, w)', () => {
  it.each([
    // reported, since, active, w, estimate
    [10, 0, 0, 1, 10],
    [10, 2, 1, 1, 12], // fresh report plus what this client added since
    [10, 2, 4, 0, 4], // expired report: only this client's own open connections
    [10, 2, 4, 0.5, 8], // half way: 0.5·12 + 0.5·4
    [10, 2, 4, -1, 4],
    [3, -5, 0, 1, 0], // this client closed more than the report said: never negative
    [0, 0, 0, 1, 0],
    [100, 0, 7, 0.25, 0.25 * 100 + 0.75 * 7],
  ])('reported %s, since %s, active %s, w %s → %s', (reported, since, active, w, est) => {
    expect(estimateLoad(reported, since, active, w)).toBeCloseTo(est, 12);
  });
});

describe('estimateLoad with a scale (this client’s inverse share)', () => {
  it.each([
    // reported, since, active, w, scale, estimate
    [100, 2, 10, 1, 1, 102],
    [100, 2, 10, 1, 10, 120], // two more here stand for twenty in the cluster
    [100, -3, 10, 1, 10, 70], // and three closed for thirty
    [100, -30, 10, 1, 10, 0],
    [100, 2, 10, 0.5, 10, 0.5 * 120 + 0.5 * 100],
    [100, 2, 10, 0, 10, 100], // expired: own connections, scaled
  ])('reported %s, since %s, active %s, w %s, scale %s → %s', (reported, since, active, w, scale, est) => {
    expect(estimateLoad(reported, since, active, w, scale)).toBeCloseTo(est, 12);
  });
});

describe('shareScale(reportedTotal, ownTotal)', () => {
  it.each([
    [5000, 100, 50], // one client of fifty
    [100, 100, 1], // the only client
    [100, 150, 1], // holds more than reported (report older than its connections): never below 1
    [5000, 0, 1], // holds nothing: nothing to scale by
    [0, 0, 1],
    [0, 10, 1],
    [Number.NaN, 10, 1],
    [7, 2, 3.5],
  ])('reported %s, own %s → %s', (reported, own, scale) => {
    expect(shareScale(reported, own)).toBe(scale);
  });
});

describe('slowStartFactor(sinceMs, windowMs, aggression, minShare)', () => {
  it.each([
    // since, window, aggression, minShare, factor
    [0, 0, 1, 0.1, 1], // no window: no slow start
    [5000, 10_000, 1, 0.1, 0.5], // linear
    [2500, 10_000, 1, 0.1, 0.25],
    [10_000, 10_000, 1, 0.1, 1],
    [20_000, 10_000, 1, 0.1, 1],
    [0, 10_000, 1, 0.1, 0.1], // just joined: the floor
    [-50, 10_000, 1, 0.1, 0.1],
    [500, 10_000, 1, 0.1, 0.1], // 0.05 is below the floor
    [500, 10_000, 1, 0.01, 0.05],
    [5000, 10_000, 2, 0.1, Math.SQRT1_2], // aggression 2 ramps faster early
    [1000, 10_000, 4, 0.1, Math.pow(0.1, 0.25)],
    [5000, 10_000, 0.5, 0.1, 0.25], // aggression < 1 ramps slower early
  ])('since %s of %s, aggression %s, floor %s → %s', (since, window, aggr, floor, f) => {
    expect(slowStartFactor(since, window, aggr, floor)).toBeCloseTo(f, 12);
  });

  it('rises monotonically from the floor to 1 over the window', () => {
    let prev = 0;
    for (let t = 0; t <= 12_000; t += 250) {
      const f = slowStartFactor(t, 10_000, 1.5, 0.1);
      expect(f).toBeGreaterThanOrEqual(prev);
      expect(f).toBeGreaterThanOrEqual(0.1);
      expect(f).toBeLessThanOrEqual(1);
      prev = f;
    }
    expect(prev).toBe(1);
  });
});

describe('ejectionDuration(level, baseMs, maxMs)', () => {
  it.each([
    [0, 5000, 300_000, 5000],
    [1, 5000, 300_000, 10_000],
    [2, 5000, 300_000, 20_000],
    [5, 5000, 300_000, 160_000],
    [6, 5000, 300_000, 300_000], // 320 s capped at the maximum
    [50, 5000, 300_000, 300_000],
    [-1, 5000, 300_000, 5000],
    [3, 100, 1000, 800],
  ])('level %s, base %s, max %s → %s', (level, base, max, d) => {
    expect(ejectionDuration(level, base, max)).toBe(d);
  });
});

describe('peakEwma(prev, sample, elapsedMs, tauMs)', () => {
  it.each([
    // prev, sample, elapsed, tau, result
    [0, 7, 100, 10_000, 7], // first sample is taken as is
    [Number.NaN, 7, 100, 10_000, 7],
    [10, 25, 0, 10_000, 25], // a peak replaces the average at once
    [10, 5, 0, 10_000, 10], // no time passed: a lower sample has no weight yet
    [10, 0, 10_000, 10_000, 10 * Math.exp(-1)], // one time constant: e^-1 of the old average left
    [10, 4, 10_000, 10_000, 10 * Math.exp(-1) + 4 * (1 - Math.exp(-1))],
    [10, 4, 1e9, 10_000, 4], // long ago: the average is the sample
    [10, 4, -100, 10_000, 10], // a clock that went backwards counts as no time
  ])('prev %s, sample %s, after %s ms, tau %s → %s', (prev, sample, elapsed, tau, r) => {
    expect(peakEwma(prev, sample, elapsed, tau)).toBeCloseTo(r, 12);
  });

  it('forgets a spike with time constant tau', () => {
    let v = peakEwma(1, 100, 0, 1000); // spike
    expect(v).toBe(100);
    for (let i = 0; i < 10; i++) v = peakEwma(v, 1, 100, 1000); // 1 s of normal samples
    expect(v).toBeCloseTo(1 + 99 * Math.exp(-1), 9);
  });
});
