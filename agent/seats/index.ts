/**
 * The agent's seats (issue 17): the ledger (ledger.ts) kept in step with what the agent knows at
 * the moment of each call — its server's health (draining or unhealthy grants nothing) and the
 * sessions the server reported while fresh (counted as claimed seats). `agent.seats` is this; the
 * HTTP endpoint (agent/endpoints/seats.ts) is the same calls over the agent's port.
 */
import type { Clock } from '../../sdk/core/clock.js';
import type { Health, LoadSeats } from '../../sdk/core/protocol.js';
import { SeatLedger, type ReserveResult, type SeatStats, type TicketResult } from './ledger.js';

export { SeatLedger, DEFAULT_SEAT_TTL_MS, MAX_SEAT_TTL_MS, MIN_SEAT_TTL_MS } from './ledger.js';
export type { ReserveResult, TicketResult, SeatStats, SeatRefusal, ReserveRefusal, TicketRefusal } from './ledger.js';

/** The seats of the server beside an agent (`agent.seats`). */
export interface AgentSeats {
  /** Hold `seats` for `ttlMs` (default 15,000, at most 60,000): a ticket, or why not ('full', 'draining', …). */
  reserve(seats?: number, ttlMs?: number): ReserveResult;
  /** The player arrived: the ticket's hold becomes claimed seats (refused: malformed, forged, expired, reused, other_server). */
  claim(ticket: string): TicketResult;
  /** The player left (or never came): the ticket's seats are free again. */
  release(ticket: string): TicketResult;
  stats(): SeatStats;
  /** Seats in use now: held + the larger of claimed and reported. */
  used(): number;
  /**
   * What the load report carries (LoadReport.seats): capacity, held, and claimed as the larger of
   * the claimed tickets and the reported sessions (so held + claimed = used()). Undefined without
   * a capacity.
   */
  loadSeats(): LoadSeats | undefined;
}

export interface SeatsOptions {
  server: string;
  /** The server's seats (`--capacity`); 0 when none is configured: every reserve is 'full'. */
  capacity: number;
  clock: Clock;
  health: () => Health;
  /** Sessions the server reported, while fresh. */
  reported: () => number | undefined;
  secret?: Uint8Array;
  /** Called after each grant, claim and release (the agent republishes its load). */
  changed?: () => void;
}

export function createSeats(o: SeatsOptions): AgentSeats {
  const ledger = new SeatLedger({ server: o.server, capacity: o.capacity, clock: o.clock, secret: o.secret });
  const after = <R extends { ok: boolean }>(r: R): R => {
    if (r.ok) o.changed?.();
    return r;
  };
  const sync = () => {
    const h = o.health();
    ledger.setAvailability(h === 'healthy' ? 'open' : h);
    ledger.setReported(o.reported() ?? 0);
  };
  return {
    reserve(seats = 1, ttlMs) {
      sync();
      return after(ledger.reserve(seats, ttlMs));
    },
    claim: (t) => after(ledger.claim(t)),
    release: (t) => after(ledger.release(t)),
    used() {
      sync();
      return ledger.used();
    },
    stats() {
      sync();
      return ledger.stats();
    },
    loadSeats() {
      if (ledger.capacity < 1) return undefined;
      sync();
      const s = ledger.stats();
      return { capacity: s.capacity, held: s.held, claimed: Math.max(s.claimed, s.reported) };
    },
  };
}
