import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  PROTOCOL_VERSION,
  decodeWatchClientFrame,
  encodeWatchFrame,
  parseWatchClientFrame,
  type ServerRecord,
  type WatchServerFrame,
} from '../sdk/protocol.js';
import { DecodeError } from '../sdk/errors.js';
import type { Logger } from './log.js';

export interface SubscriptionOptions {
  node: string;
  /** Everything to put in a snapshot. */
  snapshot: () => { servers: ServerRecord[]; agents: string[] };
  /** Required token, when set (compared in constant time). */
  token?: string;
  /** Most subscribers at once. Default 1024. */
  maxSubscribers?: number;
  /** A subscriber whose unsent bytes exceed this is cut off (slow reader). Default 4 MiB. */
  maxPendingBytes?: number;
  /** The client must say hello within this time. Default 5000 ms. */
  helloTimeoutMs?: number;
  /** Sockets waiting to show the token, apart from maxSubscribers. Default: 64 in all, 8 per IP. */
  pending?: PendingSockets;
  log?: Logger;
}

/**
 * Whether `got` (an Authorization header, `Bearer <token>` or the bare token, or a hello's token)
 * is the token `want`, compared in constant time. No token wanted: always true.
 */
export function tokenMatches(want: string | undefined, got: string | undefined | null): boolean {
  if (!want) return true;
  if (!got) return false;
  const token = got.startsWith('Bearer ') ? got.slice(7) : got;
  const a = Buffer.from(token);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Most agent URLs in a snapshot or agents frame: what the SDK's decoder takes (sdk/protocol.ts).
 * A client needs a few agents to fail over to, not 10,000; the list starts with this agent and
 * the members it has known longest.
 */
export const MAX_AGENT_URLS = 1000;

/** Changes of the agent list within this time go out as one `agents` frame. */
export const AGENTS_COALESCE_MS = 100;

/** Most sockets waiting to authenticate at once, in all and from one IP (PendingSockets defaults). */
export const MAX_PENDING_SOCKETS = 64;
export const MAX_PENDING_SOCKETS_PER_IP = 8;

/**
 * Sockets that reached a token-protected endpoint without the token in their upgrade request and
 * may still send it in `hello` (browsers cannot set headers on a WebSocket). Until then they hold
 * a slot here, not one of the endpoint's own (maxSubscribers): anyone can open such a socket, and
 * a few addresses holding every subscriber slot for the hello timeout each would lock clients out.
 * Bounded in all and per IP; a slot is given back when the socket closes or authenticates.
 */
export class PendingSockets {
  private total = 0;
  private readonly byIp = new Map<string, number>();

  constructor(
    readonly max = MAX_PENDING_SOCKETS,
    readonly maxPerIp = MAX_PENDING_SOCKETS_PER_IP,
  ) {}

  get size(): number {
    return this.total;
  }

  /** Take a slot for a socket from `ip`: a function that gives it back (once), or undefined when full. */
  take(ip: string | undefined): (() => void) | undefined {
    const key = ip ?? '?';
    const n = this.byIp.get(key) ?? 0;
    if (this.total >= this.max || n >= this.maxPerIp) return undefined;
    this.total++;
    this.byIp.set(key, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.total--;
      const left = (this.byIp.get(key) ?? 1) - 1;
      if (left > 0) this.byIp.set(key, left);
      else this.byIp.delete(key);
    };
  }
}

/** Refuse an upgrade with a plain-text HTTP error. */
export function refuseUpgrade(socket: Duplex, status: string, body = ''): void {
  socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/**
 * The gate in front of a token-protected read endpoint (/v1/watch, /v1/events): a wrong bearer
 * header is refused (401); a right one (or no token configured) needs one of the endpoint's own
 * slots (`full()` says why there is none: 503); no header at all may still bring the token in its
 * hello, and meanwhile holds a PendingSockets slot, given back however the socket ends. Returns
 * how the socket goes on, or undefined when it was refused (and answered).
 */
export function admitUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  o: { token: string | undefined; pending: PendingSockets; full: () => string | undefined },
): { authorized: boolean; release: (() => void) | undefined } | undefined {
  const authorized = tokenMatches(o.token, req.headers.authorization);
  if (!authorized && req.headers.authorization !== undefined) {
    refuseUpgrade(socket, '401 Unauthorized');
    return undefined;
  }
  if (authorized) {
    const full = o.full();
    if (full === undefined) return { authorized, release: undefined };
    refuseUpgrade(socket, '503 Service Unavailable', full);
    return undefined;
  }
  const release = o.pending.take(req.socket.remoteAddress);
  if (!release) {
    refuseUpgrade(socket, '503 Service Unavailable', 'too many connections waiting to authenticate; send the token as `authorization: Bearer <token>`\n');
    return undefined;
  }
  socket.once('close', release);
  return { authorized, release };
}

interface Sub {
  ws: WebSocket;
  service: string | undefined;
  ready: boolean;
  /** Holds the token (or none is needed): counts toward maxSubscribers. */
  authorized: boolean;
  /** Gives back its PendingSockets slot, while it has one. */
  release: (() => void) | undefined;
  /** `/v1/watch?format=json`: the same frames as JSON text, for browsers (the dashboard). */
  json: boolean;
}

/**
 * `/v1/watch`: a read-only subscription for clients. After the client's `hello` the agent sends a
 * snapshot of the servers it knows, then upsert/remove deltas. Nothing a subscriber sends can
 * change membership: the only frame read is `hello`; anything else is counted and ignored.
 * `/v1/watch?format=json` carries the same frames as JSON text (hello included), for browsers.
 * With a token configured, a client shows it in the upgrade (`authorization: Bearer <token>`) or
 * in its hello; only then does it count toward maxSubscribers (until then: PendingSockets).
 */
export class Subscriptions {
  private readonly wss: WebSocketServer;
  private readonly subs = new Set<Sub>();
  private readonly pending: PendingSockets;
  /** Subscribers counted toward maxSubscribers: those authorized. */
  private authorizedCount = 0;
  readonly counters = { accepted: 0, rejected: 0, badFrames: 0, ignoredFrames: 0, slowCutoffs: 0, framesOut: 0, bytesOut: 0 };

  constructor(private readonly opts: SubscriptionOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
    this.pending = opts.pending ?? new PendingSockets();
  }

  get size(): number {
    return this.subs.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const admitted = admitUpgrade(req, socket, { token: this.opts.token, pending: this.pending, full: () => (this.full() ? this.fullMessage() : undefined) });
    if (!admitted) {
      this.counters.rejected++;
      return;
    }
    const json = /[?&]format=json(&|$)/.test(req.url ?? '');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, admitted.authorized, json, admitted.release));
  }

  private tokenOk(header: string | undefined | null): boolean {
    return tokenMatches(this.opts.token, header);
  }

  private full(): boolean {
    return this.authorizedCount >= (this.opts.maxSubscribers ?? 1024);
  }

  private fullMessage(): string {
    return `too many subscribers: this agent serves at most ${this.opts.maxSubscribers ?? 1024} (limits.maxSubscribers); try another agent\n`;
  }

  private authorize(sub: Sub): void {
    sub.authorized = true;
    this.authorizedCount++;
    sub.release?.();
    sub.release = undefined;
  }

  private accept(ws: WebSocket, authorized: boolean, json: boolean, release: (() => void) | undefined): void {
    this.counters.accepted++;
    const sub: Sub = { ws, service: undefined, ready: false, authorized: false, release, json };
    this.subs.add(sub);
    if (authorized) this.authorize(sub);
    const helloTimer = setTimeout(() => {
      if (!sub.ready) this.fail(sub, 'PEERLB_ERR_TIMEOUT', 'no hello within the time allowed');
    }, this.opts.helloTimeoutMs ?? 5000);
    helloTimer.unref();
    ws.on('message', (data: Buffer, isBinary) => {
      if (sub.ready) {
        this.counters.ignoredFrames++;
        return;
      }
      if (isBinary === sub.json) {
        this.counters.badFrames++;
        return this.fail(sub, 'PEERLB_ERR_DECODE', sub.json ? 'with format=json, frames must be JSON text' : 'frames must be binary msgpack');
      }
      let hello;
      try {
        hello = sub.json ? parseJsonHello(data) : decodeWatchClientFrame(data);
      } catch (err) {
        this.counters.badFrames++;
        return this.fail(sub, (err as { code?: string }).code ?? 'PEERLB_ERR_DECODE', (err as Error).message);
      }
      if (!sub.authorized) {
        if (!(hello.token !== undefined && this.tokenOk(hello.token))) {
          this.counters.rejected++;
          return this.fail(sub, 'PEERLB_ERR_AUTH', 'a valid token is required');
        }
        // Now it takes a subscriber's slot, if one is free.
        if (this.full()) {
          this.counters.rejected++;
          return this.fail(sub, 'PEERLB_ERR_LIMIT', this.fullMessage().trim());
        }
        this.authorize(sub);
      }
      clearTimeout(helloTimer);
      sub.service = hello.service;
      sub.ready = true;
      const snap = this.opts.snapshot();
      this.send(sub, {
        t: 'snapshot',
        v: PROTOCOL_VERSION,
        node: this.opts.node,
        servers: sub.service ? snap.servers.filter((s) => s.service === sub.service) : snap.servers,
        agents: snap.agents.slice(0, MAX_AGENT_URLS),
      });
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      clearTimeout(helloTimer);
      if (this.subs.delete(sub) && sub.authorized) this.authorizedCount--;
      sub.release?.();
    });
  }

  private fail(sub: Sub, code: string, message: string): void {
    this.send(sub, { t: 'error', v: PROTOCOL_VERSION, code, message });
    sub.ws.close(1008, code);
    setTimeout(() => sub.ws.terminate(), 1000).unref();
  }

  private send(sub: Sub, frame: WatchServerFrame, bytes: Buffer | string = sub.json ? JSON.stringify(frame) : encodeWatchFrame(frame)): void {
    if (sub.ws.readyState !== sub.ws.OPEN) return;
    if (sub.ws.bufferedAmount > (this.opts.maxPendingBytes ?? 4 << 20)) {
      this.counters.slowCutoffs++;
      this.opts.log?.warn({ pending: sub.ws.bufferedAmount }, 'watch subscriber too slow, cut off');
      sub.ws.terminate();
      return;
    }
    this.counters.framesOut++;
    this.counters.bytesOut += typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
    sub.ws.send(bytes);
  }

  private broadcast(frame: WatchServerFrame, service: string | undefined): void {
    let bytes: Buffer | undefined;
    let text: string | undefined;
    for (const sub of this.subs) {
      if (!sub.ready) continue;
      if (service !== undefined && sub.service !== undefined && sub.service !== service) continue;
      if (sub.json) this.send(sub, frame, (text ??= JSON.stringify(frame)));
      else this.send(sub, frame, (bytes ??= encodeWatchFrame(frame)));
    }
  }

  upsert(server: ServerRecord): void {
    this.broadcast({ t: 'upsert', v: PROTOCOL_VERSION, server }, server.service);
  }

  remove(id: string, service: string, reason: string): void {
    this.broadcast({ t: 'remove', v: PROTOCOL_VERSION, id, reason }, service);
  }

  agents(agents: string[]): void {
    this.broadcast({ t: 'agents', v: PROTOCOL_VERSION, agents: agents.slice(0, MAX_AGENT_URLS) }, undefined);
  }

  private agentsPending: (() => string[]) | undefined;

  /**
   * The agent list changed: send it at most every AGENTS_COALESCE_MS (a push-pull that adds
   * 10,000 members makes 10,000 changes, in a page per turn; a list for each, each listing every
   * member, would be quadratic).
   */
  agentsChanged(list: () => string[]): void {
    if (this.agentsPending) {
      this.agentsPending = list;
      return;
    }
    this.agentsPending = list;
    setTimeout(() => {
      const l = this.agentsPending;
      this.agentsPending = undefined;
      if (l) this.agents(l());
    }, AGENTS_COALESCE_MS).unref();
  }

  close(): void {
    for (const sub of this.subs) sub.ws.terminate();
    this.subs.clear();
    this.authorizedCount = 0;
    this.wss.close();
  }
}

/** A `hello` sent as JSON text (`/v1/watch?format=json`); bad JSON is a decode error like bad msgpack. */
function parseJsonHello(data: Buffer): ReturnType<typeof parseWatchClientFrame> {
  let o: unknown;
  try {
    o = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new DecodeError('hello is not valid JSON', { cause: err });
  }
  return parseWatchClientFrame(o);
}
