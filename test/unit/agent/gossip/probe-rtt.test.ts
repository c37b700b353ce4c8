/**
 * The membership's `rtt` event, which feeds peerlb_probe_rtt_seconds: probe round trips measured
 * on the injected clock of a simulated cluster, where the one-way delay is known exactly.
 */
import { describe, expect, it } from 'vitest';
import { Sim } from '../../../support/gossip-sim.js';

describe("membership 'rtt' event", () => {
  it('reports each answered probe with the round trip of the simulated network (2 × one-way delay)', () => {
    const sim = new Sim({ seed: 11, delayMs: 7, jitterMs: 0 });
    const [a] = sim.addMany(4);
    sim.run(5000, { until: () => sim.converged() });
    const seen: Array<{ node: string; ms: number; phase: string }> = [];
    a!.m.on('rtt', (r) => seen.push(r));
    const acks = a!.m.stats().acks;
    sim.run(3000);
    expect(seen.length).toBeGreaterThanOrEqual(5);
    expect(seen.length).toBe(a!.m.stats().acks - acks); // one event per answered probe
    for (const r of seen) {
      expect(['n1', 'n2', 'n3']).toContain(r.node);
      expect(r.phase).toBe('direct');
      expect(r.ms).toBeGreaterThanOrEqual(14);
      expect(r.ms).toBeLessThan(16); // delivered on the clock step after the delay at most
    }
  });

  it('marks an ack that arrives after the probe timeout (helpers asked meanwhile) as indirect, then waits longer (rtt.ts)', () => {
    // One-way 30 ms: the direct round trip (60 ms) misses the configured 40 ms probe timeout but
    // beats the 400 ms probe interval. The first probes are answered in their indirect phase; their
    // round trips raise the timeout in use above 60 ms, and from then on the direct ping is awaited.
    const sim = new Sim({ seed: 12, delayMs: 30, jitterMs: 0, config: { probeIntervalMs: 400, probeTimeoutMs: 40 } });
    const [a] = sim.addMany(4);
    const seen: Array<{ node: string; ms: number; phase: string }> = [];
    a!.m.on('rtt', (r) => seen.push(r));
    sim.run(10_000, { until: () => sim.converged() });
    sim.run(4000);
    expect(seen.length).toBeGreaterThanOrEqual(5);
    for (const r of seen) {
      expect(r.ms).toBeGreaterThanOrEqual(60);
      expect(r.ms).toBeLessThan(65);
    }
    expect(seen[0]!.phase).toBe('indirect');
    const firstDirect = seen.findIndex((r) => r.phase === 'direct');
    expect(firstDirect).toBeGreaterThan(0);
    expect(seen.slice(firstDirect).every((r) => r.phase === 'direct')).toBe(true);
    expect(a!.m.stats().probeTimeoutMs).toBeGreaterThanOrEqual(60);
  });
});
