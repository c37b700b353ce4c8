/**
 * The client token (`--token`) over real sockets, on /v1/events as on /v1/watch: without it a
 * client gets nothing (a bearer header or a hello carrying it gets the feed), and sockets that have
 * not shown it yet do not hold the endpoint's slots (limits.maxSubscribers): they are bounded apart,
 * in all and per IP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startAgent, type Agent, type AgentOptions } from '../../../agent/index.js';
import { MAX_PENDING_SOCKETS_PER_IP } from '../../../agent/admission.js';
import { PROTOCOL_VERSION } from '../../../sdk/core/protocol.js';
import { decodeWatchServerFrame, encodeWatchFrame } from '../../../sdk/core/msgpack.js';
import { ownLoopback } from '../../support/net.js';
import { openEndpoint, sleep, until, type EndpointClient, type RefusedUpgrade } from '../../support/security.js';

const OTHER_IP = await ownLoopback('127.0.0.41');
const TOKEN = 'client-sekret';
const running: Agent[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((w) => w.terminate());
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});


async function agent(node: string, opts: Partial<AgentOptions> = {}): Promise<Agent> {
  const a = await startAgent({ service: 'game', node, host: '127.0.0.1', port: 0, udpPort: 40_000, gossipProfile: 'local', loadIntervalMs: 100, token: TOKEN, ...opts }, { log: false });
  running.push(a);
  return a;
}

type Client = EndpointClient<Record<string, unknown>>;
type Refused = RefusedUpgrade;
const isClient = (c: Client | Refused): c is Client => 'ws' in c;

/** Open a WebSocket to `path` (messages: JSON of /v1/events, decoded frames of /v1/watch). */
function open(port: number, path: string, opts: { headers?: Record<string, string>; localAddress?: string } = {}): Promise<Client | Refused> {
  const decode = (d: Buffer, isBinary: boolean) => (isBinary ? decodeWatchServerFrame(d) : JSON.parse(d.toString())) as Record<string, unknown>;
  return openEndpoint(`ws://127.0.0.1:${port}${path}`, decode, sockets, opts);
}
async function opened(p: Promise<Client | Refused>): Promise<Client> {
  const c = await p;
  if (!isClient(c)) throw new Error(`upgrade refused: ${c.status} ${c.body}`);
  return c;
}
const jsonHello = (token?: string) => JSON.stringify({ t: 'hello', v: PROTOCOL_VERSION, ...(token === undefined ? {} : { token }) });
const watchHello = (token?: string) => encodeWatchFrame({ t: 'hello', v: PROTOCOL_VERSION, service: 'game', ...(token === undefined ? {} : { token }) } as never);

describe('/v1/events with a token configured', () => {
  it('no token or a wrong one gets nothing; the token as bearer header or in a JSON hello gets the feed', async () => {
    const a = await agent('ev1');

    // No token, nothing sent: no members, and the socket is closed at the hello timeout (5 s).
    const silent = await opened(open(a.port, '/v1/events'));
    await sleep(500);
    expect(silent.got).toEqual([]);
    const noToken = await opened(open(a.port, '/v1/events'));
    noToken.ws.send(jsonHello());
    expect((await noToken.closed).code).toBe(1008);
    expect(noToken.got).toEqual([expect.objectContaining({ type: 'error', code: 'PEERLB_ERR_AUTH' })]);

    const wrong = await opened(open(a.port, '/v1/events'));
    wrong.ws.send(jsonHello('client-sekreX'));
    expect((await wrong.closed).code).toBe(1008);
    expect(wrong.got.some((m) => m.type === 'members')).toBe(false);

    expect(await open(a.port, '/v1/events', { headers: { authorization: 'Bearer nope' } })).toMatchObject({ status: 401 });

    const bearer = await opened(open(a.port, '/v1/events', { headers: { authorization: `Bearer ${TOKEN}` } }));
    await until(() => bearer.got.some((m) => m.type === 'members'), 3000, 'members (bearer)');
    const inHello = await opened(open(a.port, '/v1/events'));
    inHello.ws.send(jsonHello(TOKEN));
    await until(() => inHello.got.some((m) => m.type === 'members'), 3000, 'members (hello)');
    expect((inHello.got.find((m) => m.type === 'members')!.members as Array<{ node: string }>).map((m) => m.node)).toEqual(['ev1']);
    // Both are live: an event reaches them.
    await a.drain();
    await until(() => [bearer, inHello].every((c) => c.got.some((m) => m.type === 'event' && (m.event as { kind: string }).kind === 'drain')), 3000, 'the drain event');
    // Never authenticated: closed at the hello timeout, with nothing of the feed.
    expect((await silent.closed).code).toBe(1008);
    expect(silent.got).toEqual([expect.objectContaining({ type: 'error', code: 'PEERLB_ERR_TIMEOUT' })]);
  });

  it('without a token configured the feed comes at once, as before', async () => {
    const a = await agent('ev2', { token: undefined });
    const c = await opened(open(a.port, '/v1/events'));
    await until(() => c.got.some((m) => m.type === 'members'), 3000, 'members');
  });

  it('sockets waiting for their hello are bounded per IP', async () => {
    const a = await agent('ev3');
    const waiting: Client[] = [];
    for (let i = 0; i < MAX_PENDING_SOCKETS_PER_IP; i++) waiting.push(await opened(open(a.port, '/v1/events')));
    expect(await open(a.port, '/v1/events')).toMatchObject({ status: 503, body: expect.stringMatching(/waiting to authenticate/) });
    // Another address, and a client with the token in its upgrade, are not held up.
    if (OTHER_IP !== '127.0.0.1') await opened(open(a.port, '/v1/events', { localAddress: OTHER_IP }));
    const bearer = await opened(open(a.port, '/v1/events', { headers: { authorization: `Bearer ${TOKEN}` } }));
    await until(() => bearer.got.some((m) => m.type === 'members'), 3000, 'members (bearer)');
    // One authenticates by hello: its waiting slot is free again.
    waiting[0]!.ws.send(jsonHello(TOKEN));
    await until(() => waiting[0]!.got.some((m) => m.type === 'members'), 3000, 'members (hello)');
    await opened(open(a.port, '/v1/events'));
  });
});

describe('/v1/watch: only authorized subscribers take a maxSubscribers slot', () => {
  it('unauthenticated sockets cannot lock token holders out', async () => {
    const a = await agent('wt1', { limits: { maxSubscribers: 2 } });
    // Two (more than maxSubscribers) sockets that never show the token.
    const idle = [await opened(open(a.port, '/v1/watch')), await opened(open(a.port, '/v1/watch')), await opened(open(a.port, '/v1/watch'))];
    // A client with the token (the SDK sends it as a bearer header) still subscribes.
    const c1 = await opened(open(a.port, '/v1/watch', { headers: { authorization: `Bearer ${TOKEN}` } }));
    c1.ws.send(watchHello());
    await until(() => c1.got.some((f) => f.t === 'snapshot'), 3000, 'snapshot (c1)');
    // So does one that gives the token in its hello.
    idle[0]!.ws.send(watchHello(TOKEN));
    await until(() => idle[0]!.got.some((f) => f.t === 'snapshot'), 3000, 'snapshot (hello)');
    // Now the two slots are taken: a third token holder is refused, by header (503) or by hello.
    expect(await open(a.port, '/v1/watch', { headers: { authorization: `Bearer ${TOKEN}` } })).toMatchObject({ status: 503, body: expect.stringMatching(/maxSubscribers/) });
    idle[1]!.ws.send(watchHello(TOKEN));
    expect((await idle[1]!.closed).code).toBe(1008);
    expect(idle[1]!.got).toEqual([expect.objectContaining({ t: 'error', code: 'PEERLB_ERR_LIMIT' })]);
    // A slot frees when a subscriber leaves.
    c1.ws.close();
    await c1.closed;
    await sleep(100);
    idle[2]!.ws.send(watchHello(TOKEN));
    await until(() => idle[2]!.got.some((f) => f.t === 'snapshot'), 3000, 'snapshot after a slot freed');
  });

  it('sockets waiting for their hello are bounded per IP, and give their slot back when they close', async () => {
    const a = await agent('wt2');
    const waiting: Client[] = [];
    for (let i = 0; i < MAX_PENDING_SOCKETS_PER_IP; i++) waiting.push(await opened(open(a.port, '/v1/watch')));
    expect(await open(a.port, '/v1/watch')).toMatchObject({ status: 503, body: expect.stringMatching(/waiting to authenticate/) });
    if (OTHER_IP !== '127.0.0.1') await opened(open(a.port, '/v1/watch', { localAddress: OTHER_IP }));
    const bearer = await opened(open(a.port, '/v1/watch', { headers: { authorization: `Bearer ${TOKEN}` } }));
    bearer.ws.send(watchHello());
    await until(() => bearer.got.some((f) => f.t === 'snapshot'), 3000, 'snapshot (bearer)');
    waiting[0]!.ws.terminate();
    await waiting[0]!.closed;
    await sleep(100);
    await opened(open(a.port, '/v1/watch'));
  });
});
