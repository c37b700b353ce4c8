/** Response-rate limiting (agent/dns/rate-limit.ts) on a ManualClock. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { ResponseRateLimiter } from '../../../../agent/dns/rate-limit.js';

function limiter(o: Partial<{ rate: number; burst: number; slip: number; maxSources: number }> = {}) {
  const clock = new ManualClock(1000);
  return { clock, rrl: new ResponseRateLimiter({ rate: 10, burst: 5, slip: 2, maxSources: 100, clock, ...o }) };
}

describe('ResponseRateLimiter', () => {
  it('a burst is answered, then every second response slips and the rest are dropped', () => {
    const { rrl } = limiter();
    const got = Array.from({ length: 11 }, () => rrl.check('10.0.0.1'));
    expect(got.slice(0, 5)).toEqual(Array(5).fill('answer'));
    expect(got.slice(5)).toEqual(['drop', 'slip', 'drop', 'slip', 'drop', 'slip']);
    expect(rrl.counters).toEqual({ answered: 5, slipped: 3, dropped: 3, evicted: 0 });
  });

  it('tokens come back at the rate', () => {
    const { clock, rrl } = limiter();
    for (let i = 0; i < 5; i++) rrl.check('10.0.0.1');
    expect(rrl.check('10.0.0.1')).not.toBe('answer');
    clock.advance(100); // 10/s: one token
    expect(rrl.check('10.0.0.1')).toBe('answer');
    expect(rrl.check('10.0.0.1')).not.toBe('answer');
    clock.advance(10_000); // refills up to the burst, no further
    expect(Array.from({ length: 6 }, () => rrl.check('10.0.0.1')).filter((d) => d === 'answer').length).toBe(5);
  });

  it('one source over its rate leaves another answered', () => {
    const { rrl } = limiter();
    for (let i = 0; i < 1000; i++) rrl.check('127.0.0.2');
    expect(rrl.check('127.0.0.2')).not.toBe('answer');
    expect(rrl.check('127.0.0.3')).toBe('answer');
  });

  it('slip 0 drops everything over the rate', () => {
    const { rrl } = limiter({ slip: 0 });
    const got = Array.from({ length: 20 }, () => rrl.check('10.0.0.1'));
    expect(got.filter((d) => d === 'slip')).toEqual([]);
    expect(got.filter((d) => d === 'drop').length).toBe(15);
  });

  it('the table is bounded: past maxSources the least recently seen source is forgotten', () => {
    const { rrl } = limiter({ maxSources: 3 });
    for (let i = 0; i < 5; i++) rrl.check('10.0.0.1');
    rrl.check('10.0.0.2');
    rrl.check('10.0.0.3');
    rrl.check('10.0.0.1'); // most recent again
    rrl.check('10.0.0.4'); // evicts 10.0.0.2, the least recently seen
    expect(rrl.size).toBe(3);
    expect(rrl.counters.evicted).toBe(1);
    expect(rrl.check('10.0.0.1')).not.toBe('answer'); // still remembered as over its rate
  });

  it('IPv6 sources share a bucket per /64; IPv4-mapped addresses count as IPv4', () => {
    expect(ResponseRateLimiter.keyOf('2001:db8:1:2:aaaa::1')).toBe(ResponseRateLimiter.keyOf('2001:db8:1:2:bbbb::9'));
    expect(ResponseRateLimiter.keyOf('2001:db8:1:2::1')).not.toBe(ResponseRateLimiter.keyOf('2001:db8:1:3::1'));
    expect(ResponseRateLimiter.keyOf('::ffff:127.0.0.2')).toBe('127.0.0.2');
  });
});
