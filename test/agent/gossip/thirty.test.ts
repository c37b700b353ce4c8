/**
 * The 30-host defects (issue "Thirty real hosts"), on the simulated network (sim.ts: manual clock,
 * seeded, so every figure here is a count of simulated time or bytes, not of this machine's speed).
 * test/lan/thirty.test.ts runs the same cycles on 30 real hosts.
 */
import { describe, expect, test } from 'vitest';
import { Sim } from './sim.js';
import { LOCAL, LAN, pushPullInterval, pushPullScale } from '../../../agent/gossip/config.js';
import { benchGossip } from '../../bench/gossip.js';

describe('30 members', () => {
  test('a graceful leave is told to every member directly: left in every view after one hop', () => {
    const sim = new Sim({ seed: 7, delayMs: 0.2, jitterMs: 0.8 });
    sim.addMany(30, 10);
    sim.run(20_000, { stepMs: 50, until: () => sim.converged() });
    expect(sim.converged()).toBe(true);
    sim.run(5_000, { stepMs: 50 });
    const leaver = sim.live()[7]!;
    void leaver.m.leave(2000);
    leaver.up = false;
    // One hop is ≤ 1 ms here: 5 ms leaves no time for a gossip round (100–200 ms) to relay it.
    sim.run(5, { stepMs: 1 });
    const missed = sim.live().filter((v) => sim.statusIn(v, leaver.name) !== 'left').map((v) => v.name);
    expect(missed).toEqual([]);
    for (const n of sim.nodes.values()) n.m.stop();
  });

  test('push-pull stays under ~300 B/s per agent as the cluster grows: the interval is at least 500 ms per member', () => {
    // LOCAL (5 s) at 30 members sent its 30-entry state twice per 5 s: ~700 B/s of the budget.
    expect(pushPullInterval(LOCAL.pushPullIntervalMs, 10)).toBe(5000);
    expect(pushPullInterval(LOCAL.pushPullIntervalMs, 30)).toBe(15_000);
    expect(pushPullInterval(LAN.pushPullIntervalMs, 30)).toBe(30_000);
    for (const n of [1, 10, 32, 33, 64, 100, 1000]) expect(pushPullInterval(LAN.pushPullIntervalMs, n)).toBe(Math.max(pushPullScale(LAN.pushPullIntervalMs, n), 500 * n));
  });

  test('local profile at 30 agents with 1 Hz loads: ≤ 1.5 KB/s per agent (simulated bytes)', async () => {
    const [row] = await benchGossip([30], { config: LOCAL });
    expect(row!.falseDeaths).toBe(0);
    expect(row!.bytesPerAgentPerSec).toBeLessThanOrEqual(1500);
  }, 120_000);
});
