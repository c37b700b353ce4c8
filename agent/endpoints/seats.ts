/**
 * The seats endpoint (issue 17) on the agent's port:
 *
 *     POST   /v1/seats/reserve   {"seats":2,"ttlMs":15000}  → 200 {server, ticket, seats, expiresAt, ttlMs}
 *     POST   /v1/seats/claim     {"ticket":"…"}             → 200 {seats, state}        loopback only
 *     DELETE /v1/seats/<ticket>                             → 200 {seats, state}        loopback only
 *
 * Refusals: 409 {error:'full'}; 503 {error:'draining'|'unhealthy'}; 400 bad JSON, bad seats or
 * ttlMs, malformed ticket; 403 a claim or delete from off the host, or a forged or other server's
 * ticket; 410 an expired or reused ticket; 404 another path; 405 another method; 413 a body over
 * 1 KiB; 408 a body slower than 5 s; 429 over the per-address rate (Retry-After). Every answer is
 * JSON: `{ error, message }` for refusals. `expiresAt` is on the agent's clock, not wall time:
 * clients use ttlMs. Claims and releases are loopback only because only the game server beside
 * the agent should turn a hold into a seat, or free one (ARCHITECTURE.md, practice 10).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loopbackGate, RateLimit } from '../admission.js';
import type { AgentSeats } from '../seats/index.js';
import type { SeatRefusal } from '../seats/ledger.js';

export const SEATS_PREFIX = '/v1/seats/';
export const MAX_SEATS_BODY_BYTES = 1024;
export const SEATS_BODY_TIMEOUT_MS = 5000;
/**
 * Requests per second per address, and the burst. A client makes one reserve per player and
 * tries a few servers; a matchmaker on one address places many players, so the rate is generous.
 * RateLimit remembers 4,096 addresses at most (the total bound).
 */
export const SEATS_RATE_PER_SEC = 200;
export const SEATS_BURST = 400;

const STATUS: Record<SeatRefusal, number> = {
  full: 409,
  draining: 503,
  unhealthy: 503,
  bad_seats: 400,
  bad_ttl: 400,
  malformed: 400,
  forged: 403,
  other_server: 403,
  expired: 410,
  reused: 410,
};

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}
const fail = (res: ServerResponse, status: number, error: string, message: string, headers: Record<string, string> = {}) => send(res, status, { error, message }, headers);

/** Read a JSON object body within MAX_SEATS_BODY_BYTES and SEATS_BODY_TIMEOUT_MS; answers the refusal itself. */
function readJson(req: IncomingMessage, res: ServerResponse, then: (body: Record<string, unknown>) => void): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && !(Number(declared) <= MAX_SEATS_BODY_BYTES)) {
    fail(res, 413, 'too_large', `the body must be at most ${MAX_SEATS_BODY_BYTES} bytes`, { Connection: 'close' });
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    fail(res, 408, 'timeout', `the body did not arrive within ${SEATS_BODY_TIMEOUT_MS} ms`, { Connection: 'close' });
  }, SEATS_BODY_TIMEOUT_MS);
  timer.unref?.();
  req.on('data', (c: Buffer) => {
    if (done) return;
    size += c.length;
    if (size > MAX_SEATS_BODY_BYTES) {
      done = true;
      clearTimeout(timer);
      req.resume();
      fail(res, 413, 'too_large', `the body must be at most ${MAX_SEATS_BODY_BYTES} bytes`, { Connection: 'close' });
      return;
    }
    chunks.push(c);
  });
  req.on('close', () => {
    done = true;
    clearTimeout(timer);
  });
  req.on('end', () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    const text = Buffer.concat(chunks).toString('utf8');
    let value: unknown;
    try {
      value = text.trim() === '' ? {} : JSON.parse(text);
    } catch (err) {
      fail(res, 400, 'bad_json', `the body is not valid JSON: ${(err as Error).message}`);
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      fail(res, 400, 'bad_json', 'the body must be a JSON object');
      return;
    }
    then(value as Record<string, unknown>);
  });
}

export class SeatsEndpoint {
  readonly limiter: RateLimit;

  constructor(
    private readonly seats: AgentSeats,
    now: () => number = Date.now,
  ) {
    this.limiter = new RateLimit(SEATS_RATE_PER_SEC, SEATS_BURST, now);
  }

  /** Handle one request under /v1/seats/. Never throws. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    req.on('error', () => {});
    try {
      this.route(req, res);
    } catch (err) {
      fail(res, 500, 'internal', `seats endpoint failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const addr = req.socket.remoteAddress ?? '';
    if (!this.limiter.allow(addr)) {
      fail(res, 429, 'rate_limited', `over ${SEATS_RATE_PER_SEC} seat requests per second from this address`, { 'Retry-After': String(this.limiter.retryAfter(addr)) });
      return;
    }
    const url = req.url ?? '';
    const q = url.search(/[?#]/);
    const rest = (q < 0 ? url : url.slice(0, q)).slice(SEATS_PREFIX.length);
    if (rest === 'reserve') {
      if (req.method !== 'POST') return void fail(res, 405, 'method_not_allowed', `use POST ${SEATS_PREFIX}reserve`, { Allow: 'POST' });
      readJson(req, res, (b) => {
        const r = this.seats.reserve(b.seats as number | undefined, b.ttlMs as number | undefined);
        if (r.ok) send(res, 200, { server: r.server, ticket: r.ticket, seats: r.seats, expiresAt: r.expiresAt, ttlMs: r.ttlMs });
        else fail(res, STATUS[r.reason], r.reason, r.message);
      });
      return;
    }
    const gate = loopbackGate(req);
    const local = gate === undefined;
    const why = gate === 'host' ? 'the Host header must name a loopback address or localhost' : 'claims and releases are accepted from loopback (the game server beside the agent) only';
    if (rest === 'claim') {
      if (req.method !== 'POST') return void fail(res, 405, 'method_not_allowed', `use POST ${SEATS_PREFIX}claim`, { Allow: 'POST' });
      if (!local) return void fail(res, 403, 'forbidden', why, { Connection: 'close' });
      readJson(req, res, (b) => {
        const r = this.seats.claim(b.ticket as string);
        if (r.ok) send(res, 200, { seats: r.seats, state: r.state });
        else fail(res, STATUS[r.reason], r.reason, r.message);
      });
      return;
    }
    if (rest === '' || rest.includes('/')) return void fail(res, 404, 'not_found', `no such path; see POST ${SEATS_PREFIX}reserve, POST ${SEATS_PREFIX}claim, DELETE ${SEATS_PREFIX}<ticket>`);
    if (req.method !== 'DELETE') return void fail(res, 405, 'method_not_allowed', `use DELETE ${SEATS_PREFIX}<ticket>`, { Allow: 'DELETE' });
    if (!local) return void fail(res, 403, 'forbidden', why, { Connection: 'close' });
    req.resume();
    const r = this.seats.release(rest);
    if (r.ok) send(res, 200, { seats: r.seats, state: r.state });
    else fail(res, STATUS[r.reason], r.reason, r.message);
  }
}
