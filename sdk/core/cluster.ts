import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { Balancer } from './balancer.js';
import { systemClock } from './clock.js';
import { defaultRandom } from './random.js';
import { hashKey, type Key } from './hash.js';
import { resolveOptions, parseStaticServer, type JoinOptions, type ResolvedOptions } from './options.js';
import type { Server, ServerState, ServerView } from './server.js';
import { connectWithFailover, type ConnectOptions } from '../node/tcp.js';
import { UdpClient, type UdpOptions } from '../node/udp.js';
import { ClosedError, type SignatureError } from './errors.js';
import type { DiscoverySource } from './discovery/source.js';
import { resolveStaticServers, staticSource } from './discovery/static.js';
import { AgentWatch } from './discovery/agents.js';
import { MdnsDiscovery } from '../node/mdns-discovery.js';

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
export class Cluster extends EventEmitter<ClusterEvents> {
  readonly service: string;
  /** @internal */
  readonly balancer: Balancer;
  private readonly udps = new Set<UdpClient>();
  private closed = false;
  /** Each server's last rejection (source, reason, message): a stream of unsigned upserts is one event. */
  private readonly lastRejection = new Map<string, string>();
  /** Rejections no listener has seen yet. */
  private unseenRejections: SignatureError[] = [];

  /** @internal use `join` */
  constructor(
    readonly options: ResolvedOptions,
    private readonly source: DiscoverySource,
    balancer: Balancer,
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
    // 'newListener' is not one of ClusterEvents: the untyped emitter underneath has it.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
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

  /** A TCP connection to a picked server, with failover to others on refusal, reset or timeout. */
  connect(opts: ConnectOptions = {}): Promise<net.Socket> {
    if (this.closed) return Promise.reject(new ClosedError('cluster'));
    return connectWithFailover(this.balancer, opts.key === undefined ? -1 : hashKey(opts.key), opts, this.service);
  }

  /** A UDP socket that picks a server per datagram (or per key); replies say which server sent them. */
  udp(opts?: UdpOptions): UdpClient {
    if (this.closed) throw new ClosedError('cluster');
    const u = new UdpClient(this.balancer, opts);
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
    this.balancer.close();
    await this.source.close();
    await Promise.all([...this.udps].map((u) => u.close()));
  }
}

/**
 * Wait until the source's view is settled (its `settled()`, see discovery/settle.ts; without one,
 * the first server), at most `capMs`.
 */
async function settled(source: DiscoverySource, balancer: Balancer, capMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onChange: (() => void) | undefined;
  const cap = new Promise<void>((resolve) => (timer = setTimeout(resolve, capMs)));
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
    clearTimeout(timer);
    if (onChange) balancer.off('change', onChange);
  }
}

/**
 * Join a service: discover its servers and keep a live view of them.
 *
 *   const cluster = await join({ service: 'game', discovery: { mdns: { interface: '127.0.0.1' } } });
 *
 * Resolves with a settled view, so that the first picks spread over the servers there are (not
 * all onto the first one heard of): a static list at once; agents after the first full snapshot;
 * mDNS once the first query round has had its answers (RFC 6762 §5.2: one second) or, with a
 * watch subscription, after that agent's first snapshot, whichever comes first; a custom source
 * when its `settled()` resolves (without one, at its first server). Never later than
 * `waitForServersMs`. Rejects with a BadOptionError naming the option that is wrong.
 */
export async function join(options: JoinOptions): Promise<Cluster> {
  const opts = resolveOptions(options);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? defaultRandom();
  const d = opts.discovery;
  const servers =
    'servers' in d
      ? await resolveStaticServers(
          d.servers.map((s, i) => parseStaticServer(s, `discovery.servers[${i}]`, opts.service)),
          opts.connectTimeoutMs,
        )
      : undefined;
  const balancer = new Balancer(opts, clock, random);
  let cluster: Cluster | undefined;
  // Sources start only once the cluster exists (below), so `cluster` is set whenever this runs.
  const onRejected = (err: SignatureError) => cluster?.rejected(err);
  const verify = opts.verify;
  let source: DiscoverySource;
  if ('servers' in d) source = staticSource(servers!);
  else if ('agents' in d) source = new AgentWatch({ service: opts.service, agents: d.agents, token: opts.token, clock, verify, onRejected });
  else if ('mdns' in d)
    source = new MdnsDiscovery({ service: opts.service, interface: d.mdns.interface, subscribe: d.mdns.subscribe !== false, token: opts.token, clock, port: d.mdns.port, verify, onRejected });
  else source = d.source;
  cluster = new Cluster(opts, source, balancer);
  try {
    await source.start(balancer);
  } catch (err) {
    await cluster.close();
    throw err;
  }
  if (opts.waitForServersMs > 0 && !('servers' in d)) await settled(source, balancer, opts.waitForServersMs);
  balancer.markSeeded();
  return cluster;
}
