/**
 * `cluster.stats()` and the 'eject' / 'recover' events of the public SDK (`join`), on real loopback
 * TCP servers and the system clock: picks and RTT per server match what the servers saw, open
 * connections count in the estimated load, a server that goes away is ejected after consecutive
 * refusals and recovers when it listens again on the same port. (test/integration/sdk/outlier.test.ts covers the
 * balancer's backoff arithmetic on a manual clock.)
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, type Cluster } from '../../../sdk/index.js';
import { AllAttemptsFailedError } from '../../../sdk/core/errors.js';
import { ownLoopback } from '../../support/net.js';
import { until } from '../../support/ops.js';

const H = await ownLoopback('127.0.0.35');

interface Srv {
  port: number;
  server: net.Server;
  accepted: Set<net.Socket>;
  total: number;
}

async function listen(srv: Srv | undefined, port = 0): Promise<Srv> {
  const s: Srv = srv ?? { port, server: undefined as never, accepted: new Set(), total: 0 };
  s.server = net.createServer((c) => {
    s.total++;
    s.accepted.add(c);
    c.on('error', () => {});
    c.on('close', () => s.accepted.delete(c));
  });
  await new Promise<void>((resolve, reject) => {
    s.server.once('error', reject);
    s.server.listen(s.port, H, () => resolve());
  });
  s.port = (s.server.address() as net.AddressInfo).port;
  return s;
}

async function shut(s: Srv): Promise<void> {
  for (const c of s.accepted) c.destroy();
  await new Promise<void>((r) => (s.server.listening ? s.server.close(() => r()) : r()));
}

const srvs: Srv[] = [];
const held: net.Socket[] = [];
let cluster: Cluster;
const events: Array<{ kind: 'eject' | 'recover'; id: string; at: number; info?: { consecutiveFailures: number; level: number; until: number } }> = [];

beforeAll(async () => {
  for (let i = 0; i < 3; i++) srvs.push(await listen(undefined));
  cluster = await join({
    service: 'game',
    discovery: { servers: srvs.map((s) => `tcp://${H}:${s.port}`) },
    strategy: 'round-robin',
    outlier: { consecutiveFailures: 2, baseEjectionMs: 500, maxEjectedShare: 0.5 },
  });
  // `until` is on the SDK's clock: performance.now() by default.
  cluster.on('eject', (s, info) => events.push({ kind: 'eject', id: s.id, at: performance.now(), info }));
  cluster.on('recover', (s) => events.push({ kind: 'recover', id: s.id, at: performance.now() }));
});

afterAll(async () => {
  for (const s of held) s.destroy();
  await cluster?.close();
  await Promise.all(srvs.map(shut));
});

const idOf = (port: number) => cluster.servers().find((s) => s.tcpPort === port)!.id;
const statOf = (port: number) => cluster.stats().find((s) => s.id === idOf(port))!;

describe('cluster.stats() and eject/recover on real sockets', () => {
  it('counts picks, measures connect RTT and counts open connections in the estimated load', async () => {
    for (let i = 0; i < 30; i++) held.push(await cluster.connect({ attempts: 1, timeoutMs: 2000 }));
    await until(() => srvs.reduce((n, s) => n + s.accepted.size, 0) === 30, 5000, 'the servers accept all 30');
    const stats = cluster.stats();
    expect(stats).toHaveLength(3);
    for (const s of srvs) {
      const st = statOf(s.port);
      expect(st.picks, st.id).toBe(s.total); // what the client counted = what the server saw
      expect(st.picks).toBe(10); // round robin
      expect(st.failures).toBe(0);
      expect(st.ejections).toBe(0);
      expect(st.ejected).toBe(false);
      expect(st.health).toBe('healthy');
      expect(st.active).toBe(10);
      expect(st.rttMs, st.id).toBeGreaterThan(0);
      expect(st.rttMs, st.id).toBeLessThan(2000);
      expect(st.estimatedLoad, st.id).toBeGreaterThanOrEqual(10);
    }
    // Closing the connections takes them out of the estimate (no load reports: it is our own count).
    const load0 = statOf(srvs[0]!.port).estimatedLoad;
    for (const s of held.splice(0)) s.destroy();
    await until(() => cluster.stats().every((s) => s.active === 0), 5000, 'active back to 0');
    expect(statOf(srvs[0]!.port).estimatedLoad).toBeLessThan(load0);
    // pick() counts as a pick, not as a connection.
    const before = cluster.stats().reduce((n, s) => n + s.picks, 0);
    for (let i = 0; i < 9; i++) cluster.pick();
    expect(cluster.stats().reduce((n, s) => n + s.picks, 0)).toBe(before + 9);
    expect(cluster.stats().every((s) => s.active === 0)).toBe(true);
  });

  it('ejects a server after consecutive refusals, then recovers it when it listens again', async () => {
    const gone = srvs[2]!;
    const goneId = idOf(gone.port);
    await shut(gone);
    let refused = 0;
    for (let i = 0; i < 30 && !events.some((e) => e.kind === 'eject'); i++) {
      try {
        (await cluster.connect({ attempts: 1, timeoutMs: 2000 })).destroy();
      } catch (err) {
        expect(err).toBeInstanceOf(AllAttemptsFailedError);
        refused++;
      }
    }
    expect(refused).toBe(2);
    const ej = events.find((e) => e.kind === 'eject')!;
    expect(ej).toMatchObject({ id: goneId, info: { consecutiveFailures: 2, level: 0 } });
    expect(ej.info!.until - ej.at).toBeGreaterThan(400);
    expect(ej.info!.until - ej.at).toBeLessThanOrEqual(500);
    expect(statOf(gone.port)).toMatchObject({ failures: 2, ejections: 1, ejected: true });
    // Ejected: no picks go to it, and connects succeed on the others without a failed attempt.
    for (let i = 0; i < 12; i++) expect(cluster.pick()?.id).not.toBe(goneId);
    for (let i = 0; i < 6; i++) (await cluster.connect({ attempts: 1, timeoutMs: 2000 })).destroy();
    expect(statOf(gone.port).failures).toBe(2);

    // Back on the same port: the ejection ends by itself (500 ms), 'recover' fires, picks return.
    await listen(gone);
    await until(() => events.some((e) => e.kind === 'recover'), 5000, "'recover' event");
    const rec = events.find((e) => e.kind === 'recover')!;
    expect(rec.id).toBe(goneId);
    expect(rec.at).toBeGreaterThanOrEqual(ej.info!.until - 50);
    expect(statOf(gone.port)).toMatchObject({ ejected: false, ejections: 1, failures: 2 });
    const totalBefore = gone.total;
    for (let i = 0; i < 6; i++) (await cluster.connect({ attempts: 1, timeoutMs: 2000 })).destroy();
    await until(() => gone.total >= totalBefore + 2, 5000, 'connects reach the recovered server');
    expect(events.map((e) => e.kind)).toEqual(['eject', 'recover']);
  });
});
