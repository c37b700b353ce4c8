import { wsEndpointUrl, type Health, type LoadReport, type LoadSeats, type ServerRecord } from './protocol.js';
import { estimateLoad } from './timing.js';

/** Ticks of own-count history kept per server: 32 × 100 ms covers reports up to 3.2 s old. */
export const HISTORY = 32;

/**
 * A change journal: a ring of the servers whose picker-visible fields (`active`, `estimate`,
 * `expected`, `effWeight`) changed, in order. Heap pickers (least-connections, least-load, smooth
 * WRR's weights) read it on their next pick and re-sift only those servers, so a pick is O(log n)
 * instead of a scan; a picker more than `CHANGE_RING` entries behind rebuilds (O(n), at most once
 * per `CHANGE_RING` changes). One per view (each balancer gives its servers its own, so clusters in
 * one process don't read each other's changes); writing it is one store, with no registration for
 * pickers to forget to undo when the balancer drops them.
 */
export const CHANGE_RING = 4096;
export class ChangeJournal {
  seq = 0;
  readonly ring = new Array<ServerState | undefined>(CHANGE_RING).fill(undefined);
}
/** The journal of servers made outside a view (tests, tools). */
export const DEFAULT_JOURNAL = new ChangeJournal();

/** Record that `s`'s picker-visible fields changed (see `ChangeJournal`). */
export function touched(s: ServerState): void {
  const j = s.journal;
  j.ring[j.seq & (CHANGE_RING - 1)] = s;
  j.seq++;
}

/** What `cluster.pick()` returns and events carry: one server, read-only to users. */
export interface Server {
  readonly id: string;
  readonly host: string;
  readonly udpPort: number | undefined;
  readonly tcpPort: number | undefined;
  /**
   * `ws[s]://host:port/path` of the server's WebSocket endpoint (the record's wsPort, wsPath,
   * wsTls; an IPv6 host in brackets), when it has one: what a browser client opens.
   */
  wsUrl?: string;
  readonly weight: number;
  readonly zone: string | undefined;
  readonly health: Health;
}

/** One row of `cluster.servers()`: a snapshot of everything known about a server. */
export interface ServerView extends Server {
  /**
   * The server's last report, with its age as seen by this client. `seats`: its capacity, held and
   * claimed seats as of that report (issue 17), when its agent has a capacity.
   */
  load: { connections: number; sessions: number; utilization: number; seq: number; ageMs: number; seats?: LoadSeats } | undefined;
  agent: string | undefined;
  /** What this client knows locally. */
  local: {
    /** Connections this client opened to it and still holds. */
    active: number;
    /** Picks since the start. */
    picks: number;
    failures: number;
    consecutiveFailures: number;
    ejections: number;
    ejected: boolean;
    /** Peak-EWMA round-trip time of connects and reported outcomes, ms (0 = unknown). */
    rttMs: number;
    /**
     * The report plus this client's own changes since it (connections opened and closed, picks),
     * fading to this client's own connections as the report ages. Not per unit of weight. Zone
     * spill-over and bounded-load hashing use it.
     */
    estimate: number;
    /**
     * What p2c and least-load compare: like `estimate`, but this client's changes since the report
     * count for the whole cluster (× the client's inverse share of the load), because the other
     * clients acted on the same report too (see `shareScale` in timing.ts).
     */
    expected: number;
    /** Weight after slow start (equals weight when not ramping). */
    effectiveWeight: number;
  };
}

/** `ws[s]://host:port/path` of a record with a wsPort (an IPv6 host in brackets), else undefined. */
export function wsUrlOf(rec: Pick<ServerRecord, 'host' | 'wsPort' | 'wsPath' | 'wsTls'>): string | undefined {
  if (rec.wsPort === undefined) return undefined;
  const path = rec.wsPath === undefined ? '/' : rec.wsPath.startsWith('/') ? rec.wsPath : `/${rec.wsPath}`;
  // The one URL builder, shared with the agent's `--health ws` probe (protocol.ts).
  return wsEndpointUrl(rec.host, rec.wsPort, path, rec.wsTls);
}

/**
 * The balancer's mutable state for one server. Pickers read these fields directly on the hot path
 * (no getters, no allocation) and never write them: several pickers run over the same servers at
 * once (TCP and UDP, affinity), so a picker keeps its scratch (round-robin position, smooth WRR's
 * current weights) in its own closure. Only the balancer writes here.
 */
export class ServerState implements Server {
  id: string;
  host!: string; // these three set by assign(), from the constructor
  udpPort: number | undefined;
  tcpPort: number | undefined;
  /** The server's WebSocket endpoint (from wsPort, wsPath, wsTls), when it has one. */
  wsUrl: string | undefined;
  weight!: number;
  zone: string | undefined;
  health!: Health;
  agent: string | undefined;

  // --- the server's last report
  report: LoadReport | undefined;
  /** Local clock time the report describes (receipt time minus its age). */
  reportAt = 0;
  /** max(connections, sessions) of the last report. */
  reportedActive = 0;
  /** 0..1, recomputed on each tick from the report's age. */
  reportW = 0;

  // --- local counts
  active = 0;
  /** Picks counted as load (`countPick`), since the start. */
  counted = 0;
  /** This client's open connections when the report was taken (at `reportAt`). */
  activeAtReport = 0;
  /** `active + counted` when the report was taken: what this client changed since is the difference. */
  unitsAtReport = 0;
  /**
   * `active` (slots 0..HISTORY-1) and `active + counted` (HISTORY..2·HISTORY-1) at each of the
   * balancer's last ticks (a ring the balancer writes), so a report that arrives late is compared
   * with what this client held when it was taken, not when it arrived. Undefined while every tick
   * saw both at 0: a server this client never used costs no array (a 10,000-server snapshot
   * would otherwise allocate 10,000 of them).
   */
  history: Float64Array | undefined;
  /** This client's inverse share of the cluster's load (see `shareScale`); set by the balancer. */
  scale = 1;
  picks = 0;
  failures = 0;
  consecutiveFailures = 0;
  ejections = 0;
  ejectionLevel = 0;
  ejected = false;
  ejectedUntil = 0;
  lastEjectionEnd = 0;
  rtt = 0;
  rttAt = 0;

  /** When the current slow-start ramp began (join or recovery); -Infinity when none. */
  rampStart = -Infinity;
  /** weight × slow-start factor; pickers weigh by this. */
  effWeight: number;
  /** Index in the balancer's list of all servers. */
  index = 0;
  /** Where changes to this server are recorded for the pickers (its view's). */
  journal: ChangeJournal = DEFAULT_JOURNAL;

  constructor(rec: ServerRecord) {
    this.id = rec.id;
    this.assign(rec);
    this.effWeight = rec.weight;
  }

  /** Take a record's fields (a new record of this server); an agent URL is kept when the record has none. */
  assign(rec: ServerRecord): void {
    this.host = rec.host;
    this.udpPort = rec.udpPort;
    this.tcpPort = rec.tcpPort;
    this.wsUrl = wsUrlOf(rec);
    this.weight = rec.weight;
    this.zone = rec.zone;
    this.health = rec.health;
    this.agent = rec.agent ?? this.agent;
  }

  /** Estimated load (active units) from this client's own view — kept in sync by the balancer. */
  estimate = 0;
  /** Estimated load with this client's changes scaled to the cluster — what p2c and least-load compare. */
  expected = 0;

  /**
   * Recompute `estimate` and `expected` after any change of report, weight or local counts: the
   * report, plus this client's connections and picks since it (× `scale` for `expected`), fading
   * to this client's own open connections as the report ages (see `estimateLoad`).
   */
  refreshEstimate(): void {
    const since = this.active + this.counted - this.unitsAtReport;
    // What this client holds on its own: its open connections and the picks it counted since the
    // report (a pick counts as load until the next report, whatever that report's weight). With
    // connections alone, a pick raised a server's estimate only by the report's weight, so the
    // servers with older reports took most picks (p2c over idle servers: 663 of 1,000 to the one
    // whose report was 2.5 s old; test/integration/sdk/load.test.ts).
    const own = since + this.activeAtReport;
    this.estimate = estimateLoad(this.reportedActive, since, own, this.reportW);
    this.expected = estimateLoad(this.reportedActive, since, own, this.reportW, this.scale);
    touched(this);
  }
}
