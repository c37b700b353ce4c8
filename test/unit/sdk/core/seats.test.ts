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

  describe("with the seats in the records (load.seats)", () => {
    /** A view whose report carries seats: `used` claimed, `held` held, of `capacity`. */
    const seated = (id: string, port: number, capacity: number, claimed: number, held = 0, seq = 1): ServerView =>
      ({ ...view(id, port), load: { connections: 0, sessions: claimed + held, utilization: (claimed + held) / capacity, seq, ageMs: 0, seats: { capacity, held, claimed } } }) as unknown as ServerView;

    it('asks only servers whose free seats (capacity − held − claimed − own placements) leave room', async () => {
      const a = fakeAgents(3, 1000);
      // s00 full by its report, s01 forged past its capacity (held + claimed > capacity), s02 has 2 free.
      const views = [seated('s00', 1000, 10, 8, 2), seated('s01', 1001, 10, 0, 50), seated('s02', 1002, 10, 7, 1)];
      const r = new SeatReserver('game', () => views, a.fetchFn, new ManualClock(0), new XorShiftRandom(3));
      expect((await r.reserve()).server.id).toBe('s02');
      expect((await r.reserve({ mode: 'pack' })).server.id).toBe('s02');
      // Its 2 free seats are this client's now (no new report yet): nobody else is asked.
      const err = await r.reserve().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FullError);
      expect((err as FullError).refusals).toEqual([]);
      expect(a.asked).toEqual([1002, 1002]);
      // A newer report that counts them (held 3 of 10 with 7 claimed: still full), then one after a release.
      views[2] = seated('s02', 1002, 10, 7, 3, 2);
      await expect(r.reserve()).rejects.toBeInstanceOf(FullError);
      views[2] = seated('s02', 1002, 10, 7, 2, 3);
      expect((await r.reserve()).server.id).toBe('s02');
      // Two seats at once need two free: none has them.
      views[2] = seated('s02', 1002, 10, 7, 2, 4);
      await expect(r.reserve({ seats: 2 })).rejects.toBeInstanceOf(FullError);
      expect(a.asked).toEqual([1002, 1002, 1002]);
    });

    it('pack takes the fullest server that still has room for the seats asked for', async () => {
      const a = fakeAgents(3, 1000);
      const views = [seated('s00', 1000, 10, 9), seated('s01', 1001, 10, 7), seated('s02', 1002, 10, 2)];
      const r = new SeatReserver('game', () => views, a.fetchFn, new ManualClock(0), new XorShiftRandom(3));
      expect((await r.reserve({ mode: 'pack', seats: 2 })).server.id).toBe('s01'); // s00 has 1 free: no room for 2
      expect((await r.reserve({ mode: 'pack', seats: 1 })).server.id).toBe('s00');
      // s00 is full now by this client's own count; s01 has 1 left.
      expect((await r.reserve({ mode: 'pack', seats: 1 })).server.id).toBe('s01');
      expect((await r.reserve({ mode: 'pack', seats: 1 })).server.id).toBe('s02');
    });

    it('spread compares the free share (free / capacity), not the free count, and counts its own placements', async () => {
      const a = fakeAgents(2, 1000);
      // s00: 4 of 4 free (share 1); s01: 50 of 100 free (share 0.5).
      const views = [seated('s00', 1000, 4, 0), seated('s01', 1001, 100, 50)];
      const r = new SeatReserver('game', () => views, a.fetchFn, new ManualClock(0), new XorShiftRandom(5));
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await r.reserve()).server.id);
      // 1 → 0.75 → 0.5: the third is a tie at 0.5, won by the server with fewer of this client's seats.
      expect(ids).toEqual(['s00', 's00', 's01']);
    });

    it('falls back to the utilization estimate for a record without seats, beside ones with them', async () => {
      const a = fakeAgents(2, 1000);
      const bare = { ...view('s00', 1000), load: { connections: 0, sessions: 9, utilization: 0.9, seq: 1, ageMs: 0 } } as unknown as ServerView;
      const views = [bare, seated('s01', 1001, 10, 5)];
      const r = new SeatReserver('game', () => views, a.fetchFn, new ManualClock(0), new XorShiftRandom(5));
      // 0.1 free (estimate) vs 0.5 free (seats): s01; pack: s00, the fuller by its estimate.
      expect((await r.reserve()).server.id).toBe('s01');
      expect((await r.reserve({ mode: 'pack' })).server.id).toBe('s00');
      // s00 by its utilization alone: 0.9 + its share of one seat (0.1) is full; s01 is asked.
      expect((await r.reserve({ mode: 'pack' })).server.id).toBe('s01');
    });
  });
});
