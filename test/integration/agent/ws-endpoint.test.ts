/**
 * Server WebSocket endpoints through real processes on loopback (issue 15): `peerlb agent --ws
 * --ws-path --ws-tls` beside a real `ws` WebSocket server, with no UDP or TCP port. The record
 * carries the endpoint over /v1/watch (from the agent itself and, through gossip, from another
 * one), over mDNS TXT, and in /v1/members; it is signed with it (a verifying SDK takes it);
 * `join()` shows `wsUrl`; `--health ws` goes unhealthy when the ws server is killed (by PID) and
 * healthy when it comes back on its port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, type Cluster } from '../../../sdk/index.js';
import type { ServerRecord } from '../../../sdk/core/protocol.js';
import { exited, getJson, startCliAgent, stopCliAgents, until, type OpsAgent } from '../../support/ops.js';
import { onLines } from '../../support/lines.js';

const H = '127.0.0.1';
const SVC = 'wsgame';
const WS_PATH = '/play/v1';
const SERVER_SCRIPT = fileURLToPath(new URL('../../support/ws-game-server.mjs', import.meta.url));
// A private mDNS port: these tests run in their own network namespace, and no other test uses it.
const MDNS_PORT = 20_000 + Math.floor(Math.random() * 20_000);

const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-ws-endpoint-'));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const keyFile = path.join(dir, 'sign.pem');
writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { mode: 0o600 });
const PUB = publicKey.export({ format: 'pem', type: 'spki' }).toString();
// The game server speaks wss with a committed test certificate (test/support/certs; the agent's ws check does not verify it).
const CERTS = fileURLToPath(new URL('../../support/certs/', import.meta.url));
const cert = path.join(dir, 'cert.pem');
const certKey = path.join(dir, 'key.pem');
copyFileSync(path.join(CERTS, 'localhost.cert.pem'), cert);
copyFileSync(path.join(CERTS, 'localhost.key.pem'), certKey);

/** Start the ws game server; resolves with the process and its port once it listens. */
function startWsServer(port = 0): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [SERVER_SCRIPT, String(port), WS_PATH, cert, certKey], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(proc);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ws game server did not start')), 10_000);
    onLines(proc.stdout!, (line) => {
      const m = /^listening (\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ws game server exited with ${code}`));
    });
  });
}

/** The first snapshot of a JSON /v1/watch subscription. */
function snapshot(url: string): Promise<ServerRecord[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/v1/watch?format=json`);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no snapshot'));
    }, 5000);
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1, service: SVC })));
    ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as { t: string; servers?: ServerRecord[] };
      if (f.t !== 'snapshot') return;
      clearTimeout(timer);
      ws.terminate();
      resolve(f.servers!);
    });
  });
}

const servers: ChildProcess[] = [];
const agents: OpsAgent[] = [];
const clusters: Cluster[] = [];
let game: { proc: ChildProcess; port: number };
let a: OpsAgent;
let b: OpsAgent;

beforeAll(async () => {
  game = await startWsServer();
  const common = ['--service', SVC, '--host', H, '--port', '0', '--gossip-profile', 'local', '--signing-key-file', keyFile];
  // Only a WebSocket port: no --udp, no --tcp.
  a = await startCliAgent(agents, 'ws-a', H, {
    noDefaults: true,
    extra: [
      ...common, '--node', 'ws-a', '--ws', String(game.port), '--ws-path', WS_PATH, '--ws-tls',
      '--health', 'ws', '--health-interval', '100', '--health-rise', '2', '--health-fall', '2',
      '--mdns-interface', H, '--mdns-port', String(MDNS_PORT),
    ],
  });
  // A second agent (its own TCP server) that learns ws-a's record through gossip.
  b = await startCliAgent(agents, 'ws-b', H, { extra: ['--service', SVC, '--signing-key-file', keyFile], join: [a.url] });
}, 40_000);

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.close()));
  for (const p of servers) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await exited(p);
    }
  }
  await stopCliAgents(agents);
  rmSync(dir, { recursive: true, force: true });
}, 20_000);


describe('a server with a WebSocket endpoint', () => {
  it('/v1/watch carries wsPort, wsPath, wsTls, signed, from its own agent and through gossip from another', async () => {
    const own = (await snapshot(a.url)).find((s) => s.id === 'ws-a');
    expect(own).toMatchObject({ host: H, wsPort: game.port, wsPath: WS_PATH, wsTls: true });
    expect(own!.udpPort).toBeUndefined();
    expect(own!.tcpPort).toBeUndefined();
    expect(typeof own!.sig).toBe('string');
    let relayed: ServerRecord | undefined;
    await until(async () => (relayed = (await snapshot(b.url)).find((s) => s.id === 'ws-a')) !== undefined, 10_000, 'ws-b relays ws-a');
    // Relayed unchanged: the same endpoint and the origin's signature.
    expect(relayed).toMatchObject({ wsPort: game.port, wsPath: WS_PATH, wsTls: true, sig: own!.sig, sigv: own!.sigv });
  });

  it('/v1/members rows carry the endpoint, on both agents', async () => {
    await until(async () => (await getJson<Record<string, unknown>[]>(`${b.http}/v1/members`)).some((m) => m.node === 'ws-a' && m.wsPort !== undefined), 10_000, 'ws-a row on ws-b');
    for (const ag of [a, b]) {
      const rows = await getJson<Record<string, unknown>[]>(`${ag.http}/v1/members`);
      expect(rows.find((m) => m.node === 'ws-a'), ag.node).toMatchObject({ wsPort: game.port, wsPath: WS_PATH, wsTls: true });
      expect(rows.find((m) => m.node === 'ws-b'), ag.node).not.toHaveProperty('wsPort');
    }
  });

  it('join() through an agent, verifying signatures, shows server.wsUrl; a pick has it too', async () => {
    const c = await join({ service: SVC, discovery: { agents: [b.url] }, verify: { publicKey: PUB }, waitForServersMs: 5000 });
    clusters.push(c);
    await until(() => c.servers().some((s) => s.id === 'ws-a'), 10_000, 'ws-a in the view');
    const s = c.servers().find((x) => x.id === 'ws-a')!;
    expect(s.wsUrl).toBe(`wss://${H}:${game.port}${WS_PATH}`);
    expect(c.servers().find((x) => x.id === 'ws-b')!.wsUrl).toBeUndefined();
    // The URL is a real endpoint: the game server answers a wss open on it (its certificate is the test's own).
    const open = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(s.wsUrl!, { rejectUnauthorized: false });
      ws.on('open', () => {
        ws.close();
        resolve(true);
      });
      ws.on('error', () => resolve(false));
    });
    expect(open).toBe(true);
  });

  it('mDNS TXT announces the endpoint of a ws-only server, signed: a verifying mDNS join shows wsUrl', async () => {
    const c = await join({ service: SVC, discovery: { mdns: { interface: H, port: MDNS_PORT, subscribe: false } }, verify: { publicKey: PUB }, waitForServersMs: 5000 });
    clusters.push(c);
    await until(() => c.servers().some((s) => s.id === 'ws-a'), 10_000, 'ws-a found over mDNS');
    const s = c.servers().find((x) => x.id === 'ws-a')!;
    expect(s.wsUrl).toBe(`wss://${H}:${game.port}${WS_PATH}`);
    expect(s.udpPort).toBeUndefined();
    expect(s.tcpPort).toBeUndefined();
  });

  it('--health ws: unhealthy when the ws server is killed (by PID), healthy when it is back on its port', async () => {
    const health = async () => (await getJson<{ node: string; health: string }[]>(`${a.http}/v1/members`)).find((m) => m.node === 'ws-a')?.health;
    await until(async () => (await health()) === 'healthy', 10_000, 'ws-a healthy');
    const port = game.port;
    game.proc.kill('SIGKILL');
    await exited(game.proc);
    const downMs = await until(async () => (await health()) === 'unhealthy', 10_000, 'ws-a unhealthy after its ws server died');
    game = await startWsServer(port);
    const upMs = await until(async () => (await health()) === 'healthy', 10_000, 'ws-a healthy again');
    console.log(`--health ws (interval 100 ms, fall 2, rise 2): unhealthy ${downMs} ms after the kill, healthy ${upMs} ms after the restart (polling)`);
    // The agent said why, naming the endpoint it opens.
    expect(a.logs.some((l) => JSON.stringify(l).includes(`ws open wss://${H}:${port}${WS_PATH}`)), a.stderr.join('').slice(-2000)).toBe(true);
  }, 40_000);
});
