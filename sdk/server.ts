import type { Health, LoadReport, ServerRecord } from './protocol.js';
import { estimateLoad } from './timing.js';

/** What `cluster.pick()` returns and events carry: one server, read-only to users. */
export interface Server {
  readonly id: string;
  readonly host: string;
  readonly udpPort: number | undefined;
  readonly tcpPort: number | undefined;
  readonly weight: number;
  readonly zone: string | undefined;
  readonly health: Health;
}

/** One row of `cluster.servers()`: a snapshot of everything known about a server. */
export interface ServerView extends Server {
  /** The server's last report, with its age as seen by this client. */
  load: { connections: number; sessions: number; utilization: number; seq: number; ageMs: number } | undefined;
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
    /** The load figure pickers use: report blended with local counts, per unit of weight. */
    estimate: number;
    /** Weight after slow start (equals weight when not ramping). */
    effectiveWeight: number;
  };
}

/**
 * The balancer's mutable state for one server. Pickers read these fields directly on the hot path
 * (no getters, no allocation); only the balancer writes them.
 */
export class ServerState implements Server {
  id: string;
  host: string;
  udpPort: number | undefined;
  tcpPort: number | undefined;
  weight: number;
  zone: string | undefined;
  health: Health;
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
  activeAtReport = 0;
  picksSinceReport = 0;
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
  /** Scratch for pickers (smooth WRR's current weight). */
  current = 0;
  /** Index in the balancer's list of all servers. */
  index = 0;

  constructor(rec: ServerRecord) {
    this.id = rec.id;
    this.host = rec.host;
    this.udpPort = rec.udpPort;
    this.tcpPort = rec.tcpPort;
    this.weight = rec.weight;
    this.zone = rec.zone;
    this.health = rec.health;
    this.agent = rec.agent;
    this.effWeight = rec.weight;
  }

  /** Estimated load (active units) — kept in sync by the balancer, read by pickers. */
  estimate = 0;

  /**
   * Recompute `estimate` after any change of report, weight or local counts: the report, plus this
   * client's connections and picks since it, fading to this client's own open connections as the
   * report ages (see `estimateLoad`).
   */
  refreshEstimate(): void {
    const since = this.active - this.activeAtReport + this.picksSinceReport;
    this.estimate = estimateLoad(this.reportedActive, since, this.active, this.reportW);
  }
}
