/**
 * The `ws` health probe (agent/health/probes.ts probeWs) against real sockets on loopback: an
 * open on the right path succeeds and closes with 1000, a wrong path or a closed port fails with
 * the reason, a server that accepts TCP but never answers the upgrade times out on the clock, and
 * the checker runs it (type 'ws').
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { HealthChecker, probeWs } from '../../../agent/health/index.js';
import { ManualClock, systemClock } from '../../../sdk/core/clock.js';
import { BadOptionError } from '../../../sdk/core/errors.js';
import { until } from '../../support/until.js';

const H = '127.0.0.1';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function wsServer(path: string): Promise<{ port: number; closes: number[]; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: H, port: 0, path });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const closes: number[] = [];
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('close', (code) => closes.push(code));
  });
  const close = () =>
    new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => r());
    });
  return { port: (wss.address() as net.AddressInfo).port, closes, close };
}

describe('ws probe', () => {
  it('opens ws://host:port/path, succeeds, and closes the socket with 1000', async () => {
    const srv = await wsServer('/g');
    cleanups.push(srv.close);
    const r = await probeWs({ host: H, port: srv.port, path: '/g', timeoutMs: 2000 });
    expect(r).toMatchObject({ ok: true, reason: `ws open ws://${H}:${srv.port}/g: ok` });
    expect(r.rttMs).toBeGreaterThanOrEqual(0);
    await until(() => srv.closes.length === 1, 5000, 'the server saw the close');
    expect(srv.closes).toEqual([1000]);
  });

  it('fails on a wrong path (the server refuses the upgrade) and on a closed port', async () => {
    const srv = await wsServer('/g');
    cleanups.push(srv.close);
    const wrong = await probeWs({ host: H, port: srv.port, path: '/other', timeoutMs: 2000 });
    expect(wrong.ok).toBe(false);
    expect(wrong.reason).toMatch(/^ws open ws:\/\/127\.0\.0\.1:\d+\/other: Unexpected server response: 400/);
    const port = srv.port;
    await srv.close();
    cleanups.pop();
    const refused = await probeWs({ host: H, port, timeoutMs: 2000 });
    expect(refused).toMatchObject({ ok: false });
    expect(refused.reason).toMatch(/ECONNREFUSED/);
  });

  it('times out on the clock against a server that accepts TCP and never answers the upgrade', async () => {
    const sockets = new Set<net.Socket>();
    let closed = 0;
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => closed++);
      s.resume(); // read (and drop) the upgrade request, so the client's close is seen
    });
    await new Promise<void>((r) => silent.listen(0, H, () => r()));
    cleanups.push(() => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      silent.close(() => r());
    }));
    const port = (silent.address() as net.AddressInfo).port;
    const clock = new ManualClock();
    const p = probeWs({ host: H, port, path: '/', tls: false, timeoutMs: 300 }, { clock });
    await until(() => sockets.size === 1, 5000, 'the probe connected');
    clock.advance(300);
    const r = await p;
    expect(r).toMatchObject({ ok: false, rttMs: undefined, reason: `ws open ws://${H}:${port}/: no answer within 300 ms` });
    // The probe's socket is gone (terminated), not left open on the server.
    await until(() => closed === 1, 5000, 'the probe socket closed');
  });

  it('the checker runs a ws check: healthy after rise, unhealthy after fall once the server is gone', async () => {
    const srv = await wsServer('/');
    cleanups.push(() => srv.close());
    const hc = new HealthChecker({ type: 'ws', host: H, port: srv.port }, { intervalMs: 50, rise: 1, fall: 1, clock: systemClock });
    cleanups.push(() => hc.stop());
    hc.start();
    await until(() => hc.state === 'healthy', 5000, 'healthy');
    await srv.close();
    await until(() => hc.state === 'unhealthy', 5000, 'unhealthy');
    expect(() => new HealthChecker({ type: 'ws', host: H, port: 1, path: 'nope' })).toThrow(BadOptionError);
    expect(() => new HealthChecker({ type: 'ws', host: H, port: 1, tls: 'yes' as unknown as boolean })).toThrow(/health.tls/);
  });
});
