/**
 * The agent's lifecycle: what starts in which order (keys, addresses, the port, routes, gossip,
 * load, health, mDNS), what a drain does, the reload's application, and the stop order. What it
 * announces and serves is derived by the pure views of agent/records.ts; a reload is planned by
 * agent/reload.ts; the routes are agent/routes.ts' table of agent/endpoints/….
 */
import { EventEmitter } from 'node:events';
import { checkLocalAddress, resolveAgentOptions, type AgentOptions, type ResolvedAgentOptions } from './options.js';
import { createLogger, type Logger } from './log.js';
import { AgentHttp } from './http.js';
import { Subscriptions } from './subscriptions.js';
import { EventFeed } from './endpoints/events.js';
import { MembersEndpoint } from './endpoints/members.js';
import { ServersEndpoint } from './endpoints/servers.js';
import { serveDashboard, serveFavicon } from './endpoints/dashboard.js';
import { metricsHandler } from './endpoints/metrics.js';
import { healthHandler } from './endpoints/health.js';
import { watchUpgrade } from './endpoints/watch.js';
import { handleKeyringRequest } from './endpoints/keyring.js';
import { handleLoadRequest } from './endpoints/load.js';
import { mountRoutes } from './routes.js';
import { AgentMetrics } from './metrics.js';
import { Membership, type Member } from './gossip/membership.js';
import { createWsTransport } from './gossip/ws-transport.js';
import { peerWarnings } from './peer-warnings.js';
import { createSealer, keyIdHex, Keyring, loadKeyringFile, type Sealer } from './gossip/keyring.js';
import { loadPrivateKeyFile, signBytes, signFields } from '../sdk/node/signing.js';
import type { KeyObject } from 'node:crypto';
import { GOSSIP_PROFILES } from './gossip/config.js';
import { LoadTracker } from './load/tracker.js';
import { countEstablished } from './load/proc-net.js';
import { CpuSampler } from './load/cpu.js';
import { HealthChecker, probeTcp, probeUdp } from './health/index.js';
import { waitForDrain } from './drain.js';
import { MdnsAnnouncer, type AnnounceInfo } from './mdns/announcer.js';
import { buildRecords, type TxtSigner } from '../sdk/mdns/records.js';
import { systemClock, type Clock } from '../sdk/core/clock.js';
import { defaultRandom, type Random } from '../sdk/core/random.js';
import type { Health, LoadReport, ServerRecord } from '../sdk/core/protocol.js';
import type { MemberMeta } from './gossip/membership.js';
import { agentUrls, announceInfo, healthCheckFor, isLive, memberInfo, memberMeta, serverRecord, type MemberInfo } from './records.js';
import { planReload } from './reload.js';
import { loadTls, tlsForLog, trustedCas, type TlsMaterial } from './tls.js';
import { OriginGate, ownOrigin } from './admission.js';
import type { DnsServer } from './dns/server.js';
import { createSeats, type AgentSeats } from './seats/index.js';
import { SeatsEndpoint } from './endpoints/seats.js';

export type { MemberInfo } from './records.js';

/** DNS answers are built from a view at most this old (its load ages; changes clear it at once). */
const DNS_VIEW_MAX_AGE_MS = 100;

export interface AgentEvents {
  member: [member: MemberInfo, previous: string | undefined];
  health: [health: Health];
}

export interface StartAgentExtras {
  clock?: Clock;
  random?: Random;
  /** A logger to use instead of the default pino logger (false: no logs). */
  log?: Logger | false;
  /** Host CPU utilization (0..1) instead of the sampler's /proc/stat figure (tests). */
  hostCpu?: () => number | undefined;
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly node: string;
  /** ws://host:port of this agent (gossip and watch); wss://host:port with `tls`. */
  url = '';
  port = 0;
  readonly log: Logger;
  private opts: ResolvedAgentOptions;
  private readonly clock: Clock;
  private readonly http: AgentHttp;
  private readonly subs: Subscriptions;
  private readonly feed: EventFeed;
  private readonly membersEp: MembersEndpoint;
  private readonly serversEp: ServersEndpoint;
  private readonly metrics: AgentMetrics;
  private membership!: Membership;
  private transport!: ReturnType<typeof createWsTransport>;
  private readonly tracker: LoadTracker;
  private readonly cpu: CpuSampler;
  private health: HealthChecker | undefined;
  private mdns: MdnsAnnouncer | undefined;
  private serverHealth: 'healthy' | 'unhealthy' = 'healthy';
  private draining = false;
  private stopped = false;
  private readonly heardAt = new Map<string, number>();
  private sealer: Sealer | undefined;
  /**
   * Fingerprint of the keys the keyring was last set from (key file or keyring option). A reload
   * replaces the keyring only when they changed: otherwise it would undo, with the same old file,
   * what was done through POST /v1/keyring since.
   */
  private keysLoaded: string | undefined;
  private signingKey: KeyObject | undefined;
  /** Last health seen per member, for the dashboard's drain/health events. */
  private readonly lastHealth = new Map<string, Health>();
  /** The PEM files of `tls`, as last read (start, reload). */
  private tlsMaterial: TlsMaterial | undefined;
  /** allowOrigin as a set (undefined: any origin), and the gate in front of /v1/watch and /v1/events. */
  private allowedOrigins: ReadonlySet<string> | undefined;
  private readonly originGate: OriginGate;
  /** The DNS interface (issue 16), with --dns-port only. */
  private dns: DnsServer | undefined;
  /** The DNS port bound (0 without --dns-port). */
  dnsPort = 0;
  private dnsView: { at: number; records: ServerRecord[] } | undefined;
  /** The server's seats (issue 17): reserve, claim, release, stats; `--capacity` of them. */
  readonly seats: AgentSeats;
  private readonly seatsEp: SeatsEndpoint;

  /** @internal use startAgent */
  constructor(opts: ResolvedAgentOptions, private readonly extras: StartAgentExtras) {
    super();
    this.opts = opts;
    this.node = opts.node;
    this.clock = extras.clock ?? systemClock;
    this.log = extras.log === false ? createLogger({ level: 'silent' }) : (extras.log ?? createLogger({ level: opts.logLevel })).child({ node: opts.node });
    const lim = opts.limits;
    // The TLS files first: a missing or mismatched one fails the start before anything runs.
    this.tlsMaterial = opts.tls ? loadTls(opts.tls) : undefined;
    this.http = new AgentHttp({ log: this.log, maxConnections: lim.maxConnections, maxConnectionsPerAddress: lim.maxConnectionsPerAddress, tls: this.tlsMaterial });
    this.allowedOrigins = opts.allowOrigin && new Set(opts.allowOrigin);
    this.originGate = new OriginGate(
      () => this.allowedOrigins,
      () => ownOrigin(this.opts.host, this.opts.bind, this.port, this.http.tls),
    );
    const random = extras.random;
    this.subs = new Subscriptions({
      node: opts.node,
      clock: this.clock,
      token: opts.token,
      snapshot: () => this.snapshot(),
      record: (id) => {
        const m = this.membership?.member(id);
        return m && isLive(m) ? this.watchRecord(m) : undefined;
      },
      log: this.log,
      maxSubscribers: lim.maxSubscribers,
      maxSubscribersPerAddress: lim.maxSubscribersPerAddress,
      maxPendingBytes: lim.maxPendingBytes,
      maxTotalPendingBytes: lim.maxWatchPendingBytes,
      helloRate: lim.helloRate,
      helloBurst: lim.helloBurst,
      random: random ? () => random.next() : undefined,
    });
    this.feed = new EventFeed(() => this.members(), { token: opts.token, log: this.log, clock: this.clock });
    this.membersEp = new MembersEndpoint(() => this.members());
    this.serversEp = new ServersEndpoint({
      servers: () => (this.membership ? this.snapshot().servers : []),
      clock: this.clock,
      random: random ?? defaultRandom(),
      token: opts.token,
      maxBlocking: lim.maxSubscribers,
      maxBlockingPerAddress: lim.maxSubscribersPerAddress,
    });
    this.metrics = new AgentMetrics(
      {
        members: () => (this.membership ? this.membership.members().map((m) => ({ status: m.status, health: m.meta.health })) : []),
        gossip: () => this.gossipCounters(),
        subscribers: () => this.subs.size,
        seats: () => ({ ...this.seats.stats(), rateLimited: this.seatsEp.limiter.refused }),
        admission: () => this.admissionCounters(),
        load: () => this.tracker.current(),
        health: () => this.currentHealth(),
        detector: () => {
          if (!this.membership) return undefined;
          const s = this.membership.stats();
          return { probeTimeoutMs: s.probeTimeoutMs, awareness: s.awareness };
        },
      },
      { node: opts.node, service: opts.service },
    );
    this.cpu = new CpuSampler({ clock: this.clock });
    this.seats = createSeats({
      server: opts.node,
      capacity: opts.capacity ?? 0,
      clock: this.clock,
      health: () => this.currentHealth(),
      reported: () => this.tracker.freshSessions(),
      changed: () => this.tracker.seatsChanged(),
    });
    this.seatsEp = new SeatsEndpoint(this.seats, () => this.clock.now());
    this.tracker = new LoadTracker({
      clock: this.clock,
      intervalMs: opts.loadIntervalMs,
      capacity: opts.capacity,
      measureConnections: opts.tcpPort !== undefined ? () => countEstablished(opts.tcpPort!) : undefined,
      hostCpu: extras.hostCpu ?? (() => this.cpu.utilization),
      seatsInUse: () => this.seats.used(),
      seats: () => this.seats.loadSeats(),
    });
  }

  /** @internal */
  async start(): Promise<void> {
    const o = this.opts;
    // Keys first: a missing or malformed key file fails the start before any port is taken.
    const keys = o.keyring ?? (o.keyFile !== undefined ? loadKeyringFile(o.keyFile) : undefined);
    this.signingKey = o.signingKey ?? (o.signingKeyFile !== undefined ? loadPrivateKeyFile(o.signingKeyFile) : undefined);
    if (keys) {
      this.sealer = createSealer(new Keyring(keys), { replayWindowMs: o.limits.replayWindowMs });
      this.keysLoaded = keysFingerprint(keys);
    }
    // Addresses next (an mDNS interface or a host not on this host): refused before anything is logged.
    if (o.mdns) await checkLocalAddress('mdns.interface', o.mdns.interface);
    this.port = await this.http.listen(o.port, o.bind);
    if (!keys) {
      this.log.warn('cluster is open: agent-to-agent frames are not authenticated or encrypted; anyone who reaches this port can join (set keyFile, see `peerlb keygen`)');
      if (this.signingKey)
        this.log.warn(
          'signing key without a keyring: anyone can join this cluster, and this agent relays the servers of agents without the signing key unsigned (clients that verify reject them); forged load and health of signed servers are not detected (set keyFile)',
        );
    }
    const hostInUrl = o.host.includes(':') ? `[${o.host}]` : o.host;
    this.url = `${this.http.tls ? 'wss' : 'ws'}://${hostInUrl}:${this.port}`;
    const l = o.limits;
    this.transport = createWsTransport({
      addr: this.url,
      maxFrameBytes: l.maxFrameBytes,
      maxPendingBytes: l.maxPendingBytes,
      seal: this.sealer,
      clock: this.clock,
      slowPeerMs: l.slowPeerMs,
      authFailures: { max: l.authFailures, windowMs: l.authFailureWindowMs, blockMs: l.authBlockMs },
      onWarning: peerWarnings({
        log: this.log,
        seeds: () => this.opts.join,
        isLiveMember: (addr) => this.membership?.members().some((m) => m.addr === addr && (m.status === 'alive' || m.status === 'suspect')) ?? false,
      }),
      maxPeers: l.maxGossipSockets,
      maxPeersPerAddress: l.maxGossipSocketsPerAddress,
      dialTls: () => ({ ca: trustedCas(this.tlsMaterial) }),
    });
    mountRoutes(this.http, {
      keyring: (req, res) => handleKeyringRequest(req, res, this.sealer?.keyring, this.log),
      gossip: (req, socket, head) => this.transport.handleUpgrade(req, socket, head),
      watch: this.originGate.wrap('watch', watchUpgrade(this.subs)),
      members: (req, res) => this.membersEp.handle(req, res),
      servers: (req, res) => this.serversEp.servers(req, res),
      pick: (req, res) => this.serversEp.pick(req, res),
      load: (req, res) => handleLoadRequest(req, res, (r) => this.report(r)),
      events: this.originGate.wrap('events', (req, socket, head) => this.feed.handleUpgrade(req, socket, head)),
      dashboard: serveDashboard,
      favicon: serveFavicon,
      metrics: metricsHandler(this.metrics),
      health: healthHandler(this.node, () => this.currentHealth()),
      seats: (req, res) => this.seatsEp.handle(req, res),
    });

    this.membership = new Membership({
      node: o.node,
      meta: this.meta(),
      transport: this.transport,
      clock: this.extras.clock,
      random: this.extras.random,
      config: GOSSIP_PROFILES[o.gossipProfile],
      log: this.log,
      maxFrameBytes: l.maxFrameBytes,
      maxMembers: l.maxMembers,
      signMeta: this.metaSigner(),
    });
    this.membership.on('change', (m: Member, prev: string | undefined) => this.onMember(m, prev));
    this.membership.on('reap', (m: Member) => this.lastHealth.delete(m.node));
    this.feed.event({ at: Date.now(), kind: 'join', node: o.node, detail: 'this agent started' });
    this.membership.on('rtt', ({ ms, phase }) => this.metrics.probeRtt.observe({ kind: phase === 'direct' ? 'gossip' : 'gossip_indirect' }, ms / 1000));
    this.membership.on('load', (m: Member) => {
      this.heardAt.set(m.node, this.clock.now());
      this.membersEp.changed();
      this.serversEp.changed(m.meta.service);
      this.subs.upsert(this.watchRecord(m));
      this.dnsView = undefined;
    });

    let loadSource: string | undefined;
    this.tracker.on('publish', (load: LoadReport) => {
      this.membersEp.changed();
      // The source travels with the figure (gossip, /v1/members, /v1/watch): every agent can say what it is.
      const source = this.tracker.utilizationSource;
      this.membership.setLoad(source ? { ...load, source } : load);
      // The member info's loadSource (/v1/events) follows it: tell the dashboards when it changes.
      if (this.tracker.utilizationSource !== loadSource) {
        loadSource = this.tracker.utilizationSource;
        this.feed.member(this.info(this.membership.self()));
      }
      this.heardAt.set(this.node, this.clock.now());
      this.serversEp.changed(this.opts.service);
      this.subs.upsert(this.watchRecord(this.membership.self()));
      this.dnsView = undefined;
      this.mdns?.update(this.announceInfo());
    });
    this.tracker.start();

    this.cpu.start();
    const hc = healthCheckFor(o);
    if (hc) {
      // The checker resolves the check (its timeout and rise/fall, from the same defaults as the
      // option schema); the first probe runs with what it resolved.
      const probeOnly = new HealthChecker(hc.check, { ...hc.opts, clock: this.clock });
      const c = probeOnly.check;
      // One probe before announcing, so the first state others see is a measured one (a server
      // that is not up yet is announced unhealthy and takes no picks until it passes `rise` checks).
      const first =
        c.type === 'tcp'
          ? await probeTcp(c, { clock: this.clock })
          : c.type === 'udp'
            ? await probeUdp(c, { clock: this.clock })
            : { ok: true, reason: c.type === 'ttl' ? `ttl check: healthy while reports come within ${c.ttlMs} ms` : 'no check configured' };
      this.serverHealth = first.ok ? 'healthy' : 'unhealthy';
      this.health = new HealthChecker(hc.check, { ...hc.opts, initial: this.serverHealth, clock: this.clock });
      // The first state too, with its reason and the check as it runs (later states are logged as changes).
      const check = { ...this.health.check, intervalMs: this.health.intervalMs, rise: this.health.rise, fall: this.health.fall };
      this.log.info({ health: this.serverHealth, reason: first.reason, check }, 'server health (first check)');
      this.health.on('change', (state: 'healthy' | 'unhealthy', detail: { reason: string }) => {
        this.serverHealth = state;
        this.log.info({ health: state, reason: detail.reason }, 'server health changed');
        this.feed.event({ at: Date.now(), kind: state, node: this.node, detail: detail.reason });
        this.publishMeta();
      });
      let cannotTell = 0;
      this.health.on('result', (r) => {
        this.metrics.healthChecks.inc({ result: r.inconclusive ? 'inconclusive' : r.ok ? 'ok' : 'fail' });
        // The agent's own file descriptors or buffers ran out: not the server's fault. Logged when
        // it starts (and every 100th probe while it lasts) and when probes work again.
        if (r.inconclusive) {
          if (cannotTell++ % 100 === 0) this.log.warn({ health: this.serverHealth, reason: r.reason, probes: cannotTell }, 'health check cannot tell: keeping the last state');
        } else if (cannotTell > 0) {
          this.log.info({ probes: cannotTell, reason: r.reason }, 'health check works again');
          cannotTell = 0;
        }
        if (r.rttMs !== undefined) this.metrics.probeRtt.observe({ kind: 'health' }, r.rttMs / 1000);
      });
      this.health.start();
    }
    this.membership.setMeta(this.meta());

    this.membership.start(o.join);
    if (o.mdns) {
      this.mdns = new MdnsAnnouncer({
        info: this.announceInfo(),
        interface: o.mdns.interface,
        clock: this.extras.clock,
        port: o.mdns.port,
        sign: this.txtSigner(),
      });
      await this.mdns.start();
    }
    if (o.dns) await this.startDns(o.dns);
    // The effective configuration (after defaults < file < env < flags), secrets masked.
    const masked = (v: unknown) => (v === undefined ? undefined : '(set)');
    this.log.info({ config: { ...o, token: masked(o.token), keyring: masked(o.keyring), signingKey: masked(o.signingKey), tls: tlsForLog(o.tls) } }, 'configuration');
    this.log.info({ url: this.url, service: o.service, udp: o.udpPort, tcp: o.tcpPort, ws: o.wsPort === undefined ? undefined : `${o.wsTls ? 'wss' : 'ws'} ${o.wsPort}${o.wsPath}`, join: o.join, mdns: o.mdns || undefined, dns: this.dns ? `${o.dns!.bind}:${this.dnsPort} ${o.dns!.domain}` : undefined, dnsPort: this.dns ? this.dnsPort : undefined }, 'agent started');
  }

  /**
   * The DNS interface, loaded only now (issue 18: an agent without --dns-port never loads it).
   * Each query reads the view as it is, so a drain or a death is in the next answer.
   */
  private async startDns(d: NonNullable<ResolvedAgentOptions['dns']>): Promise<void> {
    const [{ startDnsServer }, { chooseServers }, { defaultRandom }] = await Promise.all([import('./dns/server.js'), import('./choose.js'), import('../sdk/core/random.js')]);
    const random = this.extras.random ?? defaultRandom();
    this.dns = await startDnsServer({
      port: d.port,
      bind: d.bind,
      config: () => this.opts.dns ?? d,
      records: () => this.dnsRecords(),
      // The SDK's load-aware choice (p2c order over the healthy servers), per query.
      choose: (records, n) => chooseServers(records, n, { random }),
      registry: this.metrics.registry,
      log: this.log,
      clock: this.clock,
      limits: { rate: this.opts.limits.dnsRate, burst: this.opts.limits.dnsBurst },
    });
    this.dnsPort = this.dns.port;
  }

  /**
   * The live records DNS answers from, built once per change of the view (any member, health or
   * load change clears it) and at most DNS_VIEW_MAX_AGE_MS old, so the load ages it carries (which
   * the chooser weighs) stay current.
   */
  private dnsRecords(): readonly ServerRecord[] {
    if (this.stopped) return [];
    const now = this.clock.now();
    if (!this.dnsView || now - this.dnsView.at > DNS_VIEW_MAX_AGE_MS)
      this.dnsView = { at: now, records: this.membership.members().filter(isLive).map((m) => this.watchRecord(m)) };
    return this.dnsView.records;
  }

  /** DNS counters (tests): queries, malformed, slipped, dropped, truncated, TCP refusals. */
  dnsStats(): DnsServer['counters'] | undefined {
    return this.dns && { ...this.dns.counters };
  }

  /** Gossip traffic for /metrics: the transport's frame and byte counts, drops by reason. */
  private gossipCounters(): { framesIn: number; framesOut: number; bytesIn: number; bytesOut: number; dropped: Record<string, number> } {
    if (!this.transport) return { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, dropped: {} };
    const c = this.transport.counters();
    const m = this.membership?.stats();
    return {
      framesIn: c.framesIn,
      framesOut: c.framesOut,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      dropped: {
        too_large: c.dropped.tooLarge,
        slow_peer: c.dropped.slow,
        auth: c.dropped.unsealed,
        replay: c.dropped.replay,
        rate_limited: c.inboundRefused,
        closed: c.dropped.closed,
        bad_address: c.dropped.badAddr,
        not_binary: c.dropped.notBinary,
        decode: m?.decodeErrors ?? 0,
      },
    };
  }

  currentHealth(): Health {
    return this.draining ? 'draining' : this.serverHealth;
  }

  private meta(): MemberMeta {
    return memberMeta(this.opts, this.currentHealth());
  }

  private publishMeta(): void {
    if (this.stopped) return;
    this.membership.setMeta(this.meta());
    this.subs.upsert(this.watchRecord(this.membership.self()));
    this.dnsView = undefined;
    this.mdns?.update(this.announceInfo());
    this.emit('health', this.currentHealth());
  }

  /** Signs this agent's own member record (only its own: other members' travel with their own agent's signature). */
  private metaSigner(): ((meta: MemberMeta, addr: string, incarnation: number) => string) | undefined {
    const key = this.signingKey;
    return key ? (meta, addr, incarnation) => signFields({ ...meta, agent: addr }, incarnation, key) : undefined;
  }

  private txtSigner(): TxtSigner | undefined {
    const key = this.signingKey;
    return key ? (data) => signBytes(data, key) : undefined;
  }

  private announceInfo(o: ResolvedAgentOptions = this.opts): AnnounceInfo {
    return announceInfo(o, this.port, this.currentHealth(), this.tracker.current());
  }

  /** A /v1/watch record of `m` (records.ts: serverRecord). */
  private watchRecord(m: Member): ServerRecord {
    return serverRecord(m, this.heardAt.get(m.node), this.clock.now());
  }

  /** What the caps refused or closed, by endpoint and reason (for /metrics and tests). */
  admissionCounters(): { open: number; max: number; watchPendingBytes: number; refused: Record<string, number> } {
    const h = this.http.counters;
    const hc = this.http.connections();
    const w = this.subs.counters;
    const e = this.feed.counters;
    const g = this.transport?.counters();
    return {
      open: hc.open,
      max: hc.max,
      watchPendingBytes: this.subs.pendingBytes(),
      refused: {
        'http:address': h.refusedAddress,
        'http:total': h.refusedTotal,
        'http:evicted': hc.evicted,
        'http:idle_timeout': h.idleClosed,
        'http:plain_on_tls': h.plainOnTls,
        'watch:origin': this.originGate.refused.watch ?? 0,
        'events:origin': this.originGate.refused.events ?? 0,
        'watch:rate': w.rateLimited,
        'watch:address': w.addressRefused,
        'watch:evicted': w.evicted,
        'watch:hello_timeout': w.helloTimeouts,
        'watch:pending_budget': w.budgetCutoffs,
        'watch:slow': w.slowCutoffs,
        'events:address': e.addressRefused,
        'events:evicted': e.evicted,
        'events:ping_timeout': e.pingTimeouts,
        'gossip:address': g?.inboundAddressRefused ?? 0,
        'gossip:evicted': g?.inboundEvicted ?? 0,
        'gossip:first_frame_timeout': g?.firstFrameTimeouts ?? 0,
      },
    };
  }

  /** /v1/members: answers built and requests served. */
  membersStats(): { builds: number; requests: number } {
    return { ...this.membersEp.counters };
  }

  /** /v1/watch snapshot cache: snapshots assembled and served, records encoded for them. */
  watchStats(): { subscribers: number; waiting: number; pendingBytes: number; snapshot: ReturnType<Subscriptions['snapshotCounters']>; counters: Subscriptions['counters'] } {
    return { subscribers: this.subs.size, waiting: this.subs.waitingForHello, pendingBytes: this.subs.pendingBytes(), snapshot: this.subs.snapshotCounters(), counters: { ...this.subs.counters } };
  }

  /**
   * Gossip security and limit counters: the transport's (frames in/out, drops by reason, sockets
   * cut off or refused) and the sealer's (sealed, opened, auth failures, replays).
   */
  gossipStats(): { transport: ReturnType<Agent['transport']['counters']>; sealer: ReturnType<Sealer['counters']> | undefined; keys: string[]; decodeErrors: number; membersRefused: number } {
    const m = this.membership.stats();
    return { transport: this.transport.counters(), sealer: this.sealer?.counters(), keys: this.sealer?.keyring.ids() ?? [], decodeErrors: m.decodeErrors, membersRefused: m.membersRefused };
  }

  private onMember(m: Member, prev: string | undefined): void {
    this.dnsView = undefined;
    this.heardAt.set(m.node, this.clock.now());
    this.membersEp.changed();
    this.serversEp.changed(m.meta.service);
    if (m.node !== this.node) this.log.info({ member: m.node, status: m.status, previous: prev, incarnation: m.incarnation }, 'member changed');
    if (m.status === 'dead' || m.status === 'left') this.subs.remove(m.node, m.meta.service, m.status);
    else this.subs.upsert(this.watchRecord(m));
    if (prev === undefined || m.status === 'dead' || m.status === 'left' || (prev !== 'alive' && prev !== 'suspect')) this.subs.agentsChanged(() => this.agentUrls());
    const info = this.info(m);
    this.feed.member(info);
    const prevHealth = this.lastHealth.get(m.node);
    this.lastHealth.set(m.node, m.meta.health);
    const at = Date.now();
    if (prev !== m.status) this.feed.event({ at, kind: prev === undefined ? 'join' : m.status === 'left' ? 'leave' : m.status, node: m.node, detail: prev ? `was ${prev}` : undefined });
    // Health changes of others (this agent's own healthy/unhealthy come from its checker, with the reason).
    if (prevHealth !== undefined && prevHealth !== m.meta.health && (m.meta.health === 'draining' || m.node !== this.node))
      this.feed.event({ at, kind: m.meta.health === 'draining' ? 'drain' : m.meta.health, node: m.node });
    this.emit('member', info, prev);
  }

  private agentUrls(): string[] {
    return agentUrls(this.membership.members());
  }

  private snapshot(): { servers: ServerRecord[]; agents: string[] } {
    return { servers: this.membership.members().filter(isLive).map((m) => this.watchRecord(m)), agents: this.agentUrls() };
  }

  private info(m: Member): MemberInfo {
    const source = m.node === this.node ? this.tracker.utilizationSource : m.load?.source;
    return memberInfo(m, this.heardAt.get(m.node), this.clock.now(), source);
  }

  /** Every member this agent knows, including itself. */
  members(): MemberInfo[] {
    return this.membership.members().map((m) => this.info(m));
  }

  /** The server's own load report, from the same process. */
  report(load: { sessions?: number; connections?: number; utilization?: number }): void {
    this.tracker.report(load);
    this.health?.reported();
  }

  /**
   * Drain: publish `draining` at once (clients stop picking this server), wait (bounded by
   * drainTimeoutMs) for the server's connections and reported sessions to finish, then leave.
   */
  async drain(): Promise<{ drained: boolean; remaining: number; waitedMs: number }> {
    if (this.stopped) return { drained: true, remaining: 0, waitedMs: 0 };
    if (!this.draining) {
      this.draining = true;
      this.log.info('draining');
      this.publishMeta();
    }
    const tcpPort = this.opts.tcpPort;
    // What the wait is for: established connections on the server's port, and the sessions the
    // server reported while its reports are fresh (a figure it stopped renewing holds nothing up).
    const seen = { connections: 0, sessions: 0 };
    const waitedFor = new Set<string>();
    const result = await waitForDrain({
      count: async () => {
        const conns = tcpPort !== undefined ? await countEstablished(tcpPort) : 0;
        const sessions = this.tracker.freshSessions() ?? 0;
        seen.connections = conns;
        seen.sessions = sessions;
        if (conns > 0) waitedFor.add('connections');
        if (sessions > 0) waitedFor.add('reported sessions');
        return Math.max(conns, sessions);
      },
      timeoutMs: this.opts.drainTimeoutMs,
      clock: this.clock,
    });
    const sessionsReportAgeMs = this.tracker.reportAgeMs();
    this.log.info(
      {
        ...result,
        waitedFor: waitedFor.size ? [...waitedFor] : ['nothing'],
        connections: tcpPort !== undefined ? seen.connections : undefined,
        sessions: seen.sessions,
        sessionsReport: this.tracker.reportState(),
        sessionsReportAgeMs: sessionsReportAgeMs === undefined ? undefined : Math.round(sessionsReportAgeMs),
      },
      'drain finished',
    );
    return result;
  }

  /**
   * Apply a new configuration without dropping membership (SIGHUP in the CLI): weight and zone are
   * published at once (one incarnation step, like any meta change). Other options that differ are
   * named in the log as needing a restart. A bad configuration throws before anything changes:
   * everything that can refuse it (options, key file, the mDNS records it makes) is checked first.
   * The one place a reload goes through: extend it for further reloadable options.
   */
  reload(input: AgentOptions): { changed: string[]; needsRestart: string[] } {
    const next = resolveAgentOptions(input);
    // The keyring is reloaded too (key rotation: install → use → remove, by editing the key file).
    // Read before anything changes, so a missing or malformed file refuses the whole reload.
    const keys = this.sealer ? (next.keyFile !== undefined ? loadKeyringFile(next.keyFile) : next.keyring) : undefined;
    const { opts, changed, needsRestart } = planReload(this.opts, next, keys !== undefined);
    // The TLS files again (a renewed certificate at the same path), read and checked before anything changes.
    const tlsNext = opts.tls && this.http.tls ? loadTls(opts.tls) : undefined;
    // The records the announcer would send, built and thrown away: a zone the TXT data cannot
    // carry must refuse the reload here, not after the new meta has been gossiped.
    if (this.mdns) buildRecords(this.announceInfo(opts), { sign: this.txtSigner() });
    // From here on nothing throws for a reason the configuration could fix.
    if (keys && this.sealer) {
      const keyring = this.sealer.keyring;
      const fingerprint = keysFingerprint(keys);
      if (fingerprint === this.keysLoaded) {
        // Same keys as last loaded: what POST /v1/keyring did since (a rotation) stays.
        this.log.info({ keys: keyring.ids() }, 'keyring kept: the key file (or keyring option) is unchanged since it was last loaded');
      } else {
        const before = keyring.ids().join();
        keyring.replace(keys);
        this.keysLoaded = fingerprint;
        if (keyring.ids().join() !== before) changed.push('keyring');
        this.log.info({ keys: keyring.ids() }, 'keyring reloaded (primary first)');
      }
    }
    if (tlsNext) {
      const before = this.tlsMaterial;
      this.http.setTls(tlsNext);
      this.tlsMaterial = tlsNext;
      if (!before || !before.cert.equals(tlsNext.cert) || !before.key.equals(tlsNext.key) || !sameBytes(before.ca, tlsNext.ca)) {
        changed.push('tls');
        this.log.info('TLS certificate reloaded: new connections get the new one');
      }
    }
    if (JSON.stringify(opts.allowOrigin) !== JSON.stringify(this.opts.allowOrigin)) changed.push('allowOrigin');
    this.allowedOrigins = opts.allowOrigin && new Set(opts.allowOrigin);
    this.opts = opts;
    // Only what members see of us takes an incarnation step: a new keyring is not news to anyone
    // (and a step makes receivers take any load seq as news, briefly letting an older report in).
    if (changed.includes('weight') || changed.includes('zone')) this.publishMeta();
    if (needsRestart.length) this.log.warn({ needsRestart }, 'configuration changes that take a restart were not applied');
    this.log.info({ changed, weight: next.weight, zone: next.zone }, 'configuration reloaded');
    return { changed, needsRestart };
  }

  /** Leave the cluster (others see `left`), send mDNS goodbyes, and close every socket. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.tracker.stop();
    this.cpu.stop();
    this.health?.stop();
    try {
      await this.membership?.leave(1000);
    } catch (err) {
      this.log.warn({ err }, 'leave failed');
    }
    await this.mdns?.stop();
    await this.dns?.close();
    this.subs.close();
    this.serversEp.close();
    this.feed.close();
    this.metrics.close();
    await this.transport?.close();
    await this.http.close();
    if (this.port) this.log.info('agent stopped'); // not after a start that failed before listening
  }
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}

/** The keys' ids in order (as the keyring names them): whether a reload brings other keys than the last load. */
function keysFingerprint(keys: readonly Uint8Array[]): string {
  return keys.map(keyIdHex).join(',');
}

/** Start an agent: validate options (a BadOptionError names the wrong one), listen, join, announce. */
export async function startAgent(options: AgentOptions, extras: StartAgentExtras = {}): Promise<Agent> {
  const opts = resolveAgentOptions(options);
  const agent = new Agent(opts, extras);
  try {
    await agent.start();
  } catch (err) {
    await agent.stop().catch(() => {});
    throw err;
  }
  return agent;
}
