/**
 * Helpers for the security tests: in-process agents on loopback, a raw gossip client (a socket an
 * outsider opens to /v1/gossip, from a loopback address of our choice), and polling.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { createSealer, Keyring, type Sealer } from '../../agent/gossip/keyring.js';
import { encodeFrame, tryDecodeFrame, type GossipFrame, type MemberMeta } from '../../agent/gossip/messages.js';
import { startAgent, type Agent, type AgentOptions } from '../../agent/index.js';
import { ADDR_HEADER, CHALLENGE_BYTES, CHALLENGE_HEADER, parseChallenge } from '../../agent/gossip/ws-transport.js';
import { join } from '../../sdk/index.js';

import { sleep, until } from './until.js';

export { sleep, until };

/** An in-process agent on 127.0.0.1 with a quick gossip profile and no logs. */
export function agent(node: string, opts: Partial<AgentOptions> = {}): Promise<Agent> {
  return startAgent({ service: 'game', node, host: '127.0.0.1', port: 0, udpPort: 40_000, gossipProfile: 'local', loadIntervalMs: 100, ...opts }, { log: false });
}

/** The nodes an agent has as alive, sorted. */
export const alive = (a: Agent): string[] =>
  a
    .members()
    .filter((m) => m.status === 'alive')
    .map((m) => m.node)
    .sort();

export const known = (a: Agent): string[] =>
  a
    .members()
    .map((m) => m.node)
    .sort();

export interface RawClient {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
  send(b: Uint8Array): void;
  /** The challenge a sealed agent gave this socket: what a member seals its frames on it with. */
  binding: Buffer | undefined;
}

/**
 * Open a WebSocket to an agent's /v1/gossip as an outsider would, from `localAddress` (any
 * 127.0.0.0/8 address), claiming `addr` as its own. Resolves when open; rejects with the HTTP
 * status when the upgrade is refused.
 */
export function rawGossip(url: string, opts: { localAddress?: string; addr?: string } = {}): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/v1/gossip`, {
      localAddress: opts.localAddress ?? '127.0.0.1',
      headers: opts.addr ? { [ADDR_HEADER]: opts.addr } : {},
      perMessageDeflate: false,
      handshakeTimeout: 5000,
    });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('error', () => {});
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    let binding: Buffer | undefined;
    ws.once('upgrade', (res) => (binding = parseChallenge(res.headers[CHALLENGE_HEADER])));
    ws.once('open', () => resolve({ ws, closed, send: (b) => ws.send(b, { binary: true }), binding }));
    ws.once('close', () => reject(new Error('closed before open')));
  });
}

export async function post(port: number, path: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

// ------------------------------------------------------------------------------------------------
// Keys, sealing, frames, metrics.


/** A fresh 32-byte cluster key, base64 (what `peerlb keygen` prints). */
export const newKey = (): string => randomBytes(32).toString('base64');

/** A sealer holding `keys` (base64), as a member of that cluster would have. */
export function sealerFor(...keys: string[]): Sealer {
  return createSealer(new Keyring(keys.map((k) => Buffer.from(k, 'base64'))));
}

export const meta = (node: string, over: Partial<MemberMeta> = {}): MemberMeta => ({ id: node, service: 'game', host: '127.0.0.1', udpPort: 40_000, weight: 100, health: 'healthy', ...over });

export const frame = (f: GossipFrame): Buffer => encodeFrame(f);

/** `peerlb_gossip_frames_dropped_total` by reason, from an agent's /metrics (real HTTP). */
export async function droppedByReason(port: number, host = '127.0.0.1'): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^peerlb_gossip_frames_dropped_total\{[^}]*reason="([^"]+)"[^}]*\} (\S+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/**
 * A fake member's gossip endpoint: a WebSocket server on 127.0.0.1 that records every frame
 * agents send it, opened with `sealer` when given (giving each socket a challenge, as an agent
 * does), and decoded.
 */
export async function gossipSink(sealer?: Sealer): Promise<{ url: string; frames: GossipFrame[]; raw: Buffer[]; close(): Promise<void> }> {
  const http: Server = createServer((_q, r) => r.writeHead(404).end());
  const wss = new WebSocketServer({ server: http, path: '/v1/gossip' });
  const frames: GossipFrame[] = [];
  const raw: Buffer[] = [];
  const bindings = new WeakMap<object, Buffer>();
  wss.on('headers', (headers, req) => {
    if (!sealer) return;
    const b = randomBytes(CHALLENGE_BYTES);
    bindings.set(req, b);
    headers.push(`${CHALLENGE_HEADER}: ${b.toString('base64')}`);
  });
  wss.on('connection', (ws, req) => {
    const binding = bindings.get(req);
    ws.on('error', () => {});
    ws.on('message', (d: Buffer) => {
      raw.push(d);
      const plain = sealer ? sealer.open(d, binding) : d;
      if (!(plain instanceof Uint8Array)) return;
      const r = tryDecodeFrame(plain);
      if (r.ok) frames.push(r.frame);
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const port = (http.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    frames,
    raw,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

/** An open client socket of an agent's read endpoint, and what it received, decoded. */
export interface EndpointClient<T> {
  ws: WebSocket;
  got: T[];
  closed: Promise<{ code: number; reason: string }>;
}
export type RefusedUpgrade = { status: number; body: string };

/**
 * Open a WebSocket to an agent's `url` (/v1/watch, /v1/events) as a client would, pushing it on
 * `track` for the test's cleanup. Resolves when open, or with the HTTP status and body of a
 * refused upgrade; each message received is `decode`d into `got`.
 */
export function openEndpoint<T>(
  url: string,
  decode: (data: Buffer, isBinary: boolean) => T,
  track: WebSocket[],
  opts: { headers?: Record<string, string>; localAddress?: string } = {},
): Promise<EndpointClient<T> | RefusedUpgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: opts.headers, localAddress: opts.localAddress ?? '127.0.0.1', handshakeTimeout: 3000 });
    track.push(ws);
    const got: T[] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (d: Buffer, isBinary) => got.push(decode(d, isBinary)));
    ws.on('error', () => {});
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', () => resolve({ status: res.statusCode!, body }));
    });
    ws.once('open', () => resolve({ ws, got, closed }));
    ws.once('close', () => reject(new Error('closed before open')));
  });
}

// ------------------------------------------------------------------------------------------------
// The check after every hostile-peer attack.

/** A genuine agent (a process or in-process agent): its node id and URL. */
export interface GenuineAgent {
  node: string;
  url: string;
}

/**
 * What every hostile-peer test checks after its attack: every genuine member is alive, at its own
 * address, in every genuine agent's `/v1/members` (real HTTP), and a new SDK client (`join` with
 * `discovery: { agents: [url of the first] }`) has every genuine server in its view within
 * `withinMs` (2 s) of the join call. Returns the time the client took.
 */
export async function genuineIntact(genuine: GenuineAgent[], opts: { withinMs?: number; service?: string } = {}): Promise<number> {
  const withinMs = opts.withinMs ?? 2000;
  const want = genuine.map((g) => g.node).sort();
  for (const g of genuine) {
    const res = await fetch(`${g.url.replace(/^ws/, 'http')}/v1/members`, { signal: AbortSignal.timeout(30_000) });
    const rows = (await res.json()) as Array<{ node: string; status: string; port: number }>;
    for (const n of genuine) {
      const row = rows.find((m) => m.node === n.node);
      if (row?.status !== 'alive' || row.port !== Number(new URL(n.url).port)) {
        throw new Error(`${n.node} in the view of ${g.node}: ${JSON.stringify(row)} (want alive at port ${new URL(n.url).port})`);
      }
    }
  }
  const t0 = Date.now();
  const cluster = await join({ service: opts.service ?? 'game', discovery: { agents: [genuine[0]!.url] }, waitForServersMs: withinMs });
  try {
    const has = () => {
      const ids = new Set(cluster.servers().map((s) => s.id));
      return want.every((n) => ids.has(n));
    };
    await until(has, withinMs + 10_000, 'every genuine server', 10).catch(() => {});
    const ms = Date.now() - t0;
    if (!has()) throw new Error(`a new SDK client has ${JSON.stringify(cluster.servers().map((s) => s.id).slice(0, 10))} after ${ms} ms, not every one of ${want.join(', ')}`);
    if (ms > withinMs) throw new Error(`a new SDK client took ${ms} ms (more than ${withinMs}) to have every genuine server`);
    return ms;
  } finally {
    await cluster.close().catch(() => {});
  }
}
