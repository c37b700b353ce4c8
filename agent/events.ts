import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_VERSION, parseWatchClientFrame } from '../sdk/protocol.js';
import { admitUpgrade, PendingSockets, tokenMatches } from './subscriptions.js';
import type { Logger } from './log.js';

/** One entry of the recent-events list: join, suspect, dead, alive, drain, leave, health. */
export interface AgentEvent {
  at: number; // wall-clock ms, for display
  kind: string;
  node: string;
  detail?: string;
}

/** Options of EventFeed (see there). */
export interface EventFeedOptions {
  /** Required token, when set. */
  token?: string;
  /** Most clients at once. Default 64. */
  maxClients?: number;
  /** Recent events kept for new clients. Default 50. */
  keep?: number;
  /** A client without the token in its upgrade must send its hello within this time. Default 5000 ms. */
  helloTimeoutMs?: number;
  /** Sockets waiting to show the token. Default: 64 in all, 8 per IP. */
  pending?: PendingSockets;
  log?: Logger;
}

/**
 * `/v1/events`: a read-only JSON WebSocket for the dashboard (and for operators' own tools). It
 * sends `{ type: 'members', members, events }` on connect, then `{ type: 'member', member }` when a
 * member's status, address or meta changes and `{ type: 'event', event }` as things happen. Load
 * updates are not repeated here: the dashboard takes servers and load from `/v1/watch?format=json`,
 * the subscription clients use. The watch carries only the servers clients may pick; the dashboard
 * also needs suspect/dead/left members and the event history, hence this feed. Nothing sent to it
 * is read, but for the hello below.
 *
 * With a token configured (`--token`, as for `/v1/watch`, and checked the same way: it tells as
 * much about the cluster), a client shows it in the upgrade (`authorization: Bearer <token>`) or
 * sends `{ "t": "hello", "v": 1, "token": "…" }` as JSON text within helloTimeoutMs, as on
 * `/v1/watch?format=json`; a wrong or missing token gets `{ type: 'error', code, message }` and the
 * socket is closed. Sockets still waiting for their hello hold a PendingSockets slot, not a client's.
 */
export class EventFeed {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
  /** Clients that get the feed (authorized). */
  private readonly clients = new Set<WebSocket>();
  /** Clients still to send their hello with the token. */
  private readonly waiting = new Set<WebSocket>();
  private readonly recent: AgentEvent[] = [];
  private readonly maxClients: number;
  private readonly keep: number;
  private readonly pending: PendingSockets;

  constructor(
    private readonly snapshot: () => unknown[],
    private readonly opts: EventFeedOptions = {},
  ) {
    this.maxClients = opts.maxClients ?? 64;
    this.keep = opts.keep ?? 50;
    this.pending = opts.pending ?? new PendingSockets();
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const full = () => (this.clients.size >= this.maxClients ? `too many event clients: at most ${this.maxClients}\n` : undefined);
    const admitted = admitUpgrade(req, socket, { token: this.opts.token, pending: this.pending, full });
    if (!admitted) return;
    const { authorized, release } = admitted;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      if (authorized) return this.join(ws);
      this.waiting.add(ws);
      const timer = setTimeout(() => this.fail(ws, 'PEERLB_ERR_TIMEOUT', 'no hello within the time allowed'), this.opts.helloTimeoutMs ?? 5000);
      timer.unref();
      ws.on('close', () => {
        clearTimeout(timer);
        this.waiting.delete(ws);
        release!();
      });
      ws.once('message', (data: Buffer, isBinary: boolean) => {
        clearTimeout(timer);
        let token: string | undefined;
        try {
          if (isBinary) throw new Error('the hello must be JSON text');
          token = parseWatchClientFrame(JSON.parse(data.toString('utf8'))).token;
        } catch (err) {
          return this.fail(ws, 'PEERLB_ERR_DECODE', `expected { "t": "hello", "v": ${PROTOCOL_VERSION}, "token": "…" }: ${(err as Error).message}`);
        }
        if (!tokenMatches(this.opts.token, token)) {
          this.opts.log?.debug({ from: req.socket.remoteAddress }, 'event client refused: no valid token');
          return this.fail(ws, 'PEERLB_ERR_AUTH', 'a valid token is required');
        }
        if (this.clients.size >= this.maxClients) return this.fail(ws, 'PEERLB_ERR_LIMIT', `too many event clients: at most ${this.maxClients}`);
        this.waiting.delete(ws);
        release!();
        this.join(ws);
      });
    });
  }

  private join(ws: WebSocket): void {
    this.clients.add(ws);
    ws.on('message', () => {}); // read-only
    ws.on('close', () => this.clients.delete(ws));
    ws.send(JSON.stringify({ type: 'members', members: this.snapshot(), events: this.recent }));
  }

  private fail(ws: WebSocket, code: string, message: string): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'error', code, message }));
    ws.close(1008, code);
    setTimeout(() => ws.terminate(), 1000).unref();
  }

  event(e: AgentEvent): void {
    this.recent.push(e);
    if (this.recent.length > this.keep) this.recent.shift();
    this.send({ type: 'event', event: e });
  }

  member(m: unknown): void {
    this.send({ type: 'member', member: m });
  }

  events(): readonly AgentEvent[] {
    return this.recent;
  }

  get size(): number {
    return this.clients.size;
  }

  private send(msg: unknown): void {
    if (this.clients.size === 0) return;
    const text = JSON.stringify(msg);
    for (const ws of this.clients) {
      if (ws.bufferedAmount > 1 << 20) ws.terminate();
      else ws.send(text);
    }
  }

  close(): void {
    for (const ws of [...this.clients, ...this.waiting]) ws.terminate();
    this.clients.clear();
    this.waiting.clear();
    this.wss.close();
  }
}
