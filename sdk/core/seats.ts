/**
 * Seat reservations from the client side (issue 17): `cluster.reserve()` asks a server's own agent
 * for seats (POST /v1/seats/reserve, agent/endpoints/seats.ts) and gets a ticket the game server
 * claims when the player arrives. The agent is the authority (it never grants past capacity); this
 * module only chooses whom to ask, in order:
 *
 *  - free seats: when a server's report carries its seats (LoadReport.seats: its agent has a
 *    capacity), capacity − held − claimed, less the seats this client placed there since that
 *    report; a server is asked only when that leaves room for the seats requested. A report
 *    without seats (an agent of an earlier release) falls back to the utilization estimate: a
 *    free share of 1 − utilization, less this client's placements since at the share of one seat
 *    the reports showed.
 *  - spread: power of two choices on the free share (free seats / capacity, or the estimate). The
 *    two are drawn from a shuffled rotation of the servers, so in n/2 reservations every server
 *    is looked at once.
 *  - pack: the fullest server that still has room for the seats requested (the least free share;
 *    ties by id, so concurrent callers fill the same one).
 *  - key: the first ask goes to the key's rendezvous-hash server; then the mode's order.
 *
 * A server that answers full, draining, too many requests, or not at all is marked and skipped for
 * SEAT_MARK_MS; the next candidate is asked, up to `attempts`. Uses `fetch` (Node 18+, browsers),
 * so keep-alive connections to the agents are reused.
 */
import type { Clock } from './clock.js';
import type { Random } from './random.js';
import type { ServerView, Server } from './server.js';
import { fmix32, hashKey, type Key } from './hash.js';
import { AbortedError, BadOptionError, FullError, type SeatRefusalInfo } from './errors.js';
import { freeSeats } from './protocol.js';

/** How long a server that refused (or did not answer) is skipped, ms: about one load-report interval. */
export const SEAT_MARK_MS = 1000;
/**
 * Longest wait for one agent's answer, ms. A grant whose answer is lost (timeout, reset) is not
 * retried on that server (POST is not idempotent): its hold expires after ttlMs on the agent.
 */
export const SEAT_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_SEAT_ATTEMPTS = 5;
export const MAX_SEAT_ATTEMPTS = 100;
/** Largest answer read (a grant is ~200 bytes). */
const MAX_ANSWER_CHARS = 4096;

export interface ReserveOptions {
  /** Seats to hold together on one server. Default 1. */
  seats?: number;
  /** Affinity: the first ask goes to this key's server (rendezvous hashing). */
  key?: Key;
  /** How long the agent holds the seats unclaimed, ms (agent default 15,000, at most 60,000). */
  ttlMs?: number;
  /** 'spread' (default): least full of two; 'pack': fullest with room. */
  mode?: 'spread' | 'pack';
  /** Servers asked at most. Default 5. */
  attempts?: number;
  signal?: AbortSignal;
}

export interface Reservation {
  server: Server;
  /** Give this to the game server: it claims it with its agent (agent.seats.claim, POST /v1/seats/claim). */
  ticket: string;
  seats: number;
  /** When the hold ends unless claimed, on this client's clock (ms). */
  expiresAt: number;
}

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<{ status: number; text(): Promise<string> }>;

/** http(s)://host:port of an agent's ws(s):// URL. */
export function agentHttpUrl(agent: string): string {
  return agent.replace(/^ws(s?):\/\//i, 'http$1://').replace(/\/+$/, '');
}

export class SeatReserver {
  private readonly marks = new Map<string, number>();
  /** Seats this client placed per server since that server's report `seq`. */
  private readonly placed = new Map<string, { seq: number; seats: number }>();
  /** Last known share of one seat (utilization / sessions) per server. */
  private readonly seatShare = new Map<string, number>();
  private rotation: string[] = [];
  private rotationAt = 0;

  constructor(
    private readonly service: string,
    private readonly views: () => ServerView[],
    private readonly fetchFn: FetchLike | undefined,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  async reserve(o: ReserveOptions = {}): Promise<Reservation> {
    const seats = o.seats ?? 1;
    if (!Number.isSafeInteger(seats) || seats < 1 || seats > 10_000) throw new BadOptionError('seats', `must be an integer in 1..10000, got ${JSON.stringify(o.seats)}`);
    const attempts = o.attempts ?? DEFAULT_SEAT_ATTEMPTS;
    if (!Number.isSafeInteger(attempts) || attempts < 1 || attempts > MAX_SEAT_ATTEMPTS) throw new BadOptionError('attempts', `must be an integer in 1..${MAX_SEAT_ATTEMPTS}, got ${JSON.stringify(o.attempts)}`);
    if (o.ttlMs !== undefined && (typeof o.ttlMs !== 'number' || !Number.isFinite(o.ttlMs) || o.ttlMs <= 0)) throw new BadOptionError('ttlMs', `must be a number > 0, got ${JSON.stringify(o.ttlMs)}`);
    const mode = o.mode ?? 'spread';
    if (mode !== 'spread' && mode !== 'pack') throw new BadOptionError('mode', `must be 'spread' or 'pack', got ${JSON.stringify(o.mode)}`);
    const fetchFn = this.fetchFn;
    if (!fetchFn) throw new BadOptionError('reserve', 'needs fetch (Node 18+ or a browser)');
    const tried = new Set<string>();
    const refusals: SeatRefusalInfo[] = [];
    for (let i = 0; i < attempts; i++) {
      if (o.signal?.aborted) throw new AbortedError(o.signal.reason);
      const now = this.clock.now();
      const cands = this.views().filter((v) => v.agent !== undefined && v.health === 'healthy' && !tried.has(v.id) && !((this.marks.get(v.id) ?? -Infinity) > now) && this.hasRoom(v, seats));
      if (cands.length === 0) break;
      const v = i === 0 && o.key !== undefined ? byKey(cands, o.key) : mode === 'pack' ? this.fullest(cands) : this.twoChoices(cands);
      tried.add(v.id);
      this.place(v, seats);
      const answer = await this.ask(fetchFn, v, seats, o.ttlMs, o.signal);
      if ('ticket' in answer) return { server: v, ticket: answer.ticket, seats: answer.seats, expiresAt: answer.expiresAt };
      this.place(v, -seats);
      this.marks.set(v.id, this.clock.now() + SEAT_MARK_MS);
      if (this.marks.size > 4 * (cands.length + 64)) for (const [id, until] of this.marks) if (until <= now) this.marks.delete(id);
      refusals.push({ server: v.id, reason: answer.reason });
    }
    throw new FullError(this.service, seats, refusals);
  }

  /**
   * Free seats of `v` as this client sees it: the report's capacity − held − claimed, less its own
   * placements since; undefined when the report has no seats.
   */
  private freeSeats(v: ServerView): number | undefined {
    const s = v.load?.seats;
    return s ? Math.max(0, freeSeats(s) - this.mine(v)) : undefined;
  }

  /** Room for `seats` more on `v`: by its free seats when its report has them, else by the estimate. */
  private hasRoom(v: ServerView, seats: number): boolean {
    const n = this.freeSeats(v);
    return n === undefined ? this.free(v) > 0 : n >= seats;
  }

  /**
   * Free share of `v` as this client sees it, 0..1: free seats / capacity when the report has its
   * seats; else 1 − reported utilization − its own placements since.
   */
  private free(v: ServerView): number {
    const l = v.load;
    const n = this.freeSeats(v);
    if (n !== undefined) return n / l!.seats!.capacity;
    if (l && l.sessions > 0 && l.utilization > 0) this.seatShare.set(v.id, l.utilization / l.sessions);
    return 1 - (l?.utilization ?? 0) - this.mine(v) * (this.seatShare.get(v.id) ?? 0);
  }

  private mine(v: ServerView): number {
    const p = this.placed.get(v.id);
    return p && (v.load === undefined || p.seq === v.load.seq) ? p.seats : 0;
  }

  private place(v: ServerView, seats: number): void {
    const seq = v.load?.seq ?? -1;
    const p = this.placed.get(v.id);
    if (p && p.seq === seq) p.seats = Math.max(0, p.seats + seats);
    else if (seats > 0) this.placed.set(v.id, { seq, seats });
    if (this.placed.size > 10_000) this.placed.clear();
  }

  /** More free share wins; then fewer of this client's placements; then the first drawn. */
  private better(a: ServerView, b: ServerView): ServerView {
    const fa = this.free(a);
    const fb = this.free(b);
    if (fa !== fb) return fa > fb ? a : b;
    return this.mine(b) < this.mine(a) ? b : a;
  }

  private twoChoices(cands: ServerView[]): ServerView {
    if (cands.length === 1) return cands[0]!;
    const byId = new Map(cands.map((c) => [c.id, c]));
    const drawn: ServerView[] = [];
    // Walk the rotation (at most twice round) for two distinct candidates.
    for (let steps = 0; drawn.length < 2 && steps < 2 * (this.rotation.length + cands.length) + 2; steps++) {
      if (this.rotationAt >= this.rotation.length) {
        this.rotation = shuffle(cands.map((c) => c.id), this.random);
        this.rotationAt = 0;
      }
      const c = byId.get(this.rotation[this.rotationAt++]!);
      if (c && !drawn.includes(c)) drawn.push(c);
    }
    if (drawn.length < 2) return drawn[0] ?? cands[0]!;
    return this.better(drawn[0]!, drawn[1]!);
  }

  private fullest(cands: ServerView[]): ServerView {
    let best = cands[0]!;
    for (const c of cands) {
      const fc = this.free(c);
      const fb = this.free(best);
      if (fc < fb || (fc === fb && c.id < best.id)) best = c;
    }
    return best;
  }

  private async ask(
    fetchFn: FetchLike,
    v: ServerView,
    seats: number,
    ttlMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ ticket: string; seats: number; expiresAt: number } | { reason: string }> {
    const timeout = AbortSignal.timeout(SEAT_REQUEST_TIMEOUT_MS);
    const any = (AbortSignal as unknown as { any?: (s: AbortSignal[]) => AbortSignal }).any;
    const sig = signal ? (any ? any([signal, timeout]) : signal) : timeout;
    const sentAt = this.clock.now();
    try {
      const res = await fetchFn(`${agentHttpUrl(v.agent!)}/v1/seats/reserve`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(ttlMs === undefined ? { seats } : { seats, ttlMs }),
        signal: sig,
      });
      const text = await res.text();
      let body: Record<string, unknown> = {};
      try {
        body = text.length <= MAX_ANSWER_CHARS ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        /* not JSON: judged by status */
      }
      if (res.status === 200 && typeof body.ticket === 'string' && typeof body.ttlMs === 'number') {
        // The agent's expiresAt is on its clock, not ours: the hold's length, counted from when
        // the request left (so never later than the agent's own expiry).
        return { ticket: body.ticket, seats: typeof body.seats === 'number' ? body.seats : seats, expiresAt: sentAt + body.ttlMs };
      }
      return { reason: typeof body.error === 'string' ? body.error : `http ${res.status}` };
    } catch (err) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      return { reason: timeout.aborted ? 'timeout' : `unreachable: ${(err as Error)?.message ?? String(err)}` };
    }
  }
}

function shuffle<T>(a: T[], random: Random): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Rendezvous (highest random weight) hashing: the same key goes to the same server while it has room. */
function byKey(cands: ServerView[], key: Key): ServerView {
  const k = hashKey(key);
  let best = cands[0]!;
  let bestScore = -1;
  for (const c of cands) {
    const s = fmix32(k ^ hashKey(c.id));
    if (s > bestScore) [best, bestScore] = [c, s];
  }
  return best;
}
