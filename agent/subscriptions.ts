import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  PROTOCOL_VERSION,
  MAX_WATCH_CLIENT_FRAME_BYTES,
  parseWatchClientFrame,
  parseWatchPing,
  type ServerRecord,
  type WatchServerFrame,
} from '../sdk/core/protocol.js';
import { decodeWatchClientFrame, encodeWatchFrame, unpackFrame } from '../sdk/core/msgpack.js';
import { DecodeError } from '../sdk/core/errors.js';
import { every, systemClock, type Clock } from '../sdk/core/clock.js';
import { AddressSlots, admitUpgrade, PendingSockets, RateLimit, refuseSocket, tokenMatches } from './admission.js';
import { SnapshotCache } from './watch-snapshot.js';
import type { Logger } from './log.js';

export interface SubscriptionOptions {
  node: string;
  /** Drives the hello timeout and the pending-budget sweep (default: the system clock). */
  clock?: Clock;
  /** Everything to put in a snapshot: read once, then kept up to date by upsert/remove/agents. */
  snapshot: () => { servers: ServerRecord[]; agents: string[] };
  /** One member's current record (to refresh a snapshot entry whose load age has grown old). */
  record?: (id: string) => ServerRecord | undefined;
  /** Subscribers (after their hello) from one IP. Default 256. */
  maxSubscribersPerAddress?: number;
  /** Unsent bytes across all subscribers; past it the stalled ones are cut first. Default 64 MiB. */
  maxTotalPendingBytes?: number;
  /** New sockets per second from one IP, on average, and the burst allowed. Default 20/s, 50. */
  helloRate?: number;
  helloBurst?: number;
  /** Sockets between upgrade and hello (no token needed, or given in the upgrade): in all and per IP. Default 256 and 32. */
  maxHelloWaiting?: number;
  maxHelloWaitingPerAddress?: number;
  now?: () => number;
  random?: () => number;
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

/** Changes of the agent list within this time go out as one `agents` frame. */
export const AGENTS_COALESCE_MS = 100;

interface Sub {
  ws: WebSocket;
  ip: string;
  service: string | undefined;
  ready: boolean;
  /** Holds the token (or none is needed). */
  authorized: boolean;
  /** Gives back its PendingSockets slot, while it has one. */
  release: (() => void) | undefined;
  /** `/v1/watch?format=json`: the same frames as JSON text, for browsers (the dashboard). */
  json: boolean;
  /** For the pending budget: bufferedAmount at the last sweep, and when it last went down (or was 0). */
  lastBuffered: number;
  progressAt: number;
  /** Heartbeat: pongs sent in the current one-second window, and when it began. */
  pongs: number;
  pongWindowAt: number;
}

/**
 * Most `pong` frames a subscriber gets a second: the SDK pings every 500 ms by default (pingMs);
 * a client that pings faster is answered this often and the rest of its pings are ignored.
 */
export const MAX_PONGS_PER_SEC = 20;

/** Sockets between upgrade and hello, in all and per IP (WatchOptions defaults). */
export const MAX_HELLO_WAITING = 256;
export const MAX_HELLO_WAITING_PER_IP = 32;
/** How often the pending budget looks at who is making progress. */
const SWEEP_MS = 250;

/**
 * `/v1/watch`: a read-only subscription for clients. After the client's `hello` the agent sends a
 * snapshot of the servers it knows, then upsert/remove deltas. Nothing a subscriber sends can
 * change membership: the only frame read is `hello`; anything else is counted and ignored.
 * `/v1/watch?format=json` carries the same frames as JSON text (hello included), for browsers.
 * With a token configured, a client shows it in the upgrade (`authorization: Bearer <token>`) or
 * in its hello (until then: PendingSockets).
 *
 * Admission (agent/admission.ts): new sockets are rate limited per IP (429 with retry-after); a
 * socket counts toward maxSubscribers only after its hello: until then it holds a hello-waiting
 * slot (256 in all, 32 per IP, fair share at the total) for helloTimeoutMs. Subscribers are capped
 * per IP and in total, with the same fair share: at the total, the oldest subscriber of the IP
 * holding the most is closed (PEERLB_ERR_LIMIT) for a newcomer from an IP holding fewer. Refusals
 * are HTTP statuses with the reason in the body (429: this address's share; 503: this agent is
 * full), or an `error` frame once the socket is open. The snapshot is built once per change and
 * shared (watch-snapshot.ts). Unsent bytes are bounded per subscriber (maxPendingBytes) and across
 * all (maxTotalPendingBytes): past the total, the subscribers stalled longest are cut first.
 */
export class Subscriptions {
  private readonly wss: WebSocketServer;
  private readonly subs = new Set<Sub>();
  private readonly pending: PendingSockets;
  private readonly waiting: AddressSlots<Sub>;
  private readonly subscribed: AddressSlots<Sub>;
  private readonly rate: RateLimit;
  private readonly snap: SnapshotCache;
  private readonly now: () => number;
  private readonly stopSweep: () => void;
  private readonly clock: Clock;
  readonly counters = {
    accepted: 0,
    rejected: 0,
    badFrames: 0,
    ignoredFrames: 0,
    slowCutoffs: 0,
    framesOut: 0,
    bytesOut: 0,
    /** Refused for the IP's rate of new sockets (429). */
    rateLimited: 0,
    /** Refused for the IP's share of waiting sockets or subscribers (429). */
    addressRefused: 0,
    /** Closed to make room for a socket from an IP holding fewer (fair share at the total). */
    evicted: 0,
    /** Cut off by the pending budget across subscribers. */
    budgetCutoffs: 0,
    helloTimeouts: 0,
  };

  constructor(private readonly opts: SubscriptionOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
    this.pending = opts.pending ?? new PendingSockets();
    this.now = opts.now ?? Date.now;
    const evict = (sub: Sub) => {
      this.counters.evicted++;
      this.fail(sub, 'PEERLB_ERR_LIMIT', 'closed to make room: this agent is full and your address holds more of its subscribers than others');
    };
    this.waiting = new AddressSlots<Sub>(opts.maxHelloWaiting ?? MAX_HELLO_WAITING, opts.maxHelloWaitingPerAddress ?? MAX_HELLO_WAITING_PER_IP, evict);
    this.subscribed = new AddressSlots<Sub>(opts.maxSubscribers ?? 1024, opts.maxSubscribersPerAddress ?? 256, evict);
    this.rate = new RateLimit(opts.helloRate ?? 20, opts.helloBurst ?? 50, this.now);
    this.snap = new SnapshotCache(opts.node, { all: opts.snapshot, record: opts.record, now: this.now, random: opts.random });
    this.clock = opts.clock ?? systemClock;
    this.stopSweep = every(this.clock, SWEEP_MS, () => this.sweep());
  }

  /** Subscribers (after their hello). */
  get size(): number {
    return this.subscribed.size;
  }

  /** Sockets waiting for their hello (either kind). */
  get waitingForHello(): number {
    return this.waiting.size + this.pending.size;
  }

  /** Snapshot cache counters: snapshots assembled vs served, records encoded for them. */
  snapshotCounters(): SnapshotCache['counters'] {
    return { ...this.snap.counters };
  }

  /** Unsent bytes across subscribers now. */
  pendingBytes(): number {
    let n = 0;
    for (const sub of this.subs) n += sub.ws.bufferedAmount;
    return n;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const ip = req.socket.remoteAddress ?? '?';
    if (!this.rate.allow(ip)) {
      this.counters.rejected++;
      this.counters.rateLimited++;
      const wait = this.rate.retryAfter(ip);
      refuseSocket(socket, '429 Too Many Requests', `too many new subscriptions from ${ip}: at most ${this.rate.ratePerSec}/s (limits.helloRate); retry after ${wait} s\n`, { 'retry-after': wait });
      return;
    }
    const admitted = admitUpgrade(req, socket, { token: this.opts.token, pending: this.pending, full: () => this.fullFor(ip) });
    if (!admitted) {
      this.counters.rejected++;
      return;
    }
    const json = /[?&]format=json(&|$)/.test(req.url ?? '');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, ip, admitted.authorized, json, admitted.release));
  }

  private tokenOk(header: string | undefined | null): boolean {
    return tokenMatches(this.opts.token, header);
  }

  /** Why a socket from `ip` that holds the token would be refused now (as an HTTP refusal), if it would. */
  private fullFor(ip: string): { status: string; body: string } | undefined {
    const why = this.subscribed.check(ip) ?? this.waiting.check(ip);
    if (!why) return undefined;
    if (why === 'total') return { status: '503 Service Unavailable', body: this.fullMessage() };
    this.counters.addressRefused++;
    return { status: '429 Too Many Requests', body: this.addressMessage(ip) };
  }

  private fullMessage(): string {
    return `too many subscribers: this agent serves at most ${this.subscribed.max} (limits.maxSubscribers); try another agent\n`;
  }

  private addressMessage(ip: string): string {
    return `too many subscribers from ${ip}: at most ${this.subscribed.maxPerAddress} subscribers (limits.maxSubscribersPerAddress) and ${this.waiting.maxPerAddress} sockets waiting for their hello per address\n`;
  }

  private accept(ws: WebSocket, ip: string, authorized: boolean, json: boolean, release: (() => void) | undefined): void {
    this.counters.accepted++;
    const sub: Sub = { ws, ip, service: undefined, ready: false, authorized, release, json, lastBuffered: 0, progressAt: this.now(), pongs: 0, pongWindowAt: 0 };
    this.subs.add(sub);
    if (authorized && this.waiting.add(ip, sub)) {
      this.counters.rejected++;
      this.subs.delete(sub);
      return this.fail(sub, 'PEERLB_ERR_LIMIT', this.addressMessage(ip).trim());
    }
    const helloTimer = this.clock.setTimeout(() => {
      if (sub.ready) return;
      this.counters.helloTimeouts++;
      this.fail(sub, 'PEERLB_ERR_TIMEOUT', 'no hello within the time allowed');
    }, this.opts.helloTimeoutMs ?? 5000);
    helloTimer.unref?.();
    ws.on('message', (data: Buffer, isBinary) => {
      if (sub.ready) {
        // The application-level heartbeat (a browser cannot send protocol pings): answered with a
        // pong frame, at most MAX_PONGS_PER_SEC a second. Anything else is ignored, and counted.
        const n = isBinary === !sub.json ? pingOf(data, sub.json) : undefined;
        const now = this.now();
        if (now - sub.pongWindowAt >= 1000) {
          sub.pongWindowAt = now;
          sub.pongs = 0;
        }
        if (n === undefined || sub.pongs >= MAX_PONGS_PER_SEC) {
          this.counters.ignoredFrames++;
          return;
        }
        sub.pongs++;
        this.send(sub, { t: 'pong', v: PROTOCOL_VERSION, n });
        return;
      }
      if (!this.subs.has(sub)) return; // closed to make room, or refused
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
        sub.authorized = true;
      }
      // Now it takes a subscriber's slot, if one is free (or the fair share frees one).
      const why = this.subscribed.add(ip, sub);
      if (why) {
        this.counters.rejected++;
        if (why === 'address') this.counters.addressRefused++;
        return this.fail(sub, 'PEERLB_ERR_LIMIT', why === 'total' ? this.fullMessage().trim() : this.addressMessage(ip).trim());
      }
      this.waiting.delete(sub);
      sub.release?.();
      sub.release = undefined;
      this.clock.clearTimeout(helloTimer);
      sub.service = hello.service;
      sub.ready = true;
      sub.progressAt = this.now();
      this.send(sub, undefined, this.snap.frame(sub.service, sub.json));
      this.enforceBudget();
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.clock.clearTimeout(helloTimer);
      this.subs.delete(sub);
      this.waiting.delete(sub);
      this.subscribed.delete(sub);
      sub.release?.();
    });
  }

  private fail(sub: Sub, code: string, message: string): void {
    this.subs.delete(sub);
    this.waiting.delete(sub);
    this.subscribed.delete(sub);
    sub.ready = false;
    this.send(sub, { t: 'error', v: PROTOCOL_VERSION, code, message });
    sub.ws.close(1008, code);
    setTimeout(() => sub.ws.terminate(), 1000).unref();
  }

  /**
   * Send a frame (or its bytes, shared by every subscriber it goes to: ws sends a Buffer without
   * copying it, where a string would be copied into each socket's own Buffer). JSON frames go as
   * text frames of UTF-8 bytes.
   */
  private send(sub: Sub, frame: WatchServerFrame | undefined, bytes: Buffer = sub.json ? Buffer.from(JSON.stringify(frame)) : encodeWatchFrame(frame!)): void {
    if (sub.ws.readyState !== sub.ws.OPEN) return;
    if (sub.ws.bufferedAmount > (this.opts.maxPendingBytes ?? 4 << 20)) {
      this.counters.slowCutoffs++;
      this.opts.log?.warn({ pending: sub.ws.bufferedAmount }, 'watch subscriber too slow, cut off');
      this.cutOff(sub);
      return;
    }
    this.counters.framesOut++;
    this.counters.bytesOut += bytes.length;
    sub.ws.send(bytes, { binary: !sub.json });
  }

  private cutOff(sub: Sub): void {
    this.subs.delete(sub);
    this.waiting.delete(sub);
    this.subscribed.delete(sub);
    sub.ready = false;
    sub.ws.terminate();
  }

  /** Note who is making progress (its unsent bytes went down, or are none). */
  private sweep(): void {
    const now = this.now();
    for (const sub of this.subs) {
      const b = sub.ws.bufferedAmount;
      if (b === 0 || b < sub.lastBuffered) sub.progressAt = now;
      sub.lastBuffered = b;
    }
    this.enforceBudget();
  }

  /**
   * Over the total pending budget: cut subscribers until under it, those stalled longest (no
   * progress since the earliest time) first, and among equals the one holding the most.
   */
  private enforceBudget(): void {
    const budget = this.opts.maxTotalPendingBytes ?? 64 << 20;
    let total = this.pendingBytes();
    if (total <= budget) return;
    const holding = [...this.subs].filter((s) => s.ws.bufferedAmount > 0).sort((a, b) => a.progressAt - b.progressAt || b.ws.bufferedAmount - a.ws.bufferedAmount);
    for (const sub of holding) {
      if (total <= budget) break;
      total -= sub.ws.bufferedAmount;
      this.counters.budgetCutoffs++;
      this.opts.log?.warn({ pending: sub.ws.bufferedAmount, stalledMs: this.now() - sub.progressAt }, 'watch subscriber cut off: unsent bytes across subscribers over limits.maxWatchPendingBytes');
      this.cutOff(sub);
    }
  }

  private broadcast(frame: WatchServerFrame, service: string | undefined): void {
    let bytes: Buffer | undefined;
    let text: Buffer | undefined;
    let any = false;
    for (const sub of this.subs) {
      if (!sub.ready) continue;
      if (service !== undefined && sub.service !== undefined && sub.service !== service) continue;
      any = true;
      if (sub.json) this.send(sub, frame, (text ??= Buffer.from(JSON.stringify(frame))));
      else this.send(sub, frame, (bytes ??= encodeWatchFrame(frame)));
    }
    if (any) this.enforceBudget();
  }

  upsert(server: ServerRecord): void {
    this.snap.upsert(server);
    this.broadcast({ t: 'upsert', v: PROTOCOL_VERSION, server }, server.service);
  }

  remove(id: string, service: string, reason: string): void {
    this.snap.remove(id);
    this.broadcast({ t: 'remove', v: PROTOCOL_VERSION, id, reason }, service);
  }

  /** The live agents changed: subscribers get a bounded sample of them (watch-snapshot MAX_AGENTS). */
  agents(agents: string[]): void {
    this.broadcast({ t: 'agents', v: PROTOCOL_VERSION, agents: this.snap.agents(agents) }, undefined);
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
    this.stopSweep();
    for (const sub of this.subs) sub.ws.terminate();
    for (const ws of this.wss.clients) ws.terminate();
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

/** A subscriber's ping frame's counter (msgpack, or JSON text with format=json), or undefined when the frame is no ping. */
function pingOf(data: Buffer, json: boolean): number | undefined {
  if (data.length > MAX_WATCH_CLIENT_FRAME_BYTES) return undefined;
  try {
    return parseWatchPing(json ? JSON.parse(data.toString('utf8')) : unpackFrame(data, MAX_WATCH_CLIENT_FRAME_BYTES));
  } catch {
    return undefined;
  }
}
