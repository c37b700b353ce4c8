/**
 * Real loopback servers for SDK tests and benchmarks: TCP and UDP servers that count what reaches
 * them, can be killed and restarted on the same port, and a TCP "blackhole" whose accept never
 * happens (for connect timeouts). Shared: other test files and test/bench import these.
 *
 * Everything here is bounded (every wait has a deadline) and everything opened has a close().
 * No vitest import: this file is also compiled into dist/ for `npm run bench`.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { Worker } from 'node:worker_threads';

export const LOOPBACK = '127.0.0.1';

/** Wait for one event with a real-time bound instead of hanging. */
export async function nextEvent<T extends unknown[]>(em: NodeJS.EventEmitter, name: string, timeoutMs = 5000): Promise<T> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), timeoutMs);
  try {
    return (await once(em, name, { signal: ac.signal })) as T;
  } catch (err) {
    if (ac.signal.aborted) throw new Error(`no "${name}" event within ${timeoutMs} ms`);
    throw err;
  } finally {
    clearTimeout(t);
  }
}

// ------------------------------------------------------------------------------------------ TCP

export interface TcpTestServer {
  readonly id: string;
  readonly host: string;
  /** Fixed for the server's life: restart() listens on the same port again. */
  readonly port: number;
  /** Connections accepted since start (or the last resetCounts), across restarts. */
  accepted: number;
  /** Connections open right now. */
  readonly open: number;
  readonly running: boolean;
  /** The accepted sockets still open. */
  readonly sockets: ReadonlySet<net.Socket>;
  /** Stop listening (connects are refused) and reset every open connection. */
  kill(): Promise<void>;
  /** Listen again on the same port. */
  restart(): Promise<void>;
  /** Close every open connection (server side), keep listening. */
  dropConnections(): void;
  resetCounts(): void;
  /** kill(), idempotent; for afterEach. */
  close(): Promise<void>;
}

export interface TcpServerOptions {
  id?: string;
  host?: string;
  port?: number;
  /** Write `${id}\n` to every accepted connection, so a client can tell who served it. */
  greet?: boolean;
}

function listenTcp(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.removeListener('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

export async function startTcpServer(opts: TcpServerOptions = {}): Promise<TcpTestServer> {
  const host = opts.host ?? LOOPBACK;
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = opts.port ?? 0;
  const make = () =>
    net.createServer((c) => {
      st.accepted++;
      sockets.add(c);
      c.on('error', () => {});
      c.on('close', () => sockets.delete(c));
      if (opts.greet) c.write(`${st.id}\n`);
    });
  const st: TcpTestServer = {
    id: opts.id ?? '',
    host,
    port: 0,
    accepted: 0,
    get open() {
      return sockets.size;
    },
    get running() {
      return server !== undefined;
    },
    sockets,
    async kill() {
      const s = server;
      if (!s) return;
      server = undefined;
      // RST the connections a crash would cut. A socket whose peer already closed (its shutdown is
      // pending) is only destroyed: resetAndDestroy() on it leaves Node 20's event loop spinning.
      for (const c of sockets) {
        if (c.readableEnded || c.writableEnded) c.destroy();
        else c.resetAndDestroy();
      }
      sockets.clear();
      await new Promise<void>((r) => s.close(() => r()));
    },
    async restart() {
      if (server) return;
      const s = make();
      await listenTcp(s, host, port);
      server = s;
    },
    dropConnections() {
      for (const c of sockets) c.destroy();
    },
    resetCounts() {
      st.accepted = 0;
    },
    close() {
      return st.kill();
    },
  };
  server = make();
  port = await listenTcp(server, host, port);
  (st as { port: number }).port = port;
  if (!opts.id) (st as { id: string }).id = `tcp:${port}`;
  return st;
}

// ------------------------------------------------------------------------------------------ UDP

export interface UdpTestServer {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** Datagrams received since start (or the last resetCounts), across restarts. */
  received: number;
  readonly running: boolean;
  kill(): Promise<void>;
  restart(): Promise<void>;
  resetCounts(): void;
  close(): Promise<void>;
}

export interface UdpServerOptions {
  id?: string;
  host?: string;
  port?: number;
  /** Reply to every datagram with `${id}|${payload}` (default true). */
  echo?: boolean;
}

async function bindUdp(host: string, port: number, onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo, sock: dgram.Socket) => void): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => onMessage(msg, rinfo, sock));
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, host, () => {
      sock.removeListener('error', reject);
      sock.on('error', () => {});
      resolve();
    });
  });
  return sock;
}

export async function startUdpServer(opts: UdpServerOptions = {}): Promise<UdpTestServer> {
  const host = opts.host ?? LOOPBACK;
  const echo = opts.echo !== false;
  let sock: dgram.Socket | undefined;
  const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo, s: dgram.Socket) => {
    st.received++;
    if (echo) s.send(Buffer.concat([Buffer.from(`${st.id}|`), msg]), rinfo.port, rinfo.address);
  };
  const st: UdpTestServer = {
    id: opts.id ?? '',
    host,
    port: 0,
    received: 0,
    get running() {
      return sock !== undefined;
    },
    async kill() {
      const s = sock;
      if (!s) return;
      sock = undefined;
      await new Promise<void>((r) => s.close(() => r()));
    },
    async restart() {
      if (sock) return;
      sock = await bindUdp(host, st.port, onMessage);
    },
    resetCounts() {
      st.received = 0;
    },
    close() {
      return st.kill();
    },
  };
  sock = await bindUdp(host, opts.port ?? 0, onMessage);
  (st as { port: number }).port = sock.address().port;
  if (!opts.id) (st as { id: string }).id = `udp:${st.port}`;
  return st;
}

/** Parse an echo reply of startUdpServer: the server id and the payload. */
export function parseEcho(msg: Buffer): { id: string; payload: string } {
  const s = msg.toString();
  const i = s.indexOf('|');
  return { id: s.slice(0, i), payload: s.slice(i + 1) };
}

// ------------------------------------------------------------------------------------ blackhole

export interface Blackhole {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A TCP port where connects hang: a listening socket whose accept never runs. Loopback never drops
 * a SYN by itself, so this is how a real connect timeout is produced on one machine: a worker
 * thread listens with backlog 1 and then blocks its own event loop, so nothing is ever accepted;
 * we fill the kernel's accept queue with a few connections; from then on Linux drops new SYNs
 * (accept queue full, tcp_abort_on_overflow = 0) and the client's connect waits for a SYN-ACK that
 * does not come until the retransmit 1 s later finds the queue still full.
 */
export async function startBlackhole(host = LOOPBACK): Promise<Blackhole> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const net = require('node:net');
     const { parentPort, workerData } = require('node:worker_threads');
     const srv = net.createServer();
     srv.listen({ host: workerData.host, port: 0, backlog: 1 }, () => {
       parentPort.postMessage(srv.address().port);
       Atomics.wait(workerData.flag, 0, 0, 120000); // block this loop: accept never runs
       srv.close();
     });`,
    { eval: true, workerData: { host, flag } },
  );
  worker.unref();
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('blackhole worker did not start')), 5000);
    worker.once('message', (p: number) => {
      clearTimeout(t);
      resolve(p);
    });
    worker.once('error', reject);
  });
  // Fill the accept queue: connect until a connect does not complete (bounded: 16 tries).
  const fillers: net.Socket[] = [];
  let full = false;
  for (let i = 0; i < 16 && !full; i++) {
    const s = net.connect({ host, port });
    s.on('error', () => {});
    const connected = await Promise.race([
      once(s, 'connect').then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
    ]);
    if (connected) fillers.push(s);
    else {
      s.destroy();
      full = true;
    }
  }
  const close = async () => {
    for (const s of fillers) s.destroy();
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    await worker.terminate();
  };
  if (!full) {
    await close();
    throw new Error('could not fill the blackhole accept queue (does this kernel drop SYNs on overflow?)');
  }
  return { host, port, close };
}

/** A port on `host` where nothing listens (connects are refused): bind, read the port, close. */
export async function closedPort(host = LOOPBACK): Promise<number> {
  const s = net.createServer();
  const port = await listenTcp(s, host, 0);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
