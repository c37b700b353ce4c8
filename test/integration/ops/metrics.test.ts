/**
 * `/metrics` of a live 3-agent cluster on this file's own loopback address: one agent in this
 * process (so `agent.report()` can be used), two `peerlb agent` processes. The exposition is parsed
 * strictly (test/support/prom.ts) and the values are checked against what the cluster did.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAgent, type Agent } from '../../../agent/index.js';
import { join, type Cluster } from '../../../sdk/index.js';
import { ownLoopback } from '../../support/net.js';
import { parseProm, sample, type PromFamily } from '../../support/prom.js';
import { getText, startCliAgent, stopCliAgents, tcpServerOn, until, type OpsAgent } from '../../support/ops.js';

const H = await ownLoopback('127.0.0.21');

const procs: OpsAgent[] = [];
let a: Agent;
let aServer: net.Server;
let aHttp: string;
const clusters: Cluster[] = [];

async function scrape(base: string): Promise<Map<string, PromFamily>> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseProm(await res.text());
}

const m = (f: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}) => sample(f, name, labels);

beforeAll(async () => {
  aServer = await tcpServerOn(H);
  a = await startAgent(
    {
      service: 'game',
      node: 'met-a',
      host: H,
      port: 0,
      tcpPort: (aServer.address() as net.AddressInfo).port,
      gossipProfile: 'local',
      loadIntervalMs: 200,
      health: { type: 'tcp', intervalMs: 100, timeoutMs: 200, rise: 1, fall: 1 },
    },
    { log: false },
  );
  aHttp = `http://${H}:${a.port}`;
  await startCliAgent(procs, 'met-b', H, { join: [a.url], extra: ['--health-interval', '100', '--load-interval', '200'] });
  await startCliAgent(procs, 'met-c', H, { join: [a.url], extra: ['--health-interval', '100'] });
  await until(async () => m(await scrape(aHttp), 'peerlb_members', { status: 'alive' }) === 3, 10_000, 'three alive members in met-a /metrics');
}, 40_000);

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.close()));
  await stopCliAgents(procs);
  await a?.stop();
  await new Promise<void>((r) => (aServer ? aServer.close(() => r()) : r()));
}, 20_000);

describe('/metrics on a live 3-agent cluster', () => {
  it('is valid Prometheus text with the expected families, types and labels', async () => {
    const text = await getText(`${aHttp}/metrics`);
    const f = parseProm(text);
    const want: Record<string, string> = {
      peerlb_members: 'gauge',
      peerlb_members_health: 'gauge',
      peerlb_gossip_frames_received_total: 'counter',
      peerlb_gossip_frames_sent_total: 'counter',
      peerlb_gossip_bytes_received_total: 'counter',
      peerlb_gossip_bytes_sent_total: 'counter',
      peerlb_gossip_frames_dropped_total: 'counter',
      peerlb_watch_subscribers: 'gauge',
      peerlb_server_load: 'gauge',
      peerlb_server_health: 'gauge',
      peerlb_probe_rtt_seconds: 'histogram',
      peerlb_health_checks_total: 'counter',
      peerlb_probe_timeout_seconds: 'gauge',
      peerlb_local_health_score: 'gauge',
    };
    for (const [name, type] of Object.entries(want)) {
      expect(f.get(name), name).toBeDefined();
      expect(f.get(name)!.type, name).toBe(type);
      expect(f.get(name)!.help, name).toMatch(/\w/);
    }
    // Every sample of ours carries the agent's node and service.
    for (const fam of f.values()) for (const s of fam.samples) expect(s.labels).toMatchObject({ node: 'met-a', service: 'game' });
    expect(m(f, 'peerlb_members', { status: 'alive' })).toBe(3);
    for (const status of ['suspect', 'dead', 'left']) expect(m(f, 'peerlb_members', { status })).toBe(0);
    expect(m(f, 'peerlb_members_health', { health: 'healthy' })).toBe(3);
    // The same from a process agent.
    const b = await scrape(procs[0]!.http);
    expect(m(b, 'peerlb_members', { status: 'alive', node: 'met-b' })).toBe(3);
  });

  it('counts gossip frames and bytes both ways, and they grow', async () => {
    const first = await scrape(aHttp);
    const names = ['peerlb_gossip_frames_received_total', 'peerlb_gossip_frames_sent_total', 'peerlb_gossip_bytes_received_total', 'peerlb_gossip_bytes_sent_total'];
    for (const n of names) expect(m(first, n), n).toBeGreaterThan(0);
    // Bytes per frame are plausible (a frame is tens to hundreds of bytes).
    const perFrame = m(first, 'peerlb_gossip_bytes_sent_total') / m(first, 'peerlb_gossip_frames_sent_total');
    expect(perFrame).toBeGreaterThan(10);
    expect(perFrame).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 1000));
    const second = await scrape(aHttp);
    for (const n of names) expect(m(second, n), n).toBeGreaterThan(m(first, n));
  });

  it('counts dropped frames by reason: garbage and text frames on /v1/gossip', async () => {
    const before = await scrape(aHttp);
    const reasons = before.get('peerlb_gossip_frames_dropped_total')!.samples.map((s) => s.labels.reason).sort();
    expect(reasons).toEqual(expect.arrayContaining(['auth', 'bad_address', 'closed', 'decode', 'not_binary', 'slow_peer', 'too_large']));
    const ws = new WebSocket(`ws://${H}:${a.port}/v1/gossip`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(Buffer.from([0xc1, 0xc1, 0xc1, 0x00, 0x01])); // 0xc1 is never valid msgpack
    ws.send(Buffer.from([0xc1, 0x02]));
    ws.send('not binary');
    await until(
      async () => {
        const after = await scrape(aHttp);
        return (
          m(after, 'peerlb_gossip_frames_dropped_total', { reason: 'decode' }) >= m(before, 'peerlb_gossip_frames_dropped_total', { reason: 'decode' }) + 2 &&
          m(after, 'peerlb_gossip_frames_dropped_total', { reason: 'not_binary' }) >= m(before, 'peerlb_gossip_frames_dropped_total', { reason: 'not_binary' }) + 1
        );
      },
      5000,
      'decode and not_binary drops counted',
    );
    ws.terminate();
  });

  it('counts /v1/watch subscribers: an SDK subscribing and leaving', async () => {
    const subs = async () => m(await scrape(aHttp), 'peerlb_watch_subscribers');
    expect(await subs()).toBe(0);
    const cluster = await join({ service: 'game', discovery: { agents: [a.url] }, waitForServersMs: 5000 });
    clusters.push(cluster);
    expect(cluster.servers().map((s) => s.id).sort()).toEqual(['met-a', 'met-b', 'met-c']);
    await until(async () => (await subs()) === 1, 5000, 'one subscriber');
    await cluster.close();
    await until(async () => (await subs()) === 0, 5000, 'no subscriber after close');
  });

  it("reports the server's load as agent.report() and PUT /v1/load sent it", async () => {
    a.report({ sessions: 17, connections: 5, utilization: 0.42 });
    await until(
      async () => {
        const f = await scrape(aHttp);
        return m(f, 'peerlb_server_load', { kind: 'sessions' }) === 17 && m(f, 'peerlb_server_load', { kind: 'connections' }) === 5 && m(f, 'peerlb_server_load', { kind: 'utilization' }) === 0.42;
      },
      5000,
      'met-a load 17/5/0.42',
    );
    const b = procs[0]!;
    const res = await fetch(`${b.http}/v1/load`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessions: 9, connections: 2, utilization: 0.25 }),
      signal: AbortSignal.timeout(5000),
    });
    expect(res.status).toBe(204);
    await until(
      async () => {
        const f = await scrape(b.http);
        return m(f, 'peerlb_server_load', { kind: 'sessions' }) === 9 && m(f, 'peerlb_server_load', { kind: 'connections' }) === 2 && m(f, 'peerlb_server_load', { kind: 'utilization' }) === 0.25;
      },
      5000,
      'met-b load 9/2/0.25',
    );
  });

  it('observes gossip probe round trips and health-check round trips', async () => {
    await until(async () => m(await scrape(aHttp), 'peerlb_probe_rtt_seconds_count', { kind: 'gossip' }) >= 5, 10_000, 'five gossip probe RTTs');
    const f = await scrape(aHttp);
    const count = m(f, 'peerlb_probe_rtt_seconds_count', { kind: 'gossip' });
    const sum = m(f, 'peerlb_probe_rtt_seconds_sum', { kind: 'gossip' });
    expect(sum).toBeGreaterThan(0);
    // Loopback: the mean round trip is well under the probe timeout.
    expect(sum / count).toBeLessThan(0.5);
    expect(m(f, 'peerlb_probe_rtt_seconds_count', { kind: 'health' })).toBeGreaterThan(0);
    expect(m(f, 'peerlb_probe_rtt_seconds_bucket', { kind: 'gossip', le: '+Inf' })).toBe(count);
    // Loopback is as fast as planned: the detector waits the configured timeout (rtt.ts), at most
    // a little more when this shared machine stalls an event loop; the local health score is in range.
    const timeout = m(f, 'peerlb_probe_timeout_seconds');
    expect(timeout).toBeGreaterThanOrEqual(0.15); // the local profile's
    expect(timeout).toBeLessThan(1.6);
    const score = m(f, 'peerlb_local_health_score');
    expect(score).toBeGreaterThanOrEqual(0);
    expect(score).toBeLessThan(8);
  });

  it('counts health-check results, and a failing server shows as unhealthy here and on the others', async () => {
    const before = await scrape(aHttp);
    expect(m(before, 'peerlb_health_checks_total', { result: 'ok' })).toBeGreaterThan(0);
    expect(m(before, 'peerlb_health_checks_total', { result: 'fail' })).toBe(0);
    expect(m(before, 'peerlb_server_health', { health: 'healthy' })).toBe(1);
    await new Promise<void>((r) => aServer.close(() => r()));
    await until(
      async () => {
        const f = await scrape(aHttp);
        return m(f, 'peerlb_health_checks_total', { result: 'fail' }) >= 1 && m(f, 'peerlb_server_health', { health: 'unhealthy' }) === 1 && m(f, 'peerlb_server_health', { health: 'healthy' }) === 0;
      },
      5000,
      'met-a unhealthy in its own metrics',
    );
    await until(async () => m(await scrape(procs[1]!.http), 'peerlb_members_health', { health: 'unhealthy' }) === 1, 5000, 'met-c sees one unhealthy member');
  });

  it('members by status: a killed agent turns dead', async () => {
    const c = procs[1]!;
    c.proc.kill('SIGKILL');
    await until(
      async () => {
        const f = await scrape(aHttp);
        return m(f, 'peerlb_members', { status: 'dead' }) === 1 && m(f, 'peerlb_members', { status: 'alive' }) === 2;
      },
      15_000,
      'met-c dead in met-a /metrics',
    );
    const b = await scrape(procs[0]!.http);
    await until(async () => m(await scrape(procs[0]!.http), 'peerlb_members', { status: 'dead' }) === 1, 15_000, 'met-c dead in met-b /metrics');
    expect(m(b, 'peerlb_members', { status: 'left' })).toBe(0);
  }, 40_000);
});
