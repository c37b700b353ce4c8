import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LoadReport } from '../sdk/core/protocol.js';

/** What the agent exposes to the metrics module; read at scrape time. */
export interface MetricsSource {
  members(): Array<{ status: string; health: string }>;
  gossip(): { framesIn: number; framesOut: number; bytesIn: number; bytesOut: number; dropped: Record<string, number> };
  subscribers(): number;
  /** The seat ledger (issue 17): capacity, held, claimed, and its counters. */
  seats?(): { capacity: number; held: number; claimed: number; grants: number; claims: number; releases: number; expiries: number; refusals: Record<string, number>; rateLimited: number };
  /** Sockets open on the agent's port and the cap in force, unsent watch bytes, and what the caps refused or closed by "endpoint:reason". */
  admission?(): { open: number; max: number; watchPendingBytes: number; refused: Record<string, number> };
  load(): LoadReport | undefined;
  health(): 'healthy' | 'unhealthy' | 'draining';
  /** The failure detector's own state: the probe timeout in use (ms) and Lifeguard's local health score. */
  detector(): { probeTimeoutMs: number; awareness: number } | undefined;
}

/** Sampling period of the event-loop delay monitor. */
const LOOP_DELAY_RESOLUTION_MS = 10;

const STATUSES = ['alive', 'suspect', 'dead', 'left'] as const;
const HEALTHS = ['healthy', 'unhealthy', 'draining'] as const;

/**
 * Prometheus metrics for `/metrics`, through prom-client with a registry of the agent's own (several
 * agents may share a process in tests). Gauges and counters are filled from the agent's state when
 * scraped; probe RTTs and health-check results are observed as they happen.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly probeRtt: Histogram<'kind'>;
  readonly healthChecks: Counter<'result'>;
  private readonly loopDelay: IntervalHistogram;

  constructor(src: MetricsSource, labels: { node: string; service: string }) {
    const registers = [this.registry];
    this.registry.setDefaultLabels(labels);
    new Gauge({
      name: 'peerlb_members',
      help: 'Members this agent knows, by gossip status.',
      labelNames: ['status'],
      registers,
      collect() {
        const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
        for (const m of src.members()) counts[m.status] = (counts[m.status] ?? 0) + 1;
        for (const s of STATUSES) this.set({ status: s }, counts[s]!);
      },
    });
    new Gauge({
      name: 'peerlb_members_health',
      help: 'Alive or suspect members by the health of their server.',
      labelNames: ['health'],
      registers,
      collect() {
        const counts: Record<string, number> = { healthy: 0, unhealthy: 0, draining: 0 };
        for (const m of src.members()) if (m.status === 'alive' || m.status === 'suspect') counts[m.health] = (counts[m.health] ?? 0) + 1;
        for (const h of HEALTHS) this.set({ health: h }, counts[h]!);
      },
    });
    const gossipCounter = (name: string, help: string, pick: (g: ReturnType<MetricsSource['gossip']>) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(pick(src.gossip()));
        },
      });
    gossipCounter('peerlb_gossip_frames_received_total', 'Gossip frames received from other agents.', (g) => g.framesIn);
    gossipCounter('peerlb_gossip_frames_sent_total', 'Gossip frames sent to other agents.', (g) => g.framesOut);
    gossipCounter('peerlb_gossip_bytes_received_total', 'Gossip bytes received.', (g) => g.bytesIn);
    gossipCounter('peerlb_gossip_bytes_sent_total', 'Gossip bytes sent.', (g) => g.bytesOut);
    new Counter({
      name: 'peerlb_gossip_frames_dropped_total',
      help: 'Gossip frames dropped, by reason (decode, too_large, version, auth, slow_peer, …).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(src.gossip().dropped)) this.inc({ reason }, n);
      },
    });
    new Gauge({
      name: 'peerlb_watch_subscribers',
      help: 'Clients subscribed to /v1/watch.',
      registers,
      collect() {
        this.set(src.subscribers());
      },
    });
    if (src.seats) {
      const seats = src.seats.bind(src);
      new Gauge({
        name: 'peerlb_seats',
        help: "The server's seats (issue 17): capacity, held (reserved, not claimed yet) and claimed.",
        labelNames: ['kind'],
        registers,
        collect() {
          const s = seats();
          this.set({ kind: 'capacity' }, s.capacity);
          this.set({ kind: 'held' }, s.held);
          this.set({ kind: 'claimed' }, s.claimed);
        },
      });
      const seatCounter = (name: string, help: string, pick: (s: ReturnType<typeof seats>) => number) =>
        new Counter({
          name,
          help,
          registers,
          collect() {
            this.reset();
            this.inc(pick(seats()));
          },
        });
      seatCounter('peerlb_seat_grants_total', 'Seat reservations granted.', (s) => s.grants);
      seatCounter('peerlb_seat_claims_total', 'Seat tickets claimed by the server.', (s) => s.claims);
      seatCounter('peerlb_seat_releases_total', 'Seat tickets released.', (s) => s.releases);
      seatCounter('peerlb_seat_expiries_total', 'Seat holds that expired unclaimed.', (s) => s.expiries);
      new Counter({
        name: 'peerlb_seat_refusals_total',
        help: 'Seat requests refused, by reason (full, draining, unhealthy, bad_seats, bad_ttl, malformed, forged, expired, reused, other_server, rate_limited).',
        labelNames: ['reason'],
        registers,
        collect() {
          this.reset();
          const s = seats();
          for (const [reason, n] of Object.entries(s.refusals)) this.inc({ reason }, n);
          this.inc({ reason: 'rate_limited' }, s.rateLimited);
        },
      });
    }
    if (src.admission) {
      const adm = src.admission.bind(src);
      new Gauge({
        name: 'peerlb_connections',
        help: "Sockets open on the agent's port (kind=open) and the cap in force (kind=max, below the open-file limit).",
        labelNames: ['kind'],
        registers,
        collect() {
          const a = adm();
          this.set({ kind: 'open' }, a.open);
          this.set({ kind: 'max' }, a.max);
        },
      });
      new Gauge({
        name: 'peerlb_watch_pending_bytes',
        help: 'Unsent bytes across /v1/watch subscribers (bounded by limits.maxWatchPendingBytes).',
        registers,
        collect() {
          this.set(adm().watchPendingBytes);
        },
      });
      new Counter({
        name: 'peerlb_refused_total',
        help: 'Sockets refused or closed by a cap, by endpoint (http, watch, events, gossip) and reason (address: its IP holds its share; total; rate; evicted: closed for a newcomer from an IP holding fewer; timeouts; pending_budget; slow).',
        labelNames: ['endpoint', 'reason'],
        registers,
        collect() {
          this.reset();
          for (const [k, n] of Object.entries(adm().refused)) {
            const [endpoint, reason] = k.split(':') as [string, string];
            this.inc({ endpoint, reason }, n);
          }
        },
      });
    }
    new Gauge({
      name: 'peerlb_server_load',
      help: "The server's load as last published: connections, sessions, utilization (0..1).",
      labelNames: ['kind'],
      registers,
      collect() {
        const l = src.load();
        this.set({ kind: 'connections' }, l?.connections ?? 0);
        this.set({ kind: 'sessions' }, l?.sessions ?? 0);
        this.set({ kind: 'utilization' }, l?.utilization ?? 0);
      },
    });
    new Gauge({
      name: 'peerlb_server_health',
      help: 'Health of the server beside this agent: 1 for the current state, 0 for the others.',
      labelNames: ['health'],
      registers,
      collect() {
        const h = src.health();
        for (const x of HEALTHS) this.set({ health: x }, x === h ? 1 : 0);
      },
    });
    new Gauge({
      name: 'peerlb_probe_timeout_seconds',
      help: 'The gossip probe timeout in use: the configured one, or longer while measured round trips are slow.',
      registers,
      collect() {
        const d = src.detector();
        if (d) this.set(d.probeTimeoutMs / 1000);
      },
    });
    new Gauge({
      name: 'peerlb_local_health_score',
      help: "Lifeguard's local health score (0 = healthy): missed acks and nacks raise it and stretch this agent's probe timing.",
      registers,
      collect() {
        const d = src.detector();
        if (d) this.set(d.awareness);
      },
    });
    this.probeRtt = new Histogram({
      name: 'peerlb_probe_rtt_seconds',
      help: 'Round-trip times of gossip probes answered directly (kind=gossip) or after going to helpers (kind=gossip_indirect), and of server health checks (kind=health).',
      labelNames: ['kind'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.healthChecks = new Counter({
      name: 'peerlb_health_checks_total',
      help: 'Health checks of the server, by result.',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['ok', 'fail']) this.healthChecks.inc({ result }, 0);
    // --- event-loop delay (h7): how late timers run. A starved loop makes probes time out and
    // acks arrive late, which looks like a dead peer; the gauges say when that is the cause.
    this.loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
    this.loopDelay.enable();
    const loop = this.loopDelay;
    let window = { p99: 0, max: 0, at: -Infinity };
    // p99 and max over the time since the previous scrape (one histogram, read once per scrape).
    const sample = () => {
      const now = performance.now();
      if (now - window.at > 100) {
        window = { p99: loop.count > 0 ? loop.percentile(99) / 1e9 : 0, max: loop.count > 0 ? loop.max / 1e9 : 0, at: now };
        loop.reset();
      }
      return window;
    };
    new Gauge({
      name: 'peerlb_event_loop_delay_p99_seconds',
      help: `99th percentile of the event-loop delay (node:perf_hooks monitorEventLoopDelay, ${LOOP_DELAY_RESOLUTION_MS} ms resolution) since the previous scrape.`,
      registers,
      collect() {
        this.set(sample().p99);
      },
    });
    new Gauge({
      name: 'peerlb_event_loop_delay_max_seconds',
      help: 'Largest event-loop delay since the previous scrape.',
      registers,
      collect() {
        this.set(sample().max);
      },
    });
  }

  /** Stop sampling the event loop. */
  close(): void {
    this.loopDelay.disable();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
