import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { AuthFailureLimiter, DEFAULT_AUTH_FAILURE_LIMIT, IP_FAILURE_FACTOR, MAX_TRACKED_IPS, helloDeadlines } from '../../../../agent/gossip/auth-limiter.js';

const limit = { max: 3, windowMs: 1000, blockMs: 5000 };

describe('AuthFailureLimiter (on a ManualClock)', () => {
  it('blocks an identity after max failures within the window, for blockMs, and not its IP', () => {
    const clock = new ManualClock(1_000_000);
    const l = new AuthFailureLimiter(clock, limit);
    expect(l.strike('10.0.0.1', 'id-a')).toEqual({ identity: false, ip: false });
    clock.advance(100);
    expect(l.strike('10.0.0.1', 'id-a')).toEqual({ identity: false, ip: false });
    expect(l.blocked('10.0.0.1', 'id-a')).toBe(false);
    expect(l.strike('10.0.0.1', 'id-a')).toEqual({ identity: true, ip: false });
    expect(l.blocked('10.0.0.1', 'id-a')).toBe(true);
    // Another identity on the same IP (a genuine agent beside a keyless process) is not blocked.
    expect(l.blocked('10.0.0.1', 'id-b')).toBe(false);
    clock.advance(limit.blockMs - 1);
    expect(l.blocked('10.0.0.1', 'id-a')).toBe(true);
    clock.advance(1);
    expect(l.blocked('10.0.0.1', 'id-a')).toBe(false);
  });

  it('forgets failures older than the window', () => {
    const clock = new ManualClock();
    const l = new AuthFailureLimiter(clock, limit);
    l.strike('10.0.0.1', 'id-a');
    l.strike('10.0.0.1', 'id-a');
    clock.advance(limit.windowMs);
    // The two are out of the window now: this is the first of a new count.
    expect(l.strike('10.0.0.1', 'id-a').identity).toBe(false);
    expect(l.strike('10.0.0.1', 'id-a').identity).toBe(false);
    expect(l.strike('10.0.0.1', 'id-a').identity).toBe(true);
  });

  it('blocks the whole IP only after IP_FAILURE_FACTOR × max failures across its identities', () => {
    const clock = new ManualClock();
    const l = new AuthFailureLimiter(clock, { ...limit, max: 2 });
    const n = 2 * IP_FAILURE_FACTOR;
    let ipBlockedAt = -1;
    for (let i = 1; i <= n; i++) {
      const s = l.strike('10.0.0.9', `forged-${i}`); // a new identity every time: none reaches max
      expect(s.identity).toBe(false);
      if (s.ip) ipBlockedAt = i;
    }
    expect(ipBlockedAt).toBe(n);
    expect(l.blocked('10.0.0.9', 'anyone')).toBe(true);
    expect(l.blocked('10.0.0.8', 'anyone')).toBe(false);
  });

  it('counts nothing without an IP, and defaults to DEFAULT_AUTH_FAILURE_LIMIT', () => {
    const l = new AuthFailureLimiter(new ManualClock());
    expect(l.limit).toEqual(DEFAULT_AUTH_FAILURE_LIMIT);
    for (let i = 0; i < 100; i++) expect(l.strike(undefined, 'x')).toEqual({ identity: false, ip: false });
    expect(l.size).toBe(0);
  });

  it('remembers a bounded number of keys', () => {
    const l = new AuthFailureLimiter(new ManualClock(), limit);
    for (let i = 0; i < MAX_TRACKED_IPS * 3; i++) l.strike(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, undefined);
    expect(l.size).toBe(MAX_TRACKED_IPS * 2);
  });
});

describe('helloDeadlines (on a ManualClock)', () => {
  const setup = (sealed: boolean) => {
    const clock = new ManualClock();
    const state = { heard: false, authed: !sealed, cut: false };
    const fired: string[] = [];
    const cancel = helloDeadlines({
      clock,
      sealed,
      authTimeoutMs: 300,
      firstFrameTimeoutMs: 200,
      state: () => state,
      onAuthTimeout: () => fired.push(`auth@${clock.now()}`),
      onFirstFrameTimeout: () => fired.push(`first@${clock.now()}`),
    });
    return { clock, state, fired, cancel };
  };

  it('a silent socket of an open cluster times out at firstFrameTimeoutMs, exactly', () => {
    const { clock, fired } = setup(false);
    clock.advance(199);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual(['first@200']);
    clock.advance(10_000);
    expect(fired).toEqual(['first@200']); // no auth deadline without a keyring
  });

  it('a socket that spoke in time is left alone', () => {
    const { clock, state, fired } = setup(false);
    clock.advance(100);
    state.heard = true;
    clock.advance(1000);
    expect(fired).toEqual([]);
  });

  it('sealed: a socket that never authenticates gets the auth deadline too', () => {
    const { clock, fired } = setup(true);
    clock.advance(1000);
    expect(fired).toEqual(['first@200', 'auth@300']);
  });

  it('sealed: one authentic frame in time meets both deadlines', () => {
    const { clock, state, fired } = setup(true);
    clock.advance(150);
    state.heard = true;
    state.authed = true;
    clock.advance(1000);
    expect(fired).toEqual([]);
  });

  it('a socket already cut does not count a first-frame timeout', () => {
    const { clock, state, fired } = setup(false);
    state.cut = true;
    clock.advance(1000);
    expect(fired).toEqual([]);
  });

  it('cancel (the socket closed) clears both timers', () => {
    const { clock, fired, cancel } = setup(true);
    expect(clock.pending()).toBe(2);
    cancel();
    expect(clock.pending()).toBe(0);
    clock.advance(1000);
    expect(fired).toEqual([]);
  });
});
