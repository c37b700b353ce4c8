/**
 * Leases (sdk/core/balancer/lease.ts): one handle per pick through which its outcome flows. Every
 * path of a connect — connected then closed, an error, a timeout, an abort, failover to the next
 * server — leaves the active counts at 0 and no deadline pending; every method is idempotent.
 * Deadlines are on the balancer's own clock (a ManualClock here), per balancer. No sockets.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Deadlines, type Lease } from '../../../../../sdk/core/balancer/lease.js';
import type { Balancer } from '../../../../../sdk/core/balancer/balancer.js';
import { activeSum, balancer, rec } from './fixtures.js';

const opened: Balancer[] = [];
function make(opts: Parameters<typeof balancer>[1] = {}) {
  const t = balancer([rec('a'), rec('b'), rec('c')], opts);
  opened.push(t.b);
  return t;
}
afterEach(() => {
  for (const b of opened.splice(0)) b.close();
  vi.restoreAllMocks();
});

describe('each path ends the lease once', () => {
  it('connected then closed: counted while open, an RTT sample on the clock, the failure run reset', () => {
    const { b, clock } = make();
    const a = b.get('a')!;
    a.consecutiveFailures = 2;
    const l = b.lease(a, { timeoutMs: 1000 });
    expect(a).toMatchObject({ active: 1, picks: 1 });
    expect(l.state).toBe('connecting');
    clock.advance(7);
    l.connected();
    expect(l.state).toBe('open');
    expect(a).toMatchObject({ active: 1, rtt: 7, consecutiveFailures: 0, failures: 0 });
    expect(b.deadlines.size).toBe(0);
    clock.advance(5000); // long past the deadline: an open lease does not time out
    expect(a.active).toBe(1);
    l.closed();
    expect(l.state).toBe('ended');
    expect(a.active).toBe(0);
  });

  it('connected(rttMs) takes the caller’s round trip', () => {
    const { b } = make();
    const l = b.lease(b.get('a')!);
    l.connected(3.5);
    expect(b.get('a')!.rtt).toBe(3.5);
  });

  it('an error: a failure and a slow sample (at least the timeout), the lease ends', () => {
    const { b, clock } = make();
    const a = b.get('a')!;
    const l = b.lease(a, { timeoutMs: 300 });
    clock.advance(2);
    l.failed(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    expect(a).toMatchObject({ active: 0, failures: 1, consecutiveFailures: 1, rtt: 300 });
    expect(b.deadlines.size).toBe(0);
  });

  it('a timeout: onTimeout once with ETIMEDOUT at the deadline (late by at most a sweep), then the lease fails by itself', () => {
    const { b, clock } = make();
    const a = b.get('a')!;
    const seen: string[] = [];
    const l = b.lease(a, { timeoutMs: 250, onTimeout: (e) => seen.push(`${(e as { code?: string }).code} ${e.message}`) });
    clock.advance(249);
    expect(seen).toEqual([]);
    expect(a.active).toBe(1);
    clock.advance(Deadlines.SWEEP_MS);
    expect(seen).toEqual(['ETIMEDOUT connect timed out after 250 ms']);
    expect(l.state).toBe('ended');
    expect(a).toMatchObject({ active: 0, failures: 1 });
    expect(a.rtt).toBeGreaterThanOrEqual(250);
    clock.advance(1000);
    expect(seen.length).toBe(1);
  });

  it('an onTimeout that fails the lease itself (as the TCP path does) counts one failure', () => {
    const { b, clock } = make();
    const a = b.get('a')!;
    let l!: Lease;
    l = b.lease(a, { timeoutMs: 100, onTimeout: (e) => l.failed(e) });
    clock.advance(200);
    expect(a).toMatchObject({ active: 0, failures: 1 });
  });

  it('an abort (closed before connected): released, nobody blamed', () => {
    const { b, clock } = make();
    const a = b.get('a')!;
    const l = b.lease(a, { timeoutMs: 100 });
    l.closed();
    clock.advance(1000);
    expect(a).toMatchObject({ active: 0, failures: 0, rtt: 0 });
    expect(b.deadlines.size).toBe(0);
  });

  it('failover: a failed attempt, then the next server connects and closes — all counts back to 0', () => {
    const { b, clock } = make();
    const tried = new Set([b.pick(-1)!]);
    const first = [...tried][0]!;
    const l1 = b.lease(first, { timeoutMs: 100 });
    clock.advance(100);
    expect(l1.state).toBe('ended');
    const next = b.pickExcluding(-1, tried)!;
    expect(next).not.toBe(first);
    const l2 = b.lease(next, { timeoutMs: 100 });
    expect(activeSum(b)).toBe(1);
    l2.connected();
    l2.closed();
    expect(activeSum(b)).toBe(0);
    expect(first.failures + next.failures).toBe(1);
  });

  it('idempotent: whatever is called after the end, in any order, counts nothing again', () => {
    const { b, clock } = make();
    const a = b.get('a')!;
    const calls: ((l: Lease) => void)[] = [(l) => l.connected(1), (l) => l.failed(new Error('x')), (l) => l.closed(), (l) => l.expire()];
    for (const first of calls)
      for (const then of calls) {
        const l = b.lease(a, { timeoutMs: 50 });
        first(l);
        const snap = { failures: a.failures, rtt: a.rtt };
        then(l);
        then(l);
        l.closed();
        l.closed();
        clock.advance(100);
        expect(a.active).toBe(0);
        if (first !== calls[0]) expect({ failures: a.failures, rtt: a.rtt }).toEqual(snap);
      }
    expect(b.deadlines.size).toBe(0);
  });

  it('failed after connected: one failure at the penalty, the connection released once', () => {
    const { b } = make();
    const a = b.get('a')!;
    const l = b.lease(a, { timeoutMs: 400 });
    l.connected(1);
    l.failed(new Error('reset'));
    l.closed();
    expect(a).toMatchObject({ active: 0, failures: 1, rtt: 400 });
  });

  it('many leases over every path: active counts 0 and nothing pending at the end', () => {
    const { b, clock } = make();
    const ends = [(l: Lease) => (l.connected(), l.closed()), (l: Lease) => l.failed(new Error('e')), (l: Lease) => l.closed(), () => {}];
    for (let i = 0; i < 200; i++) ends[i % 4]!(b.lease(b.pick(-1)!, { timeoutMs: 30 + (i % 7) }));
    clock.advance(100); // the ones left hanging time out
    expect(activeSum(b)).toBe(0);
    expect(b.deadlines.size).toBe(0);
    expect(b.list().reduce((n, s) => n + s.picks, 0)).toBe(200);
  });
});

describe('deadlines: on the balancer’s clock, per balancer', () => {
  it('advancing one cluster’s clock times out its own connects only', () => {
    const x = make();
    const y = make();
    const lx = x.b.lease(x.b.get('a')!, { timeoutMs: 100 });
    const ly = y.b.lease(y.b.get('a')!, { timeoutMs: 100 });
    x.clock.advance(500);
    expect(lx.state).toBe('ended');
    expect(ly.state).toBe('connecting');
    y.clock.advance(500);
    expect(ly.state).toBe('ended');
  });

  it('one sweep timer while leases are pending, stopping after a second idle; no global timer at all', () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const { b, clock } = make();
    expect(b.deadlines.sweeping).toBe(false);
    const pending = clock.pending(); // the balancer's tick
    const ls = Array.from({ length: 50 }, () => b.lease(b.pick(-1)!, { timeoutMs: 1000 }));
    expect(b.deadlines.sweeping).toBe(true);
    expect(clock.pending()).toBe(pending + 1);
    for (const l of ls) {
      l.connected();
      l.closed();
    }
    clock.advance(Deadlines.SWEEP_MS * Deadlines.IDLE_SWEEPS - 1);
    expect(b.deadlines.sweeping).toBe(true);
    clock.advance(1);
    expect(b.deadlines.sweeping).toBe(false);
    expect(clock.pending()).toBe(pending);
    b.lease(b.get('a')!, { timeoutMs: 10 });
    expect(b.deadlines.sweeping).toBe(true); // starts again
    clock.advance(20);
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    expect(setIntervalSpy).not.toHaveBeenCalled();
  });

  it('a lease without a timeout has no deadline and arms no timer', () => {
    const { b, clock } = make();
    const l = b.lease(b.get('a')!);
    expect(l.deadline).toBe(Infinity);
    expect(b.deadlines.sweeping).toBe(false);
    clock.advance(60_000);
    expect(l.state).toBe('connecting');
    l.closed();
  });
});
