/**
 * Gossip benchmark: a simulated cluster on the in-memory network and a manual clock (simulated
 * time, so the figures do not depend on the machine), with a load report from every agent every
 * second and 0.2–1 ms per hop. For each size it measures:
 *   joinMs    a new agent starts → every other member sees it alive
 *   crashMs   its process crashes (sockets close: a hint) → every living member sees it dead
 *   silentMs  its host goes silent (no hint) → every living member sees it dead
 *   falseDeaths  living members marked dead by anyone, over the whole run
 *   bytesPerAgentPerSec  gossip bytes sent per agent per second in steady state (30 s window)
 * Prints nothing; the bench runner prints the rows.
 */
import { Sim, type SimNode } from '../support/gossip-sim.js';
import type { GossipConfig } from '../../agent/gossip/config.js';

export interface GossipBenchRow {
  agents: number;
  joinMs: number;
  crashMs: number;
  silentMs: number;
  falseDeaths: number;
  bytesPerAgentPerSec: number;
}

/** Give up on an event after this long (simulated): the row then shows the limit. */
const LIMIT_MS = 30_000;

export async function benchGossip(sizes: number[] = [10, 50, 100], opts: { seed?: number; config?: Partial<GossipConfig> } = {}): Promise<GossipBenchRow[]> {
  const rows: GossipBenchRow[] = [];
  for (const agents of sizes) {
    rows.push(runOne(agents, opts.seed ?? 42, opts.config));
    // Yield between sizes so a runner stays responsive.
    await new Promise((r) => setImmediate(r));
  }
  return rows;
}

function runOne(agents: number, seed: number, config: Partial<GossipConfig> | undefined): GossipBenchRow {
  const sim = new Sim({ seed, delayMs: 0.2, jitterMs: 0.8, ...(config ? { config } : {}) });
  let falseDeaths = 0;
  const watch = (n: SimNode) =>
    n.m.on('change', (m) => {
      if (m.status === 'dead' && n.up && sim.nodes.get(m.node)?.up) falseDeaths++;
    });

  // All but one start (10 ms apart, joining through the first), then settle.
  for (let i = 0; i < agents - 1; i++) {
    const n = sim.add();
    watch(n);
    sim.startLoads(n);
    sim.clock.advance(10);
  }
  sim.run(LIMIT_MS, { stepMs: 50, until: () => sim.converged() });
  sim.run(20_000, { stepMs: 100 });

  // Steady state bytes.
  sim.net.resetCounters();
  const windowMs = 30_000;
  sim.run(windowMs, { stepMs: 100 });
  let sent = 0;
  for (const n of sim.live()) sent += sim.net.countersOf(n.addr).sentBytes;
  const bytesPerAgentPerSec = Math.round(sent / sim.live().length / (windowMs / 1000));

  // Join: the last agent starts.
  const joiner = sim.add();
  watch(joiner);
  sim.startLoads(joiner);
  const joinMs = sim.run(LIMIT_MS, { stepMs: 10, until: () => sim.allSee(joiner.name, 'alive') });
  sim.run(5_000, { stepMs: 50 });

  // Crash of a process (not the seed): its sockets close.
  const live = sim.live();
  const crashed = live[1 + sim.random.int(live.length - 2)]!;
  sim.crash(crashed);
  const crashMs = sim.run(LIMIT_MS, { stepMs: 10, until: () => sim.allSee(crashed.name, 'dead') });
  sim.run(5_000, { stepMs: 50 });

  // A silent host.
  const live2 = sim.live();
  const silent = live2[1 + sim.random.int(live2.length - 2)]!;
  sim.silence(silent);
  const silentMs = sim.run(LIMIT_MS, { stepMs: 10, until: () => sim.allSee(silent.name, 'dead') });
  sim.run(5_000, { stepMs: 50 });

  for (const n of sim.nodes.values()) n.m.stop();
  return { agents, joinMs, crashMs, silentMs, falseDeaths, bytesPerAgentPerSec };
}
