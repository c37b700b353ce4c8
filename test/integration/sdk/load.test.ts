/**
 * What the balancer does with time and load: slow start, zone preference and spill-over, and the
 * stale-load estimate. Time is a ManualClock; shares are measured at real loopback servers.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { hashKey } from '../../../sdk/core/hash.js';
import type { LoadReport } from '../../../sdk/core/protocol.js';
import { closeServers, rec, receivedBy, startServers, testBalancer, testCluster, udpRound, type TestCluster, type TestServer } from '../../support/balancer-fixtures.js';
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

const load = (connections: number, seq: number, extra: Partial<LoadReport> = {}): LoadReport => ({ connections, sessions: 0, utilization: 0, seq, ageMs: 0, ...extra });

async function udpShares(c: TestCluster, n: number): Promise<Record<string, number>> {
  for (const s of servers) s.udp.resetCounts();
  await udpRound(c.udp(), new Array(n).fill(undefined));
  return receivedBy(servers);
}

describe('slow start', () => {
  it('weighted-round-robin: a new server’s share follows the ramp over the window', async () => {
    servers = await startServers(4);
    const c = testCluster(servers.slice(0, 3).map((s) => s.record()), { strategy: 'weighted-round-robin', slowStartMs: 10_000 });
    clusters.push(c);
    c.feed.upsert(servers[3]!.record()); // d joins after the first view: it slow-starts
    const shares: number[] = [];
    for (let t = 0; t <= 12_500; t += 2500) {
      if (t > 0) c.clock.advance(2500);
      const got = await udpShares(c, 620);
      shares.push(got.d! / 620);
    }
    // factor max(0.1, t / 10 s): share = f / (3 + f) → 3.2 %, 7.7 %, 14.3 %, 20 %, 25 %, 25 %
    const want = [0.1, 0.25, 0.5, 0.75, 1, 1].map((f) => f / (3 + f));
    shares.forEach((s, i) => expect(Math.abs(s - want[i]!)).toBeLessThan(0.01));
    expect(c.b.view(c.b.get('d')!).local.effectiveWeight).toBe(100);
  });

  it('weighted-random: the picker is rebuilt while ramping', async () => {
    servers = await startServers(2);
    const c = testCluster([servers[0]!.record()], { strategy: 'weighted-random', slowStartMs: 10_000, slowStartMinShare: 0.05 });
    clusters.push(c);
    c.feed.upsert(servers[1]!.record());
    const early = (await udpShares(c, 1000)).b! / 1000; // f = 0.05: 4.8 %
    c.clock.advance(5000);
    const mid = (await udpShares(c, 1000)).b! / 1000; // f = 0.5: 33 %
    c.clock.advance(5000);
    const done = (await udpShares(c, 1000)).b! / 1000; // 50 %
    expect(early).toBeLessThan(0.09);
    expect(Math.abs(mid - 1 / 3)).toBeLessThan(0.06);
    expect(Math.abs(done - 0.5)).toBeLessThan(0.06);
  });

  it('p2c: a new server fills only to its ramped share of the load', async () => {
    servers = await startServers(4);
    const c = testCluster(servers.slice(0, 3).map((s) => s.record()), { strategy: 'p2c', slowStartMs: 10_000 });
    clusters.push(c);
    for (let i = 0; i < 90; i++) held.push(await c.connect()); // a, b, c hold ~30 each
    c.feed.upsert(servers[3]!.record());
    const d = c.b.get('d')!;
    const level = () => c.b.list().filter((s) => s.id !== 'd').reduce((sum, s) => sum + s.active, 0) / 3;
    const ratios: number[] = [];
    for (const [t, n] of [[0, 30], [2500, 30], [5000, 30], [10_000, 90]] as const) {
      c.clock.advance(t - c.clock.now());
      for (let i = 0; i < n; i++) held.push(await c.connect());
      ratios.push(d.active / level());
    }
    // d's load per weight never exceeds the others' by more than one connection's worth, so d holds
    // about f × the others' level: ≈ 0.1, 0.25, 0.5, then catches up (1) at up to one connection in
    // two (it wins the pairs it is in).
    const f = [0.1, 0.25, 0.5, 1];
    ratios.forEach((r, i) => expect(r).toBeLessThanOrEqual(f[i]! + 0.1));
    expect(ratios[0]).toBeLessThan(ratios[2]!);
    expect(ratios[3]).toBeGreaterThan(0.85);
    await until(() => servers[3]!.tcp.accepted === d.active, 5000, 'd’s connections accepted');
  });

  it('a server recovering from ejection slow-starts too', async () => {
    servers = await startServers(2);
    const c = testCluster(servers.map((s) => s.record()), { strategy: 'weighted-round-robin', slowStartMs: 4000, outlier: { baseEjectionMs: 1000 } });
    clusters.push(c);
    const a = c.b.get('a')!;
    for (let i = 0; i < 3; i++) c.b.outcome(a, false, undefined);
    expect(a.ejected).toBe(true);
    c.clock.advance(1000);
    expect(a.ejected).toBe(false);
    expect(c.b.view(a).local.effectiveWeight).toBeCloseTo(10, 6); // minShare 0.1 × 100
    c.clock.advance(2000);
    expect(c.b.view(a).local.effectiveWeight).toBeCloseTo(50, 6);
    c.clock.advance(2000);
    expect(c.b.view(a).local.effectiveWeight).toBe(100);
  });

  it('servers in the first view do not slow-start', async () => {
    servers = await startServers(2);
    const c = testCluster(servers.map((s) => s.record()), { strategy: 'weighted-round-robin', slowStartMs: 10_000 });
    clusters.push(c);
    expect(c.b.list().map((s) => c.b.view(s).local.effectiveWeight)).toEqual([100, 100]);
  });
});

describe('zone preference', () => {
  // a, b in zone z1 (the client's), c, d in z2
  function zoned(opts: Parameters<typeof testCluster>[1] = {}, loads?: number[]): TestCluster {
    const c = testCluster(
      servers.map((s, i) => s.record({ zone: i < 2 ? 'z1' : 'z2', load: loads ? load(loads[i]!, 1) : undefined })),
      { strategy: 'round-robin', zone: 'z1', ...opts },
    );
    clusters.push(c);
    return c;
  }

  it('prefers the local zone, spills when local servers are unhealthy, and comes back', async () => {
    servers = await startServers(4);
    const c = zoned();
    expect(await udpShares(c, 200)).toEqual({ a: 100, b: 100, c: 0, d: 0 });
    // one of two local servers unhealthy: 1/2 is not below minHealthyShare 0.5, stay local
    c.feed.upsert(servers[0]!.record({ zone: 'z1', health: 'unhealthy' }));
    expect(await udpShares(c, 100)).toEqual({ a: 0, b: 100, c: 0, d: 0 });
    // both unhealthy: spill to the other zone
    c.feed.upsert(servers[1]!.record({ zone: 'z1', health: 'unhealthy' }));
    expect(await udpShares(c, 100)).toEqual({ a: 0, b: 0, c: 50, d: 50 });
    // back
    c.feed.upsert(servers[0]!.record({ zone: 'z1', health: 'healthy' }));
    c.feed.upsert(servers[1]!.record({ zone: 'z1', health: 'healthy' }));
    expect(await udpShares(c, 200)).toEqual({ a: 100, b: 100, c: 0, d: 0 });
  });

  it('minHealthyShare: spills when too few local servers are eligible', async () => {
    servers = await startServers(4);
    const c = zoned({ zoneAffinity: { minHealthyShare: 0.75 } });
    c.feed.upsert(servers[0]!.record({ zone: 'z1', health: 'unhealthy' })); // 1/2 < 0.75
    expect(await udpShares(c, 150)).toEqual({ a: 0, b: 50, c: 50, d: 50 });
  });

  it('spills when the local zone is overloaded compared with the others, with hysteresis, and comes back', async () => {
    servers = await startServers(4);
    // local 300 per server vs 50: ratio (301/100) / (51/100) ≈ 5.9 > maxLoadRatio 1.5 → spill
    const c = zoned({}, [300, 300, 50, 50]);
    expect(c.b.zoneLocal).toBe(false);
    expect(await udpShares(c, 200)).toEqual({ a: 50, b: 50, c: 50, d: 50 });
    // ratio ≈ 1.3: inside the band (1.2 .. 1.5), stay spilled
    for (const [i, l] of [[0, 65], [1, 65]] as const) c.feed.upsert(servers[i]!.record({ zone: 'z1', load: load(l, 2) }));
    c.clock.advance(200);
    expect(c.b.zoneLocal).toBe(false);
    // ratio ≈ 1.1 < 0.8 × 1.5: back to local
    for (const [i, l] of [[0, 55], [1, 55]] as const) c.feed.upsert(servers[i]!.record({ zone: 'z1', load: load(l, 3) }));
    c.clock.advance(200);
    expect(c.b.zoneLocal).toBe(true);
    expect(await udpShares(c, 200)).toEqual({ a: 100, b: 100, c: 0, d: 0 });
    // ratio ≈ 1.3 again: inside the band, stay local, also across a rebuild (a weight change elsewhere)
    for (const [i, l] of [[0, 65], [1, 65]] as const) c.feed.upsert(servers[i]!.record({ zone: 'z1', load: load(l, 4) }));
    c.clock.advance(200);
    expect(c.b.zoneLocal).toBe(true);
    c.feed.upsert(servers[3]!.record({ zone: 'z2', load: load(50, 2), weight: 100, health: 'healthy', agent: 'ws://x:1' }));
    c.feed.upsert(servers[2]!.record({ zone: 'z2', health: 'unhealthy', load: load(50, 2) }));
    c.feed.upsert(servers[2]!.record({ zone: 'z2', health: 'healthy', load: load(50, 3) }));
    expect(c.b.zoneLocal).toBe(true);
    c.clock.advance(200);
    expect(c.b.zoneLocal).toBe(true);
    // over 1.5: spill
    for (const [i, l] of [[0, 90], [1, 90]] as const) c.feed.upsert(servers[i]!.record({ zone: 'z1', load: load(l, 5) }));
    c.clock.advance(200);
    expect(c.b.zoneLocal).toBe(false);
  });

  it('spills when the local zone’s reported utilization reaches maxUtilization', async () => {
    servers = await startServers(4);
    const c = zoned();
    for (const i of [0, 1]) c.feed.upsert(servers[i]!.record({ zone: 'z1', load: load(0, 1, { utilization: 0.9 }) }));
    c.clock.advance(200);
    expect(c.b.zoneLocal).toBe(false);
    expect((await udpShares(c, 200)).c).toBe(50);
    for (const i of [0, 1]) c.feed.upsert(servers[i]!.record({ zone: 'z1', load: load(0, 2, { utilization: 0.5 }) }));
    c.clock.advance(200);
    expect(c.b.zoneLocal).toBe(true);
  });

  it('a client without a zone, or a zone no server is in, uses every server', async () => {
    servers = await startServers(4);
    const none = testCluster(servers.map((s, i) => s.record({ zone: i < 2 ? 'z1' : 'z2' })), { strategy: 'round-robin' });
    clusters.push(none);
    expect(await udpShares(none, 200)).toEqual({ a: 50, b: 50, c: 50, d: 50 });
    const elsewhere = zoned({ zone: 'z9' });
    expect(await udpShares(elsewhere, 200)).toEqual({ a: 50, b: 50, c: 50, d: 50 });
  });
});

describe('stale-load estimate', () => {
  it('adds this client’s picks and connections since the report, and falls back to local counts as the report expires', async () => {
    servers = await startServers(2);
    const c = testCluster(servers.map((s, i) => s.record({ load: load(i === 0 ? 10 : 40, 1) })), { reportIntervalMs: 1000, reportExpireIntervals: 3 });
    clusters.push(c);
    const a = c.b.get('a')!;
    const est = () => c.b.view(a).local.estimate;
    const keyA = Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => c.b.pick(hashKey(k))?.id === 'a')!;
    expect(est()).toBe(10);
    held.push(await c.connect({ key: keyA }), await c.connect({ key: keyA }));
    expect(est()).toBe(12);
    c.pick({ key: keyA });
    c.pick({ key: keyA });
    c.pick({ key: keyA });
    expect(est()).toBe(15);
    await until(() => servers[0]!.tcp.accepted === 2, 5000, 'a accepted 2');

    // A new report (which includes this client's 2 connections): counting starts again from it.
    c.feed.upsert(servers[0]!.record({ load: load(12, 2) }));
    expect(est()).toBe(12);
    held.push(await c.connect({ key: keyA }));
    expect(est()).toBe(13);

    // The report ages: full weight for one interval, then fades to this client's own 3 connections.
    c.clock.advance(1000);
    expect(est()).toBe(13);
    c.clock.advance(1000); // w = 0.5
    expect(est()).toBeCloseTo(0.5 * 13 + 0.5 * 3, 9);
    c.clock.advance(1000); // expired
    expect(est()).toBe(3);
    held.pop()!.destroy();
    await until(() => est() === 2, 5000, 'a closed connection lowers the estimate');
    expect(c.b.view(a).load).toMatchObject({ connections: 12, seq: 2, ageMs: 3000 });
  });

  it('p2c: picks spread evenly over idle servers whose reports differ in age (each pick counts as one unit whatever the report weight)', () => {
    // Three idle servers; c's report is 2.5 s old (weight 0.25). A pick must raise every server's
    // estimate alike, or c, whose picks counted for a quarter, took two thirds of them.
    const t = testBalancer([rec('a', { load: load(0, 1) }), rec('b', { load: load(0, 1) }), rec('c', { load: load(0, 1, { ageMs: 2500 }) })]);
    const n: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 1000; i++) {
      const s = t.b.pick(-1)!;
      t.b.countPick(s);
      n[s.id]!++;
    }
    for (const id of ['a', 'b', 'c']) expect(n[id], JSON.stringify(n)).toBeLessThanOrEqual(400);
    t.close();
  });

  it('a report that says it is already old counts less from the start', async () => {
    servers = await startServers(1);
    const c = testCluster([servers[0]!.record({ load: load(40, 1, { ageMs: 2000 }) })]);
    clusters.push(c);
    expect(c.b.view(c.b.get('a')!).local.estimate).toBeCloseTo(20, 9); // w = 0.5
  });

  it('drops reordered reports, but takes a lower seq once the last report is old (the agent restarted)', async () => {
    servers = await startServers(1);
    const c = testCluster([servers[0]!.record({ load: load(40, 5) })]);
    clusters.push(c);
    const a = c.b.get('a')!;
    c.feed.upsert(servers[0]!.record({ load: load(7, 4) }));
    expect(c.b.view(a).local.estimate).toBe(40);
    c.clock.advance(1001);
    c.feed.upsert(servers[0]!.record({ load: load(7, 1) }));
    expect(c.b.view(a).local.estimate).toBe(7);
  });

  it('a report that arrives late is compared with what this client held when it was taken', async () => {
    servers = await startServers(1);
    const c = testCluster([servers[0]!.record()]);
    clusters.push(c);
    const a = c.b.get('a')!;
    c.clock.advance(500);
    held.push(await c.connect(), await c.connect(), await c.connect()); // at t = 500
    c.pick();
    c.clock.advance(500);
    // taken at t = 200, before this client's 3 connections and 1 pick: they count on top of it
    c.feed.upsert(servers[0]!.record({ load: load(10, 1, { ageMs: 800 }) }));
    expect(c.b.view(a).local.estimate).toBe(14);
    // taken at t = 800: it already counts them
    c.feed.upsert(servers[0]!.record({ load: load(14, 2, { ageMs: 200 }) }));
    expect(c.b.view(a).local.estimate).toBe(14);
    // a report older than the history kept (3.2 s) counts from the oldest tick kept
    c.clock.advance(5000);
    held.pop()!.destroy();
    await until(() => a.active === 2, 5000, 'closed');
    c.feed.upsert(servers[0]!.record({ load: load(14, 3, { ageMs: 4000 }) }));
    expect(a.activeAtReport).toBe(3);
  });

  it('expected load scales this client’s changes since the report by its inverse share', async () => {
    servers = await startServers(2);
    const c = testCluster(servers.map((s) => s.record()), { strategy: 'round-robin' });
    clusters.push(c);
    for (let i = 0; i < 10; i++) held.push(await c.connect()); // 5 on each
    // the reports: 50 on each, of which this client holds 5: it is a tenth of the load
    c.feed.upsert(servers[0]!.record({ load: load(50, 1) }));
    c.feed.upsert(servers[1]!.record({ load: load(50, 1) }));
    c.clock.advance(100);
    const a = c.b.get('a')!;
    expect(a.scale).toBe(10);
    const v = () => c.b.view(a).local;
    expect(v()).toMatchObject({ estimate: 50, expected: 50 });
    // one more connection here means about ten more in the cluster (the others acted alike)
    const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => c.b.pick(hashKey(k))?.id === 'a')!;
    held.push(await c.connect({ key }));
    expect(v()).toMatchObject({ estimate: 51, expected: 60 });
    // as the report expires, both fall back to this client's own connections (× the scale)
    c.clock.advance(3000);
    expect(v()).toMatchObject({ estimate: 6, expected: 60 });
  });

  it('p2c steers by the estimate: a server whose report rose is avoided before the next report', async () => {
    servers = await startServers(2);
    const c = testCluster(servers.map((s) => s.record({ load: load(0, 1) })), { strategy: 'p2c' });
    clusters.push(c);
    // 40 connections from this client: p2c alternates to keep a and b level from its own counts
    for (let i = 0; i < 40; i++) held.push(await c.connect());
    expect(Math.abs(c.b.get('a')!.active - c.b.get('b')!.active)).toBeLessThanOrEqual(1);
    // reports say a is now far busier (other clients), b holds only this client's 20: the next
    // connects all go to b
    c.feed.upsert(servers[0]!.record({ load: load(200, 2) }));
    c.feed.upsert(servers[1]!.record({ load: load(20, 2) }));
    c.clock.advance(100); // a tick: the share scale (220 reported / 40 own = 5.5) is in use
    expect(c.b.get('a')!.scale).toBe(5.5);
    const before = servers[1]!.tcp.accepted;
    for (let i = 0; i < 20; i++) held.push(await c.connect());
    await until(() => servers[1]!.tcp.accepted === before + 20, 5000, 'b took all 20');
  });
});
