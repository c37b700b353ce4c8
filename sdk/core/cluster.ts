import { Emitter } from './emitter.js';
import { Balancer } from './balancer/index.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { defaultRandom } from './random.js';
import { hashKey, type Key } from './hash.js';
import { resolveOptions, parseStaticServer, type JoinOptions, type PublicKeyParser, type ResolvedOptions } from './options.js';
import type { Server, ServerState, ServerView } from './server.js';
import { ClosedError, UnsupportedError, type SignatureError } from './errors.js';
import type { DiscoverySource } from './discovery/source.js';
import { resolveStaticServers, staticSource, type HostResolver } from './discovery/static.js';
import { AgentWatch } from './discovery/agents.js';
import type { WatchCodec } from './discovery/codec.js';
import { globalWebSocket, webSocketConnector, type WatchConnector, type WebSocketConstructor } from './discovery/websocket.js';
import { openWebSocket, type GameWebSocket, type GameWebSocketConstructor, type WebSocketOptions } from './websocket-connect.js';
import { webCryptoVerifier, type PublicKey, type SignatureVerifier } from './signing.js';
import { SeatReserver, type FetchLike, type ReserveOptions, type Reservation } from './seats.js';

/** What `mdns` (an adapter) is given to make an mDNS discovery source. */
export interface MdnsSourceOptions {
  service: string;
  interface: string;
  subscribe: boolean;
  token: string | undefined;
  clock: Clock;
  port: number | undefined;
  verify: PublicKey | undefined;
  onRejected: (err: SignatureError) => void;
  /** The watch connector the cluster uses (for the subscription to a found agent). */
  connect: WatchConnector;
}

/** A UDP client as the cluster keeps it (sdk/node/udp.ts UdpClient is one). */
export interface UdpLike {
  on(event: 'close', listener: () => void): unknown;
  close(): Promise<void>;
}

/**
 * The transports a cluster is given: the runtime-neutral entry (peerlb/sdk/core) passes none but
 * what the runtime has (a W3C WebSocket, WebCrypto); the Node entry (sdk/node/cluster.ts) passes
 * all of them. What is missing makes the option or method that needs it an UnsupportedError.
 */
export interface ClusterAdapters {
  /** Opens /v1/watch sockets. Default: a connector over `WebSocket` below (websocket.ts). */
  watch?: WatchConnector;
  /** How /v1/watch frames are encoded (discovery/codec.ts). Default: JSON text; the Node entry passes msgpack. */
  watchCodec?: WatchCodec;
  /**
   * The W3C WebSocket constructor for the default connector and for `cluster.websocket()` (which
   * calls it as `new WebSocket(url, protocols)`). Default: `globalThis.WebSocket`.
   */
  WebSocket?: WebSocketConstructor;
  /** The verifier of `verify.publicKey`. Default: WebCrypto (webCryptoVerifier, asynchronous). */
  verifier?: (key: PublicKey) => SignatureVerifier;
  /** Parses `verify.publicKey`. Default: the text forms (and public key objects), signing.ts. */
  parsePublicKey?: PublicKeyParser;
  /** Resolves host names of static lists. Without one, a host name is an UnsupportedError. */
  resolve?: HostResolver;
  /** Makes the `discovery.mdns` source. Without one, that option is an UnsupportedError. */
  mdns?: (o: MdnsSourceOptions) => DiscoverySource;
  /** TCP connect with failover (`cluster.connect`). `key`: hashKey of the option, or -1. */
  connect?: (balancer: Balancer, key: number, opts: { key?: Key } & Record<string, unknown>, service: string) => Promise<unknown>;
  /** A UDP client (`cluster.udp`). */
  udp?: (balancer: Balancer, opts: unknown) => UdpLike;
  /** HTTP requests of `cluster.reserve` to the agents. Default: `globalThis.fetch`. */
  fetch?: FetchLike;
}

/** The entries that need a runtime's transport, and where they are. */
const NEEDS_NODE = 'needs the Node entry (import from "peerlb/sdk"); this runtime-neutral entry has WebSocket discovery and picks';

export interface ClusterEvents {
  /** The view changed (servers, health, weights, load). Coalesced. */
  change: [view: ServerView[]];
  /** A server was ejected after consecutive failures. `until` is on the cluster's clock (`performance.now()` unless `clock` is given), not wall time. */
  eject: [server: Server, info: { until: number; consecutiveFailures: number; level: number }];
  /** An ejected server's ejection ended; it takes picks again (through slow start if enabled). */
  recover: [server: Server];
  /** Panic mode began (true) or ended (false): too few eligible servers, picks go to all. */
  panic: [active: boolean];
  /** A discovery problem (bad frame from an agent, lost subscription…). The view keeps what it had. */
  error: [err: Error];
  /**
   * With `verify`: a server was ignored, unsigned or wrongly signed (once per server and reason
   * until it changes). Rejections raised while no listener is attached (during `await join()`,
   * say) are kept, the last MAX_BUFFERED_REJECTIONS, and delivered to the first listener attached;
   * or pass `onRejected` to `join` to see every one as it happens.
   */
  rejected: [err: SignatureError];
}

export interface ServerStats {
  id: string;
  picks: number;
  failures: number;
  ejections: number;
  ejected: boolean;
  rttMs: number;
  active: number;
  estimatedLoad: number;
  health: string;
}

/** Rejections kept for the first 'rejected' listener (see ClusterEvents.rejected). */
export const MAX_BUFFERED_REJECTIONS = 64;

/** A live view of a service's servers and the way to reach them. Made by `join`. */
export class Cluster extends Emitter<ClusterEvents> {
  readonly service: string;
  /** @internal */
  readonly balancer: Balancer;
  private readonly udps = new Set<UdpLike>();
  /** Sockets cluster.websocket() opened that are not closed yet: close() closes them (and so releases their leases). */
  private readonly sockets = new Set<GameWebSocket>();
  private closed = false;
  /** Each server's last rejection (source, reason, message): a stream of unsigned upserts is one event. */
  private readonly lastRejection = new Map<string, string>();
  /** Rejections no listener has seen yet. */
  private unseenRejections: SignatureError[] = [];
  private seatReserver: SeatReserver | undefined;

  /** @internal use `join` */
  constructor(
    readonly options: ResolvedOptions,
    private readonly source: DiscoverySource,
    balancer: Balancer,
    /** @internal */
    protected readonly adapters: ClusterAdapters = {},
  ) {
    super();
    this.service = options.service;
    this.balancer = balancer;
    balancer.on('change', () => {
      if (this.listenerCount('change') > 0) this.emit('change', balancer.views());
    });
    balancer.on('eject', (s, info) => this.emit('eject', s, info));
    balancer.on('recover', (s) => this.emit('recover', s));
    balancer.on('panic', (p) => this.emit('panic', p));
    balancer.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
    // 'newListener' is not one of ClusterEvents: the emitter has it (before the listener is added).
    (this as Emitter).on('newListener', (event: unknown) => {
      // Called before the listener is added: deliver once it is.
      if (event === 'rejected' && this.unseenRejections.length > 0) queueMicrotask(() => this.flushRejections());
    });
  }

  /** @internal A source ignored a server for its signature. */
  rejected(err: SignatureError): void {
    const k = `${err.source}|${err.reason}|${err.message}`;
    if (this.lastRejection.get(err.server) === k) return;
    if (this.lastRejection.size >= 4096) this.lastRejection.clear();
    this.lastRejection.set(err.server, k);
    const cb = this.options.onRejected;
    if (cb) {
      try {
        cb(err);
      } catch (e) {
        // Runs from a socket's handler: a throw here would be an uncaught exception.
        if (this.listenerCount('error') > 0) this.emit('error', e instanceof Error ? e : new Error(String(e)));
      }
    }
    if (this.listenerCount('rejected') > 0) this.emit('rejected', err);
    else {
      if (this.unseenRejections.length >= MAX_BUFFERED_REJECTIONS) this.unseenRejections.shift();
      this.unseenRejections.push(err);
    }
  }

  private flushRejections(): void {
    if (this.listenerCount('rejected') === 0) return;
    const list = this.unseenRejections;
    this.unseenRejections = [];
    for (const err of list) this.emit('rejected', err);
  }

  /**
   * Reserve seats on one server, from its own agent (issue 17, sdk/core/seats.ts): resolves with
   * the server and a ticket for the game server to claim; rejects with a FullError (code
   * PEERLB_ERR_FULL) when no server asked within `attempts` had room. The agent never grants past
   * its `--capacity`, whatever the views say.
   */
  reserve(opts: ReserveOptions = {}): Promise<Reservation> {
    if (this.closed) return Promise.reject(new ClosedError('cluster'));
    const b = this.balancer;
    const f = this.adapters.fetch ?? (typeof globalThis.fetch === 'function' ? (globalThis.fetch.bind(globalThis) as unknown as FetchLike) : undefined);
    this.seatReserver ??= new SeatReserver(this.service, () => b.views(), f, b.clock, b.random);
    return this.seatReserver.reserve(opts);
  }

  /** Everything known about every server: endpoints, weight, zone, health, reported load and local counts. */
  servers(): ServerView[] {
    return this.balancer.views();
  }

  /** True while too few servers are eligible and picks go to all of them. */
  get panic(): boolean {
    return this.balancer.panic;
  }

  /**
   * Pick a server without any I/O (for your own protocol). With `key`, the same key goes to the
   * same server while that server is eligible. The pick counts towards the server's estimated load
   * until its next load report. Returns undefined when no server is known.
   */
  pick(opts?: { key?: Key }): Server | undefined {
    const s = this.balancer.pick(opts?.key === undefined ? -1 : hashKey(opts.key));
    if (s) this.balancer.countPick(s);
    return s;
  }

  /**
   * Pick a server for a long-lived connection you open yourself: it counts as an open connection
   * (least-connections, p2c estimates) until you call `release(server)`.
   */
  acquire(opts?: { key?: Key }): Server | undefined {
    const s = this.balancer.pick(opts?.key === undefined ? -1 : hashKey(opts.key));
    if (s) this.balancer.connectionOpened(s);
    return s;
  }

  release(server: Server): void {
    this.balancer.connectionClosed(server as ServerState);
  }

  /** Tell the balancer how a request to `server` went: feeds EWMA latency and outlier ejection. */
  outcome(server: Server, result: { ok: boolean; rttMs?: number }): void {
    this.balancer.outcome(server as ServerState, result.ok, result.rttMs);
  }

  /**
   * A TCP connection to a picked server, with failover to others on refusal, reset or timeout
   * (the Node entry: a net.Socket). Without a TCP transport, rejects with an UnsupportedError.
   */
  connect(opts: { key?: Key } = {}): Promise<unknown> {
    if (this.closed) return Promise.reject(new ClosedError('cluster'));
    const connect = this.adapters.connect;
    if (!connect) return Promise.reject(new UnsupportedError('connect', `(TCP) ${NEEDS_NODE}`));
    return connect(this.balancer, opts.key === undefined ? -1 : hashKey(opts.key), opts as { key?: Key } & Record<string, unknown>, this.service);
  }

  /**
   * A WebSocket already open to a picked server (one with a WebSocket endpoint, `server.wsUrl`),
   * over the runtime's W3C WebSocket (the cluster's `WebSocket` adapter, else
   * `globalThis.WebSocket`). An open that errors, closes or times out (`timeoutMs`, on the
   * cluster's clock) counts as a failure of that server (outlier ejection, ewma) and another server
   * is tried, up to `attempts`; the socket counts as one open connection on its server until it
   * closes. With `key`, the same key goes to the same server while that server is eligible.
   *
   *   const ws = await cluster.websocket({ key: playerId, protocols: ['game.v1'] });
   */
  websocket(opts: WebSocketOptions = {}): Promise<GameWebSocket> {
    if (this.closed) return Promise.reject(new ClosedError('cluster'));
    const WS = (this.adapters.WebSocket ?? globalWebSocket()) as GameWebSocketConstructor | undefined;
    if (!WS) return Promise.reject(new UnsupportedError('websocket', 'this runtime has no global WebSocket: pass one to join (join(options, { WebSocket }))'));
    return openWebSocket(this.balancer, WS, opts.key === undefined ? -1 : hashKey(opts.key), opts, this.service).then((ws) => {
      if (this.closed) {
        // Opened while the cluster closed: closed like the others (its lease ends with its close event).
        closeQuietly(ws);
        throw new ClosedError('cluster');
      }
      this.sockets.add(ws);
      const gone = () => {
        this.sockets.delete(ws);
        ws.removeEventListener('close', gone);
      };
      ws.addEventListener('close', gone);
      return ws;
    });
  }

  /**
   * A UDP socket that picks a server per datagram (or per key); replies say which server sent them
   * (the Node entry: a UdpClient). Without a UDP transport, throws an UnsupportedError.
   */
  udp(opts?: unknown): unknown {
    if (this.closed) throw new ClosedError('cluster');
    if (!this.adapters.udp) throw new UnsupportedError('udp', NEEDS_NODE);
    const u = this.adapters.udp(this.balancer, opts);
    this.udps.add(u);
    u.on('close', () => this.udps.delete(u));
    return u;
  }

  /** Per-server counters: picks, failures, ejections, RTT, estimated load. */
  stats(): ServerStats[] {
    return this.balancer.list().map((s) => ({
      id: s.id,
      picks: s.picks,
      failures: s.failures,
      ejections: s.ejections,
      ejected: s.ejected,
      rttMs: s.rtt,
      active: s.active,
      estimatedLoad: s.estimate,
      health: s.health,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Before the balancer: each socket's close event ends its lease (websocket-connect.ts).
    for (const ws of [...this.sockets]) closeQuietly(ws);
    this.sockets.clear();
    this.balancer.close();
    await this.source.close();
    await Promise.all([...this.udps].map((u) => u.close()));
  }
}

/** Close a socket (code 1000, 'cluster closed'); one already closing has nothing left to do. */
function closeQuietly(ws: GameWebSocket): void {
  if (ws.readyState !== 0 && ws.readyState !== 1) return;
  try {
    ws.close(1000, 'cluster closed');
  } catch {
    // Already closing.
  }
}

/**
 * Wait until the source's view is settled (its `settled()`, see discovery/settle.ts; without one,
 * the first server), at most `capMs`.
 */
async function settled(source: DiscoverySource, balancer: Balancer, capMs: number, clock: Clock): Promise<void> {
  let timer: TimerHandle | undefined;
  let onChange: (() => void) | undefined;
  const cap = new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, capMs)));
  const ready = source.settled
    ? source.settled()
    : balancer.size > 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          onChange = () => {
            if (balancer.size > 0) resolve();
          };
          balancer.on('change', onChange);
        });
  try {
    await Promise.race([ready, cap]);
  } finally {
    clock.clearTimeout(timer);
    if (onChange) balancer.off('change', onChange);
  }
}

/**
 * Join a service: discover its servers and keep a live view of them.
 *
 *   const cluster = await join({ service: 'game', discovery: { agents: ['ws://10.0.0.5:7946'] } });
 *
 * Resolves with a settled view, so that the first picks spread over the servers there are (not
 * all onto the first one heard of): a static list at once; agents after the first full snapshot;
 * mDNS once the first query round has had its answers (RFC 6762 §5.2: one second) or, with a
 * watch subscription, after that agent's first snapshot, whichever comes first; a custom source
 * when its `settled()` resolves (without one, at its first server). Never later than
 * `waitForServersMs`. Rejects with a BadOptionError naming the option that is wrong, or an
 * UnsupportedError naming one this runtime has no transport for (`discovery.mdns` and host names
 * in static lists without the Node entry's adapters).
 *
 * `adapters` are the runtime's transports (ClusterAdapters): the Node entry passes its own; by
 * default, /v1/watch goes over `globalThis.WebSocket` and signatures are checked with WebCrypto.
 */
export async function join(options: JoinOptions, adapters: ClusterAdapters = {}, make: ClusterFactory = (o, s, b, a) => new Cluster(o, s, b, a)): Promise<Cluster> {
  const opts = resolveOptions(options, adapters.parsePublicKey);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? defaultRandom();
  const d = opts.discovery;
  if ('mdns' in d && !adapters.mdns) throw new UnsupportedError('discovery.mdns', `(multicast DNS) ${NEEDS_NODE}; use discovery.agents (ws:// URLs) or a static list`);
  const servers =
    'servers' in d
      ? await resolveStaticServers(
          d.servers.map((s, i) => parseStaticServer(s, `discovery.servers[${i}]`, opts.service)),
          opts.connectTimeoutMs,
          adapters.resolve,
          clock,
        )
      : undefined;
  const balancer = new Balancer(opts, clock, random);
  let cluster: Cluster | undefined;
  // Sources start only once the cluster exists (below), so `cluster` is set whenever this runs.
  const onRejected = (err: SignatureError) => cluster?.rejected(err);
  const verify = opts.verify && (adapters.verifier ?? webCryptoVerifier)(opts.verify);
  const connect = adapters.watch ?? webSocketConnector(adapters.WebSocket);
  let source: DiscoverySource;
  if ('servers' in d) source = staticSource(servers!);
  else if ('agents' in d) source = new AgentWatch({ service: opts.service, agents: d.agents, token: opts.token, clock, verify, onRejected, connect, codec: adapters.watchCodec });
  else if ('mdns' in d)
    source = adapters.mdns!({ service: opts.service, interface: d.mdns.interface, subscribe: d.mdns.subscribe !== false, token: opts.token, clock, port: d.mdns.port, verify: opts.verify, onRejected, connect });
  else source = d.source;
  cluster = make(opts, source, balancer, adapters);
  // A runtime whose WebCrypto has no Ed25519 rejects every record: say why, through 'error'.
  (verify as { ready?: Promise<void> } | undefined)?.ready?.catch((err: Error) => balancer.error(err));
  try {
    await source.start(balancer);
  } catch (err) {
    await cluster.close();
    throw err;
  }
  if (opts.waitForServersMs > 0 && !('servers' in d)) await settled(source, balancer, opts.waitForServersMs, clock);
  balancer.markSeeded();
  return cluster;
}

/** Makes the cluster `join` returns (the Node entry's has Node's types on connect and udp). */
export type ClusterFactory = (opts: ResolvedOptions, source: DiscoverySource, balancer: Balancer, adapters: ClusterAdapters) => Cluster;
