/**
 * The browser's query schedule (sdk/mdns/query-scheduler.ts) as pure state on given times:
 * continuous querying (RFC 6762 §5.2), duplicate-question suppression (§7.3), own-query echoes,
 * refresh times, and the resolution backoff. No sockets, no clock.
 */
import { describe, expect, it } from 'vitest';
import {
  DUPLICATE_QUERY_SLACK_MS,
  MAX_QUERY_INTERVAL_MS,
  MAX_RESOLVE_ATTEMPTS,
  OWN_QUERY_ECHO_MS,
  QueryScheduler,
  QuestionList,
  RESOLVE_DELAY_MS,
  Resolutions,
  resolveBackoffMs,
} from '../../../../sdk/mdns/query-scheduler.js';

const fixed = (v: number) => ({ next: () => v, int: (n: number) => Math.floor(v * n) });

describe('QueryScheduler', () => {
  it('browse queries: at once, then 1 s, 2 s, 4 s, then every 5 s', () => {
    const q = new QueryScheduler(fixed(0));
    q.start(100);
    const sent: number[] = [];
    for (let t = 100; t <= 30_100; t += 10) if (q.takeBrowse(t)) sent.push(t - 100);
    expect(sent.slice(0, 7)).toEqual([0, 1000, 3000, 7000, 12_000, 17_000, 22_000]);
    expect(q.takeBrowse(q.nextBrowseAt - 1)).toBe(false);
  });

  it('another host asking the same: ours put off by its interval plus 20–120 ms (§7.3), once per pending query', () => {
    const q = new QueryScheduler(fixed(0.5));
    q.start(0);
    expect(q.takeBrowse(0)).toBe(true); // next at 1000, interval now 2000
    expect(q.otherAsked(900)).toBe(true);
    const [lo, hi] = DUPLICATE_QUERY_SLACK_MS;
    expect(q.nextBrowseAt).toBe(900 + 2000 + lo + 0.5 * (hi - lo));
    // Due already: nothing pending to put off.
    expect(q.otherAsked(q.nextBrowseAt)).toBe(false);
    expect(q.nextBrowseAt - 900).toBeLessThanOrEqual(MAX_QUERY_INTERVAL_MS + hi);
  });

  it('own queries: each echo recognised once, within OWN_QUERY_ECHO_MS; an identical query beyond is another host', () => {
    const q = new QueryScheduler(fixed(0));
    const p = { questions: [{ name: '_peerlb._tcp.local', type: 'PTR' }], answers: [] };
    q.sent(p, 0);
    q.sent({ ...p, questions: [{ name: '_PEERLB._tcp.local', type: 'PTR' }] }, 10); // same signature: two echoes due
    expect(q.isEcho(p, 20)).toBe(true);
    expect(q.isEcho(p, 30)).toBe(true);
    expect(q.isEcho(p, 40)).toBe(false);
    q.sent(p, 100);
    expect(q.isEcho(p, 100 + OWN_QUERY_ECHO_MS)).toBe(false);
  });

  it('refresh times at 80, 85, 90, 95 % of the TTL plus the jitter, then none', () => {
    const q = new QueryScheduler(fixed(0.5));
    const at = [0, 1, 2, 3, 4].map((stage) => q.refreshAt({ stage, receivedAt: 1000, ttl: 100 }));
    expect(at.slice(0, 4)).toEqual([0.8, 0.85, 0.9, 0.95].map((f) => 1000 + 100_000 * (f + 0.01)));
    expect(at[4]).toBe(Infinity);
  });
});

describe('Resolutions', () => {
  it('asks after RESOLVE_DELAY_MS, backs off 1, 2, 4, 5 s, gives up after MAX_RESOLVE_ATTEMPTS without progress', () => {
    const r = new Resolutions();
    expect(r.need('i', 'srv', 0)).toBe(RESOLVE_DELAY_MS);
    expect(r.ask('i', RESOLVE_DELAY_MS - 1)).toBeUndefined();
    let t = RESOLVE_DELAY_MS;
    const waits: number[] = [];
    for (let n = 0; n < MAX_RESOLVE_ATTEMPTS; n++) {
      expect(r.need('i', 'srv', t)).toBeUndefined();
      const next = r.ask('i', t)!;
      waits.push(next - t);
      t = next;
    }
    expect(waits).toEqual([1, 2, 3, 4, 5].map(resolveBackoffMs));
    expect(waits).toEqual([1000, 2000, 4000, 5000, 5000]);
    expect(r.need('i', 'srv', t - 1)).toBeUndefined();
    expect(r.need('i', 'srv', t)).toBe('give-up');
    expect(r.ask('i', t)).toBeUndefined();
  });

  it('progress (something else missing) starts over; done stops asking', () => {
    const r = new Resolutions();
    r.need('i', 'srv', 0);
    r.ask('i', 20);
    expect(r.need('i', 'addr', 500)).toBe(500 + RESOLVE_DELAY_MS);
    r.done('i');
    expect(r.ask('i', 10_000)).toBeUndefined();
  });
});

describe('QuestionList', () => {
  it('each name and type once', () => {
    const q = new QuestionList();
    q.ask('a.local', 'A');
    q.ask('a.local', 'AAAA');
    q.ask('a.local', 'A');
    expect(q.list).toEqual([
      { name: 'a.local', type: 'A', class: 'IN' },
      { name: 'a.local', type: 'AAAA', class: 'IN' },
    ]);
  });
});
