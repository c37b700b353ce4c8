/**
 * The record cache (sdk/mdns/cache.ts) alone, on given times: what a received goodbye (RFC 6762
 * §10.1) and the cache-flush bit (§10.2) do, the per-RRset cap, and the instance views the
 * browser reads (latest, known answers). No sockets, no clock.
 */
import { describe, expect, it } from 'vitest';
import type { Answer } from 'dns-packet';
import { CACHE_FLUSH_GRACE_MS, GOODBYE_REMOVE_MS, MdnsCache, type Entry } from '../../../../sdk/mdns/cache.js';

const BROWSE = '_game._sub._peerlb._tcp.local';
const INST = 'n1._peerlb._tcp.local';
const never = () => Infinity;

function cache(maxPerSet = 8) {
  const touched: string[] = [];
  const c = new MdnsCache({ browseName: BROWSE, maxEntries: 100, maxPerSet, touched: (e: Entry) => touched.push(`${e.type} ${e.name}`) });
  return { c, touched };
}
const a = (addr: string, ttl = 20, flush = false) => ({ name: 'peerlb-n1.local', type: 'A', class: 'IN', ttl, data: addr, flush }) as Answer;
const ptr = (ttl = 4500, flush = false) => ({ name: BROWSE, type: 'PTR', class: 'IN', ttl, data: INST, flush }) as Answer;

describe('MdnsCache.receive', () => {
  it('a goodbye keeps the record one second more, marked, and touches it; a goodbye for an unknown record is nothing', () => {
    const { c, touched } = cache();
    c.receive(a('10.0.0.5'), 'A', 20, 0, never);
    touched.length = 0;
    c.receive(a('10.0.0.5', 0), 'A', 0, 5000, never);
    const e = c.latest('peerlb-n1.local', 'A')!;
    expect(e.goodbye).toBe(true);
    expect(e.expiresAt).toBe(5000 + GOODBYE_REMOVE_MS);
    expect(touched).toEqual(['A peerlb-n1.local']);
    expect(c.due(5000 + GOODBYE_REMOVE_MS - 1)).toEqual([]);
    expect(c.due(5000 + GOODBYE_REMOVE_MS)).toEqual([e]);
    c.receive(a('10.0.0.9', 0), 'A', 0, 5000, never);
    expect(c.size).toBe(1);
  });

  it('the cache-flush bit: older members of the RRset go in a second, members received within the last second stay', () => {
    const { c } = cache();
    c.receive(a('10.0.0.1'), 'A', 20, 0, never);
    c.receive(a('10.0.0.2'), 'A', 20, 9500, never);
    c.receive(a('10.0.0.3', 20, true), 'A', 20, 10_000, never);
    const byAddr = new Map([...c.set('peerlb-n1.local', 'A')!].map((e) => [e.data, e.expiresAt]));
    expect(byAddr.get('10.0.0.1')).toBe(10_000 + CACHE_FLUSH_GRACE_MS);
    expect(byAddr.get('10.0.0.2')).toBe(9500 + 20_000);
    expect(byAddr.get('10.0.0.3')).toBe(10_000 + 20_000);
    expect(c.latest('peerlb-n1.local', 'A')!.data).toBe('10.0.0.3');
  });

  it('the flush bit on a PTR (a shared record) is ignored', () => {
    const { c } = cache();
    c.receive(ptr(), 'PTR', 4500, 0, never);
    c.receive({ ...ptr(4500, true), data: 'n2._peerlb._tcp.local' } as Answer, 'PTR', 4500, 5000, never);
    expect([...c.set(BROWSE, 'PTR')!].map((e) => e.expiresAt)).toEqual([4_500_000, 5000 + 4_500_000]);
  });

  it('one RRset holds at most maxPerSet records: the oldest is evicted', () => {
    const { c } = cache(2);
    for (let i = 1; i <= 3; i++) c.receive(a(`10.0.0.${i}`), 'A', 20, i, never);
    expect([...c.set('peerlb-n1.local', 'A')!].map((e) => e.data).sort()).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(c.evicted).toBe(1);
  });

  it('known answers: only records with more than half their TTL left, with the TTL left; none after a goodbye', () => {
    const { c } = cache();
    c.receive(ptr(100), 'PTR', 100, 0, never);
    expect(c.knownAnswers(BROWSE, 'PTR', 40_000)).toEqual([{ name: BROWSE, type: 'PTR', class: 'IN', ttl: 60, data: INST }]);
    expect(c.knownAnswers(BROWSE, 'PTR', 50_000)).toEqual([]);
    c.receive(ptr(0), 'PTR', 0, 1000, never);
    expect(c.knownAnswers(BROWSE, 'PTR', 1000)).toEqual([]);
  });

  it('dropInstance removes its PTR, SRV and TXT, and the addresses only its SRV named', () => {
    const { c } = cache();
    c.receive(ptr(), 'PTR', 4500, 0, never);
    c.receive({ name: INST, type: 'SRV', class: 'IN', ttl: 20, data: { priority: 0, weight: 0, port: 7946, target: 'peerlb-n1.local' } } as Answer, 'SRV', 20, 0, never);
    c.receive({ name: INST, type: 'TXT', class: 'IN', ttl: 20, data: [Buffer.from('v=1')] } as Answer, 'TXT', 20, 0, never);
    c.receive(a('10.0.0.5'), 'A', 20, 0, never);
    expect(c.size).toBe(4);
    expect(c.isTarget('peerlb-n1.local')).toBe(true);
    c.dropInstance(INST);
    expect(c.size).toBe(0);
    expect(c.ptr(INST)).toBeUndefined();
  });
});
