/**
 * The pure timing and counting functions of gossip, with tables (memberlist's own tables where it
 * has them: suspicion_test.go, util_test.go), and the small stateful pieces on a manual clock.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { ConfigError } from '../../../../sdk/core/errors.js';
import { Suspicion, remainingSuspicionTime, suspicionTimeout } from '../../../../agent/gossip/suspicion.js';
import { Awareness, probeAwarenessDelta, scaleTimeout } from '../../../../agent/gossip/awareness.js';
import { BroadcastQueue, retransmitLimit } from '../../../../agent/gossip/broadcast-queue.js';
import { DEFAULT_GOSSIP_CONFIG, GOSSIP_PROFILES, LAN, LOCAL, pushPullScale, resolveGossipConfig } from '../../../../agent/gossip/config.js';

describe('remainingSuspicionTime (memberlist suspicion_test.go table)', () => {
  it.each([
    // n, k, elapsed, min, max, expected
    [0, 3, 0, 2000, 30_000, 30_000],
    [1, 3, 2000, 2000, 30_000, 14_000],
    [2, 3, 3000, 2000, 30_000, 4810],
    [3, 3, 4000, 2000, 30_000, -2000],
    [4, 3, 5000, 2000, 30_000, -3000],
    [5, 3, 10_000, 2000, 30_000, -8000],
    // peerlb's defaults at N = 100: min 500 ms, max 3 s, k = 3
    [0, 3, 0, 500, 3000, 3000],
    [1, 3, 200, 500, 3000, 1550],
    [2, 3, 300, 500, 3000, 718],
    [3, 3, 300, 500, 3000, 200],
    // k = 0: no confirmation expected, the minimum applies
    [0, 0, 100, 500, 3000, 400],
  ])('n=%i k=%i elapsed=%i min=%i max=%i → %i', (n, k, elapsed, min, max, expected) => {
    expect(remainingSuspicionTime(n, k, elapsed, min, max)).toBe(expected);
  });
});

describe('suspicionTimeout (memberlist util_test.go TestSuspicionTimeout)', () => {
  it.each([
    [5, 1000],
    [10, 1000],
    [50, 1698],
    [100, 2000],
    [500, 2698],
    [1000, 3000],
  ])('n=%i → %i ms per 1 s interval', (n, expected) => {
    expect(suspicionTimeout(1, n, 1000)).toBe(expected);
  });

  it('gives the defaults their intended figures', () => {
    const c = DEFAULT_GOSSIP_CONFIG;
    expect(suspicionTimeout(c.suspicionMult, 100, c.probeIntervalMs)).toBe(500);
    expect(suspicionTimeout(c.suspicionMult, 10, c.probeIntervalMs)).toBe(250);
    expect(c.suspicionMaxTimeoutMult * suspicionTimeout(c.suspicionMult, 100, c.probeIntervalMs)).toBe(3000);
  });
});

describe('retransmitLimit and pushPullScale (memberlist util.go)', () => {
  it.each([
    [3, 1, 3],
    [3, 9, 3],
    [3, 10, 6],
    [3, 99, 6],
    [4, 100, 12],
    [4, 1000, 16],
  ])('retransmitLimit(%i, %i) = %i', (mult, n, expected) => {
    expect(retransmitLimit(mult, n)).toBe(expected);
  });

  it.each([
    [1, 1000],
    [32, 1000],
    [33, 2000],
    [64, 2000],
    [65, 3000],
    [100, 3000],
    [128, 3000],
    [129, 4000],
    [1000, 6000],
  ])('pushPullScale(1 s, %i) = %i', (n, expected) => {
    expect(pushPullScale(1000, n)).toBe(expected);
  });
});

describe('awareness (Lifeguard LHA-Probe)', () => {
  it('scales timeouts by score + 1 and stays in [0, max − 1]', () => {
    const a = new Awareness(8);
    expect(a.scaleTimeout(200)).toBe(200);
    a.applyDelta(3);
    expect(a.scaleTimeout(200)).toBe(800);
    a.applyDelta(100);
    expect(a.score).toBe(7);
    a.applyDelta(-100);
    expect(a.score).toBe(0);
    expect(scaleTimeout(100, 2)).toBe(300);
  });

  it.each([
    ['direct-ack', 3, 0, -1],
    ['indirect-ack', 3, 1, 0],
    ['failed', 3, 3, 0],
    ['failed', 3, 1, 2],
    ['failed', 3, 0, 3],
    ['failed', 0, 0, 1],
  ] as const)('%s with %i expected nacks and %i received → %i', (outcome, expected, got, delta) => {
    expect(probeAwarenessDelta(outcome, expected, got)).toBe(delta);
  });
});

describe('Suspicion on a manual clock', () => {
  it('times out at max with no confirmation, sooner with each, at min with k', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const s = new Suspicion({ from: 'a', k: 3, minMs: 500, maxMs: 3000, clock, onTimeout: (n) => fired.push(n) });
    clock.advance(200);
    expect(s.confirm('a')).toBe(false); // the suspicion's own source does not count
    expect(s.confirm('b')).toBe(true); // 1 of 3: timeout 1750 ms
    expect(s.confirm('b')).toBe(false); // once per member
    clock.advance(1000);
    expect(fired).toEqual([]);
    expect(s.confirm('c')).toBe(true); // 2 of 3 at 1200 ms: timeout 1018 ms → fire now
    clock.advance(0);
    expect(fired).toEqual([2]);
    expect(s.confirm('d')).toBe(false);
  });

  it('fires at max without confirmations, never twice, not after cancel', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const s = new Suspicion({ from: 'a', k: 3, minMs: 500, maxMs: 3000, clock, onTimeout: (n) => fired.push(n) });
    clock.advance(2999);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([0]);
    clock.advance(10_000);
    expect(fired).toEqual([0]);
    const t = new Suspicion({ from: 'a', k: 3, minMs: 500, maxMs: 3000, clock, onTimeout: (n) => fired.push(n) });
    t.cancel();
    clock.advance(10_000);
    expect(fired).toEqual([0]);
  });

  it('uses min at once when no confirmation can come (k = 0)', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    new Suspicion({ from: 'a', k: 0, minMs: 250, maxMs: 1500, clock, onTimeout: (n) => fired.push(n) });
    clock.advance(249);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([0]);
  });
});

describe('BroadcastQueue', () => {
  it('sends the least-sent first, newest first among equals, and drops at the limit', () => {
    const q = new BroadcastQueue<string>(() => 2);
    q.push('a', 'A', 10);
    q.push('b', 'B', 10);
    expect(q.take(100, 0).values).toEqual(['B', 'A']);
    q.push('c', 'C', 10);
    expect(q.take(100, 0).values).toEqual(['C', 'B', 'A']);
    expect(q.size).toBe(1);
    expect(q.take(100, 0).values).toEqual(['C']);
    expect(q.size).toBe(0);
  });

  it('replaces an item with the same key, fits a byte budget, skips without counting', () => {
    const done: string[] = [];
    const q = new BroadcastQueue<string>(() => 3);
    q.push('a', 'A1', 50, { onDone: (sent) => done.push(`A1:${sent}`) });
    q.push('a', 'A2', 50, { limit: 1, onDone: (sent) => done.push(`A2:${sent}`) });
    q.push('b', 'B', 80);
    q.push('c', 'C', 30);
    expect(done).toEqual(['A1:false']);
    // budget 100: C (30) fits, B (80) does not after it, A2 (50) does
    expect(q.take(100, 0, (it) => it.key === 'c')).toEqual({ values: ['B'], bytes: 80 });
    expect(q.take(100, 0).values).toEqual(['C', 'A2']);
    expect(done).toEqual(['A1:false', 'A2:true']);
    expect(q.has('a')).toBe(false);
  });
});

describe('gossip config', () => {
  it('derives the profiles from one default', () => {
    expect(LAN).toBe(DEFAULT_GOSSIP_CONFIG);
    expect(GOSSIP_PROFILES.lan).toBe(LAN);
    expect(GOSSIP_PROFILES.local).toBe(LOCAL);
    for (const k of Object.keys(DEFAULT_GOSSIP_CONFIG)) expect(LOCAL).toHaveProperty(k);
    expect(resolveGossipConfig(LOCAL)).toEqual(LOCAL);
    expect(resolveGossipConfig()).toEqual(DEFAULT_GOSSIP_CONFIG);
  });

  it.each([
    [{ probeIntervalMs: 0 }, /probeIntervalMs/],
    [{ probeTimeoutMs: 300 }, /probeTimeoutMs \(300\) must be < probeIntervalMs/],
    [{ loadRetransmits: -1 }, /loadRetransmits/],
    [{ indirectChecks: 1.5 }, /indirectChecks must be an integer/],
    [{ nope: 1 } as never, /unknown field "nope"/],
  ])('rejects %j', (partial, msg) => {
    expect(() => resolveGossipConfig(partial)).toThrow(ConfigError);
    expect(() => resolveGossipConfig(partial)).toThrow(msg);
  });
});
