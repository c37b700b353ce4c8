import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import tls, { type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../sdk/core/errors.js';
import { AddressSlots, connectionCapFor, openFileLimit, refuseSocket, REFUSAL_HEADROOM } from './admission.js';
import type { Logger } from './log.js';
import { TLS_REQUIRED_HEADER } from './tls.js';

export { TLS_REQUIRED_HEADER } from './tls.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface AgentHttpOptions {
  /** Sockets open at once, of every kind (HTTP, and WebSockets after their upgrade). Default 8192, and never more than the open-file limit allows (an eighth of it, at least 64, stays for the agent's own sockets). */
  maxConnections?: number;
  /** Sockets open at once from one IP. Default 512. */
  maxConnectionsPerAddress?: number;
  /** A socket must complete its request headers within this time, and an idle keep-alive socket is closed after it. Default 5000 ms. */
  headersTimeoutMs?: number;
  /** Serve https and wss instead of http and ws (PEM certificate chain and key). */
  tls?: { cert: Buffer; key: Buffer };
  log?: Logger;
}

/** The first byte of a TLS record carrying a handshake (RFC 8446 §5.1: ContentType handshake(22)): what a TLS client sends first. */
const TLS_HANDSHAKE = 0x16;
/** A socket refused at accept on a TLS port has this long to finish its handshake and read why. */
const TLS_REFUSAL_MS = 2000;

/** How often Node looks for sockets past headersTimeout / requestTimeout (its default, 30 s, let an idle socket live ~28 s). */
const CONNECTIONS_CHECK_MS = 1000;

/**
 * The agent's one port serves everything: `/v1/gossip` (agents, WebSocket), `/v1/watch` (clients,
 * WebSocket), `/v1/members`, `/v1/load` (loopback only), `/metrics`, and the dashboard at `/`.
 * Routing is by exact path; anything else is a 404.
 *
 * Every TCP socket takes a slot as it is accepted (AddressSlots: per IP, in total with a fair share)
 * until it closes, upgraded or not; a socket past its IP's share gets 429, one past the total 503.
 * A socket that sends no complete request head within headersTimeoutMs is closed (408), and so is
 * an idle keep-alive socket after that long (nginx client_header_timeout / keepalive_timeout).
 *
 * With `tls` the port speaks https and wss only. Each socket's first bytes are looked at: a TLS
 * handshake goes on to TLS, anything else (a plain HTTP request, ws://) is answered in plain text
 * `400 this port speaks TLS` with an x-peerlb-tls header and closed, as nginx answers "the plain
 * HTTP request was sent to HTTPS port". The handshake must finish within headersTimeoutMs. A
 * socket refused at accept (429/503) gets its answer over TLS. setTls() swaps the certificate
 * for new connections (SIGHUP).
 */
export class AgentHttp {
  readonly server: http.Server | https.Server;
  private readonly routes = new Map<string, RequestHandler>();
  private readonly prefixes: Array<[string, RequestHandler]> = [];
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private readonly log: Logger | undefined;
  private readonly conns: AddressSlots<Socket>;
  readonly counters = { accepted: 0, refusedAddress: 0, refusedTotal: 0, idleClosed: 0, plainOnTls: 0 };
  private readonly headersTimeoutMs: number;
  /** Sockets answered 429/503 as they were accepted: whatever they send is not served. */
  private readonly refused = new WeakSet<Socket>();
  /** With TLS: Node's own listener that starts TLS on an accepted socket (called once its first bytes are a handshake). */
  private readonly startTls: ((socket: Socket) => void) | undefined;
  private secureContext: SecureContext | undefined;
  /** The port speaks TLS. */
  readonly tls: boolean;

  constructor(opts: AgentHttpOptions = {}) {
    this.log = opts.log;
    const fileLimit = openFileLimit(() => readFileSync('/proc/self/limits', 'utf8'));
    const configured = opts.maxConnections ?? 8192;
    const max = connectionCapFor(configured, fileLimit);
    if (max < configured) this.log?.info({ maxConnections: max, configured, openFileLimit: fileLimit }, 'connection cap lowered to stay below the open-file limit');
    this.conns = new AddressSlots<Socket>(max, opts.maxConnectionsPerAddress ?? 512, (victim) => victim.destroy());
    const headersTimeout = (this.headersTimeoutMs = opts.headersTimeoutMs ?? 5000);
    const serverOpts = { requestTimeout: 10_000, headersTimeout, keepAliveTimeout: headersTimeout, connectionsCheckingInterval: CONNECTIONS_CHECK_MS, maxHeaderSize: 8192 };
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res);
    this.tls = opts.tls !== undefined;
    if (opts.tls) {
      const { cert, key } = opts.tls;
      this.secureContext = tls.createSecureContext({ cert, key });
      this.server = https.createServer({ ...serverOpts, cert, key, handshakeTimeout: headersTimeout }, onRequest);
      // tls.Server starts TLS on every socket it accepts, in its 'connection' listener. It is taken
      // out and called by onConnection once the socket's first bytes are a TLS handshake.
      const listener = this.server.listeners('connection').find((f) => f.name === 'tlsConnectionListener');
      if (!listener) throw new Error("node:https: no 'connection' listener starting TLS (tlsConnectionListener) to take over");
      this.server.removeListener('connection', listener as (s: Socket) => void);
      this.startTls = (socket) => (listener as (s: Socket) => void).call(this.server, socket);
    } else {
      this.server = http.createServer(serverOpts, onRequest);
    }
    this.server.on('connection', (socket: Socket) => this.onConnection(socket));
    // Past the cap and the few refusals answered beyond it, Node closes new sockets at once, unanswered.
    this.server.maxConnections = max + REFUSAL_HEADROOM;
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    // A TLS socket whose handshake failed or timed out comes here too (node:https turns
    // tlsClientError into clientError): nothing can be written to it, so it is destroyed (an
    // answer would wait for a handshake that never ends, and the socket would hold its slot).
    const secured = new WeakSet<Duplex>();
    this.server.on('secureConnection', (s: Duplex) => secured.add(s));
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable && (!this.tls || secured.has(socket))) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Sockets open now, and the caps in force (the total after the open-file limit). */
  connections(): { open: number; max: number; maxPerAddress: number; evicted: number } {
    return { open: this.conns.size, max: this.conns.max, maxPerAddress: this.conns.maxPerAddress, evicted: this.conns.evictions };
  }

  private onConnection(socket: Socket): void {
    const ip = socket.remoteAddress ?? '?';
    const why = this.conns.add(ip, socket);
    if (why) {
      this.refused.add(socket);
      socket.on('error', () => socket.destroy());
      let status: string, body: string;
      if (why === 'address') {
        this.counters.refusedAddress++;
        [status, body] = ['429 Too Many Requests', `too many connections from ${ip}: at most ${this.conns.maxPerAddress} (limits.maxConnectionsPerAddress)\n`];
      } else {
        this.counters.refusedTotal++;
        [status, body] = ['503 Service Unavailable', `too many connections: at most ${this.conns.max} (limits.maxConnections); try another agent\n`];
      }
      if (this.tls) return this.sniff(socket, (isTls) => (isTls ? this.refuseOverTls(socket, status, body) : this.refusePlain(socket)));
      socket.pause();
      refuseSocket(socket, status, body, { 'retry-after': 1 });
      return;
    }
    this.counters.accepted++;
    if (this.tls) this.sniff(socket, (isTls) => (isTls ? this.startTls!(socket) : this.refusePlain(socket)));
    // Node's headersTimeout only runs once a request has begun: a socket that sends nothing at all
    // would hold its slot (and a file descriptor) until the kernel gives up. Close it ourselves.
    const idle = setTimeout(() => {
      if (socket.bytesRead === 0) {
        this.counters.idleClosed++;
        socket.destroy();
      }
    }, this.headersTimeoutMs);
    idle.unref();
    socket.once('close', () => {
      clearTimeout(idle);
      this.conns.delete(socket);
    });
  }

  /** Read a socket's first bytes, put them back, and say whether they begin a TLS handshake. */
  private sniff(socket: Socket, then: (isTls: boolean) => void): void {
    // Until TLS (or the refusal) takes it, nobody else listens for its errors: a reset before its
    // first bytes would be an unhandled 'error' and end the agent.
    socket.on('error', () => socket.destroy());
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      then(chunk[0] === TLS_HANDSHAKE);
    });
  }

  /** A plain request on the TLS port: say so, in plain text, and close. */
  private refusePlain(socket: Socket): void {
    this.counters.plainOnTls++;
    refuseSocket(socket, '400 Bad Request', 'this port speaks TLS: use https:// or wss:// (the agent runs with --tls-cert)\n', { [TLS_REQUIRED_HEADER]: 'required' });
  }

  /** A socket refused at accept on the TLS port: the refusal goes over TLS (a plain answer would read as a handshake failure). */
  private refuseOverTls(socket: Socket, status: string, body: string): void {
    const t = new tls.TLSSocket(socket, { isServer: true, secureContext: this.secureContext });
    t.on('error', () => socket.destroy());
    t.once('secure', () => refuseSocket(t, status, body, { 'retry-after': 1 }));
    setTimeout(() => socket.destroy(), TLS_REFUSAL_MS).unref();
  }

  /** A new certificate and key for connections from now on (the open ones keep theirs). */
  setTls(material: { cert: Buffer; key: Buffer }): void {
    if (!this.tls) throw new Error('setTls: this port does not speak TLS');
    const ctx = tls.createSecureContext(material);
    (this.server as https.Server).setSecureContext(material);
    this.secureContext = ctx;
  }

  route(path: string, handler: RequestHandler): void {
    this.routes.set(path, handler);
  }

  /** Route every path under `prefix` (ending in '/') that no exact route takes. */
  routePrefix(prefix: string, handler: RequestHandler): void {
    this.prefixes.push([prefix, handler]);
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
      // Sockets the HTTP layer has not seen yet (on a TLS port: before their first bytes or mid-handshake).
      for (const s of this.conns.items()) s.destroy();
    });
  }

  private pathOf(req: IncomingMessage): string {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    return q === -1 ? url : url.slice(0, q);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.refused.has(req.socket)) return void req.socket.destroy();
    const path = this.pathOf(req);
    const handler = this.routes.get(path) ?? this.prefixes.find(([p]) => path.startsWith(p))?.[1];
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
    if (this.refused.has(req.socket)) return void socket.destroy();
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
