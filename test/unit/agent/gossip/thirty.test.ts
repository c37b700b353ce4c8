/**
 * The 30-host defects (issue "Thirty real hosts"), on the simulated network (sim.ts: manual clock,
 * seeded, so every figure here is a count of simulated time or bytes, not of this machine's speed).
 * test/lan/thirty.test.ts runs the same cycles on 30 real hosts.
 */
import { describe, expect, test } from 'vitest';
import { Sim } from '../../../support/gossip-sim.js';
import { LOCAL, LAN, pushPullInterval, pushPullScale } from '../../../../agent/gossip/config.js';
import { benchGossip } from '../../../bench/gossip.js';
import { encodeFrame } from '../../../../agent/gossip/messages.js';

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

  test('a reaped member is not brought back by a push-pull that still has it alive (tombstones)', () => {
    const sim = new Sim({ seed: 11, config: { leftReapMs: 1000, deadReapMs: 1000 } });
    sim.addMany(8, 10);
    sim.run(20_000, { stepMs: 50, until: () => sim.converged() });
    sim.run(2_000, { stepMs: 50 });
    const [n0, , m2] = sim.live();
    const x = sim.live()[5]!;
    const stale = n0!.m.member(x.name)!; // alive, as a member that missed its leave still has it
    void x.m.leave(1000);
    x.up = false;
    sim.run(3_000, { stepMs: 10 });
    expect(sim.live().map((v) => sim.statusIn(v, x.name))).toEqual(sim.live().map(() => undefined)); // reaped everywhere
    let revived = 0;
    for (const v of sim.live()) v.m.on('change', (m) => void (m.node === x.name && m.status === 'alive' && revived++));
    // m2 (in fact a stand-in for any member with stale state) push-pulls its old view of x.
    const ghost = sim.net.transport('ws://10.0.9.9:7946');
    const states = [{ node: stale.node, addr: stale.addr, incarnation: stale.incarnation, status: 'alive' as const, meta: stale.meta }];
    ghost.send(n0!.addr, encodeFrame({ type: 'push-pull-req', from: { node: m2!.name, addr: m2!.addr }, join: false, states }));
    sim.run(2_000, { stepMs: 10 });
    expect(revived).toBe(0);
    expect(sim.live().filter((v) => sim.statusIn(v, x.name) === 'alive').map((v) => v.name)).toEqual([]);
    for (const n of sim.nodes.values()) n.m.stop();
  });

  test('a fresh process under a reaped name is told its tombstone and joins above it', () => {
    const sim = new Sim({ seed: 12, config: { leftReapMs: 1000, deadReapMs: 1000 } });
    sim.addMany(6, 10);
    sim.run(20_000, { stepMs: 50, until: () => sim.converged() });
    const x = sim.live()[4]!;
    void x.m.leave(1000);
    sim.run(3_000, { stepMs: 10 });
    const again = sim.restart(x);
    sim.run(5_000, { stepMs: 10, until: () => sim.allSee(x.name, 'alive') });
    expect(sim.allSee(x.name, 'alive')).toBe(true);
    expect(again.m.self().incarnation).toBeGreaterThan(1);
    for (const n of sim.nodes.values()) n.m.stop();
  });

  // A long-lived agent's incarnation is high (each meta change and refutation adds one); a
  // restarted process starts at 1 and must take its old record's incarnation from the seed's full
  // state, however far above its own — also when that state comes in several pages (more than
  // ~65 members) and its old record is on a later one.
  test('a restarted agent whose old incarnation was high joins above it, its old record on a later page of the seed\'s state', () => {
    const sim = new Sim({ seed: 13 });
    sim.addMany(160, 5);
    sim.run(60_000, { stepMs: 50, until: () => sim.converged() });
    expect(sim.converged()).toBe(true);
    const x = sim.live()[150]!;
    for (let i = 0; i < 200; i++) x.m.setMeta({ ...x.m.self().meta, weight: 100 + (i % 2) });
    sim.run(5_000, { stepMs: 20, until: () => sim.live().every((v) => v.m.member(x.name)?.incarnation === x.m.self().incarnation) });
    const old = x.m.self().incarnation;
    expect(old).toBeGreaterThan(200);
    sim.crash(x);
    sim.run(3_000, { stepMs: 20, until: () => sim.live().filter((v) => v !== x).every((v) => sim.statusIn(v, x.name) === 'dead') });
    const again = sim.restart(x);
    sim.run(10_000, { stepMs: 20, until: () => sim.allSee(x.name, 'alive') });
    expect(sim.live().filter((v) => v !== again && sim.statusIn(v, x.name) !== 'alive').length).toBe(0);
    expect(again.m.self().incarnation).toBeGreaterThan(old);
    for (const n of sim.nodes.values()) n.m.stop();
  }, 60_000);

  // …and when it joins through a seed that never knew it (one that joined after the reap), its
  // old life is told only by the members that hold its tombstone, after it joined.
  test.each([
    ['a seed that holds its tombstone', false],
    ['a seed that joined after the reap', true],
  ])('a restarted agent whose old incarnation was high joins above its tombstone, through %s', (_what, newSeed) => {
    const sim = new Sim({ seed: 13, config: { leftReapMs: 1000, deadReapMs: 1000 } });
    sim.addMany(6, 10);
    sim.run(20_000, { stepMs: 50, until: () => sim.converged() });
    const x = sim.live()[4]!;
    for (let i = 0; i < 200; i++) x.m.setMeta({ ...x.m.self().meta, weight: 100 + (i % 2) });
    sim.run(3_000, { stepMs: 10 });
    const old = x.m.self().incarnation;
    expect(old).toBeGreaterThan(200);
    expect(sim.allSee(x.name, 'alive')).toBe(true);
    void x.m.leave(1000);
    sim.run(3_000, { stepMs: 10 });
    let seeds: string[] | undefined;
    if (newSeed) {
      const s = sim.add();
      sim.run(5_000, { stepMs: 10, until: () => sim.converged() });
      seeds = [s.addr];
    }
    const again = sim.restart(x, seeds ? { seeds } : {});
    sim.run(10_000, { stepMs: 10, until: () => sim.allSee(x.name, 'alive') });
    expect(sim.live().filter((v) => v !== again && sim.statusIn(v, x.name) !== 'alive').map((v) => v.name)).toEqual([]);
    expect(again.m.self().incarnation).toBeGreaterThan(old);
    for (const n of sim.nodes.values()) n.m.stop();
  });
});
