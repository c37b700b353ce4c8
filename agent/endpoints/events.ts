import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_VERSION, parseWatchClientFrame } from '../../sdk/core/protocol.js';
import { admitUpgrade, PendingSockets, tokenMatches } from '../admission.js';
import { AddressSlots } from '../admission.js';
import type { Logger } from '../log.js';
import { every, systemClock, type Clock } from '../../sdk/core/clock.js';

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
  /** Most clients from one IP. Default 8. */
  maxClientsPerAddress?: number;
  /** Every this often each client is pinged; one that has not answered the previous ping is closed. Default 15 000 ms. */
  pingMs?: number;
  /** Recent events kept for new clients. Default 50. */
  keep?: number;
  /** A client without the token in its upgrade must send its hello within this time. Default 5000 ms. */
  helloTimeoutMs?: number;
  /** Sockets waiting to show the token. Default: 64 in all, 8 per IP. */
  pending?: PendingSockets;
  log?: Logger;
  /** The hello timeout and the pings run on it. Default: the system clock. */
  clock?: Clock;
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
 *
 * Clients are capped per IP (8: 429 with the reason) and in total (64) with a fair share
 * (admission.ts): at the total, the oldest client of the IP holding the most is closed for a
 * newcomer from an IP holding fewer, so idle sockets from one address cannot keep the dashboard
 * out. A client is pinged every pingMs and closed when it did not answer the previous ping (a
 * browser answers by itself; a socket nobody reads does not), and one with over 1 MiB unsent is cut.
 */
export class EventFeed {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
  /** Clients that get the feed (authorized). */
  private readonly clients: AddressSlots<WebSocket>;
  private readonly alive = new WeakSet<WebSocket>();
  private readonly stopPinger: () => void;
  private readonly clock: Clock;
  /** Refused for the IP's share (429), closed to make room (fair share), closed for not answering pings. */
  readonly counters = { addressRefused: 0, evicted: 0, pingTimeouts: 0 };
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
    this.clients = new AddressSlots<WebSocket>(this.maxClients, opts.maxClientsPerAddress ?? 8, (ws) => {
      this.counters.evicted++;
      this.fail(ws, 'PEERLB_ERR_LIMIT', 'closed to make room: this agent is full and your address holds more of its event clients than others');
    });
    this.clock = opts.clock ?? systemClock;
    this.stopPinger = every(this.clock, opts.pingMs ?? 15_000, () => this.ping());
  }

  /** Why a client from `ip` would be refused now, as an HTTP refusal, if it would. */
  private refusal(ip: string): { status: string; body: string } | undefined {
    const why = this.clients.check(ip);
    if (why === 'total') return { status: '503 Service Unavailable', body: `too many event clients: at most ${this.maxClients}\n` };
    if (why === 'address') {
      this.counters.addressRefused++;
      return { status: '429 Too Many Requests', body: `too many event clients from ${ip}: at most ${this.clients.maxPerAddress} per address\n` };
    }
    return undefined;
  }

  private ping(): void {
    for (const ws of this.clients.items()) {
      if (!this.alive.has(ws)) {
        this.counters.pingTimeouts++;
        this.clients.delete(ws);
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      try {
        ws.ping();
      } catch {
        ws.terminate();
      }
    }
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const ip = req.socket.remoteAddress ?? '?';
    const full = () => this.refusal(ip);
    const admitted = admitUpgrade(req, socket, { token: this.opts.token, pending: this.pending, full });
    if (!admitted) return;
    const { authorized, release } = admitted;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      if (authorized) return this.join(ws, ip);
      this.waiting.add(ws);
      const timer = this.clock.setTimeout(() => this.fail(ws, 'PEERLB_ERR_TIMEOUT', 'no hello within the time allowed'), this.opts.helloTimeoutMs ?? 5000);
      timer.unref?.();
      ws.on('close', () => {
        this.clock.clearTimeout(timer);
        this.waiting.delete(ws);
        release!();
      });
      ws.once('message', (data: Buffer, isBinary: boolean) => {
        this.clock.clearTimeout(timer);
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
        const no = this.refusal(ip);
        if (no) return this.fail(ws, 'PEERLB_ERR_LIMIT', no.body.trim());
        this.waiting.delete(ws);
        release!();
        this.join(ws, ip);
      });
    });
  }

  private join(ws: WebSocket, ip: string): void {
    const why = this.clients.add(ip, ws);
    if (why) return this.fail(ws, 'PEERLB_ERR_LIMIT', why === 'total' ? `too many event clients: at most ${this.maxClients}` : `too many event clients from ${ip}`);
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
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
    for (const ws of this.clients.items()) {
      if (ws.bufferedAmount > 1 << 20) {
        this.clients.delete(ws);
        ws.terminate();
      } else ws.send(text);
    }
  }

  close(): void {
    this.stopPinger();
    for (const ws of [...this.clients.items(), ...this.waiting]) ws.terminate();
    for (const ws of this.clients.items()) this.clients.delete(ws);
    this.waiting.clear();
    this.wss.close();
  }
}
