/**
 * Gossip frames whose addresses are not gossip URLs, sent to a live open agent over a raw
 * WebSocket to its /v1/gossip (anyone can, with no keyring): every one is a decode error, counted
 * as such; the agent stays up and its members do not change. And a frame the agent cannot handle
 * (here: a 'member' listener that throws) is dropped and counted, never an uncaught exception.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startAgent, type Agent, type AgentOptions } from '../../../agent/index.js';
import { encodeFrame, gossipAddrPort, tryDecodeFrame, type GossipFrame, type MemberMeta } from '../../../agent/gossip/messages.js';
import { until } from '../../support/until.js';

const running: Agent[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((w) => w.terminate());
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});


async function openAgent(node: string, opts: Partial<AgentOptions> = {}): Promise<Agent> {
  const a = await startAgent({ service: 'game', node, host: '127.0.0.1', port: 0, udpPort: 40_000, gossipProfile: 'local', loadIntervalMs: 100, ...opts }, { log: false });
  running.push(a);
  return a;
}

/** A raw socket to an agent's /v1/gossip, as an outsider opens it (no address header, no key). */
function rawGossip(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/gossip`, { perMessageDeflate: false, handshakeTimeout: 5000 });
    sockets.push(ws);
    ws.on('error', () => {});
    ws.once('open', () => resolve(ws));
    ws.once('close', () => reject(new Error('closed before open')));
  });
}

const meta = (node: string): MemberMeta => ({ id: node, service: 'game', host: '127.0.0.1', udpPort: 40_001, weight: 100, health: 'healthy' });
const GOOD = 'ws://127.0.0.1:1';
const BAD = ['not a url', 'ws://', 'http://x:1', 'ws://h:99999'];

/** One frame per place an address appears, each with `bad` there and good values elsewhere. */
function framesWith(bad: string, i: number): GossipFrame[] {
  const from = { node: `evil-${i}`, addr: GOOD };
  const state = (node: string, addr: string) => ({ node, addr, incarnation: 1, status: 'alive' as const, meta: meta(node) });
  return [
    { type: 'gossip', from: { node: `evil-from-${i}`, addr: bad }, piggyback: { updates: [], loads: [] } },
    { type: 'ping', from: { node: `evil-ping-${i}`, addr: bad }, seq: 1, target: 'h1' },
    { type: 'gossip', from, piggyback: { updates: [{ kind: 'alive', node: `evil-alive-${i}`, incarnation: 1, addr: bad, meta: meta(`evil-alive-${i}`) }], loads: [] } },
    { type: 'ack', from, seq: 7, piggyback: { updates: [{ kind: 'alive', node: `evil-ack-${i}`, incarnation: 1, addr: bad, meta: meta(`evil-ack-${i}`) }], loads: [] } },
    { type: 'push-pull-req', from, join: true, states: [state(`evil-ppreq-${i}`, bad)] },
    { type: 'push-pull-resp', from, states: [state(`evil-ppresp-${i}`, bad)] },
    { type: 'ping-req', from, seq: 2, target: `evil-target-${i}`, targetAddr: bad, nack: true },
  ];
}

describe('gossip addresses that are not ws:// URLs', () => {
  it('gossipAddrPort: ws/wss URLs with a host and a port in 1..65535 only, never throwing', () => {
    expect(gossipAddrPort('ws://127.0.0.1:7946')).toBe(7946);
    expect(gossipAddrPort('ws://[::1]:5')).toBe(5);
    expect(gossipAddrPort('ws://h:80')).toBe(80);
    expect(gossipAddrPort('wss://h')).toBe(443);
    for (const bad of [...BAD, 'ws://h:0', 'ws://:5', '', 'wss://', 'file:///x', 'ws://h:-1']) expect(gossipAddrPort(bad), bad).toBeUndefined();
  });

  it('the codec refuses each of them in every place an address appears', () => {
    for (const [i, bad] of BAD.entries())
      for (const f of framesWith(bad, i)) {
        const r = tryDecodeFrame(encodeFrame(f));
        expect(r.ok, `${f.type} with ${JSON.stringify(bad)}`).toBe(false);
        if (!r.ok) expect(r.error.code).toBe('PEERLB_ERR_DECODE');
      }
    // The same frames with good addresses decode.
    for (const f of framesWith(GOOD, 9)) expect(tryDecodeFrame(encodeFrame(f)).ok, f.type).toBe(true);
  });

  it('a live open agent sent them over a raw socket stays up, members unchanged, each frame counted as a decode error', async () => {
    const a = await openAgent('h1');
    const b = await openAgent('h2', { join: [a.url] });
    await until(() => a.members().filter((m) => m.status === 'alive').length === 2, 5000, 'h1 and h2 alive');
    const membersBefore = a.members().map((m) => [m.node, m.addr, m.status].join(' '));
    const before = a.gossipStats();
    const ws = await rawGossip(a.port);
    const frames = BAD.flatMap((bad, i) => framesWith(bad, i)).map((f) => encodeFrame(f));
    for (const f of frames) ws.send(f, { binary: true });
    await until(() => a.gossipStats().decodeErrors - before.decodeErrors >= frames.length, 5000, `${frames.length} decode errors`);
    await new Promise((r) => setTimeout(r, 300));

    const res = await fetch(`http://127.0.0.1:${a.port}/v1/health`, { signal: AbortSignal.timeout(3000) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ node: 'h1', health: 'healthy' });
    expect(a.gossipStats().decodeErrors - before.decodeErrors).toBe(frames.length);
    expect(a.members().map((m) => [m.node, m.addr, m.status].join(' '))).toEqual(membersBefore);
    expect(b.members().map((m) => m.node).sort()).toEqual(['h1', 'h2']);
    // /v1/members (which parses every member's address) still answers.
    const rows = (await (await fetch(`http://127.0.0.1:${a.port}/v1/members`)).json()) as Array<{ node: string; port: number }>;
    expect(rows.map((r) => r.node).sort()).toEqual(['h1', 'h2']);
    expect(rows.find((r) => r.node === 'h2')!.port).toBe(b.port);
    // The socket was not the one to go: the raw peer is still connected.
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });

  it('a frame whose handling throws is dropped and counted; the agent goes on', async () => {
    const a = await openAgent('t1');
    let thrown = 0;
    // Throws on the join only: later changes of boom-1 (its probes fail) come from timers, not frames.
    a.on('member', (m, prev) => {
      if (m.node === 'boom-1' && prev === undefined) {
        thrown++;
        throw new Error('a listener that fails');
      }
    });
    const before = a.gossipStats().decodeErrors;
    const ws = await rawGossip(a.port);
    const from = { node: 'boom-sender', addr: GOOD };
    ws.send(encodeFrame({ type: 'gossip', from, piggyback: { updates: [{ kind: 'alive', node: 'boom-1', incarnation: 1, addr: GOOD, meta: meta('boom-1') }], loads: [] } }), { binary: true });
    await until(() => a.gossipStats().decodeErrors > before, 5000, 'the failure counted');
    expect(thrown).toBe(1);
    expect((await fetch(`http://127.0.0.1:${a.port}/v1/health`)).status).toBe(200);
    // Frames after it are handled as usual.
    ws.send(encodeFrame({ type: 'gossip', from, piggyback: { updates: [{ kind: 'alive', node: 'fine-1', incarnation: 1, addr: GOOD, meta: meta('fine-1') }], loads: [] } }), { binary: true });
    await until(() => a.members().some((m) => m.node === 'fine-1'), 5000, 'fine-1 known');
    expect(a.gossipStats().decodeErrors).toBe(before + 1);
  });
});
