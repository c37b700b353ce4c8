/**
 * Raw sockets for the flood tests: hand-written WebSocket upgrades (cheap enough to hold a
 * thousand from one test process), idle TCP sockets, and a flood that holds N of them from a set
 * of loopback addresses and reopens each one that closes — bounded in count and stopped by the test.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export interface RawUpgrade {
  sock: net.Socket;
  /** HTTP status of the answer: 101 when upgraded. */
  status: number;
  /** Body of a refusal (text), or '' when upgraded. */
  body: string;
  headers: string;
  closed: Promise<void>;
}

/**
 * Open a TCP socket from `localAddress` to 127.0.0.1:`port` and ask for a WebSocket upgrade of
 * `path`. Resolves with the status once the answer's head (and, for a refusal, its body) is in;
 * an upgraded socket is left open, unread after the head, unless `read` is set.
 */
export function rawUpgrade(port: number, path: string, localAddress: string, extraHeaders = ''): Promise<RawUpgrade> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    let buf = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => finish(new Error('no answer to the upgrade in 10 s')), 10_000);
    const finish = (err?: Error, v?: RawUpgrade) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.off('data', onData);
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(v!);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 101) return finish(undefined, { sock, status, body: '', headers: head, closed });
      const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      const body = buf.subarray(end + 4);
      if (body.length >= len) finish(undefined, { sock, status, body: body.subarray(0, len).toString(), headers: head, closed });
    };
    sock.on('data', onData);
    sock.on('error', (err) => finish(err));
    sock.once('close', () => {
      if (!done) finish(new Error(`closed before an answer (${buf.length} bytes)`));
    });
    sock.once('connect', () => {
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`,
      );
    });
  });
}

/** A masked client WebSocket frame (RFC 6455 §5.2): text (opcode 1) or binary (2). */
export function clientFrame(payload: Buffer | string, opcode = typeof payload === 'string' ? 1 : 2): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = randomBytes(4);
  const len = data.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  if (len >= 65536) throw new Error('frame too large for this helper');
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, masked]);
}

export interface Flood {
  /** Sockets held open now (upgraded, or plain TCP connected). */
  readonly held: number;
  /** Attempts made, answers by status (0: no answer / error), and a refusal body per status. */
  readonly attempts: number;
  readonly statuses: Map<number, number>;
  readonly bodies: Map<number, string>;
  stop(): Promise<void>;
}

/**
 * Hold `sockets` sockets to 127.0.0.1:`port`, spread over `addresses` (127.0.0.<first + i>), each
 * reopened `reopenMs` after it closes (or is refused), like a hostile process would. `path`: a
 * WebSocket upgrade that then says nothing; undefined: a bare TCP socket that sends nothing.
 * Bounded: at most `maxAttempts` attempts in all; stop() ends it and closes every socket.
 */
export function flood(port: number, o: { path?: string; sockets: number; addresses: number; first: number; reopenMs?: number; maxAttempts?: number }): Flood {
  let running = true;
  let held = 0;
  let attempts = 0;
  const statuses = new Map<number, number>();
  const bodies = new Map<number, string>();
  const open = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const maxAttempts = o.maxAttempts ?? o.sockets * 10;
  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const one = (addr: string) => {
    if (!running || attempts >= maxAttempts) return;
    attempts++;
    const again = () => later(() => one(addr), o.reopenMs ?? 100);
    if (o.path === undefined) {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: addr });
      open.add(s);
      let connected = false;
      s.on('error', () => {});
      s.once('connect', () => {
        connected = true;
        held++;
      });
      s.once('close', () => {
        open.delete(s);
        if (connected) held--;
        statuses.set(connected ? 1 : 0, (statuses.get(connected ? 1 : 0) ?? 0) + 1);
        again();
      });
      return;
    }
    rawUpgrade(port, o.path, addr).then(
      (u) => {
        statuses.set(u.status, (statuses.get(u.status) ?? 0) + 1);
        if (u.status !== 101) {
          if (!bodies.has(u.status)) bodies.set(u.status, u.body);
          u.sock.destroy();
          return again();
        }
        held++;
        open.add(u.sock);
        u.sock.on('error', () => {});
        u.sock.resume(); // read (and drop) what the agent sends, so only the missing hello holds the slot
        u.sock.once('close', () => {
          held--;
          open.delete(u.sock);
          again();
        });
        if (!running) u.sock.destroy();
      },
      () => {
        statuses.set(0, (statuses.get(0) ?? 0) + 1);
        again();
      },
    );
  };
  for (let i = 0; i < o.sockets; i++) one(`127.0.0.${o.first + (i % o.addresses)}`);
  return {
    get held() {
      return held;
    },
    get attempts() {
      return attempts;
    },
    statuses,
    bodies,
    async stop() {
      running = false;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of open) s.destroy();
      open.clear();
      await new Promise((r) => setTimeout(r, 50));
    },
  };
}
