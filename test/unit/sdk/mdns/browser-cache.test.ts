/**
 * MdnsBrowser under floods, on a ManualClock over the in-memory link, judged by counts and
 * outcomes: the work a packet costs (instances put together per packet, known answers looked up
 * per query, with 500 instances cached), a full cache that evicts instead of refusing, TTLs capped
 * near the agents' own, and reject(): nothing kept of what a verifying client rejects.
 */
import { describe, expect, it, vi } from 'vitest';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { MdnsAnnouncer } from '../../../../agent/mdns/announcer.js';
import * as records from '../../../../sdk/mdns/records.js';
import * as keys from '../../../../sdk/mdns/keys.js';
import { buildRecords, type AnnounceInfo, type Ttls } from '../../../../sdk/mdns/records.js';
import { MdnsBrowser, MAX_CACHE_ENTRIES, type BrowsedInstance } from '../../../../sdk/mdns/browser.js';
import { FakeMdnsNet, fixedRandom } from '../../../support/fake-mdns.js';

// Count the work: every instance put together, every record key computed.
vi.mock('../../../../sdk/mdns/records.js', async (orig) => {
  const m = await orig<typeof import('../../../../sdk/mdns/records.js')>();
  return { ...m, assembleAnnouncement: vi.fn(m.assembleAnnouncement) };
});
vi.mock('../../../../sdk/mdns/keys.js', async (orig) => {
  const m = await orig<typeof import('../../../../sdk/mdns/keys.js')>();
  return { ...m, recordKey: vi.fn(m.recordKey) };
});
const assembled = () => vi.mocked(records.assembleAnnouncement).mock.calls.length;
const keyed = () => vi.mocked(keys.recordKey).mock.calls.length;

const info = (node: string, n: number, over: Partial<AnnounceInfo> = {}): AnnounceInfo => ({
  node,
  service: 'game',
  host: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
  agentPort: 7900,
  udpPort: 7000,
  weight: 100,
  health: 'healthy',
  loadBucket: 0,
  ...over,
});

/** The four records a browser needs for an instance: subtype PTR, SRV, TXT, A. */
function instanceRecords(i: AnnounceInfo, ttls?: Ttls): Answer[] {
  const set = buildRecords(i, { ttls });
  const keep = new Set([set.names.subtype, set.names.instance, set.names.hostname]);
  return set.records.filter((r) => keep.has(r.rr.name)).map((r) => ({ ...r.rr, flush: r.unique }) as Answer);
}

function setup() {
  const clock = new ManualClock(0);
  const net = new FakeMdnsNet(clock);
  const b = new MdnsBrowser({ service: 'game', interface: '127.0.0.1', mdns: net.socket('10.255.0.1'), clock, random: fixedRandom(0.5) });
  const events: [string, string, string?][] = [];
  b.on('up', (i) => events.push(['up', i.node]));
  b.on('update', (i) => events.push(['update', i.node]));
  b.on('down', (id, reason) => events.push(['down', id, reason]));
  /** A response from `from`, as a forger on the link would send it. */
  const inject = (answers: Answer[], from = '10.254.0.1') => net.deliver(dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers }), { address: from, port: 5353 }, undefined);
  const ids = () => b.instances().map((i) => i.node).sort();
  return { clock, net, b, events, inject, ids };
}

describe('MdnsBrowser: the work a packet costs follows the packet, not the cache', () => {
  it('with 500 instances cached, a TXT update for one puts together one instance, not 500; an unrelated packet none', async () => {
    const { clock, b, events, inject } = setup();
    await b.start();
    for (let n = 1; n <= 500; n++) inject(instanceRecords(info(`n${n}`, n)));
    clock.advance(0);
    expect(b.instances()).toHaveLength(500);
    events.length = 0;

    clock.advance(2000);
    expect(b.instances()).toHaveLength(500);
    let before = assembled();
    inject(instanceRecords(info('n7', 7, { loadBucket: 5 })).filter((rr) => rr.type === 'TXT'));
    clock.advance(0);
    expect(events).toEqual([['update', 'n7']]);
    expect(assembled() - before).toBeLessThanOrEqual(2);

    // A response for some other name (another service's agent): nothing of ours to look at.
    before = assembled();
    const other = buildRecords(info('x', 9999, { service: 'chat' })).records.map((r) => r.rr);
    for (let k = 0; k < 20; k++) inject(other);
    clock.advance(0);
    expect(assembled() - before).toBe(0);

    // The second after the flush (§10.2) removes n7's old TXT: one instance again.
    before = assembled();
    clock.advance(1100);
    expect(assembled() - before).toBeLessThanOrEqual(2);
    expect(b.instances()).toHaveLength(500);
    await b.close();
  });

  it('another host\'s browse query (§7.3) is checked by its known answers, not by listing the 500 the cache holds', async () => {
    const { clock, net, b, inject } = setup();
    await b.start();
    for (let n = 1; n <= 500; n++) inject(instanceRecords(info(`n${n}`, n)));
    clock.advance(0);
    expect(b.instances()).toHaveLength(500);
    const ptr = instanceRecords(info('n1', 1)).find((rr) => rr.type === 'PTR')!;
    const suppressed = b.stats().duplicateQueriesSuppressed;
    const before = keyed();
    net.deliver(
      dnsPacket.encode({ type: 'query', questions: [{ name: '_game._sub._peerlb._tcp.local', type: 'PTR', class: 'IN' }], answers: [{ ...ptr, ttl: 4000 } as Answer] }),
      { address: '10.254.0.9', port: 5353 },
      undefined,
    );
    clock.advance(0);
    // Its known answer is one we hold: the query stands for ours.
    expect(b.stats().duplicateQueriesSuppressed).toBe(suppressed + 1);
    expect(keyed() - before).toBeLessThan(20);
    await b.close();
  });
});

describe('MdnsBrowser: a full cache evicts, oldest first, and never refuses', () => {
  it('205 packets of 10 complete forged instances (more than the cache holds) do not keep a genuine agent that comes later out', async () => {
    const { clock, net, b, inject, ids } = setup();
    await b.start();
    const day: Ttls = { host: 86_400, txt: 86_400, ptr: 86_400 };
    for (let p = 0; p < 205; p++) inject(Array.from({ length: 10 }, (_, k) => instanceRecords(info(`f${p}-${k}`, 1 + p * 10 + k), day)).flat());
    clock.advance(0);
    expect(205 * 10 * 4).toBeGreaterThan(MAX_CACHE_ENTRIES);
    expect(ids().length).toBeGreaterThan(1000); // the flood is in the cache
    const a = new MdnsAnnouncer({ info: info('genuine', 1_000_000), interface: '127.0.0.1', mdns: net.socket('10.15.66.64'), clock, random: fixedRandom(0.5) });
    void a.start();
    clock.advance(3000);
    expect(ids()).toContain('genuine');
    expect(b.stats().cacheEntries).toBeLessThanOrEqual(MAX_CACHE_ENTRIES);
    expect(b.stats().evicted).toBeGreaterThan(0);
    await a.stop();
    await b.close();
  });

  it('a flood of PTRs that never resolve, past the cache size, does not evict an instance that is up', async () => {
    const { clock, net, b, events, inject, ids } = setup();
    await b.start();
    const a = new MdnsAnnouncer({ info: info('genuine', 1), interface: '127.0.0.1', mdns: net.socket('10.0.0.1'), clock, random: fixedRandom(0.5) });
    void a.start();
    clock.advance(3000);
    expect(ids()).toEqual(['genuine']);
    const ptr = (n: number): Answer => ({ name: '_game._sub._peerlb._tcp.local', type: 'PTR', class: 'IN', ttl: 4500, data: `p${n}._peerlb._tcp.local` }) as Answer;
    for (let p = 0; p < 20; p++) inject(Array.from({ length: 500 }, (_, k) => ptr(p * 500 + k)));
    clock.advance(10);
    expect(ids()).toEqual(['genuine']);
    expect(events.filter((e) => e[0] === 'down')).toEqual([]);
    // Evicting (the PTRs, oldest first), not refusing: that is what keeps the instance up.
    expect(b.stats().evicted).toBeGreaterThan(0);
    expect(b.stats().cacheEntries).toBeLessThanOrEqual(MAX_CACHE_ENTRIES);
    await a.stop();
    await b.close();
  });

  it('a TTL of a day is honoured only up to about the agents\' own: a forged instance nobody refreshes goes within a minute and a half', async () => {
    const { clock, b, events, inject, ids } = setup();
    await b.start();
    inject(instanceRecords(info('forever', 5), { host: 86_400, txt: 86_400, ptr: 86_400 }));
    clock.advance(0);
    expect(ids()).toEqual(['forever']);
    clock.advance(90_000);
    expect(ids()).toEqual([]);
    expect(events).toContainEqual(['down', 'forever', 'expired']);
    await b.close();
  });
});

describe('MdnsBrowser.reject: nothing kept of what a verifying client rejects', () => {
  it('3,000 rejected instances leave the cache nearly empty, and a genuine agent is found at once', async () => {
    const { clock, net, b, inject, ids } = setup();
    const rejectBad = (i: BrowsedInstance) => {
      if (i.node.startsWith('bad')) b.reject(i.instance);
    };
    b.on('up', rejectBad);
    b.on('update', rejectBad);
    await b.start();
    for (let p = 0; p < 300; p++) inject(Array.from({ length: 10 }, (_, k) => instanceRecords(info(`bad${p}-${k}`, 1 + p * 10 + k))).flat());
    clock.advance(0);
    expect(b.stats().rejected).toBe(3000);
    expect(b.stats().cacheEntries).toBeLessThan(10);
    expect(ids()).toEqual([]);
    const a = new MdnsAnnouncer({ info: info('genuine', 1_000_000), interface: '127.0.0.1', mdns: net.socket('10.15.66.64'), clock, random: fixedRandom(0.5) });
    void a.start();
    clock.advance(3000);
    expect(ids()).toEqual(['genuine']);
    // Rejected while up: gone at once (no 'down': the caller knows), back when announced again.
    b.reject('genuine._peerlb._tcp.local');
    expect(ids()).toEqual([]);
    a.update(info('genuine', 1_000_000, { weight: 7 }));
    clock.advance(6000); // its PTR again: at the next browse query, which no longer lists it (§7.1)
    expect(b.instances().map((i) => [i.node, i.weight])).toEqual([['genuine', 7]]);
    await a.stop();
    await b.close();
  });
});
