/**
 * The pure parts of admission (agent/admission.ts) and of the shared watch snapshot
 * (agent/watch-snapshot.ts): table tests, no sockets, no sleeps.
 */
import { describe, expect, it } from 'vitest';
import { AddressSlots, RateLimit, connectionCapFor, openFileLimit } from '../../../agent/admission.js';
import { SnapshotCache, MAX_AGENTS, sampleAgents } from '../../../agent/watch-snapshot.js';
import { PROTOCOL_VERSION, type ServerRecord } from '../../../sdk/core/protocol.js';
import { decodeWatchServerFrame, unpackFrame } from '../../../sdk/core/msgpack.js';

describe('AddressSlots', () => {
  it('refuses past the per-address share, and at the total closes the oldest of the heaviest address for a lighter one', () => {
    const evicted: string[] = [];
    const t = new AddressSlots<string>(4, 3, (v) => evicted.push(v));
    expect(t.add('a', 'a1')).toBeUndefined();
    expect(t.add('a', 'a2')).toBeUndefined();
    expect(t.add('a', 'a3')).toBeUndefined();
    expect(t.add('a', 'a4')).toBe('address');
    expect(t.add('b', 'b1')).toBeUndefined(); // 4 of 4
    // c holds 0, a holds 3 ≥ 0 + 2: a's oldest goes.
    expect(t.add('c', 'c1')).toBeUndefined();
    expect(evicted).toEqual(['a1']);
    expect(t.size).toBe(4);
    expect(t.has('a1')).toBe(false);
    // b holds 1, the heaviest (a) 2 < 1 + 2: refused.
    expect(t.add('b', 'b2')).toBe('total');
    expect(t.check('d')).toBeUndefined(); // d holds 0: a (2) may give one
    t.delete('c1');
    expect(t.add('b', 'b2')).toBeUndefined();
    expect(t.count('b')).toBe(2);
    expect(t.evictions).toBe(1);
  });
});

describe('RateLimit', () => {
  it('a token bucket per address: the burst, then ratePerSec', () => {
    let now = 0;
    const r = new RateLimit(2, 3, () => now);
    expect([r.allow('x'), r.allow('x'), r.allow('x'), r.allow('x')]).toEqual([true, true, true, false]);
    expect(r.allow('y')).toBe(true);
    expect(r.retryAfter('x')).toBe(1);
    now += 500; // one token back
    expect([r.allow('x'), r.allow('x')]).toEqual([true, false]);
    expect(r.refused).toBe(2);
  });
});

describe('connection cap and the open-file limit', () => {
  it.each([
    [8192, undefined, 8192],
    [8192, 1024, 768],
    [8192, 256, 160],
    [8192, 100_000, 8192],
    [8192, 64, 16],
  ])('configured %i, file limit %s → %i', (configured, limit, want) => {
    expect(connectionCapFor(configured, limit)).toBe(want);
  });
  it('reads the soft limit from /proc/self/limits text', () => {
    expect(openFileLimit(() => 'Limit Soft Limit Hard Limit Units\nMax open files            20000                20000                files\n')).toBe(20000);
    expect(openFileLimit(() => 'Max open files  unlimited unlimited files\n')).toBeUndefined();
    expect(
      openFileLimit(() => {
        throw new Error('no /proc');
      }),
    ).toBeUndefined();
  });
});

describe('SnapshotCache', () => {
  const rec = (i: number, service = 'game'): ServerRecord => ({ id: `s${i}`, service, host: '127.0.0.1', udpPort: 7000 + i, weight: 100, health: 'healthy', agent: `ws://127.0.0.1:${9000 + i}`, load: { connections: i, sessions: 0, utilization: 0.1, seq: i, ageMs: 0 } });
  const agents = (n: number) => Array.from({ length: n }, (_, i) => `ws://127.0.0.1:${9000 + i}`);

  it.each([3, 20, 70_000])('the joined bytes decode to the snapshot of %i records (msgpack array headers of each size)', (n) => {
    const servers = Array.from({ length: n }, (_, i) => rec(i, i % 2 ? 'game' : 'other'));
    const c = new SnapshotCache('n1', { all: () => ({ servers, agents: agents(5) }) });
    const f = n <= 10_000 ? decodeWatchServerFrame(c.frame(undefined, false)) : unpackFrame(c.frame(undefined, false), 1 << 30);
    expect(f).toEqual({ t: 'snapshot', v: PROTOCOL_VERSION, node: 'n1', servers, agents: agents(5) });
    const game = unpackFrame(c.frame('game', false), 1 << 30) as { servers: unknown[] };
    expect(game.servers.length).toBe(Math.floor(n / 2));
    expect(JSON.parse(c.frame(undefined, true).toString())).toEqual({ t: 'snapshot', v: PROTOCOL_VERSION, node: 'n1', servers, agents: agents(5) });
  });

  it('is built once per change, shared until the next; old entries are rebuilt; the agent list is a sample of at most 64', () => {
    let now = 0;
    let reads = 0;
    const rebuilt: string[] = [];
    const c = new SnapshotCache('n1', {
      all: () => (reads++, { servers: [rec(1), rec(2)], agents: agents(100) }),
      record: (id) => (rebuilt.push(id), id === 's2' ? undefined : rec(1)),
      now: () => now,
      random: () => 0.5,
    });
    const a = c.frame(undefined, false);
    expect(c.frame(undefined, false)).toBe(a); // the same Buffer
    expect(c.counters).toMatchObject({ assembled: 1, served: 2 });
    c.upsert(rec(3));
    const b = decodeWatchServerFrame(c.frame(undefined, false));
    expect(b.t === 'snapshot' && b.servers.map((s) => s.id)).toEqual(['s1', 's2', 's3']);
    expect(b.t === 'snapshot' && b.agents.length).toBe(MAX_AGENTS);
    c.remove('s3');
    now = 1500; // s1 and s2 are old: rebuilt (s2 is gone)
    const d = decodeWatchServerFrame(c.frame(undefined, false));
    expect(d.t === 'snapshot' && d.servers.map((s) => s.id)).toEqual(['s1']);
    expect(rebuilt.sort()).toEqual(['s1', 's2']);
    expect(reads).toBe(1);
  });

  it('sampleAgents: all when they fit, else n distinct of them', () => {
    expect(sampleAgents(['a', 'b'], 64, Math.random)).toEqual(['a', 'b']);
    const s = sampleAgents(agents(200), 64, Math.random);
    expect(new Set(s).size).toBe(64);
    expect(s.every((u) => agents(200).includes(u))).toBe(true);
  });
});
