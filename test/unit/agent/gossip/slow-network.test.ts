/**
 * A network slower than the profile was made for: the probe timeout follows the measured round
 * trip (agent/gossip/rtt.ts), so the failure detector slows down instead of declaring live members
 * dead. Simulated (in-memory network, manual clock); the real-link version, 50 ms each way plus
 * 20% loss over WebSocket, is the LAN suite's loss test (test/lan/faults.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { RttEstimator } from '../../../../agent/gossip/rtt.js';
import { LAN } from '../../../../agent/gossip/config.js';
import { Sim } from '../../../support/gossip-sim.js';

describe('RttEstimator (RFC 6298 srtt/rttvar)', () => {
  it('starts at the floor, follows srtt + 4·rttvar, stays within [floor, cap]', () => {
    const e = new RttEstimator();
    expect(e.timeout(100, 1600)).toBe(100);
    e.sample(300); // first sample: srtt 300, rttvar 150
    expect(e.timeout(100, 1600)).toBe(900);
    e.sample(300); // rttvar 112.5, srtt 300
    expect(e.timeout(100, 1600)).toBe(750);
    for (let i = 0; i < 200; i++) e.sample(10);
    expect(e.smoothedMs).toBeCloseTo(10, 3);
    expect(e.timeout(100, 1600)).toBe(100); // never below the configured timeout
    for (let i = 0; i < 20; i++) e.sample(10_000);
    expect(e.timeout(100, 1600)).toBe(1600); // never above the cap
    e.sample(Number.NaN);
    e.sample(-5);
    expect(e.timeout(100, 1600)).toBe(1600); // nonsense ignored
  });
});

describe('a network 3× slower than the LAN profile expects', () => {
  // 150 ms each way (± 50): every round trip is ≥ 3× the LAN probe timeout (100 ms), and an
  // indirect probe (two round trips) misses the LAN deadline (one 200 ms probe interval) every time.
  const slow = { delayMs: 150, jitterMs: 100 };

  it('no live member is ever marked dead; the timeout grows to fit; a crash and a silent host are still found', () => {
    const sim = new Sim({ seed: 11, ...slow });
    const nodes = sim.addMany(10, 50);
    sim.run(60_000, { stepMs: 50, until: () => sim.converged() });
    expect(sim.converged(), 'cluster converged').toBe(true);
    const falseDeaths: string[] = [];
    sim.watchDeaths((v, m) => {
      if (sim.nodes.get(m.node)?.up) falseDeaths.push(`${v.name} saw ${m.node} dead at ${sim.clock.now()}`);
    });
    sim.run(60_000, { stepMs: 100 });
    expect(falseDeaths).toEqual([]);
    const timeouts = sim.live().map((v) => v.m.stats().probeTimeoutMs);
    console.log(`[slow network] probe timeouts after 60 s: ${timeouts.join(' ')} ms (configured ${LAN.probeTimeoutMs})`);
    for (const t of timeouts) expect(t).toBeGreaterThanOrEqual(300);

    // Slower, but still a failure detector.
    const crashed = nodes[3]!;
    sim.crash(crashed);
    const crashMs = sim.run(30_000, { stepMs: 50, until: () => sim.allSee(crashed.name, 'dead') });
    expect(sim.allSee(crashed.name, 'dead'), 'crashed member dead everywhere').toBe(true);
    const silent = nodes[7]!;
    sim.silence(silent);
    const silentMs = sim.run(60_000, { stepMs: 50, until: () => sim.allSee(silent.name, 'dead') });
    expect(sim.allSee(silent.name, 'dead'), 'silent member dead everywhere').toBe(true);
    console.log(`[slow network] crash → dead everywhere ${crashMs} ms, silent → dead everywhere ${silentMs} ms`);
    expect(falseDeaths).toEqual([]);
  });
});

describe('a stall is not a slow network', () => {
  it('acks that come back later than the cap (a stall, a healed partition) do not pin the timeout', () => {
    const sim = new Sim({ seed: 12 });
    sim.addMany(5, 20);
    sim.run(20_000, { stepMs: 20, until: () => sim.converged() });
    sim.run(2000, { stepMs: 20 });
    const before = sim.live().map((v) => v.m.stats().probeTimeoutMs);
    expect(before.every((t) => t === LAN.probeTimeoutMs)).toBe(true);
    // For 300 ms every frame takes 5 s: the pings sent then arrive 5 s late, and their acks with them.
    sim.net.delayMs = 5000;
    sim.run(300, { stepMs: 10 });
    sim.net.delayMs = 0.5;
    sim.run(6000, { stepMs: 20 }); // the late acks arrived about a second ago
    const after = sim.live().map((v) => v.m.stats().probeTimeoutMs);
    console.log(`[stall] probe timeouts after a 5 s stall window: ${after.join(' ')} ms`);
    for (const t of after) expect(t).toBeLessThan(400);
  });
});
