/**
 * The HTTP API for clients in any language (HTTP-API.md has every field):
 *
 *   GET /v1/servers?service=game[&zone=z][&healthy=1]   the service's live servers with their load
 *       [&index=<n>&wait=<duration>]                     a blocking query, in Consul's manner
 *   GET /v1/pick?service=game[&key=k][&zone=z]           one server, chosen by the agent (agent/choose.ts)
 *
 * The index (`x-peerlb-index`) is a per-agent counter of view changes, starting at 1: every change
 * of a member (join, leave, death, health, drain, weight, zone) and every load report of a member
 * takes the next value, and each service remembers the value of its last change. Load reports
 * count, because clients balance on load; they are coalesced: blocked queries are answered at most
 * every COALESCE_MS, so a burst of reports (one per member per load interval) answers each waiter
 * once. A blocking query whose `index` is below its service's index returns at once; otherwise it
 * waits for the next change of that service, or `wait` (default and cap MAX_WAIT_MS, 5 min; Consul
 * caps at 10 min), and then answers the current view either way, with the current index. An
 * `index` above the current one (the agent restarted and counts from 1 again) returns at once, as
 * Consul does, so a client never waits on an index that will not come.
 *
 * Blocked queries hold a slot, per address and in total (admission.ts AddressSlots, the limits of
 * /v1/watch subscribers): past the address's share the answer is 429, past the total 503; a slot
 * taken from the address holding most (the fair share) answers that query at once. A bad parameter
 * is a 400 naming it. With a token (`--token`), both need `authorization: Bearer <token>` (401).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AddressSlots, tokenMatches } from '../admission.js';
import { chooseServers } from '../choose.js';
import type { Clock, TimerHandle } from '../../sdk/core/clock.js';
import type { Random } from '../../sdk/core/random.js';
import type { ServerRecord } from '../../sdk/core/protocol.js';

export const MAX_WAIT_MS = 5 * 60_000;
/** Blocked queries are answered at most this often (a burst of changes answers once). */
export const COALESCE_MS = 100;
/** Longest service, zone or key parameter. */
const MAX_PARAM = 255;

export interface ServersEndpointOptions {
  /** The live servers of the agent's view (alive or suspect members), as /v1/watch sends them. */
  servers: () => ServerRecord[];
  clock: Clock;
  random: Random;
  token: string | undefined;
  maxBlocking: number;
  maxBlockingPerAddress: number;
}

interface Waiter {
  service: string;
  index: number;
  answer: () => void;
}

export class ServersEndpoint {
  private index = 1;
  private readonly serviceIndex = new Map<string, number>();
  private readonly slots: AddressSlots<Waiter>;
  private flushTimer: TimerHandle | undefined;
  private lastFlush = -Infinity;
  readonly counters = { requests: 0, blocked: 0, refused: { address: 0, total: 0 } };

  constructor(private readonly o: ServersEndpointOptions) {
    this.slots = new AddressSlots<Waiter>(o.maxBlocking, o.maxBlockingPerAddress, (w) => w.answer());
  }

  /** The current index of `service` (1 before any change was seen). */
  indexOf(service: string): number {
    return this.serviceIndex.get(service) ?? 1;
  }

  /** Something of `service`'s servers changed (a member, or its load): the next index, waiters answered soon. */
  changed(service: string): void {
    this.serviceIndex.set(service, ++this.index);
    if (this.flushTimer !== undefined || this.slots.size === 0) return;
    const delay = Math.max(0, this.lastFlush + COALESCE_MS - this.o.clock.now());
    this.flushTimer = this.o.clock.setTimeout(() => this.flush(), delay);
    this.flushTimer.unref?.();
  }

  /** Blocked queries now waiting. */
  get blocked(): number {
    return this.slots.size;
  }

  /** Answer every blocked query (the agent stops). */
  close(): void {
    this.o.clock.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const w of this.slots.items()) w.answer();
  }

  private flush(): void {
    this.flushTimer = undefined;
    this.lastFlush = this.o.clock.now();
    for (const w of this.slots.items()) if (this.indexOf(w.service) > w.index) w.answer();
  }

  /** GET /v1/servers */
  servers(req: IncomingMessage, res: ServerResponse): void {
    this.counters.requests++;
    const q = this.gate(req, res, ['service', 'zone', 'healthy', 'index', 'wait']);
    if (!q) return;
    const service = q.get('service')!;
    const zone = q.get('zone') ?? undefined;
    let healthy = false;
    if (q.has('healthy')) {
      const h = q.get('healthy');
      if (h === '1' || h === 'true' || h === '') healthy = true;
      else if (h !== '0' && h !== 'false') return bad(res, 'healthy', 'must be 1 or 0 (true or false)');
    }
    let index: number | undefined;
    if (q.has('index')) {
      index = Number(q.get('index'));
      if (!/^\d{1,15}$/.test(q.get('index')!) || !Number.isSafeInteger(index)) return bad(res, 'index', 'must be an integer ≥ 0 (the x-peerlb-index of an earlier answer)');
    }
    let waitMs = MAX_WAIT_MS;
    if (q.has('wait')) {
      const w = parseWait(q.get('wait')!);
      if (w === undefined) return bad(res, 'wait', 'must be a duration such as 500ms, 5s or 2m (a bare number is seconds)');
      waitMs = Math.min(w, MAX_WAIT_MS);
    }
    const send = (): void => {
      const list = this.o.servers().filter((s) => s.service === service && (zone === undefined || s.zone === zone) && (!healthy || s.health === 'healthy'));
      list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const text = JSON.stringify(list);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-peerlb-index': this.indexOf(service) });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const current = this.indexOf(service);
    if (index === undefined || index !== current || waitMs === 0) return send();
    // Blocking: wait for a change past `index`, or `wait`.
    const addr = req.socket.remoteAddress ?? '';
    let timer: TimerHandle | undefined;
    let done = false;
    const w: Waiter = {
      service,
      index,
      answer: () => {
        if (done) return;
        done = true;
        this.o.clock.clearTimeout(timer);
        this.slots.delete(w);
        if (!res.destroyed) send();
      },
    };
    const why = this.slots.add(addr, w);
    if (why) {
      this.counters.refused[why]++;
      const status = why === 'address' ? 429 : 503;
      res.setHeader('retry-after', 1);
      return sendError(res, status, 'too_many_blocking_queries', why === 'address' ? `too many blocking queries from this address (at most ${this.slots.maxPerAddress})` : `too many blocking queries (at most ${this.slots.max})`);
    }
    this.counters.blocked++;
    timer = this.o.clock.setTimeout(w.answer, waitMs);
    timer.unref?.();
    res.on('close', () => {
      if (done) return;
      done = true;
      this.o.clock.clearTimeout(timer);
      this.slots.delete(w);
    });
  }

  /** GET /v1/pick */
  pick(req: IncomingMessage, res: ServerResponse): void {
    this.counters.requests++;
    const q = this.gate(req, res, ['service', 'key', 'zone']);
    if (!q) return;
    const service = q.get('service')!;
    const key = q.get('key') ?? undefined;
    const zone = q.get('zone') ?? undefined;
    const list = this.o.servers().filter((s) => s.service === service);
    const [chosen] = chooseServers(list, 1, { random: this.o.random, key, zone });
    if (!chosen) return sendError(res, 503, 'no_server', `no healthy server of service ${JSON.stringify(service)} (of ${list.length} known)`, { 'x-peerlb-index': this.indexOf(service) });
    const text = JSON.stringify(chosen);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-peerlb-index': this.indexOf(service) });
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  /** Method, token and the parameters every query shares; undefined when answered (refused). */
  private gate(req: IncomingMessage, res: ServerResponse, allowed: string[]): URLSearchParams | undefined {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendError(res, 405, 'method_not_allowed', 'use GET');
      return undefined;
    }
    if (!tokenMatches(this.o.token, req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer');
      sendError(res, 401, 'unauthorized', 'this agent needs its token: authorization: Bearer <token>');
      return undefined;
    }
    let q: URLSearchParams;
    try {
      q = new URL(req.url ?? '/', 'http://x').searchParams;
    } catch {
      bad(res, 'url', 'is not a URL');
      return undefined;
    }
    for (const k of q.keys())
      if (!allowed.includes(k)) {
        bad(res, k, `is not a parameter (${allowed.join(', ')})`);
        return undefined;
      }
    for (const k of allowed)
      if (q.getAll(k).length > 1) {
        bad(res, k, 'is given more than once');
        return undefined;
      }
    const service = q.get('service');
    if (service === null || service.length === 0) {
      bad(res, 'service', 'is required (the service name the servers announce)');
      return undefined;
    }
    for (const k of ['service', 'zone', 'key'])
      if ((q.get(k)?.length ?? 0) > MAX_PARAM) {
        bad(res, k, `must be at most ${MAX_PARAM} characters`);
        return undefined;
      }
    return q;
  }
}

/** A duration: `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds (Consul's `wait`); undefined if not one. */
export function parseWait(s: string): number | undefined {
  const m = /^(\d{1,9}(?:\.\d{1,3})?)(ms|s|m|h)?$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
}

function sendError(res: ServerResponse, status: number, error: string, message: string, headers: Record<string, string | number> = {}): void {
  const text = JSON.stringify({ error, message });
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function bad(res: ServerResponse, field: string, message: string): void {
  const text = JSON.stringify({ error: 'bad_request', field, message: `${field} ${message}` });
  res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
