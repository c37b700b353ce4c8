/** cluster.reserve's choice and failover (sdk/core/seats.ts) over a fake fetch: no sockets. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { SeatReserver, SEAT_MARK_MS, agentHttpUrl, type FetchLike } from '../../../../sdk/core/seats.js';
import { FullError } from '../../../../sdk/core/errors.js';
import type { ServerView } from '../../../../sdk/core/server.js';

const view = (id: string, port: number): ServerView => ({ id, host: '127.0.0.1', agent: `ws://127.0.0.1:${port}`, health: 'healthy', load: { connections: 0, sessions: 0, utilization: 0, seq: 1, ageMs: 0 } }) as unknown as ServerView;

/** Fake agents: `cap` seats each, answering like /v1/seats/reserve; `down` ports throw. */
function fakeAgents(n: number, cap: number, down = new Set<number>()) {
  const used = new Map<number, number>();
  const asked: number[] = [];
  const fetchFn: FetchLike = async (url, init) => {
    const port = Number(new URL(url).port);
    asked.push(port);
    if (down.has(port)) throw new Error('connect ECONNREFUSED');
    const { seats } = JSON.parse(init.body) as { seats: number };
    const u = used.get(port) ?? 0;
    if (u + seats > cap) return { status: 409, text: async () => '{"error":"full","message":"full"}' };
    used.set(port, u + seats);
    return { status: 200, text: async () => JSON.stringify({ server: `s${port}`, ticket: `t.${port}`, seats, expiresAt: 1, ttlMs: 15000 }) };
  };
  const views = Array.from({ length: n }, (_, i) => view(`s${String(i).padStart(2, '0')}`, 1000 + i));
  return { fetchFn, views, used, asked };
}

describe('SeatReserver', () => {
  it('spread places 55 seats on all 20 servers; pack on 6, fullest first', async () => {
    for (const [mode, servers] of [['spread', 20], ['pack', 6]] as const) {
      const a = fakeAgents(20, 10);
      const r = new SeatReserver('game', () => a.views, a.fetchFn, new ManualClock(0), new XorShiftRandom(7));
      const got = await Promise.all(Array.from({ length: 55 }, () => r.reserve({ mode, attempts: 10 })));
      expect(new Set(got.map((g) => g.server.id)).size).toBe(servers);
      expect([...a.used.values()].every((n) => n <= 10)).toBe(true);
    }
  });

  it('a full or unreachable server is marked and the next one asked; all full is a FullError', async () => {
    const a = fakeAgents(3, 1, new Set([1001]));
    const clock = new ManualClock(0);
    const r = new SeatReserver('game', () => a.views, a.fetchFn, clock, new XorShiftRandom(1));
    const first = await r.reserve({ mode: 'pack' });
    expect(first.server.id).toBe('s00');
    const second = await r.reserve({ mode: 'pack' });
    expect(second.server.id).toBe('s02'); // s01 unreachable: marked, s02 asked next
    const err = await r.reserve({ mode: 'pack' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FullError);
    expect((err as FullError).code).toBe('PEERLB_ERR_FULL');
    // Within the mark nobody is asked again; after it, they are.
    const before = a.asked.length;
    await expect(r.reserve()).rejects.toBeInstanceOf(FullError);
    expect(a.asked.length).toBe(before);
    clock.advance(SEAT_MARK_MS);
    await expect(r.reserve()).rejects.toBeInstanceOf(FullError);
    expect(a.asked.length).toBeGreaterThan(before);
  });

  it('checks its options, and maps agent URLs to http(s)', async () => {
    const a = fakeAgents(1, 1);
    const r = new SeatReserver('game', () => a.views, a.fetchFn, new ManualClock(0), new XorShiftRandom(1));
    for (const o of [{ seats: 0 }, { seats: 1.5 }, { attempts: 0 }, { ttlMs: -1 }, { mode: 'x' as 'pack' }]) await expect(r.reserve(o)).rejects.toMatchObject({ code: 'PEERLB_ERR_BAD_OPTION' });
    expect(agentHttpUrl('ws://10.0.0.1:7946')).toBe('http://10.0.0.1:7946');
    expect(agentHttpUrl('wss://[::1]:7946/')).toBe('https://[::1]:7946');
    const ac = new AbortController();
    ac.abort();
    await expect(r.reserve({ signal: ac.signal })).rejects.toMatchObject({ code: 'PEERLB_ERR_ABORTED' });
  });
});
