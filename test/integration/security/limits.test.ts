/**
 * Limits through real sockets, each with a clear refusal and an agent that keeps running:
 * oversized gossip frames (1009, counted as too_large), the member limit, stalled and slow peers
 * cut off (pending bytes), and the rate limit on connections that fail authentication (429, then
 * allowed again after the block). (The subscriber limit is in watch.test.ts.)
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../../agent/index.js';
import { createWsTransport } from '../../../agent/gossip/ws-transport.js';
import { agent, alive, known, until, sleep, rawGossip, newKey, sealerFor, frame, meta, droppedByReason } from '../../support/security.js';

const running: Agent[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});
async function start(node: string, opts: Parameters<typeof agent>[1] = {}): Promise<Agent> {
  const a = await agent(node, opts);
  running.push(a);
  return a;
}
const health = async (a: Agent) => (await fetch(`http://127.0.0.1:${a.port}/v1/health`, { signal: AbortSignal.timeout(3000) })).json();

describe('limits', () => {
  it('an oversized gossip frame closes that socket with 1009 and is counted; a sealed frame whose content is over the limit is dropped; the agent keeps running', async () => {
    const key = newKey();
    const a = await start('big1', { keyring: [key], limits: { maxFrameBytes: 4096 } });
    const b = await start('big2', { keyring: [key], join: [a.url], limits: { maxFrameBytes: 4096 } });
    await until(() => alive(a).length === 2, 5000, 'big1 and big2');
    // On the wire: over maxFrameBytes + the seal allowance.
    const c = await rawGossip(a.url);
    c.send(Buffer.alloc(64 * 1024, 7));
    const closed = await c.closed;
    expect(closed.code).toBe(1009); // RFC 6455: message too big
    // Sealed, authentic, small enough on the wire, but its content is over maxFrameBytes.
    const big = frame({
      type: 'gossip',
      from: { node: 'x', addr: 'ws://127.0.0.9:1' },
      piggyback: { updates: Array.from({ length: 120 }, (_, i) => ({ kind: 'alive' as const, node: `bulk-${i}`, incarnation: 1, addr: 'ws://127.0.0.9:1', meta: meta(`bulk-${i}`) })), loads: [] },
    });
    expect(big.length).toBeGreaterThan(4096);
    const c2 = await rawGossip(a.url);
    c2.send(Buffer.from(sealerFor(key).seal(big.subarray(0, 4096 + 500), c2.binding)));
    await sleep(300);
    const d = await droppedByReason(a.port);
    expect(d.too_large).toBe(2);
    expect(await health(a)).toEqual({ node: 'big1', health: 'healthy' });
    expect(known(a)).toEqual(['big1', 'big2']);
    await sleep(1000);
    expect(alive(a)).toEqual(['big1', 'big2']);
    expect(alive(b)).toEqual(['big1', 'big2']);
  });

  it('maxMembers: an agent remembers at most that many members, counts and logs the refusals, and keeps gossiping with those it has', async () => {
    const a = await start('mm1', { limits: { maxMembers: 3 } });
    const others: Agent[] = [];
    for (let i = 2; i <= 5; i++) others.push(await start(`mm${i}`, { join: [a.url] }));
    // Generous: a limit test, not a timing one, and the suite may be running a demo beside it.
    await until(() => others.every((o) => alive(o).length === 5), 20_000, 'the others to see five');
    await sleep(500);
    expect(known(a).length).toBe(3);
    expect(known(a)).toContain('mm1');
    expect(a.gossipStats().membersRefused).toBeGreaterThan(0);
    expect(await health(a)).toMatchObject({ health: 'healthy' });
    // A member it has keeps reporting to it.
    const kept = others.find((o) => known(a).includes(o.node))!;
    kept.report({ sessions: 42 });
    await until(() => a.members().find((m) => m.node === kept.node)?.load?.sessions === 42, 5000, 'a load update from a kept member');
  }, 45_000);

  it('a stalled peer (accepts the socket, never reads) is cut off once over maxPendingBytes for slowPeerMs; frames meanwhile are dropped and counted; the transport sends on to others', async () => {
    // The stalled peer: completes the WebSocket upgrade by hand, then never reads again.
    const stalled: net.Socket[] = [];
    const stall = createServer();
    stall.on('upgrade', (req, socket: net.Socket) => {
      const accept = wsAccept(req.headers['sec-websocket-key'] as string);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
      socket.pause();
      stalled.push(socket);
    });
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', () => r()));
    closers.push(async () => {
      stalled.forEach((s) => s.destroy());
      await new Promise<void>((r) => stall.close(() => r()));
    });
    const healthy = await start('sink1');
    const t = createWsTransport({ addr: 'ws://127.0.0.1:1', maxFrameBytes: 1 << 20, maxPendingBytes: 256 * 1024, slowPeerMs: 300 });
    closers.push(() => t.close());
    const to = `ws://127.0.0.1:${(stall.address() as net.AddressInfo).port}`;
    const chunk = Buffer.alloc(128 * 1024, 1);
    const end = Date.now() + 10_000;
    let sent = 0;
    while (t.counters().slowCutoffs === 0 && Date.now() < end) {
      t.send(to, chunk);
      // Meanwhile the healthy agent keeps getting frames (decode errors there: they are junk).
      t.send(healthy.url, Buffer.from([0x90]));
      sent++;
      await sleep(5);
    }
    const c = t.counters();
    console.log(`stalled peer: cut off after ${sent} frames of 128 KiB; ${c.dropped.slow} dropped as slow`);
    expect(c.slowCutoffs).toBe(1);
    expect(c.dropped.slow).toBeGreaterThan(0);
    // The healthy peer got its frames all along.
    expect(healthy.gossipStats().transport.framesIn).toBeGreaterThanOrEqual(sent - 5);
  });

  it('rate limit: an address whose sockets fail authentication limits.authFailures times is refused (429) for authBlockMs; other addresses and members are not; then it may try again', async () => {
    const key = newKey();
    const a = await start('rl1', { keyring: [key], limits: { authFailures: 5, authFailureWindowMs: 10_000, authBlockMs: 1500 } });
    const b = await start('rl2', { keyring: [key], join: [a.url] });
    await until(() => alive(a).length === 2, 5000, 'rl1 and rl2');
    const attacker = '127.0.0.77';
    for (let i = 0; i < 5; i++) {
      const c = await rawGossip(a.url, { localAddress: attacker });
      c.send(Buffer.from(`garbage ${i}`));
      expect((await c.closed).code).toBe(1008);
    }
    const refused = await rawGossip(a.url, { localAddress: attacker }).then(
      () => 0,
      (e: { status?: number }) => e.status ?? -1,
    );
    expect(refused).toBe(429);
    expect((await droppedByReason(a.port)).rate_limited).toBeGreaterThanOrEqual(1);
    // Another address is not blocked…
    const other = await rawGossip(a.url, { localAddress: '127.0.0.78' });
    other.ws.terminate();
    // …and the members keep gossiping.
    b.report({ sessions: 9 });
    await until(() => a.members().find((m) => m.node === 'rl2')?.load?.sessions === 9, 5000, 'gossip from rl2');
    await sleep(1600);
    const again = await rawGossip(a.url, { localAddress: attacker });
    again.ws.terminate();
    expect(alive(a)).toEqual(['rl1', 'rl2']);
  });

  it('rate limit: sockets that only hold a slot without authenticating (auth timeout) and oversized frames count as failures too', async () => {
    const sealer = sealerFor(newKey());
    const server = createServer();
    const t = createWsTransport({ addr: 'ws://127.0.0.1:2', maxFrameBytes: 4096, seal: sealer, authTimeoutMs: 200, authFailures: { max: 3, windowMs: 10_000, blockMs: 5000 } });
    server.on('upgrade', (req, socket, head) => t.handleUpgrade(req, socket, head));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    closers.push(async () => {
      await t.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const idle = '127.0.0.81';
    for (let i = 0; i < 3; i++) {
      const c = await rawGossip(url, { localAddress: idle });
      const closed = await c.closed;
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/no authentic frame in time/);
    }
    expect(await rawGossip(url, { localAddress: idle }).then(() => 0, (e: { status?: number }) => e.status)).toBe(429);
    const big = '127.0.0.82';
    for (let i = 0; i < 3; i++) {
      const c = await rawGossip(url, { localAddress: big });
      c.send(Buffer.alloc(16 * 1024));
      expect((await c.closed).code).toBe(1009);
    }
    expect(await rawGossip(url, { localAddress: big }).then(() => 0, (e: { status?: number }) => e.status)).toBe(429);
    expect(t.counters().inboundRefused).toBe(2);
  });
});

function wsAccept(key: string): string {
  return createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
}
