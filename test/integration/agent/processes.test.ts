/**
 * Real processes on loopback: five `peerlb agent` processes started with the CLI; what each sees
 * is read through `peerlb members --json`, as an operator would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, membersOf, until, stopAll, exited, type AgentProc } from '../../support/agents.js';

const BOUND_MS = 5000; // generous on a loaded 2-core CI machine; the bench measures the real figure

describe('five agents as separate processes', () => {
  const agents: AgentProc[] = [];

  beforeAll(async () => {
    agents.push(await spawnAgent('a1'));
    const rest = await Promise.all(['a2', 'a3', 'a4', 'a5'].map((n) => spawnAgent(n, { join: [agents[0]!.url] })));
    agents.push(...rest);
  });
  afterAll(() => stopAll(agents));

  const alive = (a: AgentProc) => a.proc.exitCode === null && a.proc.signalCode === null;

  it('all join: every agent lists all five as alive', async () => {
    const ms = await until(
      async () => {
        for (const a of agents) {
          const m = await membersOf(a.url);
          if (m.filter((x) => x.status === 'alive').length !== 5) return false;
        }
        return true;
      },
      10_000,
      'all five alive everywhere',
    );
    const m = await membersOf(agents[1]!.url);
    for (const x of m) {
      expect(x).toMatchObject({ host: '127.0.0.1', status: 'alive', health: 'healthy' });
      expect(typeof x.incarnation).toBe('number');
      expect(typeof x.ageMs).toBe('number');
      expect(x).toHaveProperty('load');
    }
    console.log(`join converged in ${ms} ms (polling)`);
  });

  it('kill -9 of one agent: every other marks it dead within the bound', async () => {
    const victim = agents[4]!;
    victim.proc.kill('SIGKILL');
    await exited(victim.proc);
    const ms = await until(
      async () => {
        for (const a of agents.filter(alive)) {
          const m = await membersOf(a.url);
          if (m.find((x) => x.node === victim.node)?.status !== 'dead') return false;
        }
        return true;
      },
      BOUND_MS,
      `${victim.node} dead everywhere`,
    );
    // No living member was ever marked anything but alive.
    for (const a of agents.filter(alive)) {
      const m = await membersOf(a.url);
      for (const x of m) if (x.node !== victim.node) expect(x.status, `${a.node} sees ${x.node}`).toBe('alive');
    }
    console.log(`kill -9 seen as dead by all in ${ms} ms`);
  });

  it('a restarted node rejoins with a higher incarnation', async () => {
    const old = agents[4]!;
    const before = (await membersOf(agents[0]!.url)).find((x) => x.node === old.node)!;
    const again = await spawnAgent(old.node, { join: [agents[0]!.url] });
    agents.push(again);
    await until(
      async () => {
        for (const a of agents.filter(alive)) {
          const m = (await membersOf(a.url)).find((x) => x.node === old.node);
          if (m?.status !== 'alive' || m.incarnation <= before.incarnation) return false;
        }
        return true;
      },
      BOUND_MS,
      'restarted node alive everywhere with a higher incarnation',
    );
  });

  it('SIGTERM: others see it draining, then left; the process exits 0', async () => {
    const victim = agents[3]!;
    const watcher = agents[0]!;
    // Hold a connection to the victim's server so the drain has something to wait for.
    const net = await import('node:net');
    const conn = net.connect(victim.tcpPort, '127.0.0.1');
    await new Promise((r) => conn.once('connect', r));
    victim.proc.kill('SIGTERM');
    await until(async () => (await membersOf(watcher.url)).find((x) => x.node === victim.node)?.health === 'draining', BOUND_MS, 'draining');
    const stillAlive = (await membersOf(watcher.url)).find((x) => x.node === victim.node)!;
    expect(stillAlive.status).toBe('alive');
    conn.destroy();
    await until(async () => (await membersOf(watcher.url)).find((x) => x.node === victim.node)?.status === 'left', 10_000, 'left');
    expect(await exited(victim.proc)).toBe(0);
  });
});
