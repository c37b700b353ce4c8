import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ConfigError } from '../sdk/errors.js';
import type { Logger } from './log.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * The agent's one port serves everything: `/v1/gossip` (agents, WebSocket), `/v1/watch` (clients,
 * WebSocket), `/v1/members`, `/v1/load` (loopback only), `/metrics`, and the dashboard at `/`.
 * Routing is by exact path; anything else is a 404.
 */
export class AgentHttp {
  readonly server: http.Server;
  private readonly routes = new Map<string, RequestHandler>();
  private readonly upgrades = new Map<string, UpgradeHandler>();

  constructor(private readonly log?: Logger) {
    this.server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, maxHeaderSize: 8192 }, (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  route(path: string, handler: RequestHandler): void {
    this.routes.set(path, handler);
  }

  upgrade(path: string, handler: UpgradeHandler): void {
    this.upgrades.set(path, handler);
  }

  /** Listen; a port in use or an address not on this host fails with a ConfigError naming it. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.server.off('listening', onListening);
        const why =
          err.code === 'EADDRINUSE' ? `port ${port} on ${host} is already in use` : err.code === 'EADDRNOTAVAIL' ? `address ${host} is not on this host` : err.message;
        reject(new ConfigError(`agent cannot listen: ${why}`, { cause: err }));
      };
      const onListening = () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.log?.error({ err }, 'http server error'));
        resolve((this.server.address() as { port: number }).port);
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen(port, host);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private pathOf(req: IncomingMessage): string {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    return q === -1 ? url : url.slice(0, q);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const handler = this.routes.get(this.pathOf(req));
    if (!handler) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err) => {
        this.log?.error({ err, path: req.url }, 'request handler failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error' }));
      });
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const handler = this.upgrades.get(this.pathOf(req));
    if (!handler) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    handler(req, socket, head);
  }
}

/** Send a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
