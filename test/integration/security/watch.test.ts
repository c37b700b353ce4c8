/**
 * /v1/watch through real sockets: the client token, when configured, is required (bearer header or
 * hello); subscriptions are read-only — whatever a subscriber sends, membership does not change;
 * at most `limits.maxSubscribers` at once, the next one refused with a reason.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Agent } from '../../../agent/index.js';
import { PROTOCOL_VERSION, type WatchServerFrame } from '../../../sdk/core/protocol.js';
import { encodeWatchFrame, decodeWatchServerFrame } from '../../../sdk/core/msgpack.js';
import { join, type Cluster } from '../../../sdk/index.js';
import { agent, alive, known, until, sleep, frame, meta, openEndpoint, type EndpointClient, type RefusedUpgrade } from '../../support/security.js';

const running: Agent[] = [];
const sockets: WebSocket[] = [];
const clusters: Cluster[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((w) => w.terminate());
  await Promise.all(clusters.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});

type Watcher = EndpointClient<WatchServerFrame>;

/** Open /v1/watch; resolves when open, or with the HTTP status of a refused upgrade. */
function watch(port: number, headers: Record<string, string> = {}): Promise<Watcher | RefusedUpgrade> {
  return openEndpoint(`ws://127.0.0.1:${port}/v1/watch`, (d) => decodeWatchServerFrame(d), sockets, { headers });
}
const hello = (over: Record<string, unknown> = {}) => encodeWatchFrame({ t: 'hello', v: PROTOCOL_VERSION, service: 'game', ...over } as never);
const isWatcher = (w: Watcher | { status: number }): w is Watcher => 'ws' in w;

describe('/v1/watch', () => {
  it('with a token configured: no token or a wrong one gets nothing; the token as bearer header or in hello gets the snapshot', async () => {
    const a = await agent('w1', { token: 'sekret-token' });
    running.push(a);

    const none = await watch(a.port);
    if (!isWatcher(none)) throw new Error('upgrade refused');
    none.ws.send(hello());
    const c1 = await none.closed;
    expect(c1.code).toBe(1008);
    expect(none.got.map((f) => f.t)).toEqual(['error']);
    expect(none.got[0]).toMatchObject({ t: 'error', code: 'PEERLB_ERR_AUTH' });

    const wrongHello = await watch(a.port);
    if (!isWatcher(wrongHello)) throw new Error('upgrade refused');
    wrongHello.ws.send(hello({ token: 'sekret-tokeX' }));
    expect((await wrongHello.closed).code).toBe(1008);
    expect(wrongHello.got.some((f) => f.t === 'snapshot')).toBe(false);

    const wrongBearer = await watch(a.port, { authorization: 'Bearer nope' });
    expect(wrongBearer).toMatchObject({ status: 401 });

    const bearer = await watch(a.port, { authorization: 'Bearer sekret-token' });
    if (!isWatcher(bearer)) throw new Error('upgrade refused');
    bearer.ws.send(hello());
    await until(() => bearer.got.some((f) => f.t === 'snapshot'), 3000, 'snapshot (bearer)');
    const inHello = await watch(a.port);
    if (!isWatcher(inHello)) throw new Error('upgrade refused');
    inHello.ws.send(hello({ token: 'sekret-token' }));
    await until(() => inHello.got.some((f) => f.t === 'snapshot'), 3000, 'snapshot (hello)');
    const snap = inHello.got.find((f) => f.t === 'snapshot') as Extract<WatchServerFrame, { t: 'snapshot' }>;
    expect(snap.servers.map((s) => s.id)).toEqual(['w1']);

    // The SDK: with the token it sees the server; without, it reports the refusal and sees nothing.
    const withToken = await join({ service: 'game', discovery: { agents: [a.url] }, token: 'sekret-token', waitForServersMs: 3000 });
    clusters.push(withToken);
    expect(withToken.servers().map((s) => s.id)).toEqual(['w1']);
    const errors: Error[] = [];
    const without = await join({ service: 'game', discovery: { agents: [a.url] }, waitForServersMs: 0 });
    clusters.push(without);
    without.on('error', (e) => errors.push(e));
    await until(() => errors.some((e) => /PEERLB_ERR_AUTH/.test(e.message)), 5000, 'the SDK to report the refusal');
    expect(without.servers()).toEqual([]);
  });

  it('subscribers cannot change membership: gossip frames, forged watch frames and junk on /v1/watch change nothing', async () => {
    const a = await agent('r1');
    const b = await agent('r2', { join: [a.url] });
    running.push(a, b);
    await until(() => alive(a).length === 2 && alive(b).length === 2, 5000, 'r1 and r2');
    const w = await watch(a.port);
    if (!isWatcher(w)) throw new Error('upgrade refused');
    w.ws.send(hello());
    await until(() => w.got.some((f) => f.t === 'snapshot'), 3000, 'snapshot');
    const evil = [
      frame({ type: 'gossip', from: { node: 'x', addr: 'ws://127.0.0.9:1' }, piggyback: { updates: [{ kind: 'alive', node: 'ghost', incarnation: 1, addr: 'ws://127.0.0.9:1', meta: meta('ghost') }], loads: [] } }),
      frame({ type: 'gossip', from: { node: 'x', addr: 'ws://127.0.0.9:1' }, piggyback: { updates: [{ kind: 'dead', node: 'r2', incarnation: 50, from: 'x' }], loads: [] } }),
      frame({ type: 'leave', from: { node: 'r2', addr: b.url }, incarnation: 50 }),
      encodeWatchFrame({ t: 'upsert', v: PROTOCOL_VERSION, server: { ...meta('ghost2'), agent: 'ws://127.0.0.9:1' } }),
      encodeWatchFrame({ t: 'remove', v: PROTOCOL_VERSION, id: 'r2', reason: 'left' }),
      hello({ service: 'other' }),
    ];
    const before = JSON.stringify(a.members().map((m) => [m.node, m.status, m.incarnation]));
    for (let i = 0; i < 50; i++) {
      for (const e of evil) w.ws.send(e, { binary: true });
      w.ws.send('{"t":"remove","v":1,"id":"r2","reason":"left"}');
    }
    await sleep(1000);
    expect(known(a)).toEqual(['r1', 'r2']);
    expect(alive(a)).toEqual(['r1', 'r2']);
    expect(alive(b)).toEqual(['r1', 'r2']);
    expect(JSON.stringify(a.members().map((m) => [m.node, m.status, m.incarnation]))).toBe(before);
    // Still subscribed and served: a change reaches it.
    b.report({ sessions: 33 });
    await until(() => w.got.some((f) => f.t === 'upsert' && f.server.id === 'r2' && f.server.load?.sessions === 33), 3000, 'an upsert after the junk');

    // Gossip frames sent straight at /v1/watch before any hello: refused, closed, still nothing changes.
    const w2 = await watch(a.port);
    if (!isWatcher(w2)) throw new Error('upgrade refused');
    w2.ws.send(evil[1]!);
    expect((await w2.closed).code).toBe(1008);
    expect(w2.got[0]).toMatchObject({ t: 'error', code: 'PEERLB_ERR_DECODE' });
    expect(alive(a)).toEqual(['r1', 'r2']);
  });

  it('at most limits.maxSubscribers subscribers: the next is refused (503, with the reason), a slot frees when one leaves', async () => {
    const a = await agent('m1', { limits: { maxSubscribers: 3 } });
    running.push(a);
    const ws: Watcher[] = [];
    for (let i = 0; i < 3; i++) {
      const w = await watch(a.port);
      if (!isWatcher(w)) throw new Error(`subscriber ${i} refused`);
      w.ws.send(hello());
      ws.push(w);
    }
    await until(() => ws.every((w) => w.got.some((f) => f.t === 'snapshot')), 3000, 'three snapshots');
    const fourth = await watch(a.port);
    expect(fourth).toMatchObject({ status: 503 });
    expect((fourth as { body: string }).body).toMatch(/subscribers.*3/);
    ws[0]!.ws.close();
    await ws[0]!.closed;
    await sleep(100);
    const again = await watch(a.port);
    expect(isWatcher(again)).toBe(true);
  });
});
