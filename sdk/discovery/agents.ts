import type { KeyObject } from 'node:crypto';
import WebSocket from 'ws';
import { SignatureError } from '../errors.js';
import { checkRecordSignature } from '../signing.js';
import type { DiscoverySink, DiscoverySource } from './source.js';
import {
  PROTOCOL_VERSION,
  LIMITS,
  WATCH_PATH,
  decodeWatchServerFrame,
  encodeWatchFrame,
  type ServerRecord,
} from '../protocol.js';
import { every, systemClock, type Clock, type TimerHandle } from '../clock.js';

export interface AgentWatchOptions {
  service: string;
  /** Seed agent URLs (ws://host:port). More are learned from the agents themselves. */
  agents: string[];
  token?: string;
  /** Heartbeat: ping every `pingMs`, give the agent up if no pong within `pongTimeoutMs`. */
  pingMs?: number;
  pongTimeoutMs?: number;
  /** Give up a connect attempt after this long. */
  connectTimeoutMs?: number;
  clock?: Clock;
  /** Called whenever the subscribed agent changes (undefined while none). */
  onAgent?: (url: string | undefined) => void;
  /** Only records signed with this Ed25519 public key enter the view (sdk/signing.ts). */
  verify?: KeyObject;
  /** A record was ignored for its signature. */
  onRejected?: (err: SignatureError) => void;
}

/** Normalize 'ws://h:p' / 'ws://h:p/' / 'ws://h:p/v1/watch' to the agent's base URL. */
export function agentBaseUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(new RegExp(`${WATCH_PATH}$`), '');
}

/**
 * Subscribes to one agent's read-only `/v1/watch` (the full view, then deltas) and, when that
 * agent dies or stalls, moves to another known agent. Heartbeats bound the time to notice a
 * silent agent to about pingMs + pongTimeoutMs; a killed agent process is noticed at once (its
 * socket closes). The view is kept while switching; the new agent's snapshot replaces it.
 */
export class AgentWatch implements DiscoverySource {
  private readonly known: string[] = [];
  private next = 0;
  private ws: WebSocket | undefined;
  private sink: DiscoverySink | undefined;
  private closed = false;
  private retryTimer: TimerHandle | undefined;
  private stopPing: (() => void) | undefined;
  private lastPong = 0;
  private failuresInRow = 0;
  private readonly clock: Clock;
  current: string | undefined;

  constructor(private readonly opts: AgentWatchOptions) {
    this.clock = opts.clock ?? systemClock;
    for (const a of opts.agents) this.addAgent(a);
  }

  /** Learn another agent URL (from mDNS or from an agent's list). */
  addAgent(url: string): void {
    const u = agentBaseUrl(url);
    if (!this.known.includes(u)) this.known.push(u);
    if (this.sink && !this.ws && !this.closed && this.retryTimer === undefined) this.connectNext();
  }

  /** Forget an agent (its mDNS goodbye); switch away if it is the current one. */
  removeAgent(url: string): void {
    const u = agentBaseUrl(url);
    const i = this.known.indexOf(u);
    if (i >= 0) this.known.splice(i, 1);
    if (this.current === u) this.ws?.terminate();
  }

  agents(): readonly string[] {
    return this.known;
  }

  start(sink: DiscoverySink): void {
    this.sink = sink;
    this.connectNext();
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.retryTimer);
    this.stopPing?.();
    this.ws?.terminate();
    this.ws = undefined;
  }

  private connectNext(): void {
    if (this.closed || this.known.length === 0) return;
    const url = this.known[this.next % this.known.length]!;
    this.next++;
    const ws = new WebSocket(url + WATCH_PATH, {
      maxPayload: LIMITS.maxFrameBytes,
      handshakeTimeout: this.opts.connectTimeoutMs ?? 1000,
      headers: this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : undefined,
    });
    this.ws = ws;
    let opened = false;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      opened = true;
      this.failuresInRow = 0;
      this.current = url;
      this.lastPong = this.clock.now();
      ws.send(encodeWatchFrame({ t: 'hello', v: PROTOCOL_VERSION, service: this.opts.service, token: this.opts.token }));
      const pingMs = this.opts.pingMs ?? 500;
      const timeout = this.opts.pongTimeoutMs ?? 1500;
      this.stopPing = every(this.clock, pingMs, () => {
        if (this.clock.now() - this.lastPong > timeout) ws.terminate();
        else ws.ping();
      });
      this.opts.onAgent?.(url);
    });
    ws.on('pong', () => (this.lastPong = this.clock.now()));
    ws.on('message', (data: Buffer, isBinary) => {
      this.lastPong = this.clock.now();
      if (!isBinary) return;
      this.onFrame(data);
    });
    ws.on('error', (err) => {
      if (opened) this.sink?.error(err);
    });
    ws.on('close', () => {
      this.stopPing?.();
      this.stopPing = undefined;
      if (this.ws === ws) this.ws = undefined;
      if (this.current === url) {
        this.current = undefined;
        this.opts.onAgent?.(undefined);
      }
      if (this.closed) return;
      if (!opened) this.failuresInRow++;
      // Try the next agent at once; after a full round of failures, back off (≤ 2 s).
      const delay = this.failuresInRow < this.known.length ? 0 : Math.min(2000, 100 * 2 ** Math.min(5, this.failuresInRow - this.known.length));
      this.retryTimer = this.clock.setTimeout(() => {
        this.retryTimer = undefined;
        this.connectNext();
      }, delay);
      this.retryTimer.unref?.();
    });
  }

  private onFrame(data: Buffer): void {
    const sink = this.sink!;
    let f;
    try {
      f = decodeWatchServerFrame(data);
    } catch (err) {
      sink.error(err as Error);
      return;
    }
    const key = this.opts.verify;
    const mine = (r: ServerRecord) => {
      if (r.service !== this.opts.service) return false;
      if (!key) return true;
      const why = checkRecordSignature(r, key);
      if (why) this.opts.onRejected?.(new SignatureError(r.id, 'watch', why, `agent ${this.current ?? '?'}`));
      return why === undefined;
    };
    switch (f.t) {
      case 'snapshot':
        sink.reset(f.servers.filter(mine));
        for (const a of f.agents) this.addAgent(a);
        break;
      case 'upsert':
        if (mine(f.server)) sink.upsert(f.server);
        break;
      case 'remove':
        sink.remove(f.id, f.reason);
        break;
      case 'agents':
        for (const a of f.agents) this.addAgent(a);
        break;
      case 'error':
        sink.error(new Error(`agent ${this.current}: ${f.code}: ${f.message}`));
        break;
    }
  }
}
