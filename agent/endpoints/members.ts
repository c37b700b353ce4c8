/**
 * `GET /v1/members`: every member this agent knows, as JSON, built once per change and shared.
 *
 * At 10,000 members the answer is ~2 MB of JSON; building it per request let 50 concurrent
 * requests take seconds each. Here the rows are built (and each stringified) once, kept sorted by
 * node, and rebuilt only when something changed — at most every MIN_REBUILD_MS, however fast the
 * cluster churns, and at least every MAX_AGE_MS (each row's `ageMs` grows).
 *
 *   GET /v1/members                         the whole array (as before)
 *   GET /v1/members?service=game            only that service's members
 *   GET /v1/members?limit=500&after=node-41 a page: up to `limit` rows after that node (by node name);
 *                                           `x-peerlb-next` names the cursor of the next page, when there is one
 *
 * `x-peerlb-total` is the number of rows matching the filter. A bad parameter is a 400 naming it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A cached answer is rebuilt after a change no sooner than this, and never kept longer than MAX_AGE_MS. */
export const MIN_REBUILD_MS = 100;
export const MAX_AGE_MS = 1000;
/** Largest page. */
export const MAX_PAGE = 10_000;

interface Row {
  node: string;
  service: string;
  json: string;
}

export class MembersEndpoint {
  private rows: Row[] = [];
  private whole: string | undefined;
  private builtAt = -Infinity;
  private dirty = true;
  readonly counters = { builds: 0, requests: 0 };

  constructor(
    private readonly build: () => Array<{ node: string; service: string }>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Something a row shows changed. */
  changed(): void {
    this.dirty = true;
  }

  private fresh(): void {
    const age = this.now() - this.builtAt;
    if (!(age >= MAX_AGE_MS || (this.dirty && age >= MIN_REBUILD_MS))) return;
    this.rows = this.build()
      .map((m) => ({ node: m.node, service: m.service, json: JSON.stringify(m) }))
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    this.whole = undefined;
    this.builtAt = this.now();
    this.dirty = false;
    this.counters.builds++;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.counters.requests++;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET');
      return reply(res, 405, JSON.stringify({ error: 'method_not_allowed', message: 'use GET' }));
    }
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    for (const k of q.keys()) if (k !== 'service' && k !== 'limit' && k !== 'after') return bad(res, k, 'is not a parameter (service, limit, after)');
    const service = q.get('service') ?? undefined;
    if (service !== undefined && (service.length === 0 || service.length > 63)) return bad(res, 'service', 'must be a service name');
    let limit: number | undefined;
    if (q.has('limit')) {
      limit = Number(q.get('limit'));
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) return bad(res, 'limit', `must be an integer in 1..${MAX_PAGE}`);
    }
    const after = q.get('after') ?? undefined;
    if (after !== undefined && after.length > 256) return bad(res, 'after', 'must be a node name');
    this.fresh();
    if (service === undefined && limit === undefined && after === undefined) {
      this.whole ??= `[${this.rows.map((r) => r.json).join(',')}]`;
      res.setHeader('x-peerlb-total', this.rows.length);
      return reply(res, 200, this.whole);
    }
    const matching = service === undefined ? this.rows : this.rows.filter((r) => r.service === service);
    let start = 0;
    if (after !== undefined) {
      // First row whose node sorts after the cursor (binary search: rows are sorted by node).
      let lo = 0;
      let hi = matching.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (matching[mid]!.node <= after) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const end = limit === undefined ? matching.length : Math.min(matching.length, start + limit);
    const page = matching.slice(start, end);
    res.setHeader('x-peerlb-total', matching.length);
    if (end < matching.length && page.length > 0) res.setHeader('x-peerlb-next', page[page.length - 1]!.node);
    reply(res, 200, `[${page.map((r) => r.json).join(',')}]`);
  }
}

function reply(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function bad(res: ServerResponse, field: string, message: string): void {
  reply(res, 400, JSON.stringify({ error: 'bad_request', field, message: `${field} ${message}` }));
}
