/** GET /v1/servers (filters, blocking queries, caps, bad parameters) and GET /v1/pick, against real agents. */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { keysOf } from '../../support/keys.js';
import { startAgent, type Agent, type AgentOptions } from '../../../agent/index.js';
import { until } from '../../support/until.js';

const running: Agent[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});

async function agent(node: string, opts: Partial<AgentOptions> = {}): Promise<Agent> {
  const a = await startAgent({ service: 'game', node, host: '127.0.0.1', port: 0, udpPort: 40_000, gossipProfile: 'local', loadIntervalMs: 200, ...opts }, { log: false });
  running.push(a);
  return a;
}

const base = (a: Agent) => `http://127.0.0.1:${a.port}`;
interface Rec {
  id: string;
  service: string;
  health: string;
  zone?: string;
  load?: { connections: number; sessions: number; utilization: number; seq: number; ageMs: number };
}
async function get(a: Agent, path: string, headers: Record<string, string> = {}): Promise<{ status: number; index: number; body: unknown }> {
  const r = await fetch(base(a) + path, { headers });
  return { status: r.status, index: Number(r.headers.get('x-peerlb-index')), body: await r.json() };
}

async function pair(): Promise<[Agent, Agent]> {
  const a = await agent('a1', { zone: 'z1' });
  const b = await agent('b1', { zone: 'z2', join: [a.url] });
  await until(async () => ((await get(a, '/v1/servers?service=game')).body as Rec[]).length === 2, 15_000, 'a sees both');
  return [a, b];
}

describe('GET /v1/servers', () => {
  it('lists the service with its load, filtered by zone and health', async () => {
    const [a, b] = await pair();
    await agent('c1', { service: 'chat', join: [a.url] });
    await until(async () => ((await get(a, '/v1/servers?service=chat')).body as Rec[]).length === 1, 15_000, 'chat seen');
    const all = await get(a, '/v1/servers?service=game');
    expect(all.status).toBe(200);
    expect(all.index).toBeGreaterThan(0);
    const recs = all.body as Rec[];
    expect(recs.map((r) => r.id)).toEqual(['a1', 'b1']);
    await until(async () => ((await get(a, '/v1/servers?service=game')).body as Rec[]).every((r) => r.load !== undefined), 15_000, 'loads');
    expect(((await get(a, '/v1/servers?service=game&zone=z2')).body as Rec[]).map((r) => r.id)).toEqual(['b1']);
    void b.drain();
    await until(async () => ((await get(a, '/v1/servers?service=game')).body as Rec[]).some((r) => r.health === 'draining'), 15_000, 'drain seen');
    expect(((await get(a, '/v1/servers?service=game&healthy=1')).body as Rec[]).map((r) => r.id)).toEqual(['a1']);
    expect(((await get(a, '/v1/servers?service=game&healthy=0')).body as Rec[]).map((r) => r.id)).toEqual(['a1', 'b1']);
  });

  it('a blocking query returns on a change with a higher index, and after wait with the same index', async () => {
    const [a, b] = await pair();
    // No load changes in this agent's view of the wait: huge load interval is not available per test,
    // so wait on a quiet zone-filtered service instead: another service nobody reports for.
    const first = await get(a, '/v1/servers?service=nobody');
    expect(first.body).toEqual([]);
    const t0 = Date.now();
    const timedOut = await get(a, `/v1/servers?service=nobody&index=${first.index}&wait=300ms`);
    expect(timedOut.status).toBe(200);
    expect(timedOut.index).toBe(first.index);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    // A change: b drains; a query blocked on game's index returns with a higher index and shows it.
    const now = await get(a, '/v1/servers?service=game');
    let drainSeen = false;
    for (let i = 0, idx = now.index; i < 50 && !drainSeen; i++) {
      if (i === 0) void b.drain();
      const r = await get(a, `/v1/servers?service=game&index=${idx}&wait=10s`);
      expect(r.index).toBeGreaterThan(idx);
      idx = r.index;
      drainSeen = (r.body as Rec[]).some((x) => x.id === 'b1' && x.health === 'draining');
    }
    expect(drainSeen).toBe(true);
    // An index from the future (an agent restarted) returns at once.
    const future = await get(a, `/v1/servers?service=nobody&index=999999999&wait=5m`);
    expect(future.index).toBe(first.index);
  });

  it('refuses bad parameters with a 400 naming them', async () => {
    const a = await agent('a1');
    for (const [q, field] of [
      ['', 'service'],
      ['service=game&bogus=1', 'bogus'],
      ['service=game&index=-1', 'index'],
      ['service=game&index=abc', 'index'],
      ['service=game&index=1&wait=forever', 'wait'],
      ['service=game&healthy=maybe', 'healthy'],
      ['service=game&service=chat', 'service'],
      [`service=${'x'.repeat(300)}`, 'service'],
    ] as const) {
      const r = await get(a, `/v1/servers?${q}`);
      expect(r.status, q).toBe(400);
      expect((r.body as { field: string }).field, q).toBe(field);
    }
    const post = await fetch(`${base(a)}/v1/servers?service=game`, { method: 'POST' });
    expect(post.status).toBe(405);
    // The agent still answers.
    expect((await get(a, '/v1/servers?service=game')).status).toBe(200);
  });

  it('caps blocking queries per address (429) and in total (503)', async () => {
    const a = await agent('a1', { limits: { maxSubscribers: 3, maxSubscribersPerAddress: 2 } });
    const idx = (await get(a, '/v1/servers?service=nobody')).index;
    const ctl = new AbortController();
    const held = [0, 1].map(() => fetch(`${base(a)}/v1/servers?service=nobody&index=${idx}&wait=1m`, { signal: ctl.signal }).catch(() => undefined));
    await until(() => (a as unknown as { serversEp: { blocked: number } }).serversEp.blocked === 2, 10_000, 'two blocked');
    const third = await get(a, `/v1/servers?service=nobody&index=${idx}&wait=1m`);
    expect(third.status).toBe(429);
    expect((third.body as { error: string }).error).toBe('too_many_blocking_queries');
    // A non-blocking query is never capped.
    expect((await get(a, '/v1/servers?service=nobody')).status).toBe(200);
    ctl.abort();
    await Promise.all(held);
    await until(() => (a as unknown as { serversEp: { blocked: number } }).serversEp.blocked === 0, 10_000, 'slots freed');
  });

  it('needs the token when the agent has one', async () => {
    const a = await agent('a1', { token: 'sekret' });
    expect((await get(a, '/v1/servers?service=game')).status).toBe(401);
    expect((await get(a, '/v1/pick?service=game')).status).toBe(401);
    expect((await get(a, '/v1/servers?service=game', { authorization: 'Bearer sekret' })).status).toBe(200);
  });
});

describe('GET /v1/pick', () => {
  it('picks among the healthy servers, never a draining one; 503 when none', async () => {
    const [a, b] = await pair();
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) seen.add(((await get(a, '/v1/pick?service=game')).body as Rec).id);
    expect([...seen].sort()).toEqual(['a1', 'b1']);
    const k1 = ((await get(a, '/v1/pick?service=game&key=player-7')).body as Rec).id;
    for (let i = 0; i < 10; i++) expect(((await get(a, '/v1/pick?service=game&key=player-7')).body as Rec).id).toBe(k1);
    void b.drain();
    await until(async () => ((await get(a, '/v1/servers?service=game&healthy=1')).body as Rec[]).length === 1, 15_000, 'drain seen');
    for (let i = 0; i < 30; i++) expect(((await get(a, '/v1/pick?service=game')).body as Rec).id).toBe('a1');
    const none = await get(a, '/v1/pick?service=nobody');
    expect(none.status).toBe(503);
    expect((none.body as { error: string }).error).toBe('no_server');
    expect((await get(a, '/v1/pick?service=game&index=1')).status).toBe(400);
  });
});

describe('HTTP-API.md', () => {
  it('HTTP-API.md names every field the agent answers on /v1/servers, /v1/pick, /v1/members, /v1/health and in errors', async () => {
    const [a, b] = await pair();
    await until(async () => ((await get(a, '/v1/servers?service=game')).body as Rec[]).every((r) => r.load !== undefined), 15_000, 'loads');
    const keys = new Set<string>();
    for (const path of ['/v1/servers?service=game', '/v1/pick?service=game', '/v1/pick?service=nobody', '/v1/members', '/v1/health', '/v1/servers?bogus=1'])
      keysOf((await get(a, path)).body, keys);
    void b.drain();
    const doc = readFileSync(new URL('../../../HTTP-API.md', import.meta.url), 'utf8');
    expect(keys.has('utilization') && keys.has('incarnation') && keys.has('field')).toBe(true);
    const missing = [...keys].filter((k) => !doc.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});
