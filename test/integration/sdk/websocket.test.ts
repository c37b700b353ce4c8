/**
 * cluster.websocket() from the Node entry (the `ws` package's WebSocket) against three real `ws`
 * servers on loopback, found through a discovery source that gives their ws ports: 300 sockets
 * held open spread evenly under p2c; after one server is closed, every later open succeeds by
 * failover and none lands on it; active counts return to 0 once the sockets close.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { join, type Cluster } from '../../../sdk/index.js';
import type { ServerRecord } from '../../../sdk/core/protocol.js';
import { until } from '../../support/until.js';

interface GameServer {
  wss: WebSocketServer;
  port: number;
  connections: number;
}

async function startGameServer(): Promise<GameServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/play' });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const g: GameServer = { wss, port: (wss.address() as { port: number }).port, connections: 0 };
  wss.on('connection', (sock) => {
    g.connections++;
    sock.on('error', () => undefined);
  });
  return g;
}

async function stop(g: GameServer): Promise<void> {
  for (const c of g.wss.clients) c.terminate();
  await new Promise<void>((resolve) => g.wss.close(() => resolve()));
}

let servers: GameServer[] = [];
let cluster: Cluster | undefined;
let sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets) s.terminate();
  sockets = [];
  await cluster?.close();
  cluster = undefined;
  await Promise.all(servers.map((g) => stop(g).catch(() => undefined)));
  servers = [];
});

const activeSum = (c: Cluster) => c.stats().reduce((n, s) => n + s.active, 0);

describe('cluster.websocket() over real ws servers', () => {
  it('300 opens spread with p2c (max/mean ≤ 1.25); a closed server is failed over on every later open', async () => {
    servers = await Promise.all([startGameServer(), startGameServer(), startGameServer()]);
    const records: ServerRecord[] = servers.map((g, i) => ({ id: `g${i}`, service: 'game', host: '127.0.0.1', wsPort: g.port, wsPath: '/play', weight: 100, health: 'healthy' }));
    cluster = await join({ service: 'game', discovery: { source: { start: (sink) => sink.reset(records), close: () => undefined } }, strategy: 'p2c' });
    expect(cluster.servers().map((s) => s.wsUrl)).toEqual(servers.map((g) => `ws://127.0.0.1:${g.port}/play`));

    // 300 sockets held open (players in their games), opened 10 at a time.
    for (let i = 0; i < 30; i++) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => cluster!.websocket()));
      for (const ws of batch) expect(ws.readyState).toBe(WebSocket.OPEN);
      sockets.push(...batch);
    }
    await until(() => servers.reduce((n, g) => n + g.connections, 0) === 300, 10_000, 'all 300 connections seen by the servers');
    const counts = servers.map((g) => g.connections);
    const mean = 300 / 3;
    console.log(`websocket p2c spread over 3 servers: ${counts.join(' / ')} (max/mean ${(Math.max(...counts) / mean).toFixed(3)})`);
    expect(Math.max(...counts) / mean).toBeLessThanOrEqual(1.25);
    expect(activeSum(cluster)).toBe(300);
    // Each server's active count is the connections it holds from us.
    for (const [i, g] of servers.entries()) expect(cluster.stats().find((s) => s.id === `g${i}`)!.active).toBe(g.connections);

    // Players leave: the counts return to 0.
    for (const ws of sockets) ws.close();
    await until(() => activeSum(cluster!) === 0, 10_000, 'active back to 0 after the closes');
    sockets = [];

    // One server goes away (its port refuses now); the view still lists it.
    const dead = servers[1]!;
    await stop(dead);
    const before = servers.map((g) => g.connections);
    const deadUrl = `ws://127.0.0.1:${dead.port}/play`;
    for (let i = 0; i < 60; i++) {
      const ws = await cluster.websocket({ attempts: 3 });
      expect(ws.readyState).toBe(WebSocket.OPEN);
      expect(ws.url).not.toBe(deadUrl);
      sockets.push(ws);
    }
    const gained = servers.map((g, i) => g.connections - before[i]!);
    await until(() => servers[0]!.connections + servers[2]!.connections - before[0]! - before[2]! === 60, 10_000, '60 new connections on the live servers');
    expect(gained[1]).toBe(0);
    const deadStats = cluster.stats().find((s) => s.id === 'g1')!;
    expect(deadStats.failures).toBeGreaterThan(0);
    expect(deadStats.ejected).toBe(true);
    // A key that hashed to the dead server still gets in, on a live one.
    for (let k = 0; k < 20; k++) {
      const ws = await cluster.websocket({ key: `player-${k}` });
      expect(ws.url).not.toBe(deadUrl);
      sockets.push(ws);
    }
    for (const ws of sockets) ws.close();
    await until(() => activeSum(cluster!) === 0, 10_000, 'active back to 0 after failover and close');
  }, 60_000);

  it('an upgrade that never answers times out (the ws socket given up without an uncaught error) and fails over', async () => {
    const good = await startGameServer();
    servers = [good];
    // Accepts TCP and never answers the HTTP upgrade.
    const held: net.Socket[] = [];
    const mute = net.createServer((sock) => void held.push(sock.on('error', () => undefined)));
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const mutePort = (mute.address() as net.AddressInfo).port;
    try {
      const records: ServerRecord[] = [
        { id: 'good', service: 'game', host: '127.0.0.1', wsPort: good.port, wsPath: '/play', weight: 100, health: 'healthy' },
        { id: 'mute', service: 'game', host: '127.0.0.1', wsPort: mutePort, weight: 100, health: 'healthy' },
      ];
      cluster = await join({ service: 'game', discovery: { source: { start: (sink) => sink.reset(records), close: () => undefined } } });
      for (let i = 0; i < 6; i++) {
        const ws = await cluster.websocket({ timeoutMs: 300, attempts: 2 });
        expect(ws.url).toBe(`ws://127.0.0.1:${good.port}/play`);
        sockets.push(ws); // held open, so p2c turns to the mute server next
      }
      const muteStats = cluster.stats().find((s) => s.id === 'mute')!;
      expect(muteStats.failures).toBeGreaterThan(0);
      expect(held.length).toBeGreaterThan(0);
      await until(() => cluster!.stats().find((s) => s.id === 'mute')!.active === 0, 5000, 'the given-up attempts no longer counted');
      expect(cluster.stats().find((s) => s.id === 'good')!.active).toBe(6);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    }
  }, 60_000);
});
