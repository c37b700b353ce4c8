/**
 * The whole path, with agents as separate processes on loopback: an SDK given only
 * `{ mdns: { interface: '127.0.0.1' } }` finds them, balances TCP and UDP over their servers,
 * follows live load, survives kill -9 of the agent it subscribes to, and honours goodbyes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, until, stopAll, exited, type AgentProc } from '../../support/agents.js';
import { namedServer, type NamedServer } from '../../support/named-servers.js';
import { join, type Cluster } from '../../../sdk/index.js';

const MDNS = { interface: '127.0.0.1' };

async function metric(agent: AgentProc, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${agent.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));
  return line ? Number(line.split(' ').at(-1)) : NaN;
}

async function putLoad(agent: AgentProc, body: object): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${agent.port}/v1/load`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return res.status;
}

describe('discovery over mDNS with agents as processes', () => {
  const agents: AgentProc[] = [];
  const servers: NamedServer[] = [];
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    for (const name of ['s1', 's2', 's3']) servers.push(await namedServer(name));
    // Each agent announces one server; the agent's own TCP test server is not used here.
    agents.push(await spawnAgent('s1', { extra: ['--mdns-interface', '127.0.0.1', '--udp', String(servers[0]!.udpPort)], tcpPort: undefined }));
    for (const i of [1, 2])
      agents.push(await spawnAgent(`s${i + 1}`, { join: [agents[0]!.url], extra: ['--mdns-interface', '127.0.0.1', '--udp', String(servers[i]!.udpPort)] }));
  });
  afterAll(async () => {
    await cluster?.close();
    await stopAll(agents);
    await Promise.all(servers.map((s) => s.close()));
  });

  it('finds three agents by mDNS alone and balances UDP across their servers', async () => {
    cluster = await join({ service: 'game', discovery: { mdns: MDNS }, strategy: 'round-robin', waitForServersMs: 5000 });
    await until(() => cluster!.servers().filter((s) => s.health === 'healthy').length === 3, 10_000, 'three healthy servers in the view');
    const udp = cluster.udp();
    const replies = new Map<string, number>();
    udp.on('message', (msg, server) => {
      expect(server).toBeDefined();
      // The reply names the server that sent it: it must be the one the SDK attributes it to.
      expect(msg.toString().split(' ')[0]).toBe(server!.id);
      replies.set(server!.id, (replies.get(server!.id) ?? 0) + 1);
    });
    // Paced: a burst of hundreds of datagrams overflows a default receive buffer (≈256 small ones).
    for (let i = 0; i < 300; i++) {
      udp.send(`ping ${i}`);
      if (i % 25 === 24) await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => [...replies.values()].reduce((a, b) => a + b, 0) >= 290, 20_000, 'UDP replies'); // by count; a busy machine may be slow
    expect(replies.size).toBe(3);
    for (const n of replies.values()) expect(n).toBeGreaterThan(60);
    await udp.close();
  });

  it('balances TCP connects across the servers the agents announce', async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const sock = await cluster!.connect({ timeoutMs: 2000 });
      // The agents announce the agent-side test servers as TCP endpoints.
      seen.set(`${sock.remotePort}`, (seen.get(`${sock.remotePort}`) ?? 0) + 1);
      sock.destroy();
    }
    expect(seen.size).toBe(3);
  });

  it("a server's load change reaches the SDK's view", async () => {
    expect(await putLoad(agents[1]!, { sessions: 42 })).toBe(204);
    await until(() => cluster!.servers().find((s) => s.id === 's2')?.load?.sessions === 42, 5000, 'sessions=42 in the view');
  });

  it('kill -9 of the subscribed agent: the SDK keeps a current view through another', async () => {
    let subscribed: AgentProc | undefined;
    await until(
      async () => {
        for (const a of agents) if ((await metric(a, 'peerlb_watch_subscribers')) === 1) subscribed = a;
        return subscribed !== undefined;
      },
      5000,
      'one agent with the subscription',
    );
    subscribed!.proc.kill('SIGKILL');
    await exited(subscribed!.proc);
    const other = agents.find((a) => a !== subscribed)!;
    const t0 = Date.now();
    // The view stays current: a new load figure at another agent still arrives.
    await until(async () => (await putLoad(other, { sessions: 77 })) === 204 && cluster!.servers().find((s) => s.id === other.node)?.load?.sessions === 77, 10_000, 'new load through another agent');
    // …and the subscription moved: one of the surviving agents now serves it.
    let moved = 0;
    for (const a of agents) if (a !== subscribed) moved += await metric(a, 'peerlb_watch_subscribers');
    expect(moved).toBe(1);
    console.log(`view current again ${Date.now() - t0} ms after kill -9 of the subscribed agent`);
  });
});

describe('mDNS-only view', () => {
  it("an agent's goodbye removes it from an mDNS-only view within a second of its SIGTERM", async () => {
    const s = await namedServer('g1');
    const agent = await spawnAgent('g1', { extra: ['--mdns-interface', '127.0.0.1', '--udp', String(s.udpPort), '--drain-timeout', '0'] });
    const cluster = await join({ service: 'game', discovery: { mdns: { interface: '127.0.0.1', subscribe: false } }, waitForServersMs: 5000 });
    try {
      await until(() => cluster.servers().some((x) => x.id === 'g1'), 10_000, 'g1 in the mDNS view');
      // Measured from the signal, so the agent's own shutdown (drain 0, goodbye, exit) counts too.
      let gone: number | undefined;
      cluster.on('change', (view) => {
        if (gone === undefined && !view.some((x) => x.id === 'g1')) gone = performance.now();
      });
      const t0 = performance.now();
      agent.proc.kill('SIGTERM');
      await until(() => gone !== undefined, 3000, 'g1 gone after its goodbye');
      const ms = gone! - t0;
      console.log(`removed from the mDNS-only view ${Math.round(ms)} ms after SIGTERM to the agent`);
      expect(ms).toBeLessThanOrEqual(1000);
      await exited(agent.proc);
    } finally {
      await cluster.close();
      await stopAll([agent]);
      await s.close();
    }
  });
});

