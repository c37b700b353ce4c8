/**
 * Passive outlier ejection, backoff, recovery and panic mode, against real loopback servers that
 * are killed and restarted on the same port. Ejection time runs on a ManualClock: the tests advance
 * it instead of sleeping.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AllAttemptsFailedError } from '../../../sdk/core/errors.js';
import type { ServerState } from '../../../sdk/core/server.js';
import { closeServers, countBy, receivedBy, startServers, testCluster, udpRound, type TestCluster, type TestServer } from '../../support/balancer-fixtures.js';
import { until } from '../../support/until.js';

let servers: TestServer[] = [];
let clusters: TestCluster[] = [];
let held: net.Socket[] = [];

afterEach(async () => {
  for (const s of held) s.destroy();
  held = [];
  for (const c of clusters) c.close();
  clusters = [];
  await closeServers(servers);
  servers = [];
});

interface Events {
  eject: { id: string; until: number; level: number; consecutiveFailures: number; at: number }[];
  recover: { id: string; at: number }[];
  panic: boolean[];
}

function watch(c: TestCluster): Events {
  const ev: Events = { eject: [], recover: [], panic: [] };
  c.b.on('eject', (s, info) => ev.eject.push({ id: s.id, ...info, at: c.clock.now() }));
  c.b.on('recover', (s) => ev.recover.push({ id: s.id, at: c.clock.now() }));
  c.b.on('panic', (p) => ev.panic.push(p));
  return ev;
}

/** Connect `n` times, one attempt each, ignoring failures; returns the ids connected to. */
async function tryConnects(c: TestCluster, n: number, attempts = 1): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const s = await c.connect({ attempts, timeoutMs: 2000 });
      held.push(s);
      ids.push(servers.find((x) => x.tcp.port === s.remotePort)!.id);
    } catch (err) {
      if (!(err instanceof AllAttemptsFailedError)) throw err;
      ids.push('(failed)');
    }
  }
  return ids;
}

const picks = (c: TestCluster, n: number) => countBy(Array.from({ length: n }, () => c.b.pick(-1)?.id), (x) => x);

describe('outlier ejection', () => {
  it('ejects after consecutive failures, backs off longer each time, and recovers when the server is back', async () => {
    servers = await startServers(3);
    const c = testCluster(servers.map((s) => s.record()), {
      strategy: 'round-robin',
      outlier: { consecutiveFailures: 3, baseEjectionMs: 5000, maxEjectionMs: 300_000 },
    });
    clusters.push(c);
    const ev = watch(c);
    const a = c.b.get('a')!;
    await servers[0]!.tcp.kill();

    // Round robin with one attempt per connect: every third connect hits a and is refused.
    const ids = await tryConnects(c, 9);
    expect(ids.filter((x) => x === '(failed)').length).toBe(3);
    expect(ev.eject).toEqual([{ id: 'a', until: 5000, level: 0, consecutiveFailures: 3, at: 0 }]);
    expect(a.ejected).toBe(true);
    // While ejected: no picks for a, connects all succeed on b and c.
    expect(picks(c, 300).a).toBeUndefined();
    expect((await tryConnects(c, 6)).includes('(failed)')).toBe(false);

    // Ejection ends after 5 s: a takes picks again, fails 3 more times, and is ejected for 10 s.
    c.clock.advance(4900);
    expect(ev.recover).toEqual([]);
    c.clock.advance(100);
    expect(ev.recover).toEqual([{ id: 'a', at: 5000 }]);
    expect(a.ejected).toBe(false);
    expect(picks(c, 300).a).toBe(100);
    await tryConnects(c, 9);
    expect(ev.eject[1]).toEqual({ id: 'a', until: 15_000, level: 1, consecutiveFailures: 3, at: 5000 });

    // ...and then 20 s.
    c.clock.advance(10_000);
    expect(ev.recover.length).toBe(2);
    await tryConnects(c, 9);
    expect(ev.eject[2]).toMatchObject({ until: 15_000 + 20_000, level: 2 });

    // The server comes back on the same port; when the ejection ends, connects reach it again.
    await servers[0]!.tcp.restart();
    c.clock.advance(19_999);
    expect(a.ejected).toBe(true);
    expect(servers[0]!.tcp.accepted).toBe(0);
    c.clock.advance(1);
    expect(ev.recover.map((r) => r.at)).toEqual([5000, 15_000, 35_000]);
    const after = await tryConnects(c, 9);
    expect(after.includes('(failed)')).toBe(false);
    expect(countBy(after, (x) => x)).toEqual({ a: 3, b: 3, c: 3 });
    await until(() => servers[0]!.tcp.accepted === 3, 5000, 'a accepted 3');
    expect(a.consecutiveFailures).toBe(0);
    expect(ev.eject.length).toBe(3);
  });

  it('forgets one level of backoff for every two base periods without ejection', async () => {
    servers = await startServers(3);
    const c = testCluster(servers.map((s) => s.record()), { strategy: 'round-robin', outlier: { baseEjectionMs: 1000 } });
    clusters.push(c);
    const ev = watch(c);
    await servers[0]!.tcp.kill();
    await tryConnects(c, 9); // level 0: 1 s
    c.clock.advance(1000);
    await tryConnects(c, 9); // level 1: 2 s
    c.clock.advance(2000);
    expect(ev.eject.map((e) => e.level)).toEqual([0, 1]);
    expect(c.b.get('a')!.ejectionLevel).toBe(2);
    // 4 s (two base periods, twice) without an ejection: back to level 0.
    c.clock.advance(4000);
    expect(c.b.get('a')!.ejectionLevel).toBe(0);
    await tryConnects(c, 9);
    expect(ev.eject[2]).toMatchObject({ level: 0, until: c.clock.now() + 1000 });
  });

  it('a success resets the count of consecutive failures', async () => {
    servers = await startServers(2);
    const c = testCluster(servers.map((s) => s.record()), { outlier: { consecutiveFailures: 3 } });
    clusters.push(c);
    const ev = watch(c);
    const a = c.b.get('a')!;
    for (let round = 0; round < 5; round++) {
      c.b.outcome(a, false, undefined);
      c.b.outcome(a, false, undefined);
      c.b.outcome(a, true, 1);
    }
    expect(a.failures).toBe(10);
    expect(a.consecutiveFailures).toBe(0);
    expect(ev.eject).toEqual([]);
  });

  it('never ejects more than maxEjectedShare of the servers (at least one)', async () => {
    servers = await startServers(4);
    const c = testCluster(servers.map((s) => s.record()), { strategy: 'round-robin', outlier: { maxEjectedShare: 0.5 } });
    clusters.push(c);
    const ev = watch(c);
    for (const s of servers.slice(0, 3)) await s.tcp.kill(); // a, b, c dead; d alive
    await tryConnects(c, 60);
    const ejected = c.b.list().filter((s) => s.ejected).map((s) => s.id);
    expect(ejected.length).toBe(2); // 0.5 × 4
    expect(ev.eject.length).toBe(2);
    expect(ejected).not.toContain('d');
    // the third dead server keeps failing but stays in the choice set
    const third = ['a', 'b', 'c'].find((id) => !ejected.includes(id))!;
    expect(c.b.get(third)!.consecutiveFailures).toBeGreaterThanOrEqual(3);
    expect(picks(c, 100)[third]).toBe(50);
    expect(c.b.panic).toBe(false);

    // with one server, the "at least one" rule still ejects it (Envoy's rule), which means panic
    const one = testCluster([servers[0]!.record()], { outlier: { maxEjectedShare: 0.1 } });
    clusters.push(one);
    const ev1 = watch(one);
    for (let i = 0; i < 3; i++) await one.connect({ attempts: 1 }).catch(() => {});
    expect(ev1.eject.length).toBe(1);
    expect(ev1.panic).toEqual([true]);
    expect(one.b.pick(-1)?.id).toBe('a'); // panic: picks still go to it instead of failing
  });

  it('maxEjectedShare 0 never ejects', async () => {
    servers = await startServers(2);
    const c = testCluster(servers.map((s) => s.record()), { outlier: { maxEjectedShare: 0 } });
    clusters.push(c);
    const a = c.b.get('a')!;
    for (let i = 0; i < 20; i++) c.b.outcome(a, false, undefined);
    expect(a.ejected).toBe(false);
  });
});

describe('panic mode', () => {
  it('all servers unhealthy: picks go to all instead of failing; ends when one is healthy again', async () => {
    servers = await startServers(3);
    const c = testCluster(servers.map((s) => s.record()), { strategy: 'round-robin' });
    clusters.push(c);
    const ev = watch(c);
    const u = c.udp();
    for (const s of servers) c.feed.upsert(s.record({ health: 'unhealthy' }));
    await Promise.resolve();
    expect(ev.panic).toEqual([true]);
    expect(c.b.panic).toBe(true);
    await udpRound(u, new Array(300).fill(undefined));
    expect(receivedBy(servers)).toEqual({ a: 100, b: 100, c: 100 });
    const sock = await c.connect();
    held.push(sock);

    c.feed.upsert(servers[1]!.record({ health: 'healthy' }));
    expect(ev.panic).toEqual([true, false]);
    for (const s of servers) s.udp.resetCounts();
    await udpRound(u, new Array(60).fill(undefined));
    expect(receivedBy(servers)).toEqual({ a: 0, b: 60, c: 0 });
  });

  it('draining servers stay excluded even in panic', async () => {
    servers = await startServers(3);
    const c = testCluster(servers.map((s) => s.record()));
    clusters.push(c);
    c.feed.upsert(servers[0]!.record({ health: 'draining' }));
    c.feed.upsert(servers[1]!.record({ health: 'unhealthy' }));
    c.feed.upsert(servers[2]!.record({ health: 'unhealthy' }));
    expect(c.b.panic).toBe(true);
    const got = picks(c, 300);
    expect(got.a).toBeUndefined();
    expect(got.b! + got.c!).toBe(300);
  });

  it('all servers ejected: panic, picks go to all, connects succeed again when the servers return', async () => {
    servers = await startServers(3);
    const c = testCluster(servers.map((s) => s.record()), { strategy: 'round-robin', outlier: { maxEjectedShare: 1 } });
    clusters.push(c);
    const ev = watch(c);
    for (const s of servers) await s.tcp.kill();
    const ids = await tryConnects(c, 12, 3);
    expect(ids.every((x) => x === '(failed)')).toBe(true);
    expect(c.b.list().every((s: ServerState) => s.ejected)).toBe(true);
    expect(ev.panic).toEqual([true]);
    expect(Object.keys(picks(c, 30)).sort()).toEqual(['a', 'b', 'c']);
    // The servers come back before the ejections end: panic mode still lets connects through.
    for (const s of servers) await s.tcp.restart();
    const back = await tryConnects(c, 3);
    expect(back.includes('(failed)')).toBe(false);
    c.clock.advance(5000);
    expect(ev.panic).toEqual([true, false]);
    expect(ev.recover.length).toBe(3);
  });

  it('panicThreshold: panic as soon as the eligible share falls below it', async () => {
    servers = await startServers(4);
    const c = testCluster(servers.map((s) => s.record()), { panicThreshold: 0.5 });
    clusters.push(c);
    const ev = watch(c);
    c.feed.upsert(servers[0]!.record({ health: 'unhealthy' }));
    c.feed.upsert(servers[1]!.record({ health: 'unhealthy' }));
    expect(c.b.panic).toBe(false); // 2 of 4 eligible: not below 0.5
    expect(Object.keys(picks(c, 200)).sort()).toEqual(['c', 'd']);
    c.feed.upsert(servers[2]!.record({ health: 'unhealthy' }));
    expect(ev.panic).toEqual([true]); // 1 of 4
    expect(Object.keys(picks(c, 200)).sort()).toEqual(['a', 'b', 'c', 'd']);
  });
});
