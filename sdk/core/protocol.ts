/**
 * The peerlb wire protocol, written down once and imported by both the SDK and the agent.
 *
 * Three things cross the wire between processes:
 *  1. The server record: what an agent says about its server (endpoints, weight, zone, health, load).
 *     It travels in gossip between agents, in `/v1/watch` frames to clients, and, in a compact
 *     form, in mDNS TXT records.
 *  2. `/v1/watch` frames (agent → client, read-only): msgpack maps with a type tag `t`.
 *  3. Gossip frames (agent ↔ agent): defined in `agent/gossip/messages.ts` on top of the
 *     version and limits below, because no client ever parses them.
 *
 * Every decoder here is pure: bytes in, a typed value out, or a DecodeError. Nothing a peer sends
 * can make a decoder throw anything else.
 */
import { DecodeError, FrameTooLargeError, InvalidRecordError, UnsupportedVersionError } from './errors.js';

/** Protocol version carried in every frame and in TXT `v=`. Bumped on incompatible change. */
export const PROTOCOL_VERSION = 1;

/** DNS-SD service type every agent registers (RFC 6763 §7). */
export const MDNS_SERVICE_TYPE = '_peerlb._tcp.local';

export const LIMITS = {
  /** Largest WebSocket frame an agent or client accepts (gossip push-pull of ~1,000 members fits). */
  maxFrameBytes: 1 << 20,
  /** Longest string field accepted in a record (node ids, hosts, zones, service names). */
  maxStringLength: 255,
  /** Most servers a single watch snapshot may carry. */
  maxServers: 10_000,
  /** DNS-SD TXT: keys ≤ 9 chars (RFC 6763 §6.4 recommends), each string ≤ 255 bytes (§6.1). */
  maxTxtKeyLength: 9,
  maxTxtStringBytes: 255,
} as const;

/**
 * Largest `/v1/watch` frame the SDK accepts (the WebSocket maxPayload and the decoder's limit).
 * An agent allows LIMITS.maxServers (10,000) members and sends them all in one snapshot: signed,
 * with load, zone and agent URL, that is about 2.9 MB (measured by test/integration/sdk/agent-watch.test.ts),
 * far over maxFrameBytes (1 MiB, which stays the gossip limit). 16 MiB covers it with margin for
 * longer ids and hosts; it is only what one subscribed agent can make a client buffer.
 */
export const MAX_WATCH_FRAME_BYTES = 16 << 20;

export type Health = 'healthy' | 'unhealthy' | 'draining';
export const HEALTH_VALUES: readonly Health[] = ['healthy', 'unhealthy', 'draining'];

/** A load report as the server's agent publishes it. */
export interface LoadReport {
  /** Established TCP connections to the server (measured by the agent, or reported). */
  connections: number;
  /** Sessions the server says it holds (UDP game sessions, streams, …). */
  sessions: number;
  /** 0..1: the agent's combined utilization (reported, or derived from connections and CPU). */
  utilization: number;
  /** Increases with every report from this server; lets receivers drop stale reorderings. */
  seq: number;
  /** How old the report already was when this copy was sent, in ms (sender-side age). */
  ageMs: number;
  /**
   * What `utilization` is (see LoadSource). Absent when the server's agent did not say (an agent
   * of an older version, or a figure relayed through one).
   */
  source?: LoadSource;
  /**
   * The server's seats (issue 17), when its agent has a capacity (`--capacity`): so every view
   * knows each server's free seats (capacity − held − claimed, as of this report). Absent
   * otherwise, and from agents of earlier releases.
   */
  seats?: LoadSeats;
}

/**
 * A server's seats as its agent last reported them. The agent is the authority: a figure here is
 * only what a client chooses whom to ask by (it may be stale, or forged on a plain subscription;
 * the agent's own check makes either harmless).
 */
export interface LoadSeats {
  /** Seats the server has (`--capacity`), 1..MAX_SEAT_COUNT. */
  capacity: number;
  /** Reserved and not claimed yet (they expire unless claimed). */
  held: number;
  /** Occupied: claimed tickets, or the sessions the server reports when that is more. */
  claimed: number;
}

/** Largest seat figure on the wire (capacity, held, claimed): as the agent's counts (agent/load/input.ts MAX_COUNT). */
export const MAX_SEAT_COUNT = 1e9;

/**
 * Seats free by a report: capacity − held − claimed, never below 0 (a record whose held + claimed
 * is over its capacity — a forged one, or a capacity lowered by a reload — has no room).
 */
export function freeSeats(s: Readonly<LoadSeats>): number {
  return Math.max(0, s.capacity - s.held - s.claimed);
}

/**
 * Where a load report's utilization comes from: 'reported' by the server, 'capacity' (active
 * connections or sessions / the configured capacity), 'cpu' (the host's CPU: the server reported
 * none and has no capacity — the machine's load, not the server's), 'none' (no figure: 0).
 */
export type LoadSource = 'reported' | 'capacity' | 'cpu' | 'none';
export const LOAD_SOURCES: readonly LoadSource[] = ['reported', 'capacity', 'cpu', 'none'];

/** What discovery sources give the SDK about one server. */
/** Where clients reach a server: its UDP, TCP and WebSocket endpoints (each optional, at least one set). */
export interface Endpoints {
  udpPort?: number;
  tcpPort?: number;
  /** The server's WebSocket port, when it takes browser clients (issue 15). */
  wsPort?: number;
  /** The WebSocket path, with wsPort: starts with '/', printable ASCII, at most 255 chars (wsPathProblem). Default '/'. */
  wsPath?: string;
  /** With wsPort: the server speaks wss (TLS). */
  wsTls?: boolean;
}

/**
 * Copy the endpoints `from` has onto `to`, as every record, meta, announcement and member row
 * holds them: a WebSocket endpoint always with its path ('/' when absent), `wsTls` only when true,
 * nothing for an endpoint that is not there.
 */
export function copyEndpoints(from: Readonly<Endpoints>, to: Endpoints): void {
  if (from.udpPort !== undefined) to.udpPort = from.udpPort;
  if (from.tcpPort !== undefined) to.tcpPort = from.tcpPort;
  if (from.wsPort !== undefined) {
    to.wsPort = from.wsPort;
    to.wsPath = from.wsPath ?? '/';
    if (from.wsTls) to.wsTls = true;
  }
}

export interface ServerRecord extends Endpoints {
  /** Stable id: the agent's node name, or host:port for static servers. */
  id: string;
  service: string;
  host: string;
  /** Relative capacity, 1..10000 (nginx's `weight`); default 100. */
  weight: number;
  zone?: string;
  health: Health;
  load?: LoadReport;
  /** ws:// URL of the agent serving this server, when there is one. */
  agent?: string;
  /**
   * Ed25519 signature (base64) by the cluster's signing key, made by the server's own agent, when
   * it has the key (sdk/core/signing.ts); relays pass it on unchanged.
   */
  sig?: string;
  /** The version `sig` was made at (the origin's gossip incarnation); covered by `sig`. */
  sigv?: number;
}

export const DEFAULT_WEIGHT = 100;
export const MAX_WEIGHT = 10_000;

// ---------------------------------------------------------------------------------------------
// Validation of untrusted values. Each returns an error string, or undefined when valid.

function isStr(v: unknown, max: number = LIMITS.maxStringLength): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= max;
}
function isPort(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536;
}
/** Longest ws path a record may carry: one TXT string (RFC 6763 §6.1) holds `wspath=` and it. */
export const MAX_WS_PATH_LENGTH = 255;

/**
 * Why `v` is not a WebSocket path a record may carry, or undefined when it is one: a string that
 * starts with '/', of printable ASCII (0x21..0x7e: no spaces, no controls, nothing a URL or a
 * TXT string would need escaped for), at most MAX_WS_PATH_LENGTH chars. A query (`?…`) is allowed.
 */
export function wsPathProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return 'must be a string';
  if (!v.startsWith('/')) return "must start with '/'";
  if (v.length > MAX_WS_PATH_LENGTH) return `must be at most ${MAX_WS_PATH_LENGTH} chars`;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return 'must be printable ASCII without spaces';
  }
  return undefined;
}

/**
 * The URL of a server's WebSocket endpoint: `ws[s]://host:port/path`, an IPv6 host in brackets
 * (RFC 3986 §3.2.2). `path` defaults to '/'. What `server.wsUrl` is and what `--health ws` opens.
 */
export function wsEndpointUrl(host: string, port: number, path: string | undefined, tls: boolean | undefined): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${tls ? 'wss' : 'ws'}://${h}:${port}${path ?? '/'}`;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1e9;
}

/**
 * 4 or 6 when `v` is an IPv4 (dotted quad, no leading zeros) or IPv6 literal (RFC 4291 §2.2, an
 * embedded IPv4 tail and an RFC 4007 `%zone` allowed), else 0; as `net.isIP`, without Node.
 */
export function ipFamily(v: string): 0 | 4 | 6 {
  if (v.length === 0 || v.length > 64) return 0;
  if (V4.test(v)) return 4;
  let a = v;
  const pct = a.indexOf('%');
  if (pct >= 0) {
    if (pct === a.length - 1 || !/^[0-9a-z._~-]+$/i.test(a.slice(pct + 1))) return 0;
    a = a.slice(0, pct);
  }
  if (a.includes(':::') || a.split('::').length > 2) return 0;
  let groups = 8;
  const last = a.lastIndexOf(':');
  if (last >= 0 && a.indexOf('.', last) > last) {
    if (!V4.test(a.slice(last + 1))) return 0;
    a = a.slice(0, last + 1) + '0';
    groups = 7;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const parts = (p: string) => (p === '' ? [] : p.split(':'));
  const h = parts(head);
  const t = tail === undefined ? [] : parts(tail);
  if (![...h, ...t].every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return 0;
  const n = h.length + t.length;
  if (tail === undefined ? n !== groups : n > groups - 1) return 0;
  return 6;
}
const V4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Why `v` cannot be a server's address, or undefined when it can: an IP literal (never a name, so
 * no send or connect waits on DNS, and nothing to look up per datagram), not unspecified
 * (`0.0.0.0`, `::`), multicast or the IPv4 broadcast address.
 */
export function serverAddressProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' || ipFamily(v) === 0) return 'must be an IPv4 or IPv6 address';
  const a = v.toLowerCase().replace(/%.*$/, '');
  if (a === '0.0.0.0' || /^[0:]+$/.test(a) || /^[0:]*:ffff:0\.0\.0\.0$/.test(a)) return 'must not be the unspecified address';
  const v4 = /(?:^|:)(\d+)\.\d+\.\d+\.\d+$/.exec(a);
  if (v4 && ((Number(v4[1]) >= 224 && Number(v4[1]) <= 239) || a.endsWith('255.255.255.255'))) return 'must not be a multicast or broadcast address';
  if (a.startsWith('ff')) return 'must not be a multicast address';
  return undefined;
}

/** Check and normalize a LoadReport from the network. Throws DecodeError. */
export function parseLoad(v: unknown): LoadReport {
  if (typeof v !== 'object' || v === null) throw new DecodeError('load must be a map');
  const o = v as Record<string, unknown>;
  const { connections = 0, sessions = 0, utilization = 0, seq = 0, ageMs = 0 } = o;
  if (!isCount(connections)) throw new DecodeError('load.connections must be a number ≥ 0');
  if (!isCount(sessions)) throw new DecodeError('load.sessions must be a number ≥ 0');
  if (typeof utilization !== 'number' || !(utilization >= 0 && utilization <= 100))
    throw new DecodeError('load.utilization must be a number in 0..100');
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) throw new DecodeError('load.seq must be an integer ≥ 0');
  if (!isCount(ageMs)) throw new DecodeError('load.ageMs must be a number ≥ 0');
  const load: LoadReport = { connections, sessions, utilization, seq: seq as number, ageMs };
  // A source this version does not know (a newer agent's) is left out, not an error: the figure stands.
  if (o.source !== undefined && o.source !== null && !(typeof o.source === 'string' && o.source.length <= 32))
    throw new DecodeError('load.source must be a string');
  if (LOAD_SOURCES.includes(o.source as LoadSource)) load.source = o.source as LoadSource;
  if (o.seats !== undefined && o.seats !== null) load.seats = parseSeats(o.seats);
  return load;
}

/**
 * Check a load report's `seats` from the network. Throws DecodeError. Held + claimed over capacity
 * is taken as it is (it is data, and freeSeats makes it no room), not refused.
 */
export function parseSeats(v: unknown): LoadSeats {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DecodeError('load.seats must be a map');
  const o = v as Record<string, unknown>;
  const seatCount = (k: 'capacity' | 'held' | 'claimed', min: number): number => {
    const n = o[k];
    if (!Number.isSafeInteger(n) || (n as number) < min || (n as number) > MAX_SEAT_COUNT)
      throw new DecodeError(`load.seats.${k} must be an integer in ${min}..${MAX_SEAT_COUNT}, got ${typeof n === 'number' ? n : typeof n}`);
    return n as number;
  };
  return { capacity: seatCount('capacity', 1), held: seatCount('held', 0), claimed: seatCount('claimed', 0) };
}

/** Check and normalize a ServerRecord from the network. Throws DecodeError. */
export function parseServerRecord(v: unknown): ServerRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DecodeError('server record must be a map');
  const o = v as Record<string, unknown>;
  if (!isStr(o.id)) throw new DecodeError('server.id must be a non-empty string of at most 255 chars');
  if (!isStr(o.service)) throw new DecodeError('server.service must be a non-empty string');
  if (!isStr(o.host)) throw new DecodeError('server.host must be a non-empty string');
  if (o.udpPort !== undefined && o.udpPort !== null && !isPort(o.udpPort)) throw new DecodeError('server.udpPort must be a port');
  if (o.tcpPort !== undefined && o.tcpPort !== null && !isPort(o.tcpPort)) throw new DecodeError('server.tcpPort must be a port');
  if (o.wsPort !== undefined && o.wsPort !== null && !isPort(o.wsPort)) throw new DecodeError('server.wsPort must be a port');
  if (o.wsPath !== undefined && o.wsPath !== null) {
    const problem = wsPathProblem(o.wsPath);
    if (problem) throw new DecodeError(`server.wsPath ${problem}`);
  }
  if (o.wsTls !== undefined && o.wsTls !== null && typeof o.wsTls !== 'boolean') throw new DecodeError('server.wsTls must be a boolean');
  const weight = o.weight ?? DEFAULT_WEIGHT;
  if (!Number.isInteger(weight) || (weight as number) < 1 || (weight as number) > MAX_WEIGHT)
    throw new DecodeError(`server.weight must be an integer in 1..${MAX_WEIGHT}`);
  if (o.zone !== undefined && o.zone !== null && !isStr(o.zone)) throw new DecodeError('server.zone must be a string');
  const health = o.health ?? 'healthy';
  if (!HEALTH_VALUES.includes(health as Health)) throw new DecodeError(`server.health must be one of ${HEALTH_VALUES.join(', ')}`);
  if (o.agent !== undefined && o.agent !== null && !isStr(o.agent, 2048)) throw new DecodeError('server.agent must be a URL string');
  const rec: ServerRecord = { id: o.id, service: o.service, host: o.host, weight: weight as number, health: health as Health };
  if (isPort(o.udpPort)) rec.udpPort = o.udpPort;
  if (isPort(o.tcpPort)) rec.tcpPort = o.tcpPort;
  // The path and TLS flag describe the ws endpoint: without a wsPort they mean nothing and are dropped.
  if (isPort(o.wsPort)) {
    rec.wsPort = o.wsPort;
    if (typeof o.wsPath === 'string') rec.wsPath = o.wsPath;
    if (o.wsTls === true) rec.wsTls = true;
  }
  if (isStr(o.zone)) rec.zone = o.zone;
  if (isStr(o.agent, 2048)) rec.agent = o.agent;
  if (o.sig !== undefined && o.sig !== null) {
    if (!isStr(o.sig, 128)) throw new DecodeError('server.sig must be a base64 string');
    rec.sig = o.sig;
  }
  if (o.sigv !== undefined && o.sigv !== null) {
    if (!Number.isSafeInteger(o.sigv) || (o.sigv as number) < 0) throw new DecodeError('server.sigv must be an integer ≥ 0');
    rec.sigv = o.sigv as number;
  }
  if (o.load !== undefined && o.load !== null) rec.load = parseLoad(o.load);
  return rec;
}

/**
 * A record a client can take into its view: parseServerRecord's checks, and a host that is an
 * address a server can have (serverAddressProblem: an IP literal, not 0.0.0.0 or ::, not
 * multicast or broadcast) and at least one port (udp, tcp or ws). Every record the SDK takes from the network
 * (watch frames, mDNS) or from a feed goes through it. Throws DecodeError.
 */
export function parseUsableServerRecord(v: unknown): ServerRecord {
  const r = parseServerRecord(v);
  const problem = serverAddressProblem(r.host);
  if (problem) throw new DecodeError(`server.host ${problem}, got ${JSON.stringify(r.host.slice(0, 64))}`);
  if (r.udpPort === undefined && r.tcpPort === undefined && r.wsPort === undefined) throw new DecodeError('server record needs a udpPort, a tcpPort or a wsPort');
  return r;
}

// ---------------------------------------------------------------------------------------------
// /v1/watch: a read-only subscription. The client sends one `hello`; the agent answers with a
// `snapshot` of every server it knows for the service, then `upsert` / `remove` deltas. After the
// hello, a client may send `ping` frames (the application-level heartbeat: a browser's WebSocket
// cannot send protocol pings); the agent answers each with a `pong` carrying the same `n`.
// Whatever else a client sends is ignored (and counted) by the agent.

export const WATCH_PATH = '/v1/watch';

/** Largest frame a watching client may send (a hello with its token, a ping). */
export const MAX_WATCH_CLIENT_FRAME_BYTES = 4096;

/**
 * `subset`: how many of the service's eligible servers the agent sends this subscriber (issue 18,
 * agent/subset.ts): an integer in 1..MAX_WATCH_SUBSET, 'all', or 'auto' (all below 64 eligible,
 * else 32). Absent means 'all' (older clients, the dashboard). `client`: the client's id (random,
 * stable for the cluster object's life), so a reconnect keeps its subset.
 */
export type WatchClientFrame = { t: 'hello'; v: number; service?: string; token?: string; subset?: number | 'all' | 'auto'; client?: string };

/** Largest `subset` a hello may ask for. */
export const MAX_WATCH_SUBSET = 1024;
/** A hello's `client` id: 8..64 chars of letters, digits, '-' and '_'. */
export const WATCH_CLIENT_ID = /^[A-Za-z0-9_-]{8,64}$/;

/** The client's heartbeat, after its hello: `n` (a counter in 0..2^31-1) comes back in the pong. */
export type WatchPingFrame = { t: 'ping'; v: number; n: number };

/**
 * Agent URLs a decoded frame listed that are not usable (parseAgentUrl): left out of `agents`,
 * counted here so the client can say so. Set only by the decoder, never sent.
 */
export interface InvalidAgentUrls {
  count: number;
  /** The first one, as text, at most 100 chars. */
  example: string;
}

/**
 * Server records of a decoded snapshot that were left out: ones that do not parse (a host that is
 * no IP literal, no port…) and any past LIMITS.maxServers. Set only by the decoder, never sent.
 */
export interface DroppedServers {
  count: number;
  /** Why the first one was dropped, at most 200 chars. */
  example: string;
}

export type WatchServerFrame =
  | { t: 'snapshot'; v: number; node: string; servers: ServerRecord[]; agents: string[]; invalidAgents?: InvalidAgentUrls; droppedServers?: DroppedServers }
  | { t: 'upsert'; v: number; server: ServerRecord }
  | { t: 'remove'; v: number; id: string; reason: string }
  | { t: 'agents'; v: number; agents: string[]; invalidAgents?: InvalidAgentUrls }
  | { t: 'error'; v: number; code: string; message: string }
  /** The answer to a client's ping frame. */
  | { t: 'pong'; v: number; n: number };

function checkVersion(o: Record<string, unknown>): void {
  if (o.v !== PROTOCOL_VERSION) throw new UnsupportedVersionError(o.v, PROTOCOL_VERSION);
}

/**
 * A `ws:` or `wss:` URL with a host and a port in 1..65535 (explicit, or the scheme's default:
 * WHATWG URL drops a default port, so `ws://h:80` has port ''), parsed by `new URL` as `new
 * WebSocket` will; undefined for anything else. Never throws. Every agent address goes through
 * it: gossip addresses (agent/gossip/messages.ts), agent lists from a watch, discovery.agents.
 */
export function parseWsUrl(v: unknown): { url: URL; port: number } | undefined {
  if (!isStr(v, 2048) || !/^wss?:\/\//i.test(v)) return undefined;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'ws:' && url.protocol !== 'wss:') || url.hostname === '') return undefined;
  const port = url.port === '' ? (url.protocol === 'ws:' ? 80 : 443) : Number(url.port);
  return isPort(port) ? { url, port } : undefined;
}

/**
 * An agent URL as the SDK will use it, or undefined when it is not one: `ws:` or `wss:`, a host,
 * a port in 1..65535 (explicit or the scheme's default), no credentials, query or fragment (the
 * watch path is appended to it). Returned normalized, without a trailing slash or `/v1/watch`, so
 * the same agent is one entry however it was written. `new URL` does the parsing: it is what
 * `new WebSocket` does, and it throws on what the WebSocket would throw on.
 */
export function parseAgentUrl(v: unknown): string | undefined {
  const u = parseWsUrl(v)?.url;
  if (!u || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') return undefined;
  const path = u.pathname.replace(/\/+$/, '').replace(new RegExp(`${WATCH_PATH}$`), '');
  return `${u.protocol}//${u.host}${path}`;
}

/**
 * Most agent URLs read from one frame. An agent lists every live member, so a cluster of more
 * agents sends a longer list: it is cut here, not refused (refusing left a client of a cluster of
 * 1,101 agents with no view). The client keeps at most MAX_LEARNED_AGENTS of them anyway.
 */
export const MAX_AGENT_URLS_READ = 1000;

/**
 * An agents list from the network: the usable URLs, normalized and without repeats, from the
 * first MAX_AGENT_URLS_READ entries. The rest are dropped here, so no caller ever hands one to
 * `new WebSocket` (which throws on a bad URL).
 */
function parseUrlList(v: unknown): { agents: string[]; invalidAgents?: InvalidAgentUrls } {
  if (!Array.isArray(v)) throw new DecodeError('agents must be a list of URLs');
  const agents = new Set<string>();
  let invalid: InvalidAgentUrls | undefined;
  for (let i = 0; i < v.length && i < MAX_AGENT_URLS_READ; i++) {
    const x: unknown = v[i];
    const u = parseAgentUrl(x);
    if (u !== undefined) agents.add(u);
    else if (invalid) invalid.count++;
    else invalid = { count: 1, example: (typeof x === 'string' ? JSON.stringify(x) : typeof x).slice(0, 100) };
  }
  return invalid ? { agents: [...agents], invalidAgents: invalid } : { agents: [...agents] };
}

/**
 * Check a decoded frame an agent sent to a watching client (msgpack: msgpack.ts; JSON text with
 * `/v1/watch?format=json`: discovery/json-codec.ts). Throws DecodeError, InvalidRecordError.
 */
export function parseWatchServerFrame(o: unknown): WatchServerFrame {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new DecodeError('watch frame must be a map');
  const m = o as Record<string, unknown>;
  checkVersion(m);
  switch (m.t) {
    case 'snapshot': {
      if (!Array.isArray(m.servers)) throw new DecodeError('snapshot.servers must be a list');
      // One bad record costs that record, not the view; past the cap, records are dropped unread.
      const servers: ServerRecord[] = [];
      let dropped: DroppedServers | undefined;
      const drop = (why: string, n = 1) => {
        if (dropped) dropped.count += n;
        else dropped = { count: n, example: why.slice(0, 200) };
      };
      const n = Math.min(m.servers.length, LIMITS.maxServers);
      for (let i = 0; i < n; i++) {
        try {
          servers.push(parseUsableServerRecord(m.servers[i]));
        } catch (err) {
          drop(`${recordName(m.servers[i])}: ${(err as Error).message}`);
        }
      }
      if (m.servers.length > n) drop(`${m.servers.length - n} past the limit of ${LIMITS.maxServers}`, m.servers.length - n);
      const f: WatchServerFrame = {
        t: 'snapshot',
        v: PROTOCOL_VERSION,
        node: isStr(m.node) ? m.node : '',
        servers,
        ...(m.agents === undefined ? { agents: [] } : parseUrlList(m.agents)),
      };
      if (dropped) f.droppedServers = dropped;
      return f;
    }
    case 'upsert':
      try {
        return { t: 'upsert', v: PROTOCOL_VERSION, server: parseUsableServerRecord(m.server) };
      } catch (err) {
        const id = (m.server as { id?: unknown } | null | undefined)?.id;
        throw new InvalidRecordError(isStr(id) ? id : undefined, `upsert of ${recordName(m.server)}: ${(err as Error).message}`);
      }
    case 'remove':
      if (!isStr(m.id)) throw new DecodeError('remove.id must be a string');
      return { t: 'remove', v: PROTOCOL_VERSION, id: m.id, reason: isStr(m.reason) ? m.reason : 'unknown' };
    case 'agents':
      return { t: 'agents', v: PROTOCOL_VERSION, ...parseUrlList(m.agents) };
    case 'error':
      return { t: 'error', v: PROTOCOL_VERSION, code: String(m.code ?? ''), message: String(m.message ?? '') };
    case 'pong':
      return { t: 'pong', v: PROTOCOL_VERSION, n: pingCounter(m.n) };
    default:
      throw new DecodeError(`unknown watch frame type ${JSON.stringify(m.t)}`);
  }
}

/** How a record is named in a message: its id when it has one. */
function recordName(v: unknown): string {
  const id = (v as { id?: unknown } | null | undefined)?.id;
  return isStr(id) ? `server ${JSON.stringify(id.slice(0, 100))}` : 'a server record';
}


/** A ping's counter: an integer in 0..2^31-1. Throws DecodeError. */
function pingCounter(n: unknown): number {
  if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) > 0x7fffffff) throw new DecodeError('ping/pong n must be an integer in 0..2^31-1');
  return n as number;
}

/** Check a decoded client frame (msgpack, or JSON text with `/v1/watch?format=json`). */
export function parseWatchClientFrame(o: unknown): WatchClientFrame {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new DecodeError('watch frame must be a map');
  const m = o as Record<string, unknown>;
  checkVersion(m);
  if (m.t !== 'hello') throw new DecodeError(`unknown client frame type ${JSON.stringify(m.t)}`);
  const f: WatchClientFrame = { t: 'hello', v: PROTOCOL_VERSION };
  if (isStr(m.service)) f.service = m.service;
  if (isStr(m.token, 1024)) f.token = m.token;
  if (m.subset !== undefined && m.subset !== null) {
    if (m.subset === 'all' || m.subset === 'auto') f.subset = m.subset;
    else if (Number.isSafeInteger(m.subset) && (m.subset as number) >= 1 && (m.subset as number) <= MAX_WATCH_SUBSET) f.subset = m.subset as number;
    else throw new DecodeError(`hello.subset must be an integer in 1..${MAX_WATCH_SUBSET}, 'all' or 'auto'`);
  }
  if (m.client !== undefined && m.client !== null) {
    if (typeof m.client !== 'string' || !WATCH_CLIENT_ID.test(m.client)) throw new DecodeError('hello.client must be 8..64 letters, digits, - or _');
    f.client = m.client;
  }
  return f;
}

/**
 * The counter of a client's ping frame (decoded: msgpack, or JSON text with `format=json`), or
 * undefined when the value is not a ping of this version. Never throws: the agent ignores (and
 * counts) whatever else a subscriber sends.
 */
export function parseWatchPing(o: unknown): number | undefined {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  const m = o as Record<string, unknown>;
  if (m.t !== 'ping' || m.v !== PROTOCOL_VERSION) return undefined;
  try {
    return pingCounter(m.n);
  } catch {
    return undefined;
  }
}
