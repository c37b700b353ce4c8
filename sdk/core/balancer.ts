import { EventEmitter } from 'node:events';
import { every, type Clock } from './clock.js';
import type { Random } from './random.js';
import type { ResolvedOptions } from './options.js';
import { LIMITS, type ServerRecord } from './protocol.js';
import { PeerlbError } from './errors.js';
import { HISTORY, ServerState, type ServerView } from './server.js';
import { STRATEGIES, type Picker, type PickerContext } from './pickers/index.js';
import { EMPTY_PICKER } from './pickers/picker.js';
import { consistentHash } from './pickers/consistent-hash.js';
import { ejectionDuration, peakEwma, reportWeight, shareScale, slowStartFactor } from './timing.js';
import type { DiscoverySink } from './discovery/source.js';

/** How often the balancer ages reports, ends ejections and advances slow start. */
export const TICK_MS = 100;

export interface BalancerEvents {
  /** The set of servers or their health/weight/zone changed (coalesced per microtask). */
  change: [];
  eject: [server: ServerState, info: { until: number; consecutiveFailures: number; level: number }];
  recover: [server: ServerState];
  panic: [active: boolean];
  error: [err: Error];
}

/**
 * Owns the view (one ServerState per server) and publishes a new picker whenever the choice set
 * changes: servers added or removed, health, ejection, zone spill, panic (grpc-js's balancer /
 * picker split). Discovery sources feed it through the DiscoverySink methods.
 */
export class Balancer extends EventEmitter<BalancerEvents> implements DiscoverySink {
  private readonly byId = new Map<string, ServerState>();
  private all: ServerState[] = [];
  private candidates: ServerState[] = [];
  private picker: Picker = EMPTY_PICKER;
  private affinity: Picker | undefined;
  /** The choice set for datagrams (servers with a UDP port) and its pickers; built on the first UDP pick after a rebuild. */
  private udpSet: ServerState[] | undefined;
  private udpPicker: Picker | undefined;
  private udpAffinity: Picker | undefined;
  private readonly ctx: PickerContext;
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
  /** The view is at LIMITS.maxServers and a new server was refused (reported once until it is below again). */
  private full = false;
  private seeded = false;
  private ramping = false;
  /** Times of the ticks whose own counts each server keeps (a ring; see ServerState.history). */
  private readonly historyAt = new Float64Array(HISTORY);
  private historyNext = 0;
  private historyLen = 0;
  /** True while picks go to every server because too few are eligible. */
  panic = false;
  /** True while zone preference is on and the local zone takes all picks. */
  zoneLocal = false;
  /** Bumped on every rebuild; lets the UDP wrapper know its address map is stale. */
  version = 0;

  constructor(
    readonly opts: ResolvedOptions,
    readonly clock: Clock,
    readonly random: Random,
  ) {
    super();
    this.ctx = { random, hashBalanceFactor: opts.hashBalanceFactor };
    this.stopTick = every(clock, TICK_MS, () => this.tick());
  }

  close(): void {
    this.stopTick();
  }

  // ---------------------------------------------------------------- discovery sink

  upsert(rec: ServerRecord): void {
    const now = this.clock.now();
    let s = this.byId.get(rec.id);
    let structural = false;
    if (!s) {
      if (this.byId.size >= LIMITS.maxServers) {
        this.refuse(rec.id);
        return;
      }
      s = new ServerState(rec);
      if (this.seeded && this.opts.slowStartMs > 0) s.rampStart = now;
      this.byId.set(rec.id, s);
      structural = true;
    } else {
      if (s.host !== rec.host || s.udpPort !== rec.udpPort || s.tcpPort !== rec.tcpPort || s.weight !== rec.weight || s.zone !== rec.zone)
        structural = true;
      if (s.health !== rec.health) {
        structural = true;
        if (rec.health === 'healthy' && this.opts.slowStartMs > 0) s.rampStart = now;
      }
      s.host = rec.host;
      s.udpPort = rec.udpPort;
      s.tcpPort = rec.tcpPort;
      s.weight = rec.weight;
      s.zone = rec.zone;
      s.health = rec.health;
    }
    s.agent = rec.agent ?? s.agent;
    if (rec.load) {
      const prev = s.report;
      // Accept newer reports; also accept a lower seq once the last report is older than one
      // interval, so an agent that restarted (and counts from 0 again) is not ignored forever.
      if (!prev || rec.load.seq > prev.seq || now - s.reportAt > this.opts.reportIntervalMs) {
        if (!prev || rec.load.seq !== prev.seq) {
          s.report = rec.load;
          s.reportAt = now - rec.load.ageMs;
          s.reportedActive = Math.max(rec.load.connections, rec.load.sessions);
          // What this client held when the report was taken: the report already counts that, and
          // what it did since (until now) it does not.
          const slot = s.reportAt >= now ? -1 : this.historySlot(s.reportAt);
          const h = s.history;
          s.activeAtReport = slot < 0 ? s.active : h ? h[slot]! : 0;
          s.unitsAtReport = slot < 0 ? s.active + s.counted : h ? h[HISTORY + slot]! : 0;
          s.reportW = reportWeight(now - s.reportAt, this.opts.reportIntervalMs, this.opts.reportExpireIntervals);
        }
      }
    }
    this.refreshWeight(s, now);
    s.refreshEstimate();
    if (structural) this.structural();
    else this.changed();
  }

  remove(id: string): void {
    if (!this.byId.delete(id)) return;
    if (this.byId.size < LIMITS.maxServers) this.full = false;
    this.structural();
  }

  reset(records: ServerRecord[]): void {
    if (records.length > LIMITS.maxServers) {
      this.refuse(records[LIMITS.maxServers]!.id, records.length - LIMITS.maxServers);
      records = records.slice(0, LIMITS.maxServers);
    }
    const keep = new Set<string>();
    for (const r of records) keep.add(r.id);
    let removed = false;
    for (const id of [...this.byId.keys()])
      if (!keep.has(id)) {
        this.byId.delete(id);
        removed = true;
      }
    if (this.byId.size < LIMITS.maxServers) this.full = false;
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
    if (this.full) return;
    this.full = true;
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
    return this.all.length;
  }

  list(): readonly ServerState[] {
    this.flush();
    return this.all;
  }

  get(id: string): ServerState | undefined {
    return this.byId.get(id);
  }

  /**
   * The hot path: a server for this pick, or undefined when none is known. `hash` is a key hash
   * (affinity through the hash ring) or -1. No I/O, no allocation, never throws.
   */
  pick(hash: number): ServerState | undefined {
    if (this.dirty) this.rebuild();
    if (hash >= 0 && this.opts.strategy !== 'consistent-hash') {
      if (!this.affinity) this.affinity = consistentHash(this.candidates, this.ctx);
      return this.affinity.pick(hash);
    }
    return this.picker.pick(hash);
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
    const set = (this.udpSet ??= this.udpCandidates());
    if (set === this.candidates) return this.pick(hash);
    if (hash >= 0 && this.opts.strategy !== 'consistent-hash') return (this.udpAffinity ??= consistentHash(set, this.ctx)).pick(hash);
    return (this.udpPicker ??= STRATEGIES[this.opts.strategy](set, this.ctx)).pick(hash);
  }

  /**
   * The candidates with a UDP port. If none has one (the local zone's servers are TCP-only, say),
   * the UDP servers outside the choice set, as TCP failover does: eligible ones (of any zone) first,
   * then any not draining. Empty when no server has a UDP port.
   */
  private udpCandidates(): ServerState[] {
    const c = this.candidates;
    if (c.every((s) => s.udpPort !== undefined)) return c;
    const withUdp = c.filter((s) => s.udpPort !== undefined);
    if (withUdp.length > 0) return withUdp;
    const eligible = this.all.filter((s) => s.udpPort !== undefined && s.health === 'healthy' && !s.ejected);
    return eligible.length > 0 ? eligible : this.all.filter((s) => s.udpPort !== undefined && s.health !== 'draining');
  }

  /**
   * A pick that avoids servers already tried by this connect: ask the picker a few times, then
   * take the least loaded untried candidate, then any untried non-draining server.
   */
  pickExcluding(hash: number, tried: ReadonlySet<ServerState>): ServerState | undefined {
    this.flush();
    for (let i = 0; i < 4; i++) {
      const s = this.pick(i === 0 ? hash : -1);
      if (s && !tried.has(s)) return s;
      if (hash >= 0 && i === 0) continue;
    }
    let best: ServerState | undefined;
    for (const pool of [this.candidates, this.all]) {
      for (const s of pool) {
        if (tried.has(s) || s.health === 'draining') continue;
        if (!best || s.expected * best.effWeight < best.expected * s.effWeight) best = s;
      }
      if (best) return best;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- outcomes

  /** A unit of work the user runs against `s` themselves (counted until the next report). */
  countPick(s: ServerState): void {
    s.picks++;
    s.counted++;
    s.refreshEstimate();
  }

  /** A connection to `s` opened (or is being opened): counts until `connectionClosed`. */
  connectionOpened(s: ServerState): void {
    s.picks++;
    s.active++;
    s.refreshEstimate();
  }

  connectionClosed(s: ServerState): void {
    if (s.active > 0) s.active--;
    s.refreshEstimate();
  }

  /** Outcome of a request or connect: feeds EWMA latency and outlier ejection. */
  outcome(s: ServerState, ok: boolean, rttMs: number | undefined, penaltyMs = this.opts.connectTimeoutMs): void {
    const now = this.clock.now();
    const sample = ok ? rttMs : Math.max(penaltyMs, rttMs ?? 0);
    if (sample !== undefined && sample >= 0) {
      s.rtt = peakEwma(s.rtt, sample, now - s.rttAt, this.opts.ewmaDecayMs);
      s.rttAt = now;
    }
    if (ok) {
      s.consecutiveFailures = 0;
      return;
    }
    s.failures++;
    s.consecutiveFailures++;
    this.flush();
    const o = this.opts.outlier;
    if (s.ejected || s.consecutiveFailures < o.consecutiveFailures || !this.byId.has(s.id)) return;
    let ejectedNow = 0;
    for (const x of this.all) if (x.ejected) ejectedNow++;
    const allowed = o.maxEjectedShare === 0 ? 0 : Math.max(1, Math.floor(o.maxEjectedShare * this.all.length));
    if (ejectedNow >= allowed) return;
    s.ejected = true;
    s.ejectedUntil = now + ejectionDuration(s.ejectionLevel, o.baseEjectionMs, o.maxEjectionMs);
    const level = s.ejectionLevel;
    s.ejectionLevel++;
    s.ejections++;
    this.rebuild();
    this.emit('eject', s, { until: s.ejectedUntil, consecutiveFailures: s.consecutiveFailures, level });
  }

  // ---------------------------------------------------------------- time

  /** Age reports, end ejections, advance slow start, re-decide zone spill. Runs every TICK_MS. */
  tick(): void {
    this.flush();
    const now = this.clock.now();
    const o = this.opts;
    let rebuild = false;
    const recovered: ServerState[] = [];
    // This client's inverse share of the load, from the reports and what it held when they were taken.
    let reported = 0;
    let own = 0;
    for (const s of this.all)
      if (s.report) {
        reported += s.reportedActive;
        own += s.activeAtReport;
      }
    const scale = shareScale(reported, own);
    for (const s of this.all) {
      s.scale = scale;
      if (s.report) s.reportW = reportWeight(now - s.reportAt, o.reportIntervalMs, o.reportExpireIntervals);
      if (s.ejected && now >= s.ejectedUntil) {
        s.ejected = false;
        s.consecutiveFailures = 0;
        s.lastEjectionEnd = now;
        if (o.slowStartMs > 0) s.rampStart = now;
        recovered.push(s);
        rebuild = true;
      } else if (!s.ejected && s.ejectionLevel > 0 && now - s.lastEjectionEnd >= 2 * o.outlier.baseEjectionMs) {
        // Forget one level of backoff for every two base periods without an ejection (Envoy decrements likewise).
        s.ejectionLevel--;
        s.lastEjectionEnd = now;
      }
      this.refreshWeight(s, now);
      s.refreshEstimate();
    }
    this.recordHistory(now);
    if (this.ramping && this.opts.strategy === 'weighted-random') rebuild = true;
    if (!rebuild && this.opts.zone !== undefined && this.decideZone() !== this.zoneLocal) rebuild = true;
    if (rebuild) this.rebuild();
    for (const s of recovered) this.emit('recover', s);
  }

  /** Keep each server's own counts at this tick, for reports that arrive after the time they describe. */
  private recordHistory(now: number): void {
    const i = this.historyNext;
    this.historyAt[i] = now;
    for (const s of this.all) {
      let h = s.history;
      if (h === undefined) {
        if (s.active === 0 && s.counted === 0) continue;
        h = s.history = new Float64Array(2 * HISTORY);
      }
      h[i] = s.active;
      h[HISTORY + i] = s.active + s.counted;
    }
    this.historyNext = (i + 1) % HISTORY;
    if (this.historyLen < HISTORY) this.historyLen++;
  }

  /** The history slot of the last tick at or before `t` (the oldest kept if `t` is older), or -1 if none. */
  private historySlot(t: number): number {
    if (this.historyLen === 0) return -1;
    let slot = this.historyNext;
    for (let k = 0; k < this.historyLen; k++) {
      slot = slot === 0 ? HISTORY - 1 : slot - 1;
      if (this.historyAt[slot]! <= t) return slot;
    }
    return slot;
  }

  private refreshWeight(s: ServerState, now: number): void {
    if (s.rampStart === -Infinity) {
      s.effWeight = s.weight;
      return;
    }
    const f = slowStartFactor(now - s.rampStart, this.opts.slowStartMs, this.opts.slowStartAggression, this.opts.slowStartMinShare);
    if (f >= 1) s.rampStart = -Infinity;
    s.effWeight = s.weight * f;
  }

  // ---------------------------------------------------------------- choice set

  /** Recompute the choice set (eligibility, panic, zone) and publish a new picker. */
  rebuild(): void {
    this.dirty = false;
    this.all = [...this.byId.values()];
    let ramping = false;
    this.all.forEach((s, i) => {
      s.index = i;
      if (s.rampStart !== -Infinity) ramping = true;
    });
    this.ramping = ramping;
    const eligible = this.all.filter((s) => s.health === 'healthy' && !s.ejected);
    const panic = this.all.length > 0 && (eligible.length === 0 || eligible.length < this.opts.panicThreshold * this.all.length);
    let set = eligible;
    if (panic) {
      const notDraining = this.all.filter((s) => s.health !== 'draining');
      set = notDraining.length > 0 ? notDraining : this.all;
    }
    this.candidates = set;
    // decideZone reads the current zoneLocal for its hysteresis: decide before changing it.
    const local = !panic && this.opts.zone !== undefined && this.decideZone();
    this.zoneLocal = local;
    if (local) this.candidates = set.filter((s) => s.zone === this.opts.zone);
    this.picker = STRATEGIES[this.opts.strategy](this.candidates, this.ctx);
    this.affinity = undefined;
    this.udpSet = this.udpPicker = this.udpAffinity = undefined;
    this.version++;
    if (panic !== this.panic) {
      this.panic = panic;
      this.emit('panic', panic);
    }
    this.changed();
  }

  /**
   * Should picks stay in the local zone? Yes while enough local servers are eligible and the local
   * zone is not overloaded compared with the others. Once spilled, come back only when the load
   * ratio falls below 80 % of the threshold, so the decision does not flap every tick.
   */
  private decideZone(): boolean {
    const zone = this.opts.zone;
    const za = this.opts.zoneAffinity;
    let localAll = 0;
    let local = 0;
    let localLoad = 0;
    let localW = 0;
    let localUtil = 0;
    let localUtilN = 0;
    let otherLoad = 0;
    let otherW = 0;
    let others = 0;
    for (const s of this.all) {
      const ok = s.health === 'healthy' && !s.ejected;
      if (s.zone === zone) {
        localAll++;
        if (!ok) continue;
        local++;
        localLoad += s.estimate + 1;
        localW += s.effWeight;
        if (s.report && s.reportW > 0) {
          localUtil += s.report.utilization;
          localUtilN++;
        }
      } else if (ok) {
        others++;
        otherLoad += s.estimate + 1;
        otherW += s.effWeight;
      }
    }
    if (local === 0) return false;
    if (others === 0) return true;
    if (local / localAll < za.minHealthyShare) return false;
    const slack = this.zoneLocal ? 1 : 0.8;
    if (localUtilN > 0 && localUtil / localUtilN >= za.maxUtilization * (this.zoneLocal ? 1 : 0.9)) return false;
    return localLoad / localW <= za.maxLoadRatio * slack * (otherLoad / otherW);
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
    return this.all.map((s) => this.view(s));
  }
}
