/**
 * Seats (issue 17) end to end: 20 real agent processes (`peerlb agent --capacity 10`) on loopback,
 * the SDK's cluster.reserve() over fetch to each server's own agent, the game server's claim and
 * release over the loopback-only endpoints. The agents are the authority: however stale the views
 * and however many callers at once, no server grants more than its capacity.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopAll, until, type AgentProc } from '../../support/agents.js';
import { parseProm, sample } from '../../support/prom.js';
import { join, FullError, SEAT_MARK_MS, type Cluster, type Reservation } from '../../../sdk/index.js';

/** The 20 servers of 10 seats: started four at a time, each given a minute on a busy 2-core box. */
const AGENTS = 20;
const LOAD_INTERVAL_MS = 100;
const CAPACITY = 10;
const TTL = 60_000;
const name = (i: number) => `s${String(i).padStart(2, '0')}`;

const agents: AgentProc[] = [];
let cluster: Cluster;
const byNode = (node: string) => agents.find((a) => a.node === node)!;

async function seatMetrics(a: AgentProc): Promise<{ held: number; claimed: number; grants: number; capacity: number }> {
  const fam = parseProm(await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text());
  return {
    held: sample(fam, 'peerlb_seats', { kind: 'held' }),
    claimed: sample(fam, 'peerlb_seats', { kind: 'claimed' }),
    capacity: sample(fam, 'peerlb_seats', { kind: 'capacity' }),
    grants: sample(fam, 'peerlb_seat_grants_total'),
  };
}

function request(a: AgentProc, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: a.port, method, path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const release = (r: Reservation) => request(byNode(r.server.id), 'DELETE', `/v1/seats/${r.ticket}`);
/** The server a ticket names, read from its (signed) payload. */
const ticketServer = (t: string) => Buffer.from(t.split('.')[0]!, 'base64url').toString().split('\n')[1];

/** Run `total` reserve() calls from `callers` concurrent loops; granted reservations and FullError count. */
async function reserveMany(total: number, callers: number, opts: Parameters<Cluster['reserve']>[0] = {}): Promise<{ granted: Reservation[]; full: number; reasons: Record<string, number> }> {
  const granted: Reservation[] = [];
  const reasons: Record<string, number> = {};
  let full = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < total) {
        next++;
        try {
          granted.push(await cluster.reserve({ ttlMs: TTL, ...opts }));
        } catch (err) {
          if (!(err instanceof FullError)) throw err;
          expect(err.code).toBe('PEERLB_ERR_FULL');
          full++;
          for (const r of err.refusals) reasons[r.reason.split(':')[0]!] = (reasons[r.reason.split(':')[0]!] ?? 0) + 1;
        }
      }
    }),
  );
  return { granted, full, reasons };
}

/** Wait until every client view shows `sessions` seats in use in total (the agents published them). */
const viewShows = (sessions: number, what: string, timeoutMs = 20_000) =>
  until(() => cluster.servers().reduce((n, s) => n + (s.load?.sessions ?? 0), 0) === sessions, timeoutMs, what);
const marksExpire = () => new Promise((r) => setTimeout(r, SEAT_MARK_MS + 200));

beforeAll(async () => {
  const extra = ['--capacity', String(CAPACITY), '--load-interval', String(LOAD_INTERVAL_MS)];
  const startTimeoutMs = 60_000;
  agents.push(await spawnAgent(name(0), { extra, startTimeoutMs }));
  // Four at a time, all joining the first (20 processes take a while on a busy 2-core box).
  for (let i = 1; i < AGENTS; i += 4)
    agents.push(...(await Promise.all(Array.from({ length: Math.min(4, AGENTS - i) }, (_, k) => spawnAgent(name(i + k), { join: [agents[0]!.url], extra, startTimeoutMs })))));
  cluster = await join({ service: 'game', discovery: { agents: [agents[0]!.url] } });
  await until(() => cluster.servers().filter((s) => s.health === 'healthy' && s.agent).length === AGENTS, 60_000, `${AGENTS} servers in the view`);
}, 300_000);

afterAll(async () => {
  await cluster?.close();
  await stopAll(agents);
});

describe('seats over HTTP (one agent)', () => {
  it('reserve, claim from loopback, refusals with reasons, release', async () => {
    const a = agents[0]!;
    const r = await request(a, 'POST', '/v1/seats/reserve', JSON.stringify({ seats: 2, ttlMs: 60_000 }));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ server: a.node, seats: 2, ttlMs: 60_000 });
    const ticket = r.json.ticket as string;
    expect(ticketServer(ticket)).toBe(a.node);
    expect((await seatMetrics(a)).held).toBe(2);

    expect(await request(a, 'POST', '/v1/seats/claim', JSON.stringify({ ticket }))).toEqual({ status: 200, json: { seats: 2, state: 'claimed' } });
    expect((await request(a, 'POST', '/v1/seats/claim', JSON.stringify({ ticket }))).json.error).toBe('reused');
    // Another agent's ticket (its own secret, its own server): other_server; the same ticket with a
    // changed MAC, shown to its own agent: forged.
    expect(await request(agents[1]!, 'POST', '/v1/seats/claim', JSON.stringify({ ticket }))).toMatchObject({ status: 403, json: { error: 'other_server' } });
    const [payload, mac] = ticket.split('.') as [string, string];
    expect(await request(a, 'POST', '/v1/seats/claim', JSON.stringify({ ticket: `${payload}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}` }))).toMatchObject({ status: 403, json: { error: 'forged' } });
    expect((await request(a, 'POST', '/v1/seats/claim', '{"ticket":'))).toMatchObject({ status: 400, json: { error: 'bad_json' } });
    expect(await request(a, 'POST', '/v1/seats/reserve', JSON.stringify({ seats: 11 }))).toMatchObject({ status: 400, json: { error: 'bad_seats' } });
    expect(await request(a, 'POST', '/v1/seats/reserve', JSON.stringify({ seats: 1, ttlMs: 10 ** 9 }))).toMatchObject({ status: 400, json: { error: 'bad_ttl' } });
    expect(await request(a, 'POST', '/v1/seats/reserve', 'x'.repeat(2000))).toMatchObject({ status: 413, json: { error: 'too_large' } });
    expect(await request(a, 'GET', '/v1/seats/reserve')).toMatchObject({ status: 405 });
    expect(await request(a, 'POST', '/v1/seats/nope/x')).toMatchObject({ status: 404 });
    // A page on a rebound DNS name (its Host) may not claim or release.
    expect(await request(a, 'DELETE', `/v1/seats/${ticket}`, undefined, { host: 'evil.example' })).toMatchObject({ status: 403, json: { error: 'forbidden' } });
    expect(await request(a, 'DELETE', `/v1/seats/${ticket}`)).toEqual({ status: 200, json: { seats: 2, state: 'claimed' } });
    expect(await request(a, 'DELETE', `/v1/seats/${ticket}`)).toMatchObject({ status: 410, json: { error: 'reused' } });
    expect(await seatMetrics(a)).toMatchObject({ held: 0, claimed: 0, capacity: CAPACITY });
    // The agent is still up and answering.
    expect((await fetch(`http://127.0.0.1:${a.port}/v1/health`)).status).toBe(200);
  });
});

describe('seat expiry (one agent)', () => {
  it('unclaimed holds return to the pool within ttl + one load interval: the agent grants again, and views show them free', async () => {
    const a = agents[agents.length - 1]!;
    const ttlMs = 500;
    const began = Date.now();
    for (let i = 0; i < CAPACITY; i++) expect((await request(a, 'POST', '/v1/seats/reserve', JSON.stringify({ seats: 1, ttlMs }))).status).toBe(200);
    expect(await request(a, 'POST', '/v1/seats/reserve', JSON.stringify({ seats: 1, ttlMs }))).toMatchObject({ status: 409, json: { error: 'full' } });
    const grantedAt = Date.now();
    // The seats travel with the load: the client watches the first agent, which learned this
    // agent's record by gossip. (The holds may have expired already on a slow box: then held is 0.)
    const seen = cluster.servers().find((s) => s.id === a.node)?.load?.seats;
    expect(seen === undefined || (seen.capacity === CAPACITY && seen.claimed === 0 && seen.held <= CAPACITY)).toBe(true);
    // The agent's own view: the seats are free again once the ttl has passed (checked lazily on each request).
    await until(async () => (await seatMetrics(a)).held === 0, 10_000, 'holds expired on the agent');
    const freeAt = Date.now();
    // Its published load (what every view reads) follows within one load interval; measured through the SDK's view.
    await until(() => {
      const l = cluster.servers().find((s) => s.id === a.node)?.load;
      return l?.sessions === 0 && l.seats?.held === 0 && l.seats.capacity === CAPACITY;
    }, 10_000, 'the view shows the seats free');
    const seenAt = Date.now();
    expect(freeAt - began).toBeGreaterThanOrEqual(ttlMs);
    // ttl + one load interval, plus the time the grants themselves took and the watch's delivery;
    // generous for a busy box, and still far from "never returned".
    expect(seenAt - grantedAt).toBeLessThanOrEqual(ttlMs + LOAD_INTERVAL_MS + 2000);
    expect((await request(a, 'POST', '/v1/seats/reserve', JSON.stringify({ seats: CAPACITY, ttlMs }))).status).toBe(200);
    await until(async () => (await seatMetrics(a)).held === 0, 10_000, 'the last hold expired too');
    // An expired ticket is refused as expired when the game server finally claims it.
    const late = await request(a, 'POST', '/v1/seats/reserve', JSON.stringify({ seats: 1, ttlMs: 100 }));
    await new Promise((r) => setTimeout(r, 250));
    expect(await request(a, 'POST', '/v1/seats/claim', JSON.stringify({ ticket: late.json.ticket }))).toMatchObject({ status: 410, json: { error: 'expired' } });
    await viewShows(0, 'an empty view again');
  });
});

describe('cluster.reserve() over 20 agents × 10 seats', () => {
  it('50 concurrent callers asking for 1,000 seats get exactly 20 × 10, never over 10 per server; releasing 50 lets exactly 50 in', async () => {
    await viewShows(0, 'an empty view');
    const before = await Promise.all(agents.map(seatMetrics));
    // Every agent's own held + claimed, sampled throughout the run: never over capacity at any instant.
    let sampling = true;
    let samples = 0;
    const maxInUse = new Map<string, number>();
    const sampler = (async () => {
      while (sampling) {
        const ms = await Promise.all(agents.map(seatMetrics));
        ms.forEach((m, i) => maxInUse.set(agents[i]!.node, Math.max(maxInUse.get(agents[i]!.node) ?? 0, m.held + m.claimed)));
        samples++;
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const { granted, full, reasons } = await reserveMany(1000, 50);
    sampling = false;
    await sampler;
    expect(samples).toBeGreaterThan(0);
    expect(maxInUse.size).toBe(AGENTS);
    for (const n of maxInUse.values()) expect(n).toBeLessThanOrEqual(CAPACITY);
    // A request whose answer was lost (timeout, reset on a busy box) may have been granted: its hold
    // is the agent's until it expires. Without such losses (the usual case) the count is exact.
    const lost = (reasons.timeout ?? 0) + (reasons.unreachable ?? 0);
    expect(granted.length).toBeLessThanOrEqual(AGENTS * CAPACITY);
    expect(granted.length + lost).toBeGreaterThanOrEqual(AGENTS * CAPACITY);
    if (lost === 0) expect(granted.length).toBe(AGENTS * CAPACITY);
    expect(full).toBe(1000 - granted.length);
    // From the tickets: never more than 10 per server, and each names the server it came from.
    const perServer = new Map<string, number>();
    for (const g of granted) {
      expect(ticketServer(g.ticket)).toBe(g.server.id);
      perServer.set(g.server.id, (perServer.get(g.server.id) ?? 0) + g.seats);
    }
    expect(perServer.size).toBe(AGENTS);
    for (const n of perServer.values()) expect(n).toBe(CAPACITY);
    // From the agents' counters.
    const after = await Promise.all(agents.map(seatMetrics));
    after.forEach((m, i) => {
      expect(m.held).toBe(CAPACITY);
      expect(m.grants - before[i]!.grants).toBe(CAPACITY);
    });

    // Seats travel with the load in gossip and the watch: the view (of the first agent, which
    // learned 19 of the 20 by gossip) shows every server's held seats at capacity, so no free seats.
    await until(() => cluster.servers().every((s) => s.load?.seats?.capacity === CAPACITY && s.load.seats.held === CAPACITY && s.load.seats.claimed === 0), 20_000, 'every record in the view shows its server full');

    const freed = granted.splice(0, 50);
    for (const r of freed) expect((await release(r)).status).toBe(200);
    await viewShows(AGENTS * CAPACITY - 50, 'the view to show 50 seats free');
    await marksExpire();
    const again = await reserveMany(100, 50);
    const lostAgain = (again.reasons.timeout ?? 0) + (again.reasons.unreachable ?? 0);
    expect(again.granted.length).toBeLessThanOrEqual(50);
    expect(again.granted.length + lostAgain).toBeGreaterThanOrEqual(50);
    if (lostAgain === 0) expect(again.granted.length).toBe(50);
    expect(again.full).toBe(100 - again.granted.length);
    expect((await Promise.all(agents.map(seatMetrics))).every((m) => m.held === CAPACITY)).toBe(true);
    for (const r of [...granted, ...again.granted]) expect((await release(r)).status).toBe(200);
  }, 120_000);

  it('55 one-seat reservations: spread uses every server, pack fills 6', async () => {
    // Holds whose grant was lost to a timeout in the test before expire after TTL.
    await viewShows(0, 'an empty view', TTL + 15_000);
    await marksExpire();
    const spread = await reserveMany(55, 55, { mode: 'spread' });
    expect(spread.full).toBe(0);
    expect(new Set(spread.granted.map((g) => g.server.id)).size).toBe(AGENTS);
    for (const r of spread.granted) expect((await release(r)).status).toBe(200);

    await viewShows(0, 'an empty view again');
    await marksExpire();
    const pack = await reserveMany(55, 55, { mode: 'pack', attempts: 10 });
    expect(pack.full).toBe(0);
    const used = new Map<string, number>();
    for (const g of pack.granted) used.set(g.server.id, (used.get(g.server.id) ?? 0) + 1);
    expect(used.size).toBe(6);
    expect([...used.values()].sort((x, y) => y - x)).toEqual([10, 10, 10, 10, 10, 5]);
    for (const r of pack.granted) expect((await release(r)).status).toBe(200);
  }, 200_000);
});
