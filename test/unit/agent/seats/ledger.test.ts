/** The seat ledger and its tickets (agent/seats/): grants, claims, releases, refusals, expiry on a manual clock. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { DEFAULT_SEAT_TTL_MS, MAX_SEAT_TTL_MS, SeatLedger } from '../../../../agent/seats/ledger.js';
import { MAX_TICKET_CHARS, TicketSigner } from '../../../../agent/seats/ticket.js';

const secret = new Uint8Array(32).fill(7);
const make = (capacity = 10, clock = new ManualClock(1000)) => ({ clock, ledger: new SeatLedger({ server: 'n1', capacity, clock, secret }) });
const ticketOf = (r: ReturnType<SeatLedger['reserve']>): string => {
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  return r.ticket;
};

describe('SeatLedger', () => {
  it('grants up to capacity and refuses the rest as full', () => {
    const { ledger } = make(10);
    expect(ledger.reserve(4).ok).toBe(true);
    expect(ledger.reserve(6).ok).toBe(true);
    const r = ledger.reserve(1);
    expect(r).toMatchObject({ ok: false, reason: 'full' });
    expect(ledger.stats()).toMatchObject({ capacity: 10, held: 10, claimed: 0, grants: 2, refusals: { full: 1 } });
  });

  it('a grant names the server, seats and expiry; the ticket is compact base64url', () => {
    const { ledger } = make(10);
    const r = ledger.reserve(2, 5000);
    expect(r).toMatchObject({ ok: true, server: 'n1', seats: 2, expiresAt: 6000 });
    const t = ticketOf(r);
    expect(t).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(t.length).toBeLessThan(120);
  });

  it('claim turns a hold into claimed seats; release frees them', () => {
    const { ledger } = make(3);
    const t = ticketOf(ledger.reserve(2));
    expect(ledger.claim(t)).toEqual({ ok: true, seats: 2, state: 'claimed' });
    expect(ledger.stats()).toMatchObject({ held: 0, claimed: 2 });
    expect(ledger.reserve(2)).toMatchObject({ ok: false, reason: 'full' });
    expect(ledger.release(t)).toEqual({ ok: true, seats: 2, state: 'claimed' });
    expect(ledger.stats()).toMatchObject({ held: 0, claimed: 0, releases: 1 });
    expect(ledger.reserve(3).ok).toBe(true);
  });

  it('refuses forged tickets: another secret, a flipped MAC byte, a changed payload, junk', () => {
    const { ledger, clock } = make(10);
    const t = ticketOf(ledger.reserve(1));
    const other = new SeatLedger({ server: 'n1', capacity: 10, clock, secret: new Uint8Array(32).fill(8) });
    expect(other.claim(t)).toMatchObject({ ok: false, reason: 'forged' });
    const [payload, mac] = t.split('.') as [string, string];
    const flipped = `${payload}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    expect(ledger.claim(flipped)).toMatchObject({ ok: false, reason: 'forged' });
    const fields = Buffer.from(payload, 'base64url').toString().split('\n');
    fields[2] = '9'; // more seats, same MAC
    expect(ledger.claim(`${Buffer.from(fields.join('\n')).toString('base64url')}.${mac}`)).toMatchObject({ ok: false, reason: 'forged' });
    for (const junk of ['', 'x', 'a.b.c', '..', 'a b.c', 42, null, 'A'.repeat(MAX_TICKET_CHARS + 1)]) expect(ledger.claim(junk)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(ledger.claim(t).ok).toBe(true); // the genuine one still works
    expect(ledger.stats().refusals).toMatchObject({ forged: 2, malformed: 8 });
  });

  it('refuses a reused ticket: claimed twice, or claimed after release', () => {
    const { ledger } = make(10);
    const a = ticketOf(ledger.reserve(1));
    expect(ledger.claim(a).ok).toBe(true);
    expect(ledger.claim(a)).toMatchObject({ ok: false, reason: 'reused' });
    const b = ticketOf(ledger.reserve(1));
    expect(ledger.release(b).ok).toBe(true);
    expect(ledger.claim(b)).toMatchObject({ ok: false, reason: 'reused' });
    expect(ledger.release(b)).toMatchObject({ ok: false, reason: 'reused' });
    expect(ledger.stats()).toMatchObject({ held: 0, claimed: 1 });
  });

  it("refuses another server's ticket (same secret, other id)", () => {
    const clock = new ManualClock(0);
    const n2 = new SeatLedger({ server: 'n2', capacity: 10, clock, secret });
    const n1 = new SeatLedger({ server: 'n1', capacity: 10, clock, secret });
    expect(n1.claim(ticketOf(n2.reserve(1)))).toMatchObject({ ok: false, reason: 'other_server' });
  });

  it("names another agent's own ticket other_server, though its MAC is another secret's; a forgery naming this server stays forged", () => {
    const clock = new ManualClock(0);
    const n1 = new SeatLedger({ server: 'n1', capacity: 10, clock, secret });
    const n2 = new SeatLedger({ server: 'n2', capacity: 10, clock, secret: new Uint8Array(32).fill(9) });
    expect(n1.claim(ticketOf(n2.reserve(1)))).toMatchObject({ ok: false, reason: 'other_server' });
    expect(n1.release(ticketOf(n2.reserve(1)))).toMatchObject({ ok: false, reason: 'other_server' });
    const own = ticketOf(n1.reserve(1));
    const elsewhere = new SeatLedger({ server: 'n1', capacity: 10, clock, secret: new Uint8Array(32).fill(9) });
    expect(elsewhere.claim(own)).toMatchObject({ ok: false, reason: 'forged' });
    expect(n1.stats()).toMatchObject({ held: 1, claimed: 0 });
    expect(n1.stats().refusals).toMatchObject({ other_server: 2 });
  });

  it('unclaimed holds expire after ttlMs (default 15 s) and free their seats; claimed seats do not', () => {
    const { ledger, clock } = make(2);
    const held = ticketOf(ledger.reserve(1));
    const claimed = ticketOf(ledger.reserve(1, 500));
    expect(ledger.claim(claimed).ok).toBe(true);
    clock.advance(DEFAULT_SEAT_TTL_MS - 1);
    expect(ledger.stats()).toMatchObject({ held: 1, claimed: 1, expiries: 0 });
    expect(ledger.reserve(1)).toMatchObject({ ok: false, reason: 'full' });
    clock.advance(1);
    expect(ledger.stats()).toMatchObject({ held: 0, claimed: 1, expiries: 1 });
    expect(ledger.claim(held)).toMatchObject({ ok: false, reason: 'expired' });
    expect(ledger.release(claimed)).toMatchObject({ ok: true, state: 'claimed' }); // after its hold's expiry: still releasable
    expect(ledger.reserve(2).ok).toBe(true);
  });

  it('checks seats and ttlMs: bad values are refused with a reason, ttl capped', () => {
    const { ledger } = make(10);
    for (const s of [0, -1, 1.5, 11, '1', undefined, NaN]) expect(ledger.reserve(s)).toMatchObject({ ok: false, reason: 'bad_seats' });
    for (const t of [0, 99, MAX_SEAT_TTL_MS + 1, Infinity, '5000']) expect(ledger.reserve(1, t)).toMatchObject({ ok: false, reason: 'bad_ttl' });
    expect(ledger.reserve(1, MAX_SEAT_TTL_MS).ok).toBe(true);
  });

  it('a draining or unhealthy server grants nothing', () => {
    const { ledger } = make(10);
    ledger.setAvailability('draining');
    expect(ledger.reserve(1)).toMatchObject({ ok: false, reason: 'draining' });
    ledger.setAvailability('unhealthy');
    expect(ledger.reserve(1)).toMatchObject({ ok: false, reason: 'unhealthy' });
    ledger.setAvailability('open');
    expect(ledger.reserve(1).ok).toBe(true);
  });

  it('reported sessions count as claimed seats (the larger of the two, not their sum)', () => {
    const { ledger } = make(10);
    ledger.setReported(8);
    expect(ledger.reserve(3)).toMatchObject({ ok: false, reason: 'full' });
    const t = ticketOf(ledger.reserve(2));
    expect(ledger.claim(t).ok).toBe(true);
    // The server now reports 8 sessions that include the claimed 2: used = max(2, 8) = 8.
    expect(ledger.used()).toBe(8);
    ledger.setReported(0);
    expect(ledger.used()).toBe(2);
  });

  it('never goes over capacity under random operations (seeded, 20,000 steps)', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const clock = new ManualClock(0);
    const cap = 10;
    const ledger = new SeatLedger({ server: 'n1', capacity: cap, clock, secret });
    const tickets: string[] = [];
    let grants = 0;
    for (let i = 0; i < 20_000; i++) {
      const op = rnd();
      if (op < 0.45) {
        const r = ledger.reserve(1 + Math.floor(rnd() * 3), 200 + Math.floor(rnd() * 3000));
        if (r.ok) {
          grants++;
          tickets.push(r.ticket);
        } else expect(['full']).toContain(r.reason);
      } else if (op < 0.65 && tickets.length) ledger.claim(tickets[Math.floor(rnd() * tickets.length)]);
      else if (op < 0.8 && tickets.length) ledger.release(tickets.splice(Math.floor(rnd() * tickets.length), 1)[0]);
      else if (op < 0.85) ledger.setReported(Math.floor(rnd() * 6));
      else clock.advance(Math.floor(rnd() * 400));
      const s = ledger.stats();
      expect(s.held + s.claimed).toBeLessThanOrEqual(cap);
      expect(s.held).toBeGreaterThanOrEqual(0);
      expect(s.claimed).toBeGreaterThanOrEqual(0);
      if (tickets.length > 200) tickets.splice(0, 100);
    }
    expect(grants).toBeGreaterThan(1000);
    expect(ledger.stats().expiries).toBeGreaterThan(0);
  });
});

describe('TicketSigner', () => {
  it('round-trips its own tickets and names what is wrong with others', () => {
    const s = new TicketSigner(secret);
    const f = { server: 'game-7.example', seats: 3, expiresAt: 123456789, nonce: s.newNonce() };
    expect(s.decode(s.encode(f))).toEqual(f);
    expect(new TicketSigner().decode(s.encode(f))).toBe('forged');
    expect(s.decode('nope')).toBe('malformed');
  });
});
