/**
 * The real WebSocket transport on loopback: each "agent" is a tiny HTTP server on port 0 that
 * hands /v1/gossip upgrades to its transport, as the agent's one HTTP server does. Real sockets and
 * real time: these tests wait (bounded) for sockets, never for protocol timers they could advance.
 */
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createWsTransport, ADDR_HEADER, type FrameSealer, type WsTransport, type WsTransportOptions } from '../../../../agent/gossip/ws-transport.js';
import { Membership } from '../../../../agent/gossip/membership.js';
import type { GossipConfig } from '../../../../agent/gossip/config.js';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { until } from '../../../support/until.js';

interface Node {
  server: http.Server;
  t: WsTransport;
  addr: string;
  frames: Array<[string, string]>;
  hints: string[];
}

const open: Node[] = [];

async function node(opts: Partial<WsTransportOptions> = {}): Promise<Node> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const t = createWsTransport({ addr, maxFrameBytes: 64 * 1024, ...opts });
  server.on('upgrade', (req, socket, head) => {
    if (req.url === '/v1/gossip') t.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  const n: Node = { server, t, addr, frames: [], hints: [] };
  t.onFrame((from, f) => n.frames.push([from, Buffer.from(f).toString()]));
  t.onPeerClosed((a) => n.hints.push(a));
  open.push(n);
  return n;
}

async function shut(n: Node): Promise<void> {
  const i = open.indexOf(n);
  if (i >= 0) open.splice(i, 1);
  await n.t.close();
  n.server.closeAllConnections();
  await new Promise<void>((resolve) => n.server.close(() => resolve()));
}

afterEach(async () => {
  await Promise.all([...open].map(shut));
});


const b = (s: string) => Buffer.from(s);

describe('WsTransport', () => {
  it('sends binary frames both ways over one lazily opened socket per peer; the peer says its address', async () => {
    const a = await node();
    const c = await node();
    a.t.send(c.addr, b('one'));
    a.t.send(c.addr, b('two')); // queued while connecting, then flushed in order
    c.t.send(a.addr, b('back'));
    await until(() => c.frames.length === 2 && a.frames.length === 1, 5000, 'frames');
    expect(c.frames).toEqual([
      [a.addr, 'one'],
      [a.addr, 'two'],
    ]);
    expect(a.frames).toEqual([[c.addr, 'back']]);
    a.t.send(c.addr, b('three'));
    await until(() => c.frames.length === 3, 5000, 'third frame');
    expect(a.t.counters()).toMatchObject({ framesOut: 3, connects: 1 });
    expect(c.t.counters()).toMatchObject({ framesIn: 3, inboundAccepted: 1 });
  });

  it('drops and counts frames over the limit, and bad addresses; send never throws', async () => {
    const a = await node({ maxFrameBytes: 100 });
    const c = await node();
    a.t.send(c.addr, Buffer.alloc(101));
    a.t.send('http://not-ws', b('x'));
    a.t.send('::garbage::', b('x'));
    a.t.send(c.addr, b('ok'));
    await until(() => c.frames.length === 1, 5000, 'the small frame');
    expect(a.t.counters().dropped).toMatchObject({ tooLarge: 1, badAddr: 2 });
  });

  it('a wire frame over maxPayload closes that socket at the receiver (and the sender gets a hint)', async () => {
    const a = await node({ maxFrameBytes: 1 << 20 });
    const c = await node({ maxFrameBytes: 1000 });
    a.t.send(c.addr, b('hello'));
    await until(() => c.frames.length === 1, 5000, 'hello');
    a.t.send(c.addr, Buffer.alloc(5000));
    await until(() => a.hints.includes(c.addr), 5000, 'hint at the sender');
    expect(c.t.counters().dropped.tooLarge).toBe(1);
    a.t.send(c.addr, b('again')); // reconnects on the next send
    await until(() => c.frames.length === 2, 5000, 'again');
    expect(a.t.counters().connects).toBe(2);
  });

  it('seals every frame; a frame that does not open is dropped and counted', async () => {
    const sealer = (key: number): FrameSealer => ({
      seal: (f) => Buffer.concat([Buffer.from([key]), Buffer.from(f).map((x) => x ^ key)]),
      open: (w) => (w[0] === key ? Buffer.from(w.subarray(1)).map((x) => x ^ key) : undefined),
    });
    const a = await node({ seal: sealer(7) });
    const c = await node({ seal: sealer(7) });
    const stranger = await node({ seal: sealer(9) });
    a.t.send(c.addr, b('secret'));
    stranger.t.send(c.addr, b('intruder'));
    await until(() => c.frames.length === 1 && c.t.counters().dropped.unsealed === 1, 5000, 'one opened, one refused');
    expect(c.frames).toEqual([[a.addr, 'secret']]);
  });

  it('bounds the bytes pending for a peer: past it frames are dropped and counted', async () => {
    const a = await node({ maxPendingBytes: 1000 });
    const c = await node();
    for (let i = 0; i < 50; i++) a.t.send(c.addr, Buffer.alloc(100, 1)); // all while connecting
    await until(() => c.frames.length >= 10, 5000, 'the first frames');
    expect(c.frames).toHaveLength(10);
    expect(a.t.counters().dropped.slow).toBe(40);
  });

  it('a peer that cannot be reached, or whose socket closes, is reported as a hint', async () => {
    const a = await node();
    // a port with nothing listening
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const dead = `ws://127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
    await new Promise<void>((r) => probe.close(() => r()));
    a.t.send(dead, b('anyone?'));
    await until(() => a.hints.includes(dead), 5000, 'hint for a refused connection');
    expect(a.t.counters()).toMatchObject({ connectFailures: 1, dropped: { closed: 1 } });

    // c talks to a (so a has an inbound socket from c, and c an outbound one); c goes away
    const c = await node();
    c.t.send(a.addr, b('hi'));
    a.t.send(c.addr, b('hi back'));
    await until(() => a.frames.length === 1 && c.frames.length === 1, 5000, 'hellos');
    await shut(c);
    await until(() => a.hints.filter((h) => h === c.addr).length >= 1, 5000, 'hint when the peer closes');
  });

  it('accepts an inbound socket without the address header (no hint for it), and ignores text frames', async () => {
    const a = await node();
    const ws = new WebSocket(`${a.addr}/v1/gossip`);
    await new Promise((r) => ws.once('open', r));
    ws.send('text is not gossip');
    ws.send(b('binary'), { binary: true });
    await until(() => a.frames.length === 1, 5000, 'the binary frame');
    expect(a.frames[0]![0]).toMatch(/^inbound:127\.0\.0\.1:\d+$/);
    expect(a.t.counters().dropped.notBinary).toBe(1);
    ws.close();
    await new Promise((r) => ws.once('close', r));
    expect(a.hints).toEqual([]);
    expect(ADDR_HEADER).toBe('x-peerlb-addr');
  });

  it('the hello deadlines and the auth-failure block run on the injected clock, not on real time', async () => {
    const clock = new ManualClock(1_000_000);
    const hour = 3600_000;
    const silent = async (n: Node) => {
      const ws = new WebSocket(`${n.addr}/v1/gossip`);
      await new Promise((r) => ws.once('open', r));
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      return { ws, closed };
    };
    // An open cluster: a socket that says nothing is closed at firstFrameTimeoutMs on the clock.
    const a = await node({ clock, firstFrameTimeoutMs: hour });
    const s1 = await silent(a);
    await until(() => a.t.counters().inboundAccepted === 1, 5000, 'the socket accepted');
    expect(a.t.counters().firstFrameTimeouts).toBe(0);
    clock.advance(hour);
    expect(await s1.closed).toBe(1008);
    expect(a.t.counters().firstFrameTimeouts).toBe(1);

    // Sealed: no authentic frame by authTimeoutMs is a cut and a strike; at max 1 the address is
    // blocked (429) until blockMs have passed on the clock.
    const sealer: FrameSealer = { seal: (f) => f, open: () => undefined };
    const c = await node({ clock, seal: sealer, authTimeoutMs: hour, firstFrameTimeoutMs: hour, authFailures: { max: 1, windowMs: hour, blockMs: hour } });
    const s2 = await silent(c);
    await until(() => c.t.counters().inboundAccepted === 1, 5000, 'the sealed socket accepted');
    clock.advance(hour);
    expect(await s2.closed).toBe(1008);
    expect(c.t.counters().authCutoffs).toBe(1);
    const status = () =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${c.addr}/v1/gossip`);
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.once('open', () => {
          resolve(101);
          ws.terminate();
        });
        ws.once('error', () => {});
      });
    expect(await status()).toBe(429);
    clock.advance(hour - 1);
    expect(await status()).toBe(429);
    clock.advance(1);
    expect(await status()).toBe(101);
  });

  it('after close(), sends are dropped and upgrades refused', async () => {
    const a = await node();
    const c = await node();
    await a.t.close();
    a.t.send(c.addr, b('x'));
    expect(a.t.counters().dropped.closed).toBe(1);
    const ws = new WebSocket(`${a.addr}/v1/gossip`);
    const outcome = await new Promise<string>((r) => {
      ws.once('open', () => r('open'));
      ws.once('error', () => r('error'));
    });
    expect(outcome).toBe('error');
  });
});

describe('Membership over WsTransport on loopback', () => {
  // Fast timers so the test takes well under a second of real time per phase.
  const config: Partial<GossipConfig> = { probeIntervalMs: 100, probeTimeoutMs: 50, gossipIntervalMs: 50, joinRetryMs: 100, pushPullIntervalMs: 1000, suspicionMult: 2 };
  const meta = (id: string, port: number) => ({ id, service: 'game', host: '127.0.0.1', tcpPort: port, weight: 100, health: 'healthy' as const });

  it('three agents converge; one crashes (its sockets close) → the others get a hint, probe, and confirm it dead', async () => {
    const nodes = await Promise.all([node(), node(), node()]);
    const ms = nodes.map(
      (n, i) => new Membership({ node: `w${i}`, meta: meta(`w${i}`, 7000 + i), transport: n.t, config }),
    );
    try {
      ms[0]!.start([]);
      ms[1]!.start([nodes[0]!.addr]);
      ms[2]!.start([nodes[0]!.addr]);
      const alive = (i: number) => ms[i]!.members().filter((m) => m.status === 'alive').length === 3;
      await until(() => [0, 1, 2].every(alive), 10_000, 'three alive everywhere');
      ms[2]!.setLoad({ connections: 3, sessions: 1, utilization: 0.2, seq: 1 });
      await until(() => ms[0]!.member('w2')?.load?.connections === 3 && ms[1]!.member('w2')?.load?.connections === 3, 5000, 'load');

      // w2 "crashes": its protocol stops and its sockets close, as when the process is killed.
      const falseDeaths: string[] = [];
      for (const i of [0, 1]) ms[i]!.on('change', (m) => m.status === 'dead' && m.node !== 'w2' && falseDeaths.push(m.node));
      const hintsBefore = ms[0]!.stats().hints + ms[1]!.stats().hints;
      ms[2]!.stop();
      await shut(nodes[2]!);
      const took = await until(() => ms[0]!.statusOf('w2') === 'dead' && ms[1]!.statusOf('w2') === 'dead', 10_000, 'w2 dead at w0 and w1');
      expect(ms[0]!.stats().hints + ms[1]!.stats().hints).toBeGreaterThan(hintsBefore);
      expect(ms[0]!.stats().hintProbes + ms[1]!.stats().hintProbes).toBeGreaterThan(0);
      expect(ms[0]!.stats().suspicions + ms[0]!.stats().confirmations).toBeGreaterThan(0);
      expect(falseDeaths).toEqual([]);
      expect(took).toBeLessThan(5000);
      expect(ms[0]!.statusOf('w1')).toBe('alive');
      expect(ms[1]!.statusOf('w0')).toBe('alive');
    } finally {
      for (const m of ms) m.stop();
    }
  });
});
