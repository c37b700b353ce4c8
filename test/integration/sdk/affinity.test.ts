/**
 * Key affinity over real sockets: consistent hashing through `udp.send(buf, { key })` with real
 * datagrams (the reply says which server served each key), and the bounded-load factor capping a
 * hot server measured by connections accepted.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { hashKey } from '../../../sdk/core/hash.js';
import type { StrategyName } from '../../../sdk/core/pickers/index.js';
import { startUdpServer, type UdpTestServer } from '../../support/servers.js';
import { closeServers, rec, startServers, testCluster, udpRound, type TestCluster, type TestServer } from '../../support/balancer-fixtures.js';
import { until } from '../../support/until.js';

let udps: UdpTestServer[] = [];
let servers: TestServer[] = [];
let clusters: TestCluster[] = [];
let held: net.Socket[] = [];

afterEach(async () => {
  for (const s of held) s.destroy();
  held = [];
  for (const c of clusters) c.close();
  clusters = [];
  await Promise.all(udps.map((u) => u.close()));
  udps = [];
  await closeServers(servers);
  servers = [];
});

describe('consistent hashing with real datagrams', () => {
  it.each<StrategyName>(['consistent-hash', 'p2c'])(
    'strategy %s: when one of 10 servers leaves, ≤ 1/N + 5 %% of 10,000 keys move, none of the servers that stayed',
    async (strategy) => {
      for (let i = 0; i < 10; i++) udps.push(await startUdpServer({ id: `u${i}` }));
      const c = testCluster(
        udps.map((u) => rec(u.id, { udpPort: u.port, tcpPort: undefined })),
        { strategy },
      );
      clusters.push(c);
      const u = c.udp();
      const keys = Array.from({ length: 10_000 }, (_, i) => `player-${i}`);

      const before = await udpRound(u, keys, 200);
      for (const r of before) {
        expect(r.from).toBe(r.server); // the message event names the server that replied
        expect(r.from).toBe(r.sentTo);
      }
      const perServer = new Map<string, number>();
      for (const r of before) perServer.set(r.from, (perServer.get(r.from) ?? 0) + 1);
      expect(perServer.size).toBe(10);
      for (const n of perServer.values()) expect(n).toBeGreaterThan(500); // every server serves a fair part

      // Server u4 leaves: it is killed and discovery removes it.
      const leaving = udps[4]!;
      await leaving.kill();
      c.feed.remove(leaving.id);
      const receivedBefore = udps.map((x) => x.received);
      const after = await udpRound(u, keys, 200);

      let moved = 0;
      for (let i = 0; i < keys.length; i++) {
        const a = before[i]!.from;
        const b = after[i]!.from;
        expect(b).not.toBe(leaving.id);
        if (a !== leaving.id) expect(b).toBe(a); // keys of the servers that stayed do not move
        if (a !== b) moved++;
      }
      expect(moved).toBe(perServer.get(leaving.id));
      expect(moved / keys.length).toBeLessThanOrEqual(1 / 10 + 0.05);
      // measured at the servers: the stayers received exactly their old keys plus the moved ones
      const got = udps.map((x, i) => x.received - receivedBefore[i]!);
      expect(got[4]).toBe(0);
      expect(got.reduce((s, n) => s + n, 0)).toBe(keys.length);
    },
  );
});

describe('bounded load (consistent hashing with bounded loads)', () => {
  /** 100 keys that all hash to server a, found through the ring itself. */
  function keysOf(c: TestCluster, id: string, n: number): string[] {
    const out: string[] = [];
    for (let i = 0; out.length < n && i < 100_000; i++) if (c.b.pick(hashKey(`hot-${i}`))?.id === id) out.push(`hot-${i}`);
    return out;
  }

  it.each([
    [undefined, 100, 100],
    [1.25, 0, 33], // ≤ ceil(1.25 × (100 + 1) / 4) connections
    [2, 0, 51],
  ])('hashBalanceFactor %s: a server all keys hash to ends with %s..%s of 100 connections', async (factor, min, max) => {
    servers = await startServers(4);
    const c = testCluster(servers.map((s) => s.record()), { strategy: 'consistent-hash', hashBalanceFactor: factor });
    clusters.push(c);
    const hot = keysOf(c, 'a', 100);
    expect(hot.length).toBe(100);
    for (const k of hot) held.push(await c.connect({ key: k }));
    await until(() => servers.reduce((s, x) => s + x.tcp.accepted, 0) === 100, 5000, '100 accepted');
    const a = servers[0]!.tcp.accepted;
    expect(a).toBeGreaterThanOrEqual(min);
    expect(a).toBeLessThanOrEqual(max);
    if (factor !== undefined) {
      // the others took the rest, each also under the cap
      for (const s of servers.slice(1)) expect(s.tcp.accepted).toBeLessThanOrEqual(max);
      // and a hot key's server is stable while the load stays put: the same key again lands where it did
      const again = await c.connect({ key: hot[0]! });
      held.push(again);
      const where = again.remotePort;
      again.destroy();
      await until(() => c.b.list().reduce((s, x) => s + x.active, 0) === 100, 5000, 'socket released');
      const third = await c.connect({ key: hot[0]! });
      held.push(third);
      expect(third.remotePort).toBe(where);
    }
  });
});
