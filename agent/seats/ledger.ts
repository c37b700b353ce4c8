/**
 * The seat ledger (issue 17): the agent is the single authority for its own server's seats. A
 * client reserves seats (a hold, with a ticket, that expires after ttlMs unless claimed); the game
 * server claims the ticket when the player arrives (the hold becomes claimed seats) and releases it
 * when the player leaves. Pure apart from node:crypto (ticket.ts); time comes from the clock.
 *
 * The rule: a reserve of `seats` is granted iff held + used + seats ≤ capacity, where used is the
 * larger of the claimed tickets' seats and the sessions the server reports (`agent.report`,
 * PUT /v1/load): a server that reports its players and also claims tickets counts them once. A
 * draining or unhealthy server grants nothing. Holds are bounded by capacity (each takes ≥ 1 seat),
 * and so are claims; a released or claimed ticket is not remembered (a valid MAC with no entry is
 * one already used), so nothing else grows.
 */
import type { Clock } from '../../sdk/core/clock.js';
import { TicketSigner, type TicketFields } from './ticket.js';

/** Hold lifetime when the client names none (ms): long enough to connect, short enough to free a no-show. */
export const DEFAULT_SEAT_TTL_MS = 15_000;
/** Longest hold a client may ask for (ms). */
export const MAX_SEAT_TTL_MS = 60_000;
/** Shortest hold (ms): below this a ticket would expire on its way to the server. */
export const MIN_SEAT_TTL_MS = 100;

export type Availability = 'open' | 'draining' | 'unhealthy';
export type ReserveRefusal = 'full' | 'draining' | 'unhealthy' | 'bad_seats' | 'bad_ttl';
export type TicketRefusal = 'malformed' | 'forged' | 'expired' | 'reused' | 'other_server';
export type SeatRefusal = ReserveRefusal | TicketRefusal;

export type ReserveResult = { ok: true; server: string; ticket: string; seats: number; expiresAt: number; ttlMs: number } | { ok: false; reason: ReserveRefusal; message: string };
export type TicketResult = { ok: true; seats: number; state: 'held' | 'claimed' } | { ok: false; reason: TicketRefusal; message: string };

export interface SeatStats {
  capacity: number;
  held: number;
  claimed: number;
  reported: number;
  grants: number;
  claims: number;
  releases: number;
  expiries: number;
  refusals: Record<string, number>;
}

export interface SeatLedgerOptions {
  server: string;
  capacity: number;
  clock: Clock;
  /** HMAC secret (tests); default 32 random bytes. */
  secret?: Uint8Array;
}

interface Hold {
  seats: number;
  expiresAt: number;
}

export class SeatLedger {
  readonly server: string;
  capacity: number;
  private readonly clock: Clock;
  private readonly signer: TicketSigner;
  private readonly holds = new Map<string, Hold>();
  private readonly claimedTickets = new Map<string, number>();
  private heldSeats = 0;
  private claimedSeats = 0;
  private reported = 0;
  private availability: Availability = 'open';
  /** Earliest expiry among the holds (Infinity: none), so most calls skip the sweep. */
  private nextExpiry = Infinity;
  private readonly counters = { grants: 0, claims: 0, releases: 0, expiries: 0 };
  private readonly refusals: Record<string, number> = {};

  constructor(o: SeatLedgerOptions) {
    if (!Number.isSafeInteger(o.capacity) || o.capacity < 0) throw new RangeError(`capacity must be an integer ≥ 0, got ${o.capacity}`);
    this.server = o.server;
    this.capacity = o.capacity;
    this.clock = o.clock;
    this.signer = new TicketSigner(o.secret);
  }

  /** The server's own figure of sessions (agent.report): counted as claimed seats. */
  setReported(sessions: number): void {
    this.reported = Number.isFinite(sessions) && sessions > 0 ? Math.floor(sessions) : 0;
  }

  setAvailability(a: Availability): void {
    this.availability = a;
  }

  /** Seats in use: held + max(claimed, reported). */
  used(): number {
    this.sweep();
    return this.heldSeats + Math.max(this.claimedSeats, this.reported);
  }

  reserve(seats: unknown, ttlMs: unknown = DEFAULT_SEAT_TTL_MS): ReserveResult {
    if (!Number.isSafeInteger(seats) || (seats as number) < 1 || (seats as number) > Math.max(1, this.capacity))
      return this.refuse('bad_seats', `seats must be an integer in 1..${Math.max(1, this.capacity)}`);
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < MIN_SEAT_TTL_MS || ttlMs > MAX_SEAT_TTL_MS)
      return this.refuse('bad_ttl', `ttlMs must be a number in ${MIN_SEAT_TTL_MS}..${MAX_SEAT_TTL_MS}`);
    if (this.availability !== 'open') return this.refuse(this.availability, `the server is ${this.availability}`);
    const n = seats as number;
    if (this.used() + n > this.capacity) return this.refuse('full', `the server has ${Math.max(0, this.capacity - this.used())} of ${this.capacity} seats free`);
    const ttl = Math.round(ttlMs);
    const expiresAt = this.clock.now() + ttl;
    const nonce = this.signer.newNonce();
    this.holds.set(nonce, { seats: n, expiresAt });
    this.heldSeats += n;
    if (expiresAt < this.nextExpiry) this.nextExpiry = expiresAt;
    this.counters.grants++;
    return { ok: true, server: this.server, ticket: this.signer.encode({ server: this.server, seats: n, expiresAt, nonce }), seats: n, expiresAt, ttlMs: ttl };
  }

  /** Turn a held ticket into claimed seats (the player arrived). */
  claim(ticket: unknown): TicketResult {
    const f = this.check(ticket);
    if (typeof f === 'string') return this.refuse(f, describe(f));
    const hold = this.holds.get(f.nonce);
    if (!hold) {
      // Signed by us but not held: claimed or released already, or swept after its expiry.
      const reason = !this.claimedTickets.has(f.nonce) && this.clock.now() >= f.expiresAt ? 'expired' : 'reused';
      return this.refuse(reason, describe(reason));
    }
    this.holds.delete(f.nonce);
    this.heldSeats -= hold.seats;
    this.claimedTickets.set(f.nonce, hold.seats);
    this.claimedSeats += hold.seats;
    this.counters.claims++;
    return { ok: true, seats: hold.seats, state: 'claimed' };
  }

  /** Free a ticket's seats, held or claimed (the player left, or never came). */
  release(ticket: unknown): TicketResult {
    const f = this.check(ticket);
    if (typeof f === 'string') return this.refuse(f, describe(f));
    const hold = this.holds.get(f.nonce);
    if (hold) {
      this.holds.delete(f.nonce);
      this.heldSeats -= hold.seats;
      this.counters.releases++;
      return { ok: true, seats: hold.seats, state: 'held' };
    }
    const claimed = this.claimedTickets.get(f.nonce);
    if (claimed !== undefined) {
      this.claimedTickets.delete(f.nonce);
      this.claimedSeats -= claimed;
      this.counters.releases++;
      return { ok: true, seats: claimed, state: 'claimed' };
    }
    const reason = this.clock.now() >= f.expiresAt ? 'expired' : 'reused';
    return this.refuse(reason, describe(reason));
  }

  stats(): SeatStats {
    this.sweep();
    return { capacity: this.capacity, held: this.heldSeats, claimed: this.claimedSeats, reported: this.reported, ...this.counters, refusals: { ...this.refusals } };
  }

  /** Decode and check the server; expiry is judged by the caller (a claimed ticket may be released after it). */
  private check(ticket: unknown): TicketFields | TicketRefusal {
    this.sweep();
    const f = this.signer.decode(ticket);
    if (f === 'forged') {
      // Not our MAC. A well-formed ticket naming another server is most likely that server's
      // agent's (each agent has its own secret): say so, so the player can be sent on. Still refused.
      const named = this.signer.unverifiedServer(ticket);
      return named !== undefined && named !== this.server ? 'other_server' : 'forged';
    }
    if (typeof f === 'string') return f;
    // Only this agent's secret makes a valid MAC, so another server's id means a ticket minted
    // before a rename; still not this server's seats.
    if (f.server !== this.server) return 'other_server';
    return f;
  }

  /** Drop the holds whose time is up. */
  private sweep(): void {
    const now = this.clock.now();
    if (now < this.nextExpiry) return;
    let next = Infinity;
    for (const [nonce, h] of this.holds) {
      if (h.expiresAt <= now) {
        this.holds.delete(nonce);
        this.heldSeats -= h.seats;
        this.counters.expiries++;
      } else if (h.expiresAt < next) next = h.expiresAt;
    }
    this.nextExpiry = next;
  }

  private refuse<R extends SeatRefusal>(reason: R, message: string): { ok: false; reason: R; message: string } {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
    return { ok: false, reason, message };
  }
}

function describe(r: TicketRefusal): string {
  switch (r) {
    case 'malformed':
      return 'not a seat ticket';
    case 'forged':
      return 'the ticket was not issued by this agent (or by an earlier run of it)';
    case 'expired':
      return 'the ticket expired before it was claimed';
    case 'reused':
      return 'the ticket was already claimed or released';
    case 'other_server':
      return 'the ticket is for another server';
  }
}
