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
  log?: Logger;
}

interface Sub {
  ws: WebSocket;
  service: string | undefined;
  ready: boolean;
  /** `/v1/watch?format=json`: the same frames as JSON text, for browsers (the dashboard). */
  json: boolean;
}

/**
 * `/v1/watch`: a read-only subscription for clients. After the client's `hello` the agent sends a
 * snapshot of the servers it knows, then upsert/remove deltas. Nothing a subscriber sends can
 * change membership: the only frame read is `hello`; anything else is counted and ignored.
 * `/v1/watch?format=json` carries the same frames as JSON text (hello included), for browsers.
 */
export class Subscriptions {
  private readonly wss: WebSocketServer;
  private readonly subs = new Set<Sub>();
  readonly counters = { accepted: 0, rejected: 0, badFrames: 0, ignoredFrames: 0, slowCutoffs: 0, framesOut: 0, bytesOut: 0 };

  constructor(private readonly opts: SubscriptionOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
  }

  get size(): number {
    return this.subs.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const max = this.opts.maxSubscribers ?? 1024;
    if (this.subs.size >= max) {
      this.counters.rejected++;
      const body = `too many subscribers: this agent serves at most ${max} (limits.maxSubscribers); try another agent\n`;
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    if (this.opts.token && !this.tokenOk(req.headers.authorization)) {
      // The token may also come in `hello`; a wrong bearer header is refused outright.
      if (req.headers.authorization !== undefined) {
        this.counters.rejected++;
        socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        return;
      }
    }
    const json = /[?&]format=json(&|$)/.test(req.url ?? '');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, this.opts.token ? this.tokenOk(req.headers.authorization) : true, json));
  }

  private tokenOk(header: string | undefined | null): boolean {
    const want = this.opts.token;
    if (!want) return true;
    if (!header) return false;
    const got = header.startsWith('Bearer ') ? header.slice(7) : header;
    const a = Buffer.from(got);
    const b = Buffer.from(want);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private accept(ws: WebSocket, authorized: boolean, json = false): void {
    this.counters.accepted++;
    const sub: Sub = { ws, service: undefined, ready: false, json };
    this.subs.add(sub);
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
      if (!authorized && !(hello.token !== undefined && this.tokenOk(hello.token))) {
        this.counters.rejected++;
        return this.fail(sub, 'PEERLB_ERR_AUTH', 'a valid token is required');
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
        agents: snap.agents,
      });
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      clearTimeout(helloTimer);
      this.subs.delete(sub);
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
    this.broadcast({ t: 'agents', v: PROTOCOL_VERSION, agents }, undefined);
  }

  close(): void {
    for (const sub of this.subs) sub.ws.terminate();
    this.subs.clear();
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
