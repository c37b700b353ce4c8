/**
 * Floods of every socket an outsider can open on an agent's port, through real sockets (and real
 * agent processes where the defect is about them), each checking that a genuine client still gets
 * in: hello-less /v1/watch sockets, idle /v1/events sockets, idle /v1/gossip sockets in an open
 * cluster, idle HTTP sockets (and past the open-file limit), a keyless neighbour of a genuine agent
 * in a sealed cluster, bursts of hellos, and /v1/members at size.
 */
import { AGENTS_COALESCE_MS } from '../../../agent/subscriptions.js';
import net from 'node:net';
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { Agent } from '../../../agent/index.js';
import { EventFeed } from '../../../agent/endpoints/events.js';
import { PROTOCOL_VERSION, type WatchServerFrame } from '../../../sdk/core/protocol.js';
import { decodeWatchServerFrame, encodeWatchFrame } from '../../../sdk/core/msgpack.js';
import type { Cluster } from '../../../sdk/index.js';
import { spawnAgent, stopAll, membersOf, CLI, type AgentProc } from '../../support/agents.js';
import { agent, alive, until, sleep, rawGossip, newKey, frame, meta, openEndpoint, genuineIntact, type EndpointClient } from '../../support/security.js';
import { flood, rawUpgrade, type Flood } from '../../support/raw-sockets.js';

const running: Agent[] = [];
const procs: AgentProc[] = [];
const floods: Flood[] = [];
const sockets: WebSocket[] = [];
const clusters: Cluster[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(floods.splice(0).map((f) => f.stop()));
  sockets.splice(0).forEach((w) => w.terminate());
  await Promise.all(clusters.splice(0).map((c) => c.close().catch(() => {})));
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
  await stopAll(procs.splice(0));
});
async function start(node: string, opts: Parameters<typeof agent>[1] = {}): Promise<Agent> {
  const a = await agent(node, opts);
  running.push(a);
  return a;
}
const aliveOf = async (url: string) => (await membersOf(url)).filter((m) => m.status === 'alive').length;
const hello = () => encodeWatchFrame({ t: 'hello', v: PROTOCOL_VERSION, service: 'game' } as never);

/** `n` made-up members, told to an open agent over raw gossip (they fail their probes later). */
async function fakeMembers(url: string, n: number, prefix = 'fake'): Promise<void> {
  for (let off = 0; off < n; off += 100) {
    const c = await rawGossip(url, { localAddress: '127.0.0.9' });
    const updates = Array.from({ length: Math.min(100, n - off) }, (_, k) => {
      const i = off + k;
      return { kind: 'alive' as const, node: `${prefix}-${i}`, incarnation: 1, addr: `ws://127.0.0.9:${10_000 + i}`, meta: meta(`${prefix}-${i}`) };
    });
    c.send(frame({ type: 'gossip', from: { node: `${prefix}-src`, addr: 'ws://127.0.0.9:9999' }, piggyback: { updates, loads: [] } }));
    await sleep(50);
    c.ws.terminate();
  }
}

describe('hostile sockets', () => {
  it('/v1/watch: 1,100 sockets from 40 addresses that never say hello, each reopened on close, leave a new SDK client its full view within 2 s; refusals are HTTP statuses with the reason', async () => {
    const a = await spawnAgent('wf1');
    procs.push(a);
    const b = await spawnAgent('wf2', { join: [a.url] });
    procs.push(b);
    await until(async () => (await aliveOf(a.url)) === 2 && (await aliveOf(b.url)) === 2, 20_000, 'wf1 and wf2');
    const f = flood(a.port, { path: '/v1/watch', sockets: 1100, addresses: 40, first: 20, reopenMs: 200, maxAttempts: 20_000 });
    floods.push(f);
    const answered = () => [...f.statuses.values()].reduce((n, k) => n + k, 0);
    await until(() => answered() >= 1100, 60_000, 'an answer to each of the 1,100 sockets');
    await sleep(500);
    console.log(`watch flood: ${f.held} held, ${f.attempts} attempts, statuses ${JSON.stringify([...f.statuses])}`);
    // Under the flood: wf1 and wf2 alive in both views, and a new SDK client has both within 2 s.
    const viewMs = await genuineIntact([a, b]);
    console.log(`watch flood: a new SDK client had the full view in ${viewMs} ms; flood now ${f.attempts} attempts, statuses ${JSON.stringify([...f.statuses])}`);
    // The flood was told why: its address's share (429) or a full agent (503), with the reason.
    const refused = [...f.statuses].filter(([s]) => s !== 101).reduce((n, [, k]) => n + k, 0);
    expect(refused).toBeGreaterThan(0);
    for (const [status, body] of f.bodies) {
      expect([429, 503]).toContain(status);
      expect(body).toMatch(/too many/);
    }
    // Slots are counted after the hello: the flood holds none of maxSubscribers (the SDK client has closed its own).
    const subscribers = async () => Number(/^peerlb_watch_subscribers\{[^}]*\} (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text())?.[1]);
    await until(async () => (await subscribers()) === 0, 5000, 'no subscriber').catch(() => {});
    expect(await subscribers()).toBe(0);
  }, 90_000);

  it('/v1/watch subscribers: capped per address (429 with the reason); at the total, the oldest of the address holding the most makes room (PEERLB_ERR_LIMIT) for an address holding fewer', async () => {
    const a = await start('sp1', { limits: { maxSubscribers: 4, maxSubscribersPerAddress: 3 } });
    const sub = async (ip: string) => {
      const w = await openEndpoint(`ws://127.0.0.1:${a.port}/v1/watch`, (d) => decodeWatchServerFrame(d), sockets, { localAddress: ip });
      if (!('ws' in w)) return w;
      w.ws.send(hello());
      await until(() => w.got.length > 0, 3000, `a first frame for ${ip}`);
      return w;
    };
    const heavy = [];
    for (let i = 0; i < 3; i++) heavy.push(await sub('127.0.0.2'));
    expect(heavy.every((w) => 'ws' in w && w.got[0]!.t === 'snapshot')).toBe(true);
    const fourth = await sub('127.0.0.2');
    expect(fourth).toMatchObject({ status: 429, body: expect.stringMatching(/too many subscribers from 127\.0\.0\.2: at most 3/) });
    const light = await sub('127.0.0.3');
    expect('ws' in light && light.got[0]!.t).toBe('snapshot'); // 4 of 4
    const newcomer = await sub('127.0.0.4');
    expect('ws' in newcomer && newcomer.got[0]!.t).toBe('snapshot');
    const oldest = heavy[0] as EndpointClient<WatchServerFrame>;
    expect((await oldest.closed).code).toBe(1008);
    expect(oldest.got.at(-1)).toMatchObject({ t: 'error', code: 'PEERLB_ERR_LIMIT' });
    // 127.0.0.2 still holds 2 (≥ 0 + 2): it gives one more; then every address holds one, and the next newcomer is refused (503, the agent is full).
    expect('ws' in (await sub('127.0.0.5'))).toBe(true);
    expect(await sub('127.0.0.6')).toMatchObject({ status: 503, body: expect.stringMatching(/try another agent/) });
  });

  it('/v1/events: 70 idle sockets from one address get 8 (429 for the rest), and sockets from many addresses filling the total still leave the dashboard its feed', async () => {
    const a = await start('ef1');
    const results = await Promise.all(Array.from({ length: 70 }, () => rawUpgrade(a.port, '/v1/events', '127.0.0.2')));
    closers.push(async () => results.forEach((r) => r.sock.destroy()));
    const upgraded = results.filter((r) => r.status === 101).length;
    expect(upgraded).toBe(8);
    const refusals = results.filter((r) => r.status === 429);
    expect(refusals.length).toBe(62);
    expect(refusals[0]!.body).toMatch(/too many event clients from 127\.0\.0\.2: at most 8 per address/);
    // 56 more from seven other addresses: the total (64) is full.
    const more = await Promise.all(Array.from({ length: 56 }, (_, i) => rawUpgrade(a.port, '/v1/events', `127.0.0.${3 + (i % 7)}`)));
    closers.push(async () => more.forEach((r) => r.sock.destroy()));
    expect(more.filter((r) => r.status === 101).length).toBe(56);
    // The dashboard (another address) still gets its feed: the oldest socket of a heavy address makes room.
    const dash = await openEndpoint(`ws://127.0.0.1:${a.port}/v1/events`, (d) => JSON.parse(d.toString()) as { type: string }, sockets);
    if (!('ws' in dash)) throw new Error(`dashboard refused: ${dash.status} ${dash.body}`);
    await until(() => dash.got.some((m) => m.type === 'members'), 3000, 'the members message');
  });

  it('/v1/events: a client that does not answer pings is closed (idle timeout)', async () => {
    const feed = new EventFeed(() => [], { pingMs: 200 });
    const server = createServer();
    server.on('upgrade', (req, socket, head) => feed.handleUpgrade(req, socket, head));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    closers.push(async () => {
      feed.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const port = (server.address() as net.AddressInfo).port;
    const idle = await rawUpgrade(port, '/v1/events', '127.0.0.1');
    expect(idle.status).toBe(101);
    idle.sock.resume(); // reads, but never answers a ping
    await until(() => feed.size === 0, 5000, 'the silent client to be closed');
    expect(feed.counters.pingTimeouts).toBe(1);
  });

  it('/v1/gossip (open cluster): idle sockets are capped per address (429) and closed when they send no frame; floods from many addresses still let a new agent join through that seed', async () => {
    const a = await start('gf1');
    const one = await Promise.all(Array.from({ length: 40 }, () => rawUpgrade(a.port, '/v1/gossip', '127.0.0.2')));
    closers.push(async () => one.forEach((r) => r.sock.destroy()));
    expect(one.filter((r) => r.status === 101).length).toBe(32);
    const r429 = one.filter((r) => r.status === 429);
    expect(r429.length).toBe(8);
    expect(r429[0]!.body).toMatch(/too many gossip connections from 127\.0\.0\.2/);
    // 300 more from ten other addresses (the waiting total is 256), reopened as they close.
    const f = flood(a.port, { path: '/v1/gossip', sockets: 300, addresses: 10, first: 30, reopenMs: 50, maxAttempts: 5000 });
    floods.push(f);
    await until(() => f.attempts >= 300, 20_000, 'the flood');
    const b = await start('gf2', { join: [a.url] });
    await until(() => alive(a).includes('gf2') && alive(b).includes('gf1'), 15_000, 'gf2 to join through gf1');
    await f.stop();
    // Sockets that never send a frame give their slot back (first-frame timeout, 10 s).
    await until(() => one.every((r) => r.sock.destroyed || r.sock.readableEnded), 15_000, 'the idle sockets to be closed');
    const t = a.gossipStats().transport;
    expect(t.firstFrameTimeouts).toBeGreaterThan(0);
    expect(t.firstFrameTimeouts + t.inboundEvicted).toBeGreaterThanOrEqual(32);
  }, 60_000);

  it('HTTP: a socket that sends no request is closed within the header timeout (5 s), not ~28 s', async () => {
    const a = await start('hi1');
    const s = net.connect({ host: '127.0.0.1', port: a.port });
    s.on('error', () => {});
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await new Promise<void>((r) => s.once('connect', () => r()));
    const t0 = Date.now();
    await Promise.race([closed, sleep(15_000)]);
    const ms = Date.now() - t0;
    expect(s.destroyed || s.readableEnded).toBe(true);
    expect(ms).toBeLessThan(12_000);
  }, 30_000);

  it('HTTP: sockets are capped per address (429 with the reason)', async () => {
    const a = await start('hc1', { limits: { maxConnectionsPerAddress: 20 } });
    const held: net.Socket[] = [];
    closers.push(async () => held.forEach((s) => s.destroy()));
    const answers: string[] = [];
    for (let i = 0; i < 25; i++) {
      const s = net.connect({ host: '127.0.0.1', port: a.port, localAddress: '127.0.0.2' });
      held.push(s);
      s.on('error', () => {});
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.once('close', () => answers.push(text));
      await new Promise<void>((r) => s.once('connect', () => r()));
    }
    // The 20 admitted hold their sockets; the 5 past the share get 429 with the reason.
    await until(() => answers.length === 5, 5000, 'five refusals');
    for (const t of answers) expect(t).toMatch(/^HTTP\/1\.1 429 [^]*too many connections from 127\.0\.0\.2: at most 20/);
    expect((await fetch(`http://127.0.0.1:${a.port}/v1/health`)).status).toBe(200);
  });

  it('HTTP: a process agent flooded with more idle sockets than its open-file limit keeps its cap below the limit, stays healthy and answers', async () => {
    // A process agent with 256 file descriptors, 600 idle sockets held (and reopened) from 6 addresses.
    const p = await spawnLimited('hc2', 256);
    const f = flood(p.port, { sockets: 600, addresses: 6, first: 40, reopenMs: 20, maxAttempts: 20_000 });
    floods.push(f);
    await until(() => f.attempts >= 600, 20_000, 'the flood');
    // Several health checks (every 1 s, 3 failures make it unhealthy) under the flood.
    await sleep(6000);
    const health = (await (await fetch(`http://127.0.0.1:${p.port}/v1/health`, { signal: AbortSignal.timeout(5000) })).json()) as { health: string };
    console.log(`fd flood: ${f.held} held, ${f.attempts} attempts; health ${health.health}`);
    expect(health.health).toBe('healthy');
    expect(p.stderr.join('')).not.toMatch(/EMFILE/);
    const members = await membersOf(p.url);
    expect(members.find((m) => m.node === 'hc2')?.health).toBe('healthy');
  }, 60_000);

  it('sealed cluster: a keyless agent on the same IP as a genuine one is blocked alone (per claimed address), and the genuine one still joins', async () => {
    const key = newKey();
    const a = await start('an1', { keyring: [key], limits: { authFailures: 5, authFailureWindowMs: 10_000, authBlockMs: 30_000 } });
    const keyless = await start('an-x', { join: [a.url] });
    await until(() => a.gossipStats().transport.inboundRefused > 0, 15_000, 'the keyless agent to be blocked');
    void keyless;
    const g = await start('an2', { keyring: [key], join: [a.url] });
    await until(() => alive(a).includes('an2') && alive(g).includes('an1'), 15_000, 'the genuine neighbour to join');
    expect(alive(a)).not.toContain('an-x');
  }, 45_000);

  it('/v1/watch: the snapshot is built once per change and shared by every hello; hellos are rate limited per address (429, retry-after); the agent list is a bounded sample', async () => {
    const a = await start('sc1', { loadIntervalMs: 60_000 });
    await start('sc2', { join: [a.url], loadIntervalMs: 60_000 });
    await until(() => alive(a).length === 2, 10_000, 'sc1 and sc2');
    await sleep(300);
    const ws: EndpointClient<WatchServerFrame>[] = [];
    for (let i = 0; i < 30; i++) {
      const w = await openEndpoint(`ws://127.0.0.1:${a.port}/v1/watch`, (d) => decodeWatchServerFrame(d), sockets);
      if (!('ws' in w)) throw new Error(`refused: ${w.status}`);
      w.ws.send(hello());
      ws.push(w);
    }
    await until(() => ws.every((w) => w.got.some((f) => f.t === 'snapshot')), 5000, '30 snapshots');
    const st = a.watchStats().snapshot;
    expect(st.served).toBe(30);
    expect(st.assembled).toBe(1);
    const snap = ws[0]!.got.find((f) => f.t === 'snapshot') as Extract<WatchServerFrame, { t: 'snapshot' }>;
    expect(snap.servers.map((s) => s.id).sort()).toEqual(['sc1', 'sc2']);
    // A burst of new sockets from one address (here: 1/s, bursts of 10): 10 pass, the rest get 429 with retry-after.
    const r = await start('sc3', { limits: { helloRate: 1, helloBurst: 10 } });
    const burst = await Promise.all(Array.from({ length: 25 }, () => rawUpgrade(r.port, '/v1/watch', '127.0.0.3')));
    closers.push(async () => burst.forEach((u) => u.sock.destroy()));
    const limited = burst.filter((u) => u.status === 429);
    expect(burst.filter((u) => u.status === 101).length).toBeGreaterThanOrEqual(10);
    expect(limited.length).toBeGreaterThanOrEqual(13);
    expect(limited[0]!.body).toMatch(/too many new subscriptions from 127\.0\.0\.3/);
    expect(limited[0]!.headers).toMatch(/retry-after: \d+/i);
    // With 100 more members, a new snapshot lists at most 64 agents.
    await fakeMembers(a.url, 100);
    await until(() => a.members().length >= 102, 5000, 'the made-up members');
    // Changes of the agent list go out (and into the snapshot) coalesced over AGENTS_COALESCE_MS.
    await sleep(AGENTS_COALESCE_MS * 3);
    const w = await openEndpoint(`ws://127.0.0.1:${a.port}/v1/watch`, (d) => decodeWatchServerFrame(d), sockets);
    if (!('ws' in w)) throw new Error('refused');
    w.ws.send(hello());
    await until(() => w.got.some((f) => f.t === 'snapshot'), 5000, 'a snapshot');
    const big = w.got.find((f) => f.t === 'snapshot') as Extract<WatchServerFrame, { t: 'snapshot' }>;
    expect(big.servers.length).toBeGreaterThan(64);
    expect(big.agents.length).toBe(64);
  }, 45_000);

  it('/v1/members: built once for concurrent requests, filtered by ?service=, paged by ?limit=&after=; bad parameters are a 400', async () => {
    const a = await start('mb1', { loadIntervalMs: 60_000 });
    await start('mb2', { join: [a.url], loadIntervalMs: 60_000 });
    await until(() => alive(a).length === 2, 10_000, 'mb1 and mb2');
    const base = `http://127.0.0.1:${a.port}/v1/members`;
    // Nothing changes meanwhile: 20 concurrent requests share one answer (two if a second passes: the rows' ageMs).
    await sleep(300);
    const before = a.membersStats().builds;
    const same = await Promise.all(Array.from({ length: 20 }, () => fetch(base).then((r) => r.text())));
    expect(a.membersStats().builds - before).toBeLessThanOrEqual(2);
    expect(JSON.parse(same[0]!).length).toBe(2);
    await fakeMembers(a.url, 300);
    await until(() => a.members().length >= 302, 5000, 'the made-up members');
    await sleep(200);
    const all = [(await (await fetch(base)).json()) as Array<{ node: string }>];
    expect(all[0]!.length).toBeGreaterThanOrEqual(302);
    expect((await (await fetch(`${base}?service=other`)).json()) as unknown[]).toEqual([]);
    const pages: string[] = [];
    let after: string | null = '';
    for (let i = 0; i < 20 && after !== null; i++) {
      const r = await fetch(`${base}?limit=100${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      const rows = (await r.json()) as Array<{ node: string }>;
      expect(rows.length).toBeLessThanOrEqual(100);
      pages.push(...rows.map((m) => m.node));
      after = r.headers.get('x-peerlb-next');
    }
    expect(pages).toEqual([...new Set(all[0]!.map((m) => m.node))].sort());
    const bad = await fetch(`${base}?limit=0`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: 'limit' });
  }, 30_000);
});

/** `peerlb agent` under an open-file limit (prlimit), with a TCP server to check. */
async function spawnLimited(node: string, nofile: number): Promise<AgentProc & { port: number }> {
  const server = net.createServer((c) => c.on('error', () => {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const tcp = (server.address() as net.AddressInfo).port;
  const args = [`--nofile=${nofile}:${nofile}`, process.execPath, CLI, 'agent', '--service', 'game', '--node', node, '--host', '127.0.0.1', '--tcp', String(tcp), '--port', '0', '--gossip-profile', 'local', '--log-level', 'info'];
  const proc = spawn('prlimit', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`agent did not start: ${stderr.join('')}`)), 15_000);
    proc.stderr!.on('data', (d: Buffer) => {
      stderr.push(d.toString());
      const m = /"url":"(ws:\/\/[^"]+)"[^\n]*"msg":"agent started"|"msg":"agent started"[^\n]*"url":"(ws:\/\/[^"]+)"/.exec(stderr.join(''));
      if (m) {
        clearTimeout(t);
        resolve(m[1] ?? m[2]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`agent exited ${code}: ${stderr.join('')}`)));
  });
  const p: AgentProc = { node, url, port: Number(new URL(url).port), proc, server, tcpPort: tcp, stderr, args };
  procs.push(p);
  return p;
}
