import { describe, expect, it } from 'vitest';
import { InvalidLoadError } from '../../../../agent/load/input.js';
import { DEFAULT_PUBLISH_POLICY, isLargeChange, LoadTracker, shouldPublish, type LoadTrackerOptions } from '../../../../agent/load/tracker.js';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { BadOptionError } from '../../../../sdk/core/errors.js';
import type { LoadReport } from '../../../../sdk/core/protocol.js';

const P = DEFAULT_PUBLISH_POLICY;
const r = (connections: number, sessions = 0, utilization = 0): LoadReport => ({ connections, sessions, utilization, seq: 1, ageMs: 0 });

describe('shouldPublish', () => {
  it.each([
    // prev, next, sinceMs, want, why
    [undefined, r(0), 0, true, 'nothing published yet'],
    [r(10), r(10), 1000, true, 'heartbeat: the interval is up'],
    [r(10), r(10), 999, false, 'no change within the interval'],
    [r(10), r(50), 199, false, 'large change, but within minGapMs'],
    [r(10), r(50), 200, true, 'large change after minGapMs'],
    [r(10), r(12), 500, true, '+20 % and +2'],
    [r(10), r(11), 500, false, '+10 %, +1'],
    [r(0), r(1), 500, false, '0 → 1: infinite share but only 1 unit'],
    [r(0), r(2), 500, true, '0 → 2'],
    [r(100), r(119), 500, false, '+19 units is only 19 %'],
    [r(100), r(120), 500, true, '+20 %'],
    [r(100), r(80), 500, true, '−20 %'],
    [r(100), r(81), 500, false, '−19 %'],
    [r(1000), r(1150), 500, false, '150 more on 1000 is 15 %'],
    [r(0, 10), r(0, 12), 500, true, 'sessions count too'],
    [r(0, 10), r(0, 11), 500, false, 'sessions +1'],
    [r(5, 5), r(6, 6), 500, false, 'both creep: neither is large'],
    [r(0, 0, 0.3), r(0, 0, 0.4), 500, true, 'utilization +0.1 (with float error)'],
    [r(0, 0, 0.7), r(0, 0, 0.6), 500, true, 'utilization −0.1'],
    [r(0, 0, 0.3), r(0, 0, 0.39), 500, false, 'utilization +0.09'],
  ] as [LoadReport | undefined, LoadReport, number, boolean, string][])('%j → %j after %d ms: %s (%s)', (prev, next, since, want) => {
    expect(shouldPublish(prev, next, since, P)).toBe(want);
  });

  it('honours a custom policy', () => {
    const p = { ...P, intervalMs: 5000, minGapMs: 0, absoluteChange: 0, relativeChange: 0.5, utilizationChange: 0.5 };
    expect(shouldPublish(r(10), r(14), 0, p)).toBe(false);
    expect(shouldPublish(r(10), r(15), 0, p)).toBe(true);
    expect(shouldPublish(r(10), r(10), 4999, p)).toBe(false);
    expect(isLargeChange(r(0, 0, 0.1), r(0, 0, 0.6), p)).toBe(true);
    expect(isLargeChange(r(3, 3, 0.1), r(3, 3, 0.1), { ...p, absoluteChange: 0, relativeChange: 0 })).toBe(false);
  });
});

function tracker(opts: LoadTrackerOptions = {}) {
  const clock = new ManualClock(1000);
  const t = new LoadTracker({ clock, ...opts });
  const published: LoadReport[] = [];
  t.on('publish', (rep) => published.push(rep));
  return { clock, t, published };
}

describe('LoadTracker', () => {
  it('publishes at start, then every interval, with increasing seq', () => {
    const { clock, t, published } = tracker();
    t.start();
    expect(published).toEqual([{ connections: 0, sessions: 0, utilization: 0, seq: 1, ageMs: 0 }]);
    clock.advance(999);
    expect(published).toHaveLength(1);
    clock.advance(1);
    expect(published).toHaveLength(2);
    clock.advance(3000);
    expect(published.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
    t.stop();
    expect(clock.pending()).toBe(0);
  });

  it('uses the reported utilization while fresh, then capacity, else host CPU', () => {
    let cpu: number | undefined = 0.7;
    const { clock, t, published } = tracker({ hostCpu: () => cpu, reportTtlMs: 3000 });
    t.start();
    expect(published.at(-1)!.utilization).toBe(0.7);
    expect(t.details().utilizationSource).toBe('cpu');
    clock.advance(500);
    t.report({ utilization: 0.2, sessions: 4 });
    expect(published.at(-1)).toMatchObject({ utilization: 0.2, sessions: 4, seq: 2 }); // −0.5: at once
    expect(t.details().utilizationSource).toBe('reported');
    clock.advance(3001); // 3001 ms after the report: expired
    expect(t.reportState()).toBe('expired');
    // a heartbeat went out 1 ms before expiry, so the change waits out minGapMs
    clock.advance(198);
    expect(published.at(-1)).toMatchObject({ utilization: 0.2 });
    clock.advance(1);
    expect(published.at(-1)).toMatchObject({ utilization: 0.7, sessions: 4 }); // sessions stay
    cpu = undefined;
    expect(t.details()).toMatchObject({ utilizationSource: 'none', report: { utilization: 0 } });
  });

  it('with a capacity, utilization is max(connections, sessions) / capacity, capped at 1', () => {
    let n = 30;
    const { t, published } = tracker({ capacity: 100, measureConnections: () => n, hostCpu: () => 0.9 });
    t.start();
    expect(published.at(-1)).toMatchObject({ connections: 30, utilization: 0.3 });
    t.report({ sessions: 50 });
    expect(t.details()).toMatchObject({ utilizationSource: 'capacity', report: { utilization: 0.5 } });
    n = 250;
    t.sample();
    expect(t.details().report.utilization).toBe(1);
    t.report({ utilization: 0.1 });
    expect(t.details()).toMatchObject({ utilizationSource: 'reported', report: { utilization: 0.1 } });
  });

  it('prefers fresh reported connections over measured ones, and falls back after the TTL', () => {
    const { clock, t } = tracker({ measureConnections: () => 7, reportTtlMs: 2000 });
    t.start();
    expect(t.details()).toMatchObject({ connectionsSource: 'measured', report: { connections: 7 } });
    t.report({ connections: 40 });
    expect(t.details()).toMatchObject({ connectionsSource: 'reported', report: { connections: 40 } });
    clock.advance(2001);
    expect(t.details()).toMatchObject({ connectionsSource: 'measured', report: { connections: 7 } });
  });

  it('keeps a stale reported connection count when nothing is measured', () => {
    const { clock, t } = tracker({ reportTtlMs: 100 });
    t.start();
    t.report({ connections: 5 });
    clock.advance(500);
    expect(t.details()).toMatchObject({ connectionsSource: 'stale-report', report: { connections: 5 } });
  });

  it('publishes a large change at once, but not twice within minGapMs; the held change goes out after the gap', () => {
    const { clock, t, published } = tracker();
    t.start();
    clock.advance(300);
    t.report({ sessions: 10 }); // 0 → 10: large
    expect(published).toHaveLength(2);
    expect(published[1]).toMatchObject({ sessions: 10, seq: 2 });
    clock.advance(50);
    t.report({ sessions: 30 }); // large, but 50 ms after the last publish
    expect(published).toHaveLength(2);
    clock.advance(149);
    expect(published).toHaveLength(2);
    clock.advance(1); // 200 ms after the last publish
    expect(published).toHaveLength(3);
    expect(published[2]).toMatchObject({ sessions: 30, seq: 3 });
    t.report({ sessions: 31 }); // small: waits for the heartbeat
    clock.advance(999);
    expect(published).toHaveLength(3);
    clock.advance(1);
    expect(published[3]).toMatchObject({ sessions: 31, seq: 4 });
  });

  it('a held change that reverts within the gap is not published early, and the heartbeat survives', () => {
    const { clock, t, published } = tracker();
    t.start();
    t.report({ sessions: 10 }); // within minGap of the start publish: held
    t.report({ sessions: 0 }); // back: no longer large
    clock.advance(200);
    expect(published).toHaveLength(1);
    clock.advance(800);
    expect(published).toHaveLength(2);
  });

  it('small changes wait for the heartbeat, which restarts after every publish', () => {
    const { clock, t, published } = tracker();
    t.start();
    clock.advance(600);
    t.report({ sessions: 50 });
    expect(published).toHaveLength(2);
    clock.advance(999); // 1599: the old 1000 ms tick passed without a publish
    expect(published).toHaveLength(2);
    clock.advance(1);
    expect(published).toHaveLength(3);
  });

  it('publishes measured changes at the next interval', () => {
    let n = 0;
    const { clock, t, published } = tracker({ measureConnections: () => n });
    t.start();
    n = 100;
    clock.advance(1000);
    expect(published.at(-1)!.connections).toBe(100);
  });

  it('handles an async measurer, a failing one, and a bad value, without throwing', async () => {
    let mode: 'ok' | 'throw' | 'reject' | 'bad' = 'ok';
    const errors: Error[] = [];
    const { clock, t, published } = tracker({
      measureConnections: () => {
        if (mode === 'throw') throw new Error('no procfs');
        if (mode === 'reject') return Promise.reject(new Error('EIO'));
        if (mode === 'bad') return -3;
        return Promise.resolve(9);
      },
    });
    t.on('measureError', (e) => errors.push(e));
    t.start();
    expect(published).toHaveLength(0); // waits for the first measurement
    await Promise.resolve();
    await Promise.resolve();
    expect(published.at(-1)!.connections).toBe(9);
    mode = 'throw';
    clock.advance(1000);
    clock.advance(1000); // a second failure in a row is not emitted again
    expect(errors.map((e) => e.message)).toEqual(['no procfs']);
    expect(published.at(-1)!.connections).toBe(9); // last good figure kept
    mode = 'ok';
    clock.advance(1000);
    await new Promise((res) => setImmediate(res));
    mode = 'reject';
    clock.advance(1000);
    await new Promise((res) => setImmediate(res));
    mode = 'ok';
    clock.advance(1000);
    await new Promise((res) => setImmediate(res));
    mode = 'bad';
    clock.advance(1000);
    expect(errors.map((e) => e.message)).toEqual(['no procfs', 'EIO', 'measureConnections returned -3, not a count']);
    expect(t.details().measuredConnections).toBe(9);
  });

  it('a measurement that never finishes does not stop publishing', () => {
    const { clock, t, published } = tracker({ measureConnections: () => new Promise<number>(() => {}) });
    t.start();
    clock.advance(1000);
    expect(published).toHaveLength(1);
    clock.advance(3000);
    expect(published).toHaveLength(4);
  });

  it('signals report expiry once per silence, and reportState follows', () => {
    const { clock, t } = tracker({ reportTtlMs: 3000 });
    const expired: number[] = [];
    t.on('expired', (age) => expired.push(age));
    t.start();
    expect(t.reportState()).toBe('none');
    clock.advance(10_000);
    expect(expired).toEqual([]); // never reported: nothing to expire
    t.report({ sessions: 1 });
    expect(t.reportState()).toBe('fresh');
    for (let i = 0; i < 5; i++) {
      clock.advance(2000);
      t.report({ sessions: 1 }); // keeps it fresh
    }
    expect(expired).toEqual([]);
    clock.advance(3000);
    expect(t.reportState()).toBe('fresh');
    clock.advance(1);
    expect(t.reportState()).toBe('expired');
    expect(expired).toEqual([3001]);
    clock.advance(10_000);
    expect(expired).toHaveLength(1);
    t.report({ sessions: 2 });
    clock.advance(3001);
    expect(expired).toHaveLength(2);
    expect(t.reportAgeMs()).toBe(3001);
  });

  it('emits validated reports; rejects bad ones naming the field and keeps the old figures', () => {
    const { t } = tracker();
    const seen: unknown[] = [];
    t.on('report', (x) => seen.push(x));
    t.report({ sessions: 3 });
    expect(() => t.report({ sessions: -1 })).toThrow(InvalidLoadError);
    expect(() => t.report({ utilization: 2 })).toThrow(/"utilization"/);
    expect(() => t.report({})).toThrow(/at least one/);
    expect(seen).toEqual([{ sessions: 3 }]);
    expect(t.details().report.sessions).toBe(3);
  });

  it('current() gives the last report with its age', () => {
    const { clock, t } = tracker();
    expect(t.current()).toBeUndefined();
    t.start();
    clock.advance(400);
    expect(t.current()).toMatchObject({ seq: 1, ageMs: 400 });
  });

  it('seqStart offsets seq', () => {
    const { t, published } = tracker({ seqStart: 1000 });
    t.start();
    expect(published[0]!.seq).toBe(1001);
    expect(t.seq).toBe(1001);
  });

  it('a misbehaving hostCpu reads as unknown', () => {
    const { t } = tracker({ hostCpu: () => { throw new Error('x'); } });
    expect(t.details().utilizationSource).toBe('none');
    const t2 = new LoadTracker({ clock: new ManualClock(), hostCpu: () => 7 });
    expect(t2.details().report.utilization).toBe(1);
  });

  it.each([
    [{ intervalMs: 0 }, 'load.intervalMs'],
    [{ intervalMs: NaN }, 'load.intervalMs'],
    [{ minGapMs: 5000 }, 'load.minGapMs'],
    [{ relativeChange: -1 }, 'load.relativeChange'],
    [{ utilizationChange: 2 }, 'load.utilizationChange'],
    [{ reportTtlMs: 0 }, 'load.reportTtlMs'],
    [{ capacity: 0 }, 'capacity'],
    [{ capacity: 2.5 }, 'capacity'],
    [{ seqStart: 1.5 }, 'load.seqStart'],
    [{ measureConnections: 5 as unknown as () => number }, 'load.measureConnections'],
  ])('rejects %j naming %s', (opts, option) => {
    expect(() => new LoadTracker(opts as LoadTrackerOptions)).toThrow(BadOptionError);
    expect(() => new LoadTracker(opts as LoadTrackerOptions)).toThrow(`option "${option}"`);
  });
});
