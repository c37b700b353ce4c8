/**
 * 100 agents in one process, on the in-memory network and a manual clock, with the default (LAN)
 * configuration: the goals of config.ts DESIGN_GOALS, and no false death ever.
 */
import { describe, expect, it } from 'vitest';
import { Sim, type SimNode } from '../../../support/gossip-sim.js';
import { DESIGN_GOALS } from '../../../../agent/gossip/config.js';

const N = DESIGN_GOALS.agents;

/** A settled cluster of `n` agents (all see all alive), with load reports if asked. */
function cluster(seed: number, n: number = N, opts: { loads?: boolean; lossRate?: number } = {}): { sim: Sim; nodes: SimNode[]; falseDeaths: string[] } {
  const sim = new Sim({ seed, lossRate: opts.lossRate ?? 0 });
  const nodes = sim.addMany(n, 10);
  if (opts.loads) for (const x of nodes) sim.startLoads(x);
  sim.run(30_000, { stepMs: 50, until: () => sim.converged() });
  expect(sim.converged(), 'cluster converged').toBe(true);
  // Every dead verdict, by any live member, about a member that is up: caught as it happens.
  const falseDeaths: string[] = [];
  sim.watchDeaths((v, m) => {
    if (sim.nodes.get(m.node)?.up) falseDeaths.push(`${v.name} saw ${m.node} dead at ${sim.clock.now()}`);
  });
  return { sim, nodes, falseDeaths };
}

/** After every step: no live member sees another live member dead. */
function noLiveMemberDead(sim: Sim): () => void {
  return () => {
    const live = sim.live();
    for (const v of live) for (const x of live) if (v !== x && v.m.statusOf(x.name) === 'dead') throw new Error(`${v.name} sees live ${x.name} dead at ${sim.clock.now()}`);
  };
}

describe(`${N} agents`, () => {
  it(`a join reaches every member within ${DESIGN_GOALS.joinMs} ms`, () => {
    const { sim, falseDeaths } = cluster(1, N - 1, { loads: true });
    sim.run(10_000, { stepMs: 100 });
    const joiner = sim.add();
    const ms = sim.run(5_000, { until: () => sim.allSee(joiner.name, 'alive') });
    expect(sim.allSee(joiner.name, 'alive')).toBe(true);
    expect(ms).toBeLessThanOrEqual(DESIGN_GOALS.joinMs);
    // and the joiner knows everyone, with their loads (push-pull carries them)
    sim.run(1000);
    expect(joiner.m.members().filter((m) => m.status === 'alive')).toHaveLength(N);
    expect(joiner.m.members().filter((m) => m.load).length).toBeGreaterThan(N - 5);
    expect(falseDeaths).toEqual([]);
  });

  it(`a crashed process is dead everywhere within ${DESIGN_GOALS.crashDeadMs} ms, a silent host within ${DESIGN_GOALS.silentDeadMs} ms; no living member is ever marked dead`, () => {
    const { sim, nodes, falseDeaths } = cluster(2, N, { loads: true });
    sim.run(10_000, { stepMs: 100 });
    const check = noLiveMemberDead(sim);
    for (const victim of [nodes[17]!, nodes[42]!, nodes[88]!]) {
      sim.crash(victim);
      const ms = sim.run(5_000, { check, until: () => sim.allSee(victim.name, 'dead') });
      expect(sim.allSee(victim.name, 'dead'), `${victim.name} dead everywhere`).toBe(true);
      expect(ms, `${victim.name} crash → dead`).toBeLessThanOrEqual(DESIGN_GOALS.crashDeadMs);
      sim.run(2000, { check, stepMs: 50 });
    }
    for (const victim of [nodes[5]!, nodes[63]!, nodes[71]!]) {
      sim.silence(victim);
      const ms = sim.run(10_000, { check, until: () => sim.allSee(victim.name, 'dead') });
      expect(sim.allSee(victim.name, 'dead'), `${victim.name} dead everywhere`).toBe(true);
      expect(ms, `${victim.name} silent → dead`).toBeLessThanOrEqual(DESIGN_GOALS.silentDeadMs);
      sim.run(2000, { check, stepMs: 50 });
    }
    expect(falseDeaths).toEqual([]);
    // every death went through suspicion first
    for (const v of sim.live()) expect(v.m.stats().suspicions + v.m.stats().confirmations).toBeGreaterThan(0);
  });

  it('10 % message loss causes no false death', () => {
    const { sim, falseDeaths } = cluster(3, N, { loads: true });
    sim.net.setLoss(0.1);
    const check = noLiveMemberDead(sim);
    sim.run(30_000, { stepMs: 100, check });
    expect(falseDeaths).toEqual([]);
    // loss did cause suspicions, and they were refuted
    const refutations = sim.live().reduce((s, v) => s + v.m.stats().refutations, 0);
    expect(refutations).toBeGreaterThan(0);
    sim.net.setLoss(0);
    sim.run(5000, { until: () => sim.converged() });
    expect(sim.converged()).toBe(true);
  });

  it('a partition heals into one cluster', () => {
    const { sim, nodes } = cluster(4);
    const left = nodes.slice(0, N / 2);
    const right = nodes.slice(N / 2);
    sim.net.partition(
      left.map((n) => n.addr),
      right.map((n) => n.addr),
    );
    const bothSidesSplit = () => left.every((v) => right.every((x) => v.m.statusOf(x.name) === 'dead')) && right.every((v) => left.every((x) => v.m.statusOf(x.name) === 'dead'));
    sim.run(30_000, { stepMs: 50, until: bothSidesSplit });
    expect(bothSidesSplit(), 'each side sees the other dead').toBe(true);
    // nobody saw a member of its own side dead
    for (const side of [left, right]) for (const v of side) for (const x of side) if (v !== x) expect(v.m.member(x.name)!.status).toBe('alive');
    sim.run(5000);
    sim.net.heal();
    const ms = sim.run(30_000, { stepMs: 50, until: () => sim.converged() });
    expect(sim.converged(), 'one cluster again').toBe(true);
    expect(ms).toBeLessThan(10_000);
  });

  it('a member restarted with the same id comes back with a higher incarnation than any remembered', () => {
    const { sim, nodes, falseDeaths } = cluster(5);
    const x = nodes[30]!;
    sim.crash(x);
    sim.run(5000, { until: () => sim.allSee(x.name, 'dead') });
    const remembered = Math.max(...sim.live().map((v) => v.m.member(x.name)!.incarnation));
    const again = sim.restart(x);
    sim.run(10_000, { until: () => sim.converged() });
    expect(sim.converged()).toBe(true);
    for (const v of sim.live()) expect(v.m.member(x.name)!.incarnation, v.name).toBeGreaterThan(remembered);
    expect(again.m.self().incarnation).toBeGreaterThan(remembered);
    expect(falseDeaths).toEqual([]);
  });

  it("a graceful leave is seen as 'left' everywhere, within the leave timeout", async () => {
    const { sim, nodes, falseDeaths } = cluster(6);
    const x = nodes[55]!;
    let resolved = false;
    const p = x.m.leave(1000).then(() => (resolved = true));
    x.up = false;
    sim.run(1000, { until: () => resolved && sim.allSee(x.name, 'left') });
    await p;
    expect(resolved).toBe(true);
    expect(sim.allSee(x.name, 'left')).toBe(true);
    sim.run(5000);
    expect(sim.allSee(x.name, 'left')).toBe(true);
    expect(falseDeaths).toEqual([]);
  });
});
