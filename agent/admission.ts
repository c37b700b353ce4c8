/**
 * Admission for everything an outsider can open on the agent's port: sockets held per remote
 * address and in total, with a fair share when the total is reached, and a rate per address.
 *
 * - Per address: like nginx `limit_conn` / Consul `http_max_conns_per_client`, a socket past the
 *   address's share is refused (the caller answers 429 with the reason).
 * - In total, with a fair share: at the total, a newcomer is not simply refused (that would let a
 *   few addresses hold every slot until their timeouts, which is how an idle flood locks genuine
 *   clients out). Instead the oldest socket of the address holding the most is closed to make
 *   room, provided that address holds at least two more than the newcomer's; only when every
 *   address holds about as many as the newcomer's is it refused (503). The cost of a flood falls
 *   on the address that floods, the way Envoy's overload manager sheds the heaviest downstream
 *   first. Genuine clients hold few sockets each, so they are never the victims of another's flood.
 * - Rate: a token bucket per address (nginx `limit_req rate=… burst=…`, Envoy's local rate limit),
 *   for work each new socket costs the agent (a snapshot, a signature check).
 *
 * Addresses are strings (an IP; callers may key finer, e.g. IP plus a claimed identity).
 */

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { isLoopbackAddress, parseIp } from './load/addr.js';

/** Why a slot was refused: this address holds its share, or every slot is held and none may go. */
export type Refusal = 'address' | 'total';

/**
 * Slots per address and in total with a fair share at the total (see the module comment). Items
 * are kept oldest first per address. `evict` is called (once) for an item closed to make room; it
 * has already left the table then.
 */
export class AddressSlots<T> {
  private readonly byAddr = new Map<string, Set<T>>();
  private readonly addrOf = new Map<T, string>();
  /** Items closed to make room for another address's socket. */
  evictions = 0;

  constructor(
    public max: number,
    public maxPerAddress: number,
    private readonly evict?: (victim: T) => void,
  ) {}

  get size(): number {
    return this.addrOf.size;
  }

  count(addr: string): number {
    return this.byAddr.get(addr)?.size ?? 0;
  }

  /** Every item (a copy: safe to delete while iterating). */
  items(): T[] {
    return [...this.addrOf.keys()];
  }

  has(item: T): boolean {
    return this.addrOf.has(item);
  }

  /** Whether a socket from `addr` would get a slot (undefined) or why not, without taking one. */
  check(addr: string): Refusal | undefined {
    const mine = this.count(addr);
    if (mine >= this.maxPerAddress) return 'address';
    if (this.size < this.max) return undefined;
    return this.victim(mine) === undefined ? 'total' : undefined;
  }

  /** Take a slot for `item` from `addr`, closing another address's oldest if the fair share says so. */
  add(addr: string, item: T): Refusal | undefined {
    const why = this.check(addr);
    if (why) return why;
    if (this.size >= this.max) {
      const v = this.victim(this.count(addr))!;
      this.delete(v);
      this.evictions++;
      this.evict?.(v);
    }
    let set = this.byAddr.get(addr);
    if (!set) this.byAddr.set(addr, (set = new Set()));
    set.add(item);
    this.addrOf.set(item, addr);
    return undefined;
  }

  delete(item: T): boolean {
    const addr = this.addrOf.get(item);
    if (addr === undefined) return false;
    this.addrOf.delete(item);
    const set = this.byAddr.get(addr)!;
    set.delete(item);
    if (set.size === 0) this.byAddr.delete(addr);
    return true;
  }

  /** The oldest item of the address holding the most, if it holds at least `mine + 2`. */
  private victim(mine: number): T | undefined {
    let heavy: Set<T> | undefined;
    for (const set of this.byAddr.values()) if (!heavy || set.size > heavy.size) heavy = set;
    if (!heavy || heavy.size < mine + 2) return undefined;
    return heavy.values().next().value;
  }
}

/** Most addresses a RateLimit remembers (the oldest is forgotten first: it only loses its debt). */
const MAX_TRACKED = 4096;

/** A token bucket per address: `ratePerSec` on average, bursts of `burst`. */
export class RateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  refused = 0;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Take one token for `addr`: false (and counted) when it has none left. */
  allow(addr: string): boolean {
    const t = this.now();
    let b = this.buckets.get(addr);
    if (b) {
      this.buckets.delete(addr); // re-insert: the map stays in least-recently-used order
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerSec);
      b.at = t;
    } else {
      if (this.buckets.size >= MAX_TRACKED) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: t };
    }
    this.buckets.set(addr, b);
    if (b.tokens < 1) {
      this.refused++;
      return false;
    }
    b.tokens -= 1;
    return true;
  }

  /** Seconds until `addr` has a token again (for Retry-After). */
  retryAfter(addr: string): number {
    const b = this.buckets.get(addr);
    if (!b || b.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.ratePerSec));
  }
}

/** Refuse a socket with a plain-text HTTP error (status line and reason), then close it. */
export function refuseSocket(socket: { end(s: string): unknown; destroy(): unknown }, status: string, body: string, headers: Record<string, string | number> = {}): void {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  try {
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: text/plain\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  } catch {
    socket.destroy();
  }
  // Briefly, so the answer is read before the close: a refused socket must not hold its file long.
  setTimeout(() => socket.destroy(), 100).unref();
}

/**
 * The soft limit on open files of this process (RLIMIT_NOFILE), read from /proc/self/limits on
 * Linux; undefined elsewhere or when unreadable. Used to keep the connection cap below it, so that
 * the agent's own sockets (health probes, gossip dials, files) never meet EMFILE.
 */
export function openFileLimit(read: () => string): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(read());
    if (!m || m[1] === 'unlimited') return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * Connections the agent accepts at most given its open-file limit: a quarter of the limit (at
 * least 96) stays for its own use — health probes, gossip dials, files, and the sockets being
 * refused (REFUSAL_HEADROOM) — so a flood never makes the agent's own probe fail with EMFILE.
 */
export function connectionCapFor(configured: number, fileLimit: number | undefined): number {
  if (fileLimit === undefined) return configured;
  return Math.max(16, Math.min(configured, fileLimit - Math.max(96, Math.floor(fileLimit / 4))));
}

/** Sockets past the cap that are still answered (429/503) before Node drops further ones unanswered. */
export const REFUSAL_HEADROOM = 16;

// ---------------------------------------------------------------------------------------------
// The gates every endpoint shares: the token gate of the read endpoints (/v1/watch, /v1/events)
// and the loopback gate of the write endpoints (/v1/load, /v1/keyring).

/**
 * Whether `got` (an Authorization header, `Bearer <token>` or the bare token, or a hello's token)
 * is the token `want`, compared in constant time. No token wanted: always true.
 */
export function tokenMatches(want: string | undefined, got: string | undefined | null): boolean {
  if (!want) return true;
  if (!got) return false;
  const token = got.startsWith('Bearer ') ? got.slice(7) : got;
  const a = Buffer.from(token);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Most sockets waiting to authenticate at once, in all and from one IP (PendingSockets defaults). */
export const MAX_PENDING_SOCKETS = 64;
export const MAX_PENDING_SOCKETS_PER_IP = 8;

/**
 * Sockets that reached a token-protected endpoint without the token in their upgrade request and
 * may still send it in `hello` (browsers cannot set headers on a WebSocket). Until then they hold
 * a slot here, not one of the endpoint's own (maxSubscribers): anyone can open such a socket, and
 * a few addresses holding every subscriber slot for the hello timeout each would lock clients out.
 * Bounded in all and per IP; a slot is given back when the socket closes or authenticates.
 */
export class PendingSockets {
  private total = 0;
  private readonly byIp = new Map<string, number>();

  constructor(
    readonly max = MAX_PENDING_SOCKETS,
    readonly maxPerIp = MAX_PENDING_SOCKETS_PER_IP,
  ) {}

  get size(): number {
    return this.total;
  }

  /** Take a slot for a socket from `ip`: a function that gives it back (once), or undefined when full. */
  take(ip: string | undefined): (() => void) | undefined {
    const key = ip ?? '?';
    const n = this.byIp.get(key) ?? 0;
    if (this.total >= this.max || n >= this.maxPerIp) return undefined;
    this.total++;
    this.byIp.set(key, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.total--;
      const left = (this.byIp.get(key) ?? 1) - 1;
      if (left > 0) this.byIp.set(key, left);
      else this.byIp.delete(key);
    };
  }
}

/** Refuse an upgrade with a plain-text HTTP error. */
export function refuseUpgrade(socket: Duplex, status: string, body = ''): void {
  socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/**
 * The gate in front of a token-protected read endpoint (/v1/watch, /v1/events): a wrong bearer
 * header is refused (401); a right one (or no token configured) needs one of the endpoint's own
 * slots (`full()` says why there is none: 503); no header at all may still bring the token in its
 * hello, and meanwhile holds a PendingSockets slot, given back however the socket ends. Returns
 * how the socket goes on, or undefined when it was refused (and answered).
 */
export function admitUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  o: { token: string | undefined; pending: PendingSockets; full: () => string | { status: string; body: string } | undefined },
): { authorized: boolean; release: (() => void) | undefined } | undefined {
  const authorized = tokenMatches(o.token, req.headers.authorization);
  if (!authorized && req.headers.authorization !== undefined) {
    refuseUpgrade(socket, '401 Unauthorized');
    return undefined;
  }
  if (authorized) {
    const full = o.full();
    if (full === undefined) return { authorized, release: undefined };
    if (typeof full === 'string') refuseUpgrade(socket, '503 Service Unavailable', full);
    else refuseUpgrade(socket, full.status, full.body);
    return undefined;
  }
  const release = o.pending.take(req.socket.remoteAddress);
  if (!release) {
    refuseUpgrade(socket, '503 Service Unavailable', 'too many connections waiting to authenticate; send the token as `authorization: Bearer <token>`\n');
    return undefined;
  }
  socket.once('close', release);
  return { authorized, release };
}

/** A Host header naming loopback (or localhost), or none (HTTP/1.0: no browser sends that): what a page on a rebound DNS name cannot send. */
export function hostIsLoopback(header: string | undefined): boolean {
  if (header === undefined) return true;
  const h = header.trim().toLowerCase();
  const host = h.startsWith('[') ? h.slice(1, Math.max(1, h.indexOf(']'))) : h.includes(':') ? h.slice(0, h.indexOf(':')) : h;
  return host === 'localhost' || isLoopbackAddress(host);
}

/**
 * The gate of the loopback-only endpoints (/v1/load, /v1/keyring): why a request may not pass
 * ('address': it came from off the host; 'host': its Host header names something else, DNS
 * rebinding), or undefined when it may. The endpoint answers 403 in its own words.
 */
export function loopbackGate(req: IncomingMessage): 'address' | 'host' | undefined {
  if (!isLoopbackAddress(req.socket?.remoteAddress)) return 'address';
  if (!hostIsLoopback(req.headers.host)) return 'host';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The Origin gate of the read endpoints' upgrades (/v1/watch, /v1/events), issue 15.
//
// A browser lets any page open a WebSocket to any address and sends the page's Origin with the
// upgrade; it applies no same-origin rule to WebSockets, and it sends its cookies and the
// network position of its user along. A page on another site can so read the agent's view from
// inside the user's network (cross-site WebSocket hijacking). With `allowOrigin` given, an
// upgrade whose Origin is not listed is refused (403). A client that sends no Origin is not a
// browser (a browser always sends one) and passes; so does the agent's own origin, the page of
// its dashboard. Without `allowOrigin`, every origin passes, as before.

/** Most entries of allowOrigin (user input: bounded like every list). */
export const MAX_ALLOWED_ORIGINS = 256;

/**
 * An origin as allowOrigin takes it, `scheme://host[:port]` with scheme http or https and nothing
 * after the port (a trailing `/` is dropped), normalized as URL.origin gives it (a default port
 * dropped, the host lower-cased, as browsers send it); or why it is not one.
 */
export function parseOrigin(s: unknown): string | { problem: string } {
  const problem = `must be an origin, http(s)://host[:port] with no path, got ${JSON.stringify(typeof s === 'string' ? s.slice(0, 200) : s)}`;
  if (typeof s !== 'string' || s.length === 0 || s.length > 2048) return { problem };
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return { problem };
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash || u.pathname !== '/') return { problem };
  return u.origin;
}

/** The agent's own origin: the origin of the dashboard it serves (its scheme and port, on its host or bind address). */
export interface OwnOrigin {
  scheme: 'http:' | 'https:';
  port: number;
  /** The agent's host and bind addresses (an unspecified bind, 0.0.0.0 or ::, left out). */
  hosts: readonly string[];
  /** It listens on loopback (or on every address): then http(s)://localhost:port and loopback IPs are its own too. */
  loopback: boolean;
}

/** The own origin of an agent reached at `host`, listening on `bind`:`port`, over TLS or not. */
export function ownOrigin(host: string, bind: string, port: number, tls: boolean): OwnOrigin {
  const unspecified = (a: string) => a === '0.0.0.0' || a === '::';
  return {
    scheme: tls ? 'https:' : 'http:',
    port,
    hosts: [host, bind].filter((a) => !unspecified(a)),
    loopback: unspecified(bind) || isLoopbackAddress(bind),
  };
}

/** Whether an upgrade with this Origin header may pass (see the section comment). */
export function originAllowed(origin: string | undefined, allowed: ReadonlySet<string> | undefined, own: OwnOrigin): boolean {
  if (allowed === undefined || origin === undefined) return true;
  if (allowed.has(origin)) return true;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  // "null": a sandboxed frame, a file:// page, a redirect across origins: nobody's page to trust.
  if (u.origin === 'null') return false;
  if (allowed.has(u.origin)) return true;
  if (u.protocol !== own.scheme) return false;
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
  if (port !== own.port) return false;
  const ip = parseIp(u.hostname);
  if (ip && own.hosts.some((h) => sameIp(parseIp(h), ip))) return true;
  return own.loopback && (u.hostname === 'localhost' || isLoopbackAddress(u.hostname));
}

function sameIp(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

type Upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * The Origin gate in front of the read endpoints: `wrap(name, handler)` refuses an upgrade whose
 * Origin may not pass (403, counted under `name`) before the endpoint sees it, so a refused page
 * costs no rate-limit token, slot or snapshot. `allowed` and `own` are read per upgrade (a reload
 * changes the list; the port is known after listen).
 */
export class OriginGate {
  /** Upgrades refused, by endpoint. */
  readonly refused: Record<string, number> = {};

  constructor(
    private readonly allowed: () => ReadonlySet<string> | undefined,
    private readonly own: () => OwnOrigin,
  ) {}

  wrap(name: string, handler: Upgrade): Upgrade {
    this.refused[name] = 0;
    return (req, socket, head) => {
      const origin = req.headers.origin;
      if (originAllowed(origin, this.allowed(), this.own())) return handler(req, socket, head);
      this.refused[name]!++;
      socket.on('error', () => socket.destroy());
      refuseUpgrade(
        socket,
        '403 Forbidden',
        `origin ${JSON.stringify(String(origin).slice(0, 200))} may not open this endpoint: it is not in the agent's allowOrigin (--allow-origin)\n`,
      );
    };
  }
}
