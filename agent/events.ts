import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

/** One entry of the recent-events list: join, suspect, dead, alive, drain, leave, health. */
export interface AgentEvent {
  at: number; // wall-clock ms, for display
  kind: string;
  node: string;
  detail?: string;
}

/**
 * `/v1/events`: a read-only JSON WebSocket for the dashboard (and for operators' own tools). It
 * sends `{ type: 'members', members, events }` on connect, then `{ type: 'member', member }` when a
 * member's status, address or meta changes and `{ type: 'event', event }` as things happen. Load
 * updates are not repeated here: the dashboard takes servers and load from `/v1/watch?format=json`,
 * the subscription clients use. The watch carries only the servers clients may pick; the dashboard
 * also needs suspect/dead/left members and the event history, hence this feed. Nothing sent to it
 * is read.
 */
export class EventFeed {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024, perMessageDeflate: false });
  private readonly clients = new Set<WebSocket>();
  private readonly recent: AgentEvent[] = [];

  constructor(
    private readonly snapshot: () => unknown[],
    private readonly maxClients = 64,
    private readonly keep = 50,
  ) {}

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.clients.size >= this.maxClients) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.clients.add(ws);
      ws.on('message', () => {}); // read-only
      ws.on('error', () => ws.terminate());
      ws.on('close', () => this.clients.delete(ws));
      ws.send(JSON.stringify({ type: 'members', members: this.snapshot(), events: this.recent }));
    });
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
    for (const ws of this.clients) ws.terminate();
    this.clients.clear();
    this.wss.close();
  }
}
