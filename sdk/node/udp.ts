import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Balancer } from '../core/balancer/index.js';
import type { Server, ServerState } from '../core/server.js';
import { hashKey, type Key } from '../core/hash.js';
import { ClosedError, NoServersError } from '../core/errors.js';

export interface UdpOptions {
  /** Socket type; default 'udp4' ('udp6' for IPv6 servers). */
  type?: 'udp4' | 'udp6';
  /** Local address/port to bind; default any address, an ephemeral port. */
  bind?: { address?: string; port?: number };
}

export interface UdpEvents {
  /** A datagram arrived; `server` is the server it came from, or undefined if unknown. */
  message: [msg: Buffer, server: Server | undefined, rinfo: dgram.RemoteInfo];
  error: [err: Error];
  close: [];
}

/**
 * A dgram socket that picks a server for every datagram. Servers reply straight to this socket
 * (no hop through any agent); replies are matched back to the server by address and port.
 */
export class UdpClient extends EventEmitter<UdpEvents> {
  readonly socket: dgram.Socket;
  private byAddr = new Map<number, Map<string, ServerState>>();
  private mapVersion = -1;
  private closed = false;

  constructor(
    private readonly b: Balancer,
    opts: UdpOptions = {},
  ) {
    super();
    this.socket = dgram.createSocket(opts.type ?? 'udp4');
    this.socket.on('message', (msg, rinfo) => this.emit('message', msg, this.serverAt(rinfo.address, rinfo.port), rinfo));
    this.socket.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    this.socket.on('close', () => this.emit('close'));
    if (opts.bind) this.socket.bind(opts.bind.port ?? 0, opts.bind.address);
  }

  /**
   * Send one datagram to a picked server with a UDP port (TCP-only servers are never picked): by
   * `key` through the hash ring (the key stays on its server while that server is eligible),
   * otherwise by the cluster's strategy. Returns the server, or undefined when no server with a
   * UDP port is known: the datagram is dropped, and `cb` gets a NoServersError.
   */
  send(buf: Uint8Array | string, opts?: { key?: Key }, cb?: (err: Error | null) => void): Server | undefined {
    if (this.closed) throw new ClosedError('udp socket');
    const hash = opts?.key === undefined ? -1 : hashKey(opts.key);
    const s = this.b.pickUdp(hash);
    if (!s || s.udpPort === undefined) {
      // Asynchronously, as dgram calls back.
      if (cb) process.nextTick(cb, new NoServersError(this.b.opts.service));
      return undefined;
    }
    s.picks++;
    if (cb) this.socket.send(buf, s.udpPort, s.host, cb);
    else this.socket.send(buf, s.udpPort, s.host);
    return s;
  }

  /** Send to a given server (for replies within a session the caller already placed). */
  sendTo(server: Server, buf: Uint8Array | string, cb?: (err: Error | null) => void): void {
    if (this.closed) throw new ClosedError('udp socket');
    if (server.udpPort === undefined) throw new Error(`server ${server.id} has no UDP port`);
    if (cb) this.socket.send(buf, server.udpPort, server.host, cb);
    else this.socket.send(buf, server.udpPort, server.host);
  }

  address() {
    return this.socket.address();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private serverAt(address: string, port: number): ServerState | undefined {
    if (this.mapVersion !== this.b.version) this.rebuildMap();
    const a = address.startsWith('::ffff:') ? address.slice(7) : address;
    return this.byAddr.get(port)?.get(a);
  }

  private rebuildMap(): void {
    this.byAddr.clear();
    for (const s of this.b.list()) {
      if (s.udpPort === undefined) continue;
      let m = this.byAddr.get(s.udpPort);
      if (!m) this.byAddr.set(s.udpPort, (m = new Map()));
      m.set(s.host, s);
    }
    this.mapVersion = this.b.version;
  }
}
