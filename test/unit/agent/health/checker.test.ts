/**
 * The checker's defaults are the schema's (agent/health/defaults.ts): a checker built directly and
 * the agent's resolved options agree. A ttl check on a ManualClock: no sockets, no sleeps.
 */
import { describe, expect, it } from 'vitest';
import { HealthChecker } from '../../../../agent/health/checker.js';
import { defaultProbeTimeoutMs } from '../../../../agent/health/defaults.js';
import { resolveAgentOptions } from '../../../../agent/options.js';
import { ManualClock } from '../../../../sdk/core/clock.js';

describe('health defaults, one source', () => {
  it.each([10, 11, 200, 1000, 3_600_000])('interval %i ms: the checker and the resolver give the same timeout', (intervalMs) => {
    const c = new HealthChecker({ type: 'tcp', host: '127.0.0.1', port: 7000 }, { intervalMs, clock: new ManualClock() });
    const h = resolveAgentOptions({ service: 'game', tcpPort: 7000, health: { type: 'tcp', intervalMs } }).health;
    expect(c.check).toMatchObject({ timeoutMs: defaultProbeTimeoutMs(intervalMs) });
    expect(h).toMatchObject({ intervalMs, timeoutMs: defaultProbeTimeoutMs(intervalMs), rise: c.rise, fall: c.fall });
  });

  it('a ttl check: rise and fall 1 unless given, the interval honoured', () => {
    const clock = new ManualClock();
    const h = resolveAgentOptions({ service: 'game', udpPort: 7001, health: { type: 'ttl', ttlMs: 100, intervalMs: 50, fall: 2 } }).health;
    expect(h).toEqual({ type: 'ttl', ttlMs: 100, intervalMs: 50, rise: 1, fall: 2 });
    const c = new HealthChecker({ type: 'ttl', ttlMs: 100 }, { intervalMs: 50, rise: 1, fall: 2, initial: 'healthy', clock });
    const changes: string[] = [];
    c.on('change', (s) => changes.push(s));
    c.start();
    clock.advance(101); // one failure (the ttl timer): fall 2 holds it healthy
    expect(changes).toEqual([]);
    clock.advance(50); // the interval tick: a second failure
    expect(changes).toEqual(['unhealthy']);
    c.reported(); // rise 1: the first report recovers at once
    expect(changes).toEqual(['unhealthy', 'healthy']);
    c.stop();
  });
});
