/**
 * The balancer: a façade over its parts, the API the cluster and the Node adapters use.
 *
 *   discovery records ─▶ view (view.ts) ─▶ load estimate (load-estimate.ts), slow start (slow-start.ts)
 *                                      ─▶ choice set (choice-set.ts: eligible, panic, zone spill; pure)
 *                                      ─▶ picker publication (publication.ts) ─▶ pick()
 *   pick ─▶ lease (lease.ts) ─▶ connected / failed / closed ─▶ counts, RTT, outlier ejection (outlier.ts)
 *
 * It owns the batching (one rebuild per snapshot or burst of frames), the tick (reports age,
 * ejections end, slow start advances, zone spill is re-decided) and the events.
 */
import { Emitter } from '../emitter.js';
import { every, type Clock } from '../clock.js';
import type { Random } from '../random.js';
import type { ResolvedOptions } from '../options.js';
import { LIMITS, type ServerRecord } from '../protocol.js';
import { PeerlbError } from '../errors.js';
import type { ServerState, ServerView } from '../server.js';
import type { PickerContext } from '../pickers/index.js';
import type { DiscoverySink } from '../discovery/source.js';
import { View } from './view.js';
import { LoadEstimate, closed, countPick, opened, recordRtt } from './load-estimate.js';
import { outlierTick, recordFailure, recordSuccess } from './outlier.js';
import { isRamping, refreshWeight, startRamp } from './slow-start.js';
import { choiceSet, preferLocalZone } from './choice-set.js';
import { Publication } from './publication.js';
import { Deadlines, Lease, type LeaseOptions, type LeaseOwner } from './lease.js';

/** How often the balancer ages reports, ends ejections and advances slow start. */
export const TICK_MS = 100;

export type BalancerEvents = {
  /** The set of servers or their health/weight/zone changed (coalesced per microtask). */
  change: [];
  eject: [server: ServerState, info: { until: number; consecutiveFailures: number; level: number }];
  recover: [server: ServerState];
  panic: [active: boolean];
  error: [err: Error];
};

/**
 * Owns the view (one ServerState per server) and publishes a new picker whenever the choice set
 * changes: servers added or removed, health, ejection, zone spill, panic (grpc-js's balancer /
 * picker split). Discovery sources feed it through the DiscoverySink methods.
 */
export class Balancer extends Emitter<BalancerEvents> implements DiscoverySink, LeaseOwner {
  private readonly servers = new View();
  private readonly load: LoadEstimate;
  private readonly published: Publication;
  /** Connect deadlines of this balancer's leases, on its clock. */
  readonly deadlines: Deadlines;
  private stopTick: () => void;
  private changePending = false;
  /**
   * The set changed during a batch (a snapshot, or a burst of frames under `hold`) and the picker
   * is not rebuilt yet: it is, once, at the end of the batch or before the next pick or read. One
   * rebuild per server of a 10,000-server snapshot was O(n²): 1.6 s, past the heartbeat timeout.
   */
  private dirty = false;
  private holding = false;
  private resetting = false;
  private seeded = false;
  private ramping = false;
  /** True while picks go to every server because too few are eligible. */
  panic = false;
  /** True while zone preference is on and the local zone takes all picks. */
  zoneLocal = false;

  constructor(
    readonly opts: ResolvedOptions,
    readonly clock: Clock,
    readonly random: Random,
  ) {
    super();
    const ctx: PickerContext = { random, hashBalanceFactor: opts.hashBalanceFactor };
    this.load = new LoadEstimate(opts);
    this.published = new Publication(opts.strategy, ctx);
    this.deadlines = new Deadlines(clock);
    this.stopTick = every(clock, TICK_MS, () => this.tick());
  }

  /** Stops the tick. Pending connect deadlines still expire (their sweep stops once none is left). */
  close(): void {
    this.stopTick();
  }

  /** Bumped on every rebuild; lets the UDP wrapper know its address map is stale. */
  get version(): number {
    return this.published.version;
  }

  // ---------------------------------------------------------------- discovery sink

  upsert(rec: ServerRecord): void {
    const now = this.clock.now();
    const { s, result, turnedHealthy } = this.servers.upsert(rec);
    if (!s) {
      this.refuse(rec.id);
      return;
    }
    if ((result === 'added' && this.seeded) || turnedHealthy) startRamp(s, now, this.opts);
    if (rec.load) this.load.report(s, rec.load, now);
    refreshWeight(s, now, this.opts);
    s.refreshEstimate();
    if (result === 'same') this.changed();
    else this.structural();
  }

  remove(id: string): void {
    if (this.servers.remove(id)) this.structural();
  }

  reset(records: ServerRecord[]): void {
    const over = records.length - LIMITS.maxServers;
    const refused = over > 0 ? records[LIMITS.maxServers]!.id : undefined;
    if (over > 0) records = records.slice(0, LIMITS.maxServers);
    const keep = new Set<string>();
    for (const r of records) keep.add(r.id);
    const removed = this.servers.retain(keep);
    // After the removals: a view below the cap before them must not clear this refusal, or every
    // oversized snapshot (one per reconnect) would report again while the view stays full.
    if (refused !== undefined) this.refuse(refused, over);
    this.resetting = true;
    try {
      for (const r of records) this.upsert(r);
    } finally {
      this.resetting = false;
    }
    if (removed) this.dirty = true;
    if (!this.holding) this.flush();
    this.seeded = true;
  }

  /**
   * Changes from now to the end of this task are one batch: the choice set is rebuilt once, at its
   * end (or before a pick or read in between). A source calls it before applying frames that may
   * come in a burst (a watch's upserts and removes, several to a socket read).
   */
  hold(): void {
    if (this.holding) return;
    this.holding = true;
    queueMicrotask(() => {
      this.holding = false;
      this.flush();
    });
  }

  /** A new server over the cap on the view: not added; said once until the view is below the cap again. */
  private refuse(id: string, more = 1): void {
    if (!this.servers.refusal()) return;
    this.error(
      new PeerlbError('PEERLB_ERR_LIMIT', `the view holds the most servers a client keeps (${LIMITS.maxServers}): ${more === 1 ? `server "${id.slice(0, 100)}"` : `${more} servers`} not added`),
    );
  }

  /** The set of servers or their eligibility changed: rebuild now, or at the end of the batch. */
  private structural(): void {
    if (this.resetting || this.holding) this.dirty = true;
    else this.rebuild();
  }

  private flush(): void {
    if (this.dirty) this.rebuild();
  }

  error(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Servers present from the first snapshot do not slow-start; later ones do. */
  markSeeded(): void {
    this.seeded = true;
  }

  // ---------------------------------------------------------------- picking

  get size(): number {
    this.flush();
    return this.servers.all.length;
  }

  list(): readonly ServerState[] {
    this.flush();
    return this.servers.all;
  }

  get(id: string): ServerState | undefined {
    return this.servers.get(id);
  }

  /**
   * The hot path: a server for this pick, or undefined when none is known. `hash` is a key hash
   * (affinity through the hash ring) or -1. No I/O, no allocation, never throws.
   */
  pick(hash: number): ServerState | undefined {
    if (this.dirty) this.rebuild();
    return this.published.pick(hash);
  }

  /**
   * A pick for a datagram: as `pick`, among servers with a UDP port only. A TCP-only server in a
   * mixed view would otherwise take its share of datagrams, and every datagram of the keys that
   * hash to it, and drop them. When every candidate has a UDP port (the usual case) this is `pick`
   * itself; otherwise the UDP servers get pickers of their own, built once per rebuild. A key's
   * server is the same as `pick`'s whenever that one has a UDP port (ring points depend only on
   * each server's id and weight). No allocation per pick.
   */
  pickUdp(hash: number): ServerState | undefined {
    if (this.dirty) this.rebuild();
    return this.published.pickUdp(hash);
  }

  /** A pick for a WebSocket open: as `pickUdp`, among servers with a WebSocket endpoint (wsUrl). */
  pickWs(hash: number): ServerState | undefined {
    if (this.dirty) this.rebuild();
    return this.published.pickWs(hash);
  }

  /**
   * A pick that avoids servers already tried by this connect: ask the picker a few times, then
   * take the least loaded untried candidate, then any untried non-draining server.
   */
  pickExcluding(hash: number, tried: ReadonlySet<ServerState>): ServerState | undefined {
    this.flush();
    return this.published.pickExcluding(hash, tried);
  }

  // ---------------------------------------------------------------- outcomes

  /**
   * A connection to `s` is being opened: it counts as one (least-connections, p2c estimates) until
   * the lease ends, and its outcome flows back through the lease (see lease.ts).
   */
  lease(s: ServerState, o?: LeaseOptions): Lease {
    opened(s);
    return new Lease(s, this, o?.timeoutMs === undefined ? undefined : this.deadlines, o?.timeoutMs, o?.onTimeout, o?.penaltyMs);
  }

  /** @internal LeaseOwner: a lease ended. */
  released(s: ServerState): void {
    closed(s);
  }

  /** A unit of work the user runs against `s` themselves (counted until the next report). */
  countPick(s: ServerState): void {
    countPick(s);
  }

  /**
   * A connection to `s` opened (or is being opened) that the user holds: counts until
   * `connectionClosed` (Cluster.acquire / release). The SDK's own connects use `lease`.
   */
  connectionOpened(s: ServerState): void {
    opened(s);
  }

  connectionClosed(s: ServerState): void {
    closed(s);
  }

  /** Outcome of a request or connect: feeds EWMA latency and outlier ejection. */
  outcome(s: ServerState, ok: boolean, rttMs: number | undefined, penaltyMs = this.opts.connectTimeoutMs): void {
    const now = this.clock.now();
    recordRtt(s, ok ? rttMs : Math.max(penaltyMs, rttMs ?? 0), now, this.opts);
    if (ok) {
      recordSuccess(s);
      return;
    }
    this.flush();
    const ejection = recordFailure(s, this.servers.all, now, this.opts.outlier, this.servers.has(s.id));
    if (!ejection) return;
    this.rebuild();
    this.emit('eject', s, ejection);
  }

  // ---------------------------------------------------------------- time

  /** Age reports, end ejections, advance slow start, re-decide zone spill. Runs every TICK_MS. */
  tick(): void {
    this.flush();
    const now = this.clock.now();
    const o = this.opts;
    const all = this.servers.all;
    let rebuild = false;
    const recovered: ServerState[] = [];
    const scale = this.load.scale(all);
    for (const s of all) {
      this.load.age(s, now, scale);
      if (outlierTick(s, now, o.outlier)) {
        startRamp(s, now, o);
        recovered.push(s);
        rebuild = true;
      }
      refreshWeight(s, now, o);
      s.refreshEstimate();
    }
    this.load.recordHistory(all, now);
    if (this.ramping && o.strategy === 'weighted-random') rebuild = true;
    // Re-decide zone spill as the choice set would: never local in panic (comparing the zone rule
    // alone rebuilt, and emitted a change, on every tick of a panic).
    if (!rebuild && o.zone !== undefined && (!this.panic && preferLocalZone(all, o.zone, o.zoneAffinity, this.zoneLocal)) !== this.zoneLocal) rebuild = true;
    if (rebuild) this.rebuild();
    for (const s of recovered) this.emit('recover', s);
  }

  // ---------------------------------------------------------------- choice set

  /** Recompute the choice set (eligibility, panic, zone) and publish a new picker. */
  rebuild(): void {
    this.dirty = false;
    const all = this.servers.snapshot();
    this.ramping = all.some(isRamping);
    const set = choiceSet(all, this.opts, this.zoneLocal);
    this.zoneLocal = set.zoneLocal;
    this.published.publish(set.candidates, all);
    if (set.panic !== this.panic) {
      this.panic = set.panic;
      this.emit('panic', set.panic);
    }
    this.changed();
  }

  private changed(): void {
    if (this.changePending) return;
    this.changePending = true;
    queueMicrotask(() => {
      this.changePending = false;
      this.emit('change');
    });
  }

  // ---------------------------------------------------------------- views

  view(s: ServerState): ServerView {
    const now = this.clock.now();
    return {
      id: s.id,
      host: s.host,
      udpPort: s.udpPort,
      tcpPort: s.tcpPort,
      wsUrl: s.wsUrl,
      weight: s.weight,
      zone: s.zone,
      health: s.health,
      agent: s.agent,
      load: s.report
        ? {
            connections: s.report.connections,
            sessions: s.report.sessions,
            utilization: s.report.utilization,
            seq: s.report.seq,
            ageMs: Math.max(0, Math.round(now - s.reportAt)),
            ...(s.report.seats ? { seats: { capacity: s.report.seats.capacity, held: s.report.seats.held, claimed: s.report.seats.claimed } } : {}),
          }
        : undefined,
      local: {
        active: s.active,
        picks: s.picks,
        failures: s.failures,
        consecutiveFailures: s.consecutiveFailures,
        ejections: s.ejections,
        ejected: s.ejected,
        rttMs: s.rtt,
        estimate: s.estimate,
        expected: s.expected,
        effectiveWeight: s.effWeight,
      },
    };
  }

  views(): ServerView[] {
    this.flush();
    return this.servers.all.map((s) => this.view(s));
  }
}
