/**
 * Every agent says what another agent's load figure is. Agent B's server reports nothing and has
 * no capacity, so B's figure is B's host CPU: A (over real gossip sockets) says so in /v1/members
 * and `peerlb members --agent <A>` labels B's row as host CPU, never as the server's utilization.
 * Once B's server reports, A says `reported`. Also what a /v1/watch client of A gets for B.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startAgent, type Agent, type MemberInfo } from '../../../agent/index.js';
import { PROTOCOL_VERSION, type ServerRecord } from '../../../sdk/core/protocol.js';
import { decodeWatchServerFrame, encodeWatchFrame } from '../../../sdk/core/msgpack.js';
import { WebSocket } from 'ws';
import { getJson, runCli, until } from '../../support/ops.js';

const agents: Agent[] = [];
let reporting: NodeJS.Timeout | undefined;
afterAll(async () => {
  clearInterval(reporting);
  for (const a of agents.reverse()) await a.stop().catch(() => {});
}, 30_000);

async function agent(node: string, hostCpu: number, join: string[] = []): Promise<Agent> {
  const a = await startAgent(
    { service: 'src', node, host: '127.0.0.1', port: 0, udpPort: 40_000 + agents.length, gossipProfile: 'local', loadIntervalMs: 100, join },
    { log: false, hostCpu: () => hostCpu },
  );
  agents.push(a);
  return a;
}

const httpOf = (a: Agent) => a.url.replace(/^ws:/, 'http:');
const memberOf = async (a: Agent, node: string) => (await getJson<MemberInfo[]>(`${httpOf(a)}/v1/members`)).find((m) => m.node === node);

describe('load source over gossip', () => {
  it("A labels B's host-CPU figure as host CPU (/v1/members, peerlb members), then as reported once B's server reports", async () => {
    const a = await agent('src-a', 0.1);
    const b = await agent('src-b', 0.9, [a.url]);
    await until(async () => (await memberOf(a, 'src-b'))?.load?.utilization === 0.9, 15_000, "A to have B's load (B's host CPU, 0.90)");

    const mb = (await memberOf(a, 'src-b'))!;
    expect(mb.loadSource).toBe('cpu');
    expect(mb.load?.source).toBe('cpu');
    // A's own server: the same, from its own tracker.
    expect((await memberOf(a, 'src-a'))?.loadSource).toBe('cpu');

    const r = await runCli(['members', '--agent', a.url]);
    expect(r.code, r.stderr).toBe(0);
    const rowB = r.stdout.split('\n').find((l) => l.startsWith('src-b'));
    expect(rowB, r.stdout).toBeDefined();
    expect(rowB).toContain("cpu=0.90(host CPU, not the server's)");
    expect(rowB).not.toMatch(/util\?=|util=0\.90/);

    // B's server reports, as a server does, every 50 ms (a report counts for 3 load intervals,
    // 300 ms here): A's figure for B is the report, and says so.
    b.report({ utilization: 0.3 });
    reporting = setInterval(() => b.report({ utilization: 0.3 }), 50);
    await until(async () => (await memberOf(a, 'src-b'))?.loadSource === 'reported', 15_000, "A to say B's figure is reported");
    expect((await memberOf(a, 'src-b'))?.load?.utilization).toBe(0.3);
    const r2 = await runCli(['members', '--agent', a.url]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout.split('\n').find((l) => l.startsWith('src-b'))).toContain('util=0.30(reported)');
  }, 60_000);

  it("a /v1/watch client of A gets B's load with its source", async () => {
    const [a] = agents as [Agent, Agent];
    const ws = new WebSocket(`${a.url}/v1/watch`);
    try {
      // Through the SDK's decoder: what a client keeps of each record.
      const records = new Map<string, ServerRecord>();
      ws.on('message', (d: Buffer) => {
        const f = decodeWatchServerFrame(d);
        if (f.t === 'snapshot') for (const s of f.servers) records.set(s.id, s);
        if (f.t === 'upsert') records.set(f.server.id, f.server);
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.send(encodeWatchFrame({ t: 'hello', v: PROTOCOL_VERSION, service: 'src' }));
      await until(() => records.get('src-b')?.load?.source === 'reported', 10_000, "B's record with source reported on A's watch");
      expect(records.get('src-b')?.load?.utilization).toBe(0.3);
      expect(records.get('src-a')?.load?.source).toBe('cpu');
    } finally {
      ws.terminate();
    }
  }, 30_000);
});
