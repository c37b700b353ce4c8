/**
 * HTTP-API.md against what a live agent really sends on `/v1/watch?format=json` and `/v1/events`:
 * every frame kind is provoked through real sockets (ws, as other-language clients would), every
 * key of every frame (at any depth) must be named in the doc in backticks, and so must every
 * frame kind and event kind seen.
 */
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { keysOf } from '../../support/keys.js';
import { startAgent, type Agent, type AgentOptions } from '../../../agent/index.js';
import { until } from '../../support/until.js';

const running: Agent[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});

async function agent(node: string, opts: Partial<AgentOptions> = {}): Promise<Agent> {
  const a = await startAgent({ service: 'game', node, host: '127.0.0.1', port: 0, udpPort: 40_000, gossipProfile: 'local', loadIntervalMs: 200, ...opts }, { log: false });
  running.push(a);
  return a;
}

type Msg = Record<string, unknown>;
/** A JSON-text WebSocket to `path`, collecting every message it receives (parsed). */
async function open(a: Agent, path: string): Promise<{ ws: WebSocket; got: Msg[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${a.port}${path}`);
  sockets.push(ws);
  const got: Msg[] = [];
  ws.on('message', (data, isBinary) => {
    expect(isBinary).toBe(false);
    got.push(JSON.parse(String(data)) as Msg);
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, got };
}

const tagOf = (m: Msg, tag: 't' | 'type') => String(m[tag]);

describe('HTTP-API.md', () => {
  it('HTTP-API.md names every field of the /v1/watch?format=json frames and /v1/events messages', async () => {
    const a = await agent('a1', { zone: 'z1' });
    const b = await agent('b1', { join: [a.url] });
    await until(() => a.members().filter((m) => m.status === 'alive').length === 2, 15_000, 'a sees b');

    const events = await open(a, '/v1/events');
    const watch = await open(a, '/v1/watch?format=json');
    const sent: Msg[] = [];
    const send = (s: { ws: WebSocket }, m: Msg) => {
      sent.push(m);
      s.ws.send(JSON.stringify(m));
    };
    send(watch, { t: 'hello', v: 1, service: 'game' });
    await until(() => watch.got.some((f) => f.t === 'snapshot'), 15_000, 'snapshot');
    send(watch, { t: 'ping', v: 1, n: 7 });
    await until(() => watch.got.some((f) => f.t === 'pong' && f.n === 7), 15_000, 'pong');

    // A load change: an upsert of a1 carrying it.
    const put = await fetch(`http://127.0.0.1:${a.port}/v1/load`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sessions: 5 }) });
    expect(put.status).toBe(204);
    await until(() => watch.got.some((f) => f.t === 'upsert' && (f.server as { load?: { sessions: number } }).load?.sessions === 5), 15_000, 'upsert with the load');

    // A member joins (agents, member, event join), drains (event drain), then leaves (remove, event leave).
    const c = await agent('c1', { join: [a.url] });
    await until(() => watch.got.some((f) => f.t === 'agents' && (f.agents as string[]).includes(c.url)), 15_000, 'agents with c1');
    await until(() => events.got.some((m) => m.type === 'event' && (m.event as Msg).kind === 'join' && (m.event as Msg).node === 'c1'), 15_000, 'join event');
    void c.drain();
    await until(() => events.got.some((m) => m.type === 'event' && (m.event as Msg).kind === 'drain'), 15_000, 'drain event');
    await c.stop();
    running.splice(running.indexOf(c), 1);
    await until(() => watch.got.some((f) => f.t === 'remove' && f.id === 'c1'), 15_000, 'remove of c1');
    await until(() => events.got.some((m) => m.type === 'event' && (m.event as Msg).kind === 'leave'), 15_000, 'leave event');

    // A bad hello on another watch socket: an error frame.
    const bad = await open(a, '/v1/watch?format=json');
    send(bad, { t: 'nope', v: 1 });
    await until(() => bad.got.some((f) => f.t === 'error'), 15_000, 'watch error frame');

    // /v1/events reads a hello only with a token: a bad one on a token agent gets an error message.
    const d = await agent('d1', { token: 'sekret' });
    const badEvents = await open(d, '/v1/events');
    badEvents.ws.send('{not json');
    await until(() => badEvents.got.some((m) => m.type === 'error'), 15_000, 'events error message');
    // And the token hello on its watch, so the `token` field is exercised too.
    const tokenWatch = await open(d, '/v1/watch?format=json');
    send(tokenWatch, { t: 'hello', v: 1, service: 'game', token: 'sekret' });
    await until(() => tokenWatch.got.some((f) => f.t === 'snapshot'), 15_000, 'token snapshot');
    void b;

    const watchFrames = [...watch.got, ...bad.got, ...tokenWatch.got];
    const eventMsgs = [...events.got, ...badEvents.got];
    expect(new Set(watchFrames.map((f) => tagOf(f, 't')))).toEqual(new Set(['snapshot', 'upsert', 'remove', 'agents', 'pong', 'error']));
    expect(new Set(eventMsgs.map((m) => tagOf(m, 'type')))).toEqual(new Set(['members', 'member', 'event', 'error']));
    expect(watchFrames.find((f) => f.t === 'remove')!.reason).toBe('left');

    const doc = readFileSync(new URL('../../../HTTP-API.md', import.meta.url), 'utf8');
    const names = new Set<string>();
    for (const m of [...watchFrames, ...eventMsgs, ...sent]) keysOf(m, names);
    // The kinds (frame tags, event kinds, remove reasons, error codes) are documented values too.
    for (const f of [...watchFrames, ...sent]) names.add(tagOf(f, 't'));
    for (const m of eventMsgs) names.add(tagOf(m, 'type'));
    for (const m of eventMsgs) for (const e of m.type === 'members' ? (m.events as Msg[]) : m.type === 'event' ? [m.event as Msg] : []) names.add(String(e.kind));
    for (const f of [...watchFrames, ...eventMsgs]) {
      if (f.t === 'remove') names.add(String(f.reason));
      if (f.t === 'error' || f.type === 'error') names.add(String(f.code));
    }
    names.delete('nope'); // the bad hello's own tag
    for (const k of ['servers', 'server', 'agents', 'reason', 'n', 'members', 'event', 'kind', 'detail', 'code', 'token', 'utilization']) expect(names.has(k), k).toBe(true);
    const missing = [...names].filter((k) => !doc.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  }, 90_000);
});
