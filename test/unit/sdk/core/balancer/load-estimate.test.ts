/**
 * The load estimate (sdk/core/balancer/load-estimate.ts): which reports are taken, what this
 * client held when a late report was taken (the history ring), the share scale, reports ageing,
 * the counts and the RTT. ManualClock time; no sockets.
 */
import { describe, expect, it } from 'vitest';
import { LoadEstimate, closed, countPick, opened, recordRtt } from '../../../../../sdk/core/balancer/load-estimate.js';
import type { LoadReport } from '../../../../../sdk/core/protocol.js';
import { balancer, rec, state } from './fixtures.js';

const O = { reportIntervalMs: 1000, reportExpireIntervals: 3, ewmaDecayMs: 10_000 };
const load = (connections: number, seq: number, ageMs = 0): LoadReport => ({ connections, sessions: 0, utilization: 0.1, seq, ageMs });

describe('which reports are taken', () => {
  const table: [name: string, first: LoadReport, at: number, second: LoadReport, taken: boolean][] = [
    ['a newer seq', load(1, 5), 100, load(2, 6), true],
    ['an older seq within an interval: ignored (reordered)', load(1, 5), 100, load(2, 4), false],
    ['the same seq: ignored', load(1, 5), 2000, load(2, 5), false],
    ['a lower seq once the last is over an interval old (the agent restarted)', load(1, 5), 1001, load(2, 1), true],
    ['a lower seq at exactly one interval: still ignored', load(1, 5), 1000, load(2, 1), false],
  ];
  it.each(table)('%s', (_n, first, at, second, taken) => {
    const le = new LoadEstimate(O);
    const s = state('a');
    le.report(s, first, 0);
    le.report(s, second, at);
    expect(s.report).toBe(taken ? second : first);
    expect(s.reportedActive).toBe(taken ? 2 : 1);
  });

  it('the report time is its receipt minus its age; its weight fades from one interval to three', () => {
    const le = new LoadEstimate(O);
    const s = state('a');
    le.report(s, load(4, 1, 500), 10_000);
    expect(s.reportAt).toBe(9500);
    expect(s.reportW).toBe(1);
    const table: [now: number, w: number][] = [[10_500, 1], [11_500, 0.5], [12_500, 0], [20_000, 0]];
    for (const [now, w] of table) {
      le.age(s, now, 1);
      expect(s.reportW, `at ${now}`).toBeCloseTo(w, 9);
    }
  });
});

describe('a late report is compared with what this client held when it was taken', () => {
  it('takes the counts of the last tick at or before the report time', () => {
    const le = new LoadEstimate(O);
    const s = state('a');
    const all = [s];
    opened(s); // active 1 at tick 100
    le.recordHistory(all, 100);
    opened(s);
    opened(s); // active 3 at tick 200
    le.recordHistory(all, 200);
    countPick(s); // + 1 counted at tick 300
    le.recordHistory(all, 300);
    expect(le.historySlot(99)).toBe(0); // older than every tick kept: the oldest
    expect(le.historySlot(250)).toBe(1);
    // A report taken at 150 (arrives at 320, 170 ms old): this client held 1 then, not 3.
    le.report(s, load(10, 1, 170), 320);
    expect(s).toMatchObject({ activeAtReport: 1, unitsAtReport: 1 });
    // A report taken at 300: 3 open and 1 counted.
    le.report(s, load(10, 2, 20), 320);
    expect(s).toMatchObject({ activeAtReport: 3, unitsAtReport: 4 });
    // A report from now (age 0): the counts as they are.
    opened(s);
    le.report(s, load(10, 3, 0), 320);
    expect(s).toMatchObject({ activeAtReport: 4, unitsAtReport: 5 });
  });

  it('a server this client never used costs no history array', () => {
    const le = new LoadEstimate(O);
    const idle = state('idle');
    const used = state('used');
    opened(used);
    le.recordHistory([idle, used], 100);
    expect(idle.history).toBeUndefined();
    expect(used.history).toBeInstanceOf(Float64Array);
  });
});

describe('the share scale', () => {
  it('reported load over what this client held at the reports, at least 1', () => {
    const le = new LoadEstimate(O);
    const a = state('a', {}, { report: load(30, 1), reportedActive: 30, activeAtReport: 2 });
    const b = state('b', {}, { report: load(10, 1), reportedActive: 10, activeAtReport: 3 });
    expect(le.scale([a, b])).toBe(8);
    expect(le.scale([state('c')])).toBe(1); // no reports
    expect(le.scale([state('d', {}, { report: load(1, 1), reportedActive: 1, activeAtReport: 4 })])).toBe(1);
  });
});

describe('counts and RTT', () => {
  it('opened/closed count connections (never below 0); countPick counts a pick as load', () => {
    const s = state('a');
    opened(s);
    opened(s);
    closed(s);
    closed(s);
    closed(s);
    countPick(s);
    expect(s).toMatchObject({ active: 0, picks: 3, counted: 1 });
    expect(s.estimate).toBe(1);
  });

  it('peak EWMA: a higher sample at once, a lower one decays in; no sample for undefined or negative', () => {
    const s = state('a');
    recordRtt(s, 10, 0, O);
    expect(s.rtt).toBe(10);
    recordRtt(s, 50, 100, O);
    expect(s.rtt).toBe(50);
    recordRtt(s, 0, 100 + 10_000, O);
    expect(s.rtt).toBeCloseTo(50 * Math.exp(-1), 9);
    const before = s.rtt;
    recordRtt(s, undefined, 1e6, O);
    recordRtt(s, -1, 1e6, O);
    expect(s.rtt).toBe(before);
  });
});

describe('through the balancer', () => {
  it('a load-only upsert changes the estimate without a rebuild; the tick ages it', async () => {
    const { b, clock } = balancer([rec('a', { load: load(5, 1) }), rec('b')]);
    const v = b.version;
    b.upsert(rec('a', { load: load(7, 2) }));
    expect(b.version).toBe(v);
    expect(b.get('a')!.estimate).toBe(7);
    clock.advance(2000); // 2 s old: half weight; this client holds nothing
    expect(b.get('a')!.estimate).toBeCloseTo(3.5, 9);
    clock.advance(1000);
    expect(b.get('a')!.estimate).toBe(0);
    b.close();
  });
});
