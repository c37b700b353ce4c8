/**
 * `connect` against real loopback servers: failover, attempts, per-attempt timeout and abort.
 *
 * Timeouts are produced honestly: a blackhole port whose accept queue is full makes Linux drop the
 * SYN, so the connect really hangs until our timer fires (see startBlackhole). Only lower bounds
 * and generous upper bounds are asserted on real time.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../sdk/core/clock.js';
import { AbortedError, AllAttemptsFailedError, BadOptionError, NoServersError } from '../../../sdk/core/errors.js';
import { closedPort, startBlackhole, type Blackhole } from '../../support/servers.js';
import { until } from '../../support/until.js';
import { closeServers, rec, startServers, testCluster, type TestCluster, type TestServer } from '../../support/balancer-fixtures.js';

let servers: TestServer[] = [];
let clusters: TestCluster[] = [];
let held: net.Socket[] = [];
let holes: Blackhole[] = [];

afterEach(async () => {
  for (const s of held) s.destroy();
  held = [];
  for (const c of clusters) c.close();
  clusters = [];
  await Promise.all(holes.map((h) => h.close()));
  holes = [];
  await closeServers(servers);
  servers = [];
});

function track(c: TestCluster): TestCluster {
  clusters.push(c);
  return c;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    const v = await p;
    if (v && typeof (v as net.Socket).destroy === 'function') held.push(v as net.Socket);
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('failover', () => {
  it('a refused server is recorded as failed and the connect succeeds on another', async () => {
    servers = await startServers(3);
    const c = track(testCluster(servers.map((s) => s.record()), { strategy: 'round-robin' }));
    await servers[0]!.tcp.kill();
    // Round robin visits a once every 3 picks: 6 connects try a at least twice.
    for (let i = 0; i < 6; i++) {
      const sock = await c.connect();
      held.push(sock);
      expect(sock.remotePort).not.toBe(servers[0]!.tcp.port);
    }
    const a = c.b.get('a')!;
    expect(a.failures).toBeGreaterThanOrEqual(2);
    expect(a.active).toBe(0); // a failed attempt does not stay counted as a connection
    expect(c.b.get('b')!.failures + c.b.get('c')!.failures).toBe(0);
    await until(() => servers[1]!.tcp.accepted + servers[2]!.tcp.accepted === 6, 5000, '6 accepted by b and c');
    expect(servers[1]!.tcp.accepted).toBeGreaterThan(0);
    expect(servers[2]!.tcp.accepted).toBeGreaterThan(0);
  });

  it('when every server refuses, the error lists each attempt with its reason', async () => {
    const ports = [await closedPort(), await closedPort(), await closedPort()];
    const c = track(testCluster(ports.map((p, i) => rec(`x${i}`, { tcpPort: p })), {}));
    const err = await rejection(c.connect({ attempts: 5 }));
    expect(err).toBeInstanceOf(AllAttemptsFailedError);
    const e = err as AllAttemptsFailedError;
    expect(e.code).toBe('PEERLB_ERR_ALL_ATTEMPTS_FAILED');
    // 5 attempts allowed, 3 servers: each tried once, never twice
    expect(e.attempts.map((a) => a.server).sort()).toEqual(['x0', 'x1', 'x2']);
    for (const a of e.attempts) expect(a.error).toBe('ECONNREFUSED');
  });

  it('attempts bounds the servers tried', async () => {
    const ports = [await closedPort(), await closedPort(), await closedPort()];
    const c = track(testCluster(ports.map((p, i) => rec(`x${i}`, { tcpPort: p })), {}));
    const one = (await rejection(c.connect({ attempts: 1 }))) as AllAttemptsFailedError;
    expect(one.attempts.length).toBe(1);
    const two = (await rejection(c.connect({ attempts: 2 }))) as AllAttemptsFailedError;
    expect(two.attempts.length).toBe(2);
    expect(new Set(two.attempts.map((a) => a.server)).size).toBe(2);
    // the cluster default (connectAttempts) applies when the call gives none
    const c1 = track(testCluster(ports.map((p, i) => rec(`x${i}`, { tcpPort: p })), { connectAttempts: 1 }));
    expect(((await rejection(c1.connect())) as AllAttemptsFailedError).attempts.length).toBe(1);
  });

  it('bad per-call options are rejected with a BadOptionError naming them', async () => {
    servers = await startServers(1);
    const c = track(testCluster(servers.map((s) => s.record())));
    for (const [opts, option] of [
      [{ attempts: 0 }, 'attempts'],
      [{ attempts: 1.5 }, 'attempts'],
      [{ timeoutMs: 0 }, 'timeoutMs'],
      [{ timeoutMs: Number.NaN }, 'timeoutMs'],
    ] as const) {
      const err = await rejection(c.connect(opts));
      expect(err).toBeInstanceOf(BadOptionError);
      expect((err as BadOptionError).option).toBe(option);
    }
    expect(servers[0]!.tcp.accepted).toBe(0);
  });

  it('no servers known: NoServersError', async () => {
    const c = track(testCluster([]));
    const err = await rejection(c.connect());
    expect(err).toBeInstanceOf(NoServersError);
  });

  it('a socket option net.connect throws on rejects that connect, and leaves no connection counted', async () => {
    servers = await startServers(2);
    const c = track(testCluster(servers.map((s) => s.record())));
    for (let i = 0; i < 3; i++) {
      const err = await rejection(c.connect({ socket: { localAddress: 'not-an-ip' } }));
      expect((err as NodeJS.ErrnoException).code).toBe('ERR_INVALID_IP_ADDRESS');
    }
    expect(c.b.get('a')!.active + c.b.get('b')!.active).toBe(0);
    // …and the cluster still connects normally.
    held.push(await c.connect());
    await until(() => servers[0]!.tcp.accepted + servers[1]!.tcp.accepted === 1, 5000, 'one accepted');
  });

  it('a server without a TCP port is skipped', async () => {
    servers = await startServers(1);
    const c = track(testCluster([rec('udp-only', { tcpPort: undefined, udpPort: 9 }), servers[0]!.record()], { strategy: 'round-robin' }));
    for (let i = 0; i < 4; i++) held.push(await c.connect());
    await until(() => servers[0]!.tcp.accepted === 4, 5000, '4 accepted');
  });
});

describe('timeoutMs against a port whose accept queue is full', () => {
  it('a connect that hangs fails after timeoutMs with ETIMEDOUT, feeding the failure', async () => {
    const hole = await startBlackhole();
    holes.push(hole);
    const c = track(testCluster([rec('hole', { tcpPort: hole.port })]));
    let settled = false;
    const p = rejection(c.connect({ timeoutMs: 250, attempts: 1 })).finally(() => (settled = true));
    // The deadline is on the cluster's clock (a ManualClock here): the connect hangs, in real time,
    // until that clock passes it.
    await new Promise((r) => setTimeout(r, 100));
    c.clock.advance(249);
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    expect(c.b.get('hole')!.active).toBe(1);
    c.clock.advance(1);
    const err = (await p) as AllAttemptsFailedError;
    expect(err).toBeInstanceOf(AllAttemptsFailedError);
    expect(err.attempts).toEqual([{ server: 'hole', address: `127.0.0.1:${hole.port}`, error: 'ETIMEDOUT' }]);
    const h = c.b.get('hole')!;
    expect(h.failures).toBe(1);
    expect(h.rtt).toBeGreaterThanOrEqual(250); // the timeout counts as a slow sample
    expect(h.active).toBe(0);
  });

  it('on the system clock, a connect that hangs fails after timeoutMs in real time', async () => {
    const hole = await startBlackhole();
    holes.push(hole);
    const c = track(testCluster([rec('hole', { tcpPort: hole.port })], { clock: systemClock }));
    const t0 = performance.now();
    const err = (await rejection(c.connect({ timeoutMs: 250, attempts: 1 }))) as AllAttemptsFailedError;
    const took = performance.now() - t0;
    expect(err.attempts).toEqual([{ server: 'hole', address: `127.0.0.1:${hole.port}`, error: 'ETIMEDOUT' }]);
    expect(took).toBeGreaterThanOrEqual(240);
    expect(took).toBeLessThan(10_000); // not the kernel's SYN timeout (≈ 2 min)
    expect(c.b.get('hole')!.active).toBe(0);
  });

  it('fails over from a hanging server to a live one', async () => {
    const hole = await startBlackhole();
    holes.push(hole);
    servers = await startServers(1);
    // round-robin from a seeded start: find a seed whose first pick is the hole, so the hole is tried first
    let c!: TestCluster;
    for (let seed = 1; seed < 50; seed++) {
      c = testCluster([rec('hole', { tcpPort: hole.port }), servers[0]!.record()], { strategy: 'round-robin' }, seed);
      if (c.b.pick(-1)!.id === 'hole') {
        c.close();
        c = testCluster([rec('hole', { tcpPort: hole.port }), servers[0]!.record()], { strategy: 'round-robin' }, seed);
        break;
      }
      c.close();
    }
    track(c);
    const p = c.connect({ timeoutMs: 200, attempts: 2 });
    await new Promise((r) => setTimeout(r, 50));
    expect(c.b.get('hole')!.active).toBe(1);
    c.clock.advance(200); // the hole's deadline, on the cluster's clock
    const sock = await p;
    held.push(sock);
    expect(sock.remotePort).toBe(servers[0]!.tcp.port);
    expect(c.b.get('hole')!.failures).toBe(1);
    expect(c.b.get('a')!.failures).toBe(0);
  });
});

describe('signal', () => {
  it('an already aborted signal rejects without connecting', async () => {
    servers = await startServers(1);
    const c = track(testCluster(servers.map((s) => s.record())));
    const ac = new AbortController();
    ac.abort(new Error('gave up'));
    const err = await rejection(c.connect({ signal: ac.signal }));
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).cause).toEqual(new Error('gave up'));
    await new Promise((r) => setTimeout(r, 50));
    expect(servers[0]!.tcp.accepted).toBe(0);
    expect(c.b.get('a')!.active).toBe(0);
  });

  it('aborting a hanging connect rejects at once, without blaming the server', async () => {
    const hole = await startBlackhole();
    holes.push(hole);
    const c = track(testCluster([rec('hole', { tcpPort: hole.port })]));
    const ac = new AbortController();
    const p = rejection(c.connect({ signal: ac.signal, timeoutMs: 60_000 }));
    await new Promise((r) => setTimeout(r, 100));
    expect(c.b.get('hole')!.active).toBe(1); // counted while connecting
    const t0 = performance.now();
    ac.abort();
    const err = await p;
    expect(err).toBeInstanceOf(AbortedError);
    expect(performance.now() - t0).toBeLessThan(1000);
    const h = c.b.get('hole')!;
    expect(h.failures).toBe(0);
    expect(h.active).toBe(0);
  });

  it('an abort after connecting does not touch the socket', async () => {
    servers = await startServers(1);
    const c = track(testCluster(servers.map((s) => s.record())));
    const ac = new AbortController();
    const sock = await c.connect({ signal: ac.signal });
    held.push(sock);
    ac.abort();
    await new Promise((r) => setTimeout(r, 20));
    expect(sock.destroyed).toBe(false);
    expect(c.b.get('a')!.active).toBe(1);
    sock.destroy();
    await until(() => c.b.get('a')!.active === 0, 5000, 'released on close');
  });
});

describe('leases: every path of a connect ends its lease once', () => {
  it('ok then closed, refused, timed out, aborted, failed over: the active counts back at 0 and no deadline pending', async () => {
    const hole = await startBlackhole();
    holes.push(hole);
    servers = await startServers(2);
    const refused = await closedPort();
    const c = track(
      testCluster([servers[0]!.record(), servers[1]!.record(), rec('refused', { tcpPort: refused }), rec('hole', { tcpPort: hole.port })], { strategy: 'round-robin', outlier: { consecutiveFailures: 1000 } }),
    );
    const sum = () => c.b.list().reduce((n, s) => n + s.active, 0);
    // Connects with failover through the refused server and the hole: the hole's deadline is on
    // the cluster's clock, advanced while an attempt hangs there.
    const socks: net.Socket[] = [];
    for (let i = 0; i < 8; i++) {
      const p = c.connect({ timeoutMs: 100, attempts: 4 });
      let done = false;
      void p.finally(() => (done = true)).catch(() => {});
      for (let k = 0; k < 200 && !done; k++) {
        await new Promise((r) => setTimeout(r, 5));
        if (c.b.get('hole')!.active > 0) c.clock.advance(100); // only the hole's attempt hangs: time it out
      }
      socks.push(await p);
    }
    expect(c.b.get('refused')!.failures + c.b.get('hole')!.failures).toBeGreaterThanOrEqual(4);
    // Aborted while hanging on the hole.
    const ac = new AbortController();
    const only = track(testCluster([rec('hole', { tcpPort: hole.port })]));
    const aborted = rejection(only.connect({ signal: ac.signal, timeoutMs: 60_000 }));
    expect(only.b.get('hole')!.active).toBe(1);
    ac.abort();
    expect(await aborted).toBeInstanceOf(AbortedError);
    expect(only.b.get('hole')!.active).toBe(0);
    expect(only.b.deadlines.size).toBe(0);
    // The connected ones count until their sockets close.
    expect(sum()).toBe(8);
    expect(c.b.deadlines.size).toBe(0);
    for (const s of socks) s.destroy();
    await until(() => sum() === 0, 5000, 'every connection released on close');
    for (const s of c.b.list()) expect(s.active, s.id).toBe(0);
  });
});
