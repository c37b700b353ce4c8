/**
 * The Node SDK's `ca` option (issue 15): a client trusts a private CA (here an agent's self-signed
 * --tls-cert) for wss:// agents and for wss:// game servers opened by cluster.websocket(), through
 * a real `peerlb agent` over TLS and a real wss game server on loopback. Without `ca` the same
 * client gets no view (the certificate is not trusted). Before the option, `ca` was an unknown
 * option (BadOptionError), so every case here failed.
 */
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../support/until.js';
import { join, BadOptionError } from '../../../sdk/index.js';
import { startCliAgent, stopCliAgents, type OpsAgent } from '../../support/ops.js';
import { startGameServer, stopGameServers, type GameServer } from '../../support/game-servers.js';
import { makeTestCert, type TestCert } from '../../support/tls.js';

const H = '127.0.0.1'; // the test certificates name 127.0.0.1
let cert: TestCert;
const agents: OpsAgent[] = [];
const games: GameServer[] = [];
let agent: OpsAgent;

beforeAll(async () => {
  cert = makeTestCert('peerlb-a');
  const g = await startGameServer(games, 'g1', H, cert);
  agent = await startCliAgent(agents, 'ca-a', H, {
    extra: ['--ws', String(g.port), '--ws-tls', '--health', 'ws', '--health-interval', '200', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile, '--tls-ca', cert.certFile],
  });
}, 60_000);

afterAll(async () => {
  await stopCliAgents(agents);
  await stopGameServers(games);
  cert?.remove();
}, 30_000);

describe('join({ ca }) in Node', () => {
  it('trusts the given CA for a wss:// agent and for cluster.websocket() to a wss:// server', async () => {
    expect(agent.url).toMatch(/^wss:\/\//);
    const c = await join({ service: 'game', discovery: { agents: [agent.url] }, ca: cert.cert.toString('utf8'), waitForServersMs: 10_000 });
    try {
      expect(c.servers().map((s) => [s.id, s.wsUrl])).toEqual([['ca-a', `wss://${H}:${games[0]!.port}/`]]);
      const ws = await c.websocket({ timeoutMs: 5000 });
      const first = await new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
      expect(first).toBe('server g1');
      ws.close();
    } finally {
      await c.close();
    }
  }, 30_000);

  it('a Buffer or an array works too; without ca there is no view (the certificate is not trusted)', async () => {
    const c = await join({ service: 'game', discovery: { agents: [agent.url] }, ca: [cert.cert], waitForServersMs: 10_000 });
    expect(c.servers().map((s) => s.id)).toEqual(['ca-a']);
    await c.close();

    const plain = await join({ service: 'game', discovery: { agents: [agent.url] }, waitForServersMs: 1500 });
    expect(plain.servers()).toEqual([]);
    await plain.close();
  }, 30_000);

  it('an agent over TLS found by mDNS is subscribed to at wss:// (TXT tls=1): the exact load of its /v1/watch reaches the client', async () => {
    // Before TXT tls=1 the client dialed ws:// at the TLS port (refused with 400), keeping only what mDNS alone says (no sessions).
    const mdnsPort = 20_000 + (process.pid % 20_000);
    const m = await startCliAgent(agents, 'm1', H, {
      extra: ['--service', 'tlsmdns', '--mdns-interface', H, '--mdns-port', String(mdnsPort), '--tls-cert', cert.certFile, '--tls-key', cert.keyFile, '--tls-ca', cert.certFile],
    });
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(`https://${H}:${m.port}/v1/load`, { method: 'PUT', ca: cert.cert, headers: { 'content-type': 'application/json' }, timeout: 5000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ utilization: 0.25, sessions: 9 }));
    });
    expect(status).toBe(204);
    const c = await join({ service: 'tlsmdns', discovery: { mdns: { interface: H, port: mdnsPort } }, ca: cert.cert, waitForServersMs: 10_000 });
    try {
      await until(() => c.servers().some((s) => s.id === 'm1' && s.load?.sessions === 9), 20_000, 'm1 with its exact load, from its /v1/watch over wss');
      expect(c.servers().find((s) => s.id === 'm1')!.agent).toBe(m.url);
    } finally {
      await c.close();
    }
  }, 60_000);

  it('a ca that is not a certificate is a BadOptionError naming it', async () => {
    for (const ca of ['', 42, [], [Buffer.alloc(0)]]) {
      const err = await join({ service: 'game', discovery: { agents: [agent.url] }, ca: ca as never }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadOptionError);
      expect((err as BadOptionError).option).toBe('ca');
    }
  });
});
