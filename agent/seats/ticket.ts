/**
 * Seat tickets (issue 17): what an agent hands out for seats it holds for a client, and checks when
 * the client shows it to the game server. A ticket is the agent's HMAC-SHA256 over the server id,
 * the seats, the expiry and a nonce, under a random secret of this agent alone (no other agent, no
 * client and no server knows it, so only this agent can make or check one):
 *
 *     base64url(payload) "." base64url(mac)      payload = "1\n<server>\n<seats>\n<expiresAt>\n<nonce>"
 *
 * Compact (≈ 100 characters for a short server id), safe in a URL path and a JSON string. Decoding
 * is pure and bounded (MAX_TICKET_CHARS); the MAC is compared in constant time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Longest ticket accepted: a 253-character server id makes one of about 420; anything longer is not ours. */
export const MAX_TICKET_CHARS = 512;
const VERSION = '1';
const NONCE_BYTES = 12;

export interface TicketFields {
  server: string;
  seats: number;
  /** Expiry of the hold, on the agent's clock (ms). */
  expiresAt: number;
  /** base64url of NONCE_BYTES random bytes: the ticket's identity in the ledger. */
  nonce: string;
}

export type TicketProblem = 'malformed' | 'forged';

export class TicketSigner {
  private readonly secret: Buffer;

  /** `secret`: tests pass one; the agent lets it be drawn (32 random bytes, per process). */
  constructor(secret?: Uint8Array) {
    this.secret = secret ? Buffer.from(secret) : randomBytes(32);
  }

  newNonce(): string {
    return randomBytes(NONCE_BYTES).toString('base64url');
  }

  encode(f: TicketFields): string {
    const payload = Buffer.from([VERSION, f.server, String(f.seats), String(f.expiresAt), f.nonce].join('\n'));
    return `${payload.toString('base64url')}.${this.mac(payload).toString('base64url')}`;
  }

  /** The fields of a ticket this agent made, or why it is not one. Never throws. */
  decode(ticket: unknown): TicketFields | TicketProblem {
    if (typeof ticket !== 'string' || ticket.length === 0 || ticket.length > MAX_TICKET_CHARS) return 'malformed';
    const dot = ticket.indexOf('.');
    if (dot <= 0 || dot !== ticket.lastIndexOf('.') || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(ticket)) return 'malformed';
    const payload = Buffer.from(ticket.slice(0, dot), 'base64url');
    const mac = Buffer.from(ticket.slice(dot + 1), 'base64url');
    const want = this.mac(payload);
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) return 'forged';
    // Signed by us, so well formed unless a future version changed it.
    const parts = payload.toString('utf8').split('\n');
    if (parts.length !== 5 || parts[0] !== VERSION) return 'malformed';
    const seats = Number(parts[2]);
    const expiresAt = Number(parts[3]);
    if (!Number.isSafeInteger(seats) || seats < 1 || !Number.isFinite(expiresAt)) return 'malformed';
    return { server: parts[1]!, seats, expiresAt, nonce: parts[4]! };
  }

  /**
   * The server an unverified ticket names, when its payload is well formed (undefined otherwise).
   * Only for the refusal's reason: a ticket another agent made (its own secret) for its own server
   * fails our MAC, and "other_server" tells a player sent to the wrong server apart from a forgery.
   * Nothing else is taken from an unverified payload.
   */
  unverifiedServer(ticket: unknown): string | undefined {
    if (typeof ticket !== 'string' || ticket.length > MAX_TICKET_CHARS) return undefined;
    const dot = ticket.indexOf('.');
    if (dot <= 0) return undefined;
    const parts = Buffer.from(ticket.slice(0, dot), 'base64url').toString('utf8').split('\n');
    return parts.length === 5 && parts[0] === VERSION && parts[1]!.length > 0 ? parts[1] : undefined;
  }

  private mac(payload: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(payload).digest();
  }
}
