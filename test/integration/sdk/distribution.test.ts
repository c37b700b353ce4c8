/**
 * Every strategy's distribution, measured at real TCP and UDP servers on 127.0.0.1: connections
 * accepted and datagrams received per server, and replies matched back to their server.
 */
import type net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashKey } from '../../../sdk/core/hash.js';
import type { StrategyName } from '../../../sdk/core/pickers/index.js';
import type { LoadReport } from '../../../sdk/core/protocol.js';
import {
  acceptedBy,
  closeServers,
  countBy,
  receivedBy,
  startServers,
  testCluster,
  udpRound,
  type TestCluster,
  type TestServer,
} from '../../support/balancer-fixtures.js';
import { until } from '../../support/until.js';

let servers: TestServer[] = [];
let clusters: TestCluster[] = [];
let held: net.Socket[] = [];

beforeEach(async () => {
  servers = await startServers(4);
});

afterEach(async () => {
  for (const s of held) s.destroy();
  held = [];
  for (const c of clusters) c.close();
  clusters = [];
  await closeServers(servers);
});

function cluster(strategy: StrategyName, over: { weights?: number[]; loads?: number[]; seed?: number } = {}): TestCluster {
  const c = testCluster(
    servers.map((s, i) => s.record({ weight: over.weights?.[i] ?? 100, load: over.loads ? load(over.loads[i]!) : undefined })),
    { strategy },
    over.seed ?? 7,
  );
  clusters.push(c);
  return c;
}

const load = (connections: number, seq = 1): LoadReport => ({ connections, sessions: 0, utilization: 0, seq, ageMs: 0 });

/** `n` sequential connects; each socket is held open (counted as active) until the test ends. Returns the server id of each. */
async function connectHeld(c: TestCluster, n: number): Promise<string[]> {
  const ids: string[] = [];
  const base = Object.values(acceptedBy(servers)).reduce((a, b) => a + b, 0);
  for (let i = 0; i < n; i++) {
    const sock = await c.connect();
    held.push(sock);
    ids.push(servers.find((s) => s.tcp.port === sock.remotePort)!.id);
  }
  await until(() => Object.values(acceptedBy(servers)).reduce((a, b) => a + b, 0) === base + n, 5000, `${n} connections accepted`);
  return ids;
}

const even = (n: number) => Object.fromEntries(servers.map((s) => [s.id, n]));

describe('TCP: connections accepted per server', () => {
  it('round-robin: each server in turn', async () => {
    const ids = await connectHeld(cluster('round-robin'), 400);
    expect(acceptedBy(servers)).toEqual(even(100));
    // strictly cyclic: the same server every 4th connect, never twice in a row
    for (let i = 4; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 4]);
    expect(new Set(ids.slice(0, 4)).size).toBe(4);
  });

  it('weighted-round-robin: in proportion to weight 1:2:3:4, exactly', async () => {
    await connectHeld(cluster('weighted-round-robin', { weights: [100, 200, 300, 400] }), 1000);
    expect(acceptedBy(servers)).toEqual({ a: 100, b: 200, c: 300, d: 400 });
  });

  it('least-connections: open connections stay level', async () => {
    const c = cluster('least-connections');
    await connectHeld(c, 400);
    expect(acceptedBy(servers)).toEqual(even(100));
    expect(servers.map((s) => s.tcp.open)).toEqual([100, 100, 100, 100]);
  });

  it('least-load: fills the least loaded servers up to one level, none to the busiest', async () => {
    // Reports 0, 50, 100, 150; 200 more connections fill a, b, c to ~117 (0+117, 50+67, 100+16).
    await connectHeld(cluster('least-load', { loads: [0, 50, 100, 150] }), 200);
    const got = acceptedBy(servers);
    expect(got.d).toBe(0);
    expect(Math.abs(got.a! - 117)).toBeLessThanOrEqual(1);
    expect(Math.abs(got.b! - 67)).toBeLessThanOrEqual(1);
    expect(Math.abs(got.c! - 16)).toBeLessThanOrEqual(1);
  });

  it('p2c without reports: open connections stay within a few of each other', async () => {
    await connectHeld(cluster('p2c'), 400);
    const got = Object.values(acceptedBy(servers));
    expect(got.reduce((a, b) => a + b, 0)).toBe(400);
    expect(Math.max(...got) - Math.min(...got)).toBeLessThanOrEqual(4);
  });

  it('p2c with reports: steers away from loaded servers', async () => {
    await connectHeld(cluster('p2c', { loads: [0, 50, 100, 150] }), 200);
    const got = acceptedBy(servers);
    // d at 150 is never below the others and never wins a pair; the least loaded gets the most, and
    // the spread of load (report + new connections) shrinks from 150 to less than half of it.
    expect(got.d).toBe(0);
    expect(got.a!).toBeGreaterThan(got.b!);
    expect(got.b!).toBeGreaterThan(got.c!);
    const levels = [got.a!, 50 + got.b!, 100 + got.c!, 150];
    expect(Math.max(...levels) - Math.min(...levels)).toBeLessThan(75);
  });

  it('random: about even', async () => {
    const c = cluster('random');
    for (let i = 0; i < 800; i++) (await c.connect()).destroy();
    await until(() => Object.values(acceptedBy(servers)).reduce((a, b) => a + b, 0) === 800, 5000, '800 accepted');
    for (const n of Object.values(acceptedBy(servers))) expect(Math.abs(n - 200)).toBeLessThan(50); // ±3.5 σ
  });

  it('weighted-random: in proportion to weight 1:2:3:4', async () => {
    const c = cluster('weighted-random', { weights: [100, 200, 300, 400] });
    for (let i = 0; i < 1000; i++) (await c.connect()).destroy();
    await until(() => Object.values(acceptedBy(servers)).reduce((a, b) => a + b, 0) === 1000, 5000, '1000 accepted');
    const got = acceptedBy(servers);
    const want = { a: 100, b: 200, c: 300, d: 400 };
    for (const id of ['a', 'b', 'c', 'd'] as const) expect(Math.abs(got[id]! - want[id])).toBeLessThan(45); // ≥ 3 σ
  });

  it('consistent-hash: a key always reaches the same server; keys spread over all', async () => {
    const c = cluster('consistent-hash');
    const first = new Map<string, number>();
    for (let round = 0; round < 2; round++)
      for (let k = 0; k < 100; k++) {
        const sock = await c.connect({ key: `player-${k}` });
        held.push(sock);
        if (round === 0) first.set(`player-${k}`, sock.remotePort!);
        else expect(sock.remotePort).toBe(first.get(`player-${k}`));
      }
    const byServer = countBy([...first.values()], (p) => servers.find((s) => s.tcp.port === p)!.id);
    expect(Object.keys(byServer).sort()).toEqual(['a', 'b', 'c', 'd']);
    await until(() => Object.values(acceptedBy(servers)).reduce((a, b) => a + b, 0) === 200, 5000, '200 accepted');
    for (const s of servers) expect(s.tcp.accepted).toBe(2 * byServer[s.id]!);
  });

  it('ewma: a server with a slow round-trip time gets nothing while the others are fast', async () => {
    const c = cluster('ewma');
    const a = c.b.get('a')!;
    c.b.outcome(a, true, 500); // one 500 ms sample: peak EWMA takes it at once
    for (const id of ['b', 'c', 'd']) c.b.outcome(c.b.get(id)!, true, 1);
    await connectHeld(c, 60);
    const got = acceptedBy(servers);
    expect(got.a).toBe(0);
    // The others share by rtt × (active + 1). Their RTTs are real loopback connect times, which a busy
    // machine can stretch for one of them for a while, so ask for a fair share (≥ 8 of the 20 each would
    // get), not an exact level.
    expect(got.b! + got.c! + got.d!).toBe(60);
    expect(Math.min(got.b!, got.c!, got.d!)).toBeGreaterThanOrEqual(8);
  });
});

describe('least-connections follows the sockets this client holds', () => {
  it('new connects avoid the server holding sockets, and come back when they close', async () => {
    const c = cluster('least-connections');
    // Hold 6 sockets on "a" (keyed: a key's affinity reaches the same server whatever the strategy).
    const keyForA = Array.from({ length: 200 }, (_, i) => `k${i}`).find((k) => c.b.pick(hashKey(k))?.id === 'a')!;
    const onA: net.Socket[] = [];
    for (let i = 0; i < 6; i++) onA.push(await c.connect({ key: keyForA }));
    expect(onA.every((s) => s.remotePort === servers[0]!.tcp.port)).toBe(true);
    await until(() => servers[0]!.tcp.open === 6, 5000, 'a holds 6');
    // 9 more: b, c, d take 3 each, a none (a has 6 > 3).
    const ids = await connectHeld(c, 9);
    expect(countBy(ids, (x) => x)).toEqual({ b: 3, c: 3, d: 3 });
    expect(servers[0]!.tcp.accepted).toBe(6);
    // Close a's sockets: the next 3 connects go to a (0 < 3).
    for (const s of onA) s.destroy();
    await until(() => c.b.get('a')!.active === 0, 5000, 'the balancer saw a’s sockets close');
    expect(await connectHeld(c, 3)).toEqual(['a', 'a', 'a']);
    // and a server-side close counts too: b drops its 3 connections, b is next.
    servers[1]!.tcp.dropConnections();
    await until(() => c.b.get('b')!.active === 0, 5000, 'the balancer saw b’s sockets closed by the server');
    expect(await connectHeld(c, 3)).toEqual(['b', 'b', 'b']);
  });
});

describe('UDP: datagrams received per server, replies named by server', () => {
  const shapes: [StrategyName, { weights?: number[]; loads?: number[] }, (got: Record<string, number>) => void][] = [
    ['round-robin', {}, (g) => expect(g).toEqual(even(100))],
    ['weighted-round-robin', { weights: [100, 200, 300, 400] }, (g) => expect(g).toEqual({ a: 40, b: 80, c: 120, d: 160 })],
    // No connections are opened: every server ties and the rotating start takes turns.
    ['least-connections', {}, (g) => expect(g).toEqual(even(100))],
    // Datagrams are not load units (they do not move estimates): least-load sends all to the least loaded.
    ['least-load', { loads: [0, 50, 100, 150] }, (g) => expect(g).toEqual({ a: 400, b: 0, c: 0, d: 0 })],
    // p2c on fixed estimates: a wins every pair it is in (1/2), b 2 of 6 pairs, c 1 of 6, d none.
    ['p2c', { loads: [0, 50, 100, 150] }, (g) => {
      expect(g.d).toBe(0);
      expect(Math.abs(g.a! - 200)).toBeLessThan(35);
      expect(Math.abs(g.b! - 133)).toBeLessThan(35);
      expect(Math.abs(g.c! - 67)).toBeLessThan(30);
    }],
    ['random', {}, (g) => Object.values(g).forEach((n) => expect(Math.abs(n - 100)).toBeLessThan(30))],
    ['weighted-random', { weights: [100, 100, 100, 500] }, (g) => {
      expect(Math.abs(g.d! - 250)).toBeLessThan(35);
      for (const id of ['a', 'b', 'c']) expect(Math.abs(g[id]! - 50)).toBeLessThan(25);
    }],
    ['consistent-hash', {}, (g) => Object.values(g).forEach((n) => expect(n).toBeGreaterThan(40))],
    ['ewma', {}, (g) => Object.values(g).forEach((n) => expect(n).toBeGreaterThan(40))],
  ];

  it.each(shapes)('%s', async (strategy, over, check) => {
    const c = cluster(strategy, over);
    const u = c.udp();
    const n = 400;
    const replies = await udpRound(u, new Array(n).fill(undefined));
    const got = receivedBy(servers);
    expect(Object.values(got).reduce((a, b) => a + b, 0)).toBe(n);
    check(got);
    // Every reply is named by the server that sent it, which is the server the datagram went to.
    for (const r of replies) {
      expect(r.server).toBe(r.from);
      expect(r.sentTo).toBe(r.from);
    }
    expect(countBy(replies, (r) => r.server)).toEqual(Object.fromEntries(Object.entries(got).filter(([, v]) => v > 0)));
  });

  it('smooth weighted round robin gives nginx’s sequence for weights 5,1,1: a a b a c a a', async () => {
    const c = testCluster(
      servers.slice(0, 3).map((s, i) => s.record({ weight: [5, 1, 1][i]! })),
      { strategy: 'weighted-round-robin' },
    );
    clusters.push(c);
    const u = c.udp();
    // One datagram at a time: the order of the replies is the order of the picks.
    const seq: string[] = [];
    for (let i = 0; i < 14; i++) seq.push((await udpRound(u, [undefined]))[0]!.from);
    expect(seq.join(' ')).toBe('a a b a c a a a a b a c a a');
    expect(receivedBy(servers)).toEqual({ a: 10, b: 2, c: 2, d: 0 });
  });

  it('a reply from an address that is no server is delivered with server undefined', async () => {
    const c = cluster('round-robin');
    const u = c.udp({ bind: { address: '127.0.0.1' } });
    await new Promise((r) => u.socket.once('listening', r));
    const stranger = (await import('node:dgram')).createSocket('udp4');
    try {
      const got = new Promise<unknown[]>((resolve) => u.once('message', (...args) => resolve(args)));
      stranger.send('hi', u.address().port, '127.0.0.1');
      const [msg, server] = await got;
      expect(String(msg)).toBe('hi');
      expect(server).toBeUndefined();
    } finally {
      stranger.close();
    }
  });
});
