/**
 * MdnsBrowser on a ManualClock over the in-memory link, against real MdnsAnnouncers and against
 * a hand-driven responder: query schedule, known answers, TTL refresh and expiry, goodbyes,
 * updates, resolution of missing records, duplicate-question suppression and garbage.
 */
import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import type { Answer, Question } from 'dns-packet';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { MdnsAnnouncer } from '../../../../agent/mdns/announcer.js';
import { buildRecords, goodbyes, type AnnounceInfo, type Ttls } from '../../../../sdk/mdns/records.js';
import { MdnsBrowser, type BrowsedInstance } from '../../../../sdk/mdns/browser.js';
import { FakeMdnsNet, fixedRandom, garbage, mutate, type FakeMdnsSocket, type Full } from '../../../support/fake-mdns.js';

const info = (node: string, n: number, over: Partial<AnnounceInfo> = {}): AnnounceInfo => ({
  node,
  service: 'game',
  host: `10.0.0.${n}`,
  agentPort: 7900 + n,
  udpPort: 7000 + n,
  weight: 100,
  health: 'healthy',
  loadBucket: 0,
  ...over,
});

function setup() {
  const clock = new ManualClock(0);
  const net = new FakeMdnsNet(clock);
  const announcer = (i: AnnounceInfo, ttls?: Ttls) => {
    const sock = net.socket(i.host);
    const a = new MdnsAnnouncer({ info: i, interface: '127.0.0.1', mdns: sock, clock, random: fixedRandom(0.5), ttls });
    return { a, sock };
  };
  const browser = (address = '10.0.0.100', service: string | null = 'game') => {
    const b = new MdnsBrowser({ service: service ?? undefined, interface: '127.0.0.1', mdns: net.socket(address), clock, random: fixedRandom(0.5) });
    const events: [string, number, unknown, unknown?][] = [];
    b.on('up', (i) => events.push(['up', clock.now(), i]));
    b.on('update', (i) => events.push(['update', clock.now(), i]));
    b.on('down', (id, reason) => events.push(['down', clock.now(), id, reason]));
    return { b, events };
  };
  const queriesFrom = (address: string) => net.sentBy(address, 'query');
  return { clock, net, announcer, browser, queriesFrom };
}

const qs = (p: Full) => p.questions.map((q) => `${q.name} ${q.type}`);

describe('MdnsBrowser querying', () => {
  it('queries at once, then after 1, 2, 4 s, capped at 5 s (RFC 6762 §5.2 with peerlb’s cap)', async () => {
    const { clock, browser, queriesFrom } = setup();
    const { b } = browser();
    await b.start();
    clock.advance(30_000);
    const q = queriesFrom('10.0.0.100');
    expect(q.map((s) => s.at)).toEqual([0, 1000, 3000, 7000, 12_000, 17_000, 22_000, 27_000]);
    expect(qs(q[0]!.packet)).toEqual(['_game._sub._peerlb._tcp.local PTR']);
    await b.close();
    clock.advance(30_000);
    expect(queriesFrom('10.0.0.100')).toHaveLength(8);
  });

  it('browses every peerlb agent when no service is given', async () => {
    const { clock, browser, queriesFrom } = setup();
    const { b } = browser('10.0.0.100', null);
    await b.start();
    clock.advance(0);
    expect(qs(queriesFrom('10.0.0.100')[0]!.packet)).toEqual(['_peerlb._tcp.local PTR']);
    await b.close();
  });

  it('lists the PTRs it knows in its queries, with the TTL left (§7.1), so announcers stay quiet', async () => {
    const { clock, net, announcer, browser, queriesFrom } = setup();
    const { a } = announcer(info('a', 1));
    void a.start();
    clock.advance(3000);
    const { b } = browser();
    await b.start();
    clock.advance(20_000);
    const later = queriesFrom('10.0.0.100').filter((s) => s.at > 5000 && qs(s.packet).includes('_game._sub._peerlb._tcp.local PTR'));
    expect(later.length).toBeGreaterThan(2);
    for (const s of later) {
      expect(s.packet.answers.map((rr) => `${rr.name} ${(rr as { data: string }).data}`)).toEqual(['_game._sub._peerlb._tcp.local a._peerlb._tcp.local']);
      expect((s.packet.answers[0] as { ttl: number }).ttl).toBeGreaterThan(4400);
    }
    // …and the announcer answered none of those continuous queries.
    const answersAfter = net.sentBy('10.0.0.1', 'response').filter((s) => s.at > 5000 && s.packet.answers.some((rr) => rr.type === 'PTR'));
    expect(answersAfter).toEqual([]);
    await a.stop();
    await b.close();
  });

  it('a query another host sends with our question counts as ours (§7.3)', async () => {
    const { clock, browser, queriesFrom } = setup();
    const one = browser('10.0.0.100').b;
    const two = browser('10.0.0.101').b;
    await one.start();
    clock.advance(500);
    await two.start();
    clock.advance(30_000);
    const n1 = queriesFrom('10.0.0.100').length;
    const n2 = queriesFrom('10.0.0.101').length;
    // Alone, each would send 8 in these 30 s; together one asks and the other listens.
    expect(n1 + n2).toBeLessThanOrEqual(10);
    expect(Math.min(n1, n2)).toBeLessThanOrEqual(2);
    expect(one.stats().duplicateQueriesSuppressed + two.stats().duplicateQueriesSuppressed).toBeGreaterThan(2);
    await Promise.all([one.close(), two.close()]);
  });
});

describe('MdnsBrowser instances', () => {
  it('finds three announcers, not the one of another service, with every TXT field', async () => {
    const { clock, announcer, browser } = setup();
    const as = [announcer(info('a', 1, { zone: 'z1', tcpPort: 6001 })), announcer(info('b', 2)), announcer(info('c', 3, { weight: 5 })), announcer(info('d', 4, { service: 'chess' }))];
    for (const { a } of as) void a.start();
    const { b, events } = browser();
    await b.start();
    clock.advance(5000);
    expect(events.map((e) => e[0])).toEqual(['up', 'up', 'up']);
    const list = b.instances().sort((x, y) => x.id.localeCompare(y.id));
    expect(list.map((i) => i.id)).toEqual(['a', 'b', 'c']);
    expect(list[0]).toEqual({
      id: 'a',
      node: 'a',
      service: 'game',
      host: '10.0.0.1',
      agentPort: 7901,
      udpPort: 7001,
      tcpPort: 6001,
      weight: 100,
      zone: 'z1',
      health: 'healthy',
      loadBucket: 0,
      agentUrl: 'ws://10.0.0.1:7901',
      instance: 'a._peerlb._tcp.local',
    } satisfies BrowsedInstance);
    expect(list[2]!.weight).toBe(5);
    for (const { a } of as) await a.stop();
    await b.close();
  });

  it('emits update when TXT or SRV change (cache flush, §10.2), and only then', async () => {
    const { clock, announcer, browser } = setup();
    const { a } = announcer(info('a', 1));
    void a.start();
    const { b, events } = browser();
    await b.start();
    clock.advance(5000);
    a.update(info('a', 1, { loadBucket: 7, health: 'draining' }));
    clock.advance(100);
    expect(events.filter((e) => e[0] === 'update').map((e) => [(e[2] as BrowsedInstance).loadBucket, (e[2] as BrowsedInstance).health])).toEqual([[7, 'draining']]);
    clock.advance(5000);
    a.update(info('a', 1, { loadBucket: 7, health: 'draining', agentPort: 8000 }));
    clock.advance(100);
    const last = events.at(-1)!;
    expect(last[0]).toBe('update');
    expect(last[2]).toMatchObject({ agentPort: 8000, agentUrl: 'ws://10.0.0.1:8000' });
    clock.advance(60_000);
    expect(events.filter((e) => e[0] !== 'up')).toHaveLength(2);
    expect(b.instances()).toHaveLength(1);
    await a.stop();
    await b.close();
  });

  it('a goodbye takes the instance down at once; its records are forgotten one second later (§10.1)', async () => {
    const { clock, announcer, browser } = setup();
    const x = announcer(info('a', 1));
    const y = announcer(info('b', 2));
    void x.a.start();
    void y.a.start();
    const { b, events } = browser();
    await b.start();
    clock.advance(5000);
    const cached = b.stats().cacheEntries;
    const t = clock.now();
    await x.a.stop();
    clock.advance(0);
    // Down when the goodbye arrives, not when its records go (the SDK stops using it now).
    expect(events.filter((e) => e[0] === 'down')).toEqual([['down', t, 'a', 'goodbye']]);
    expect(b.instances().map((i) => i.id)).toEqual(['b']);
    // The records themselves keep RFC 6762 §10.1 cache semantics: one more second, then gone.
    clock.advance(999);
    expect(b.stats().cacheEntries).toBe(cached);
    clock.advance(1);
    expect(b.stats().cacheEntries).toBeLessThan(cached);
    clock.advance(10_000);
    expect(events.filter((e) => e[0] === 'down')).toHaveLength(1);
    expect(b.instances().map((i) => i.id)).toEqual(['b']);
    await y.a.stop();
    await b.close();
  });

  it('an instance announced again within the second after its goodbye comes back up', async () => {
    const { clock, net, browser } = setup();
    const responder = net.socket('10.0.0.5');
    const rrs = buildRecords(info('m', 5)).records.map((r) => r.rr);
    const { b, events } = browser();
    await b.start();
    responder.send({ type: 'response', answers: rrs });
    clock.advance(100);
    expect(events.map((e) => e[0])).toEqual(['up']);
    responder.send({ type: 'response', answers: goodbyes(rrs) });
    clock.advance(0);
    expect(events.map((e) => [e[0], e[1]])).toEqual([['up', 0], ['down', 100]]);
    expect(b.instances()).toEqual([]);
    clock.advance(500);
    responder.send({ type: 'response', answers: rrs });
    clock.advance(0);
    expect(events.map((e) => [e[0], e[1]])).toEqual([['up', 0], ['down', 100], ['up', 600]]);
    // It stays: nothing from the old goodbye removes it later.
    clock.advance(10_000);
    expect(events).toHaveLength(3);
    expect(b.instances().map((i) => i.id)).toEqual(['m']);
    await b.close();
  });

  it.each(['PTR', 'SRV'])('a goodbye of the %s alone takes the instance down at once', async (type) => {
    const { clock, net, browser } = setup();
    const responder = net.socket('10.0.0.5');
    const rrs = buildRecords(info('m', 5)).records.map((r) => r.rr);
    const { b, events } = browser();
    await b.start();
    responder.send({ type: 'response', answers: rrs });
    clock.advance(100);
    responder.send({ type: 'response', answers: goodbyes(rrs.filter((rr) => rr.type === type)) });
    clock.advance(0);
    expect(events.map((e) => e.slice(0, 2).concat(e.slice(3)))).toEqual([['up', 0], ['down', 100, 'goodbye']]);
    clock.advance(30_000);
    expect(events).toHaveLength(2);
    await b.close();
  });

  it('refreshes records at 80/85/90/95 % of their TTL (+0–2 %), and expires an instance nobody answers for (§5.2)', async () => {
    const { clock, net, announcer, browser, queriesFrom } = setup();
    const { a, sock } = announcer(info('a', 1), { host: 10, txt: 10, ptr: 4500 });
    void a.start();
    const { b, events } = browser();
    await b.start();
    clock.advance(30_000);
    // While the announcer lives, refreshes keep the instance up.
    expect(events.map((e) => e[0])).toEqual(['up']);
    sock.cut(); // kill -9: no goodbye
    const cutAt = clock.now();
    clock.advance(30_000);
    const down = events.find((e) => e[0] === 'down')!;
    expect(down.slice(2)).toEqual(['a', 'expired']);
    // The last SRV the browser heard, and the refresh queries that followed it.
    const lastSrv = net.sentBy('10.0.0.1', 'response').filter((s) => s.at <= cutAt && s.packet.answers.concat(s.packet.additionals).some((rr) => rr.type === 'SRV' && rr.name === 'a._peerlb._tcp.local')).at(-1)!.at;
    const refreshes = queriesFrom('10.0.0.100').filter((s) => s.at > lastSrv && qs(s.packet).includes('a._peerlb._tcp.local SRV'));
    expect(refreshes.map((s) => s.at - lastSrv)).toEqual([8100, 8600, 9100, 9600]); // 80/85/90/95 % + 1 % of 10 s
    expect(down[1] - lastSrv).toBe(10_000);
    await b.close();
  });

  it('asks for what is missing: SRV and TXT of a bare PTR, then the target’s address', async () => {
    const { clock, net, browser, queriesFrom } = setup();
    const responder = net.socket('10.0.0.5');
    const rrs = buildRecords(info('m', 5)).records.map((r) => r.rr);
    const pick = (name: string, type: string) => rrs.filter((rr) => rr.name === name && rr.type === type);
    responder.on('packet', (p: Full) => {
      if (p.type !== 'query') return;
      const answers: Answer[] = p.questions.flatMap((q) => pick(q.name, q.type));
      if (answers.length) responder.send({ type: 'response', answers });
    });
    const { b, events } = browser();
    await b.start();
    clock.advance(1000);
    expect(events.map((e) => e[0])).toEqual(['up']);
    const asked = queriesFrom('10.0.0.100').map((s) => [s.at, qs(s.packet)]);
    expect(asked).toEqual([
      [0, ['_game._sub._peerlb._tcp.local PTR']],
      [20, ['m._peerlb._tcp.local SRV', 'm._peerlb._tcp.local TXT']],
      [40, ['peerlb-m.local A', 'peerlb-m.local AAAA']],
      [1000, ['_game._sub._peerlb._tcp.local PTR']],
    ]);
    expect(b.instances()[0]).toMatchObject({ id: 'm', host: '10.0.0.5', agentPort: 7905 });
    await b.close();
  });

  it('ignores instances whose TXT does not decode or speaks another version, and counts them', async () => {
    const { clock, net, browser } = setup();
    const responder = net.socket('10.0.0.5');
    const announce = (node: string, txt: string[]) => {
      const rrs = buildRecords(info(node, 5)).records.map((r) => (r.rr.type === 'TXT' ? ({ ...r.rr, data: txt } as Answer) : r.rr));
      responder.send({ type: 'response', answers: rrs });
    };
    const { b, events } = browser();
    await b.start();
    announce('v2', ['v=2', 'svc=game', 'node=v2']);
    announce('bad', ['v=1', 'svc=game', 'node=bad', 'udp=99999']);
    announce('ok', ['v=1', 'svc=game', 'node=ok']);
    clock.advance(100);
    expect(events.map((e) => [e[0], (e[2] as BrowsedInstance).id])).toEqual([['up', 'ok']]);
    expect(b.stats().invalid).toBeGreaterThanOrEqual(2);
    await b.close();
  });
});

describe('MdnsBrowser robustness', () => {
  it('3,000 garbage and mutated packets: keeps its instances, counts the junk, still finds a new announcer', async () => {
    const { clock, net, announcer, browser } = setup();
    const { a } = announcer(info('a', 1));
    void a.start();
    const { b, events } = browser();
    await b.start();
    clock.advance(3000);
    const random = new XorShiftRandom(11);
    const rrs = buildRecords(info('ghost', 9)).records;
    const seeds = [
      dnsPacket.encode({ type: 'response', answers: rrs.map((r) => ({ ...r.rr, flush: r.unique }) as Answer) }),
      dnsPacket.encode({ type: 'query', questions: [{ name: '_game._sub._peerlb._tcp.local', type: 'PTR' } as Question], answers: rrs.slice(3, 5).map((r) => r.rr) }),
    ];
    const src = net.socket('10.0.0.66') as FakeMdnsSocket;
    for (let i = 0; i < 3000; i++) {
      const bytes = i % 4 === 3 ? garbage(random) : mutate(seeds[i % 2]!, random);
      net.deliver(bytes, { address: src.address, port: 5353 }, undefined);
      if (i % 50 === 49) clock.advance(10);
    }
    clock.advance(1000);
    const s = b.stats();
    expect(s.packetsIn + s.malformed).toBeGreaterThanOrEqual(3000);
    expect(s.malformed).toBeGreaterThan(500);
    expect(b.instances().map((i) => i.id)).toContain('a');
    expect(events.filter((e) => e[0] === 'down' && e[2] === 'a')).toEqual([]);
    // Still working: a new announcer is found.
    const { a: late } = announcer(info('late', 2));
    void late.start();
    clock.advance(3000);
    expect(b.instances().map((i) => i.id)).toEqual(expect.arrayContaining(['a', 'late']));
    await a.stop();
    await late.stop();
    await b.close();
  });

  it('socket errors, warnings and throwing listeners are counted, not thrown', async () => {
    const { clock, net, announcer, browser } = setup();
    const { b } = browser();
    b.on('up', () => {
      throw new Error('listener bug');
    });
    await b.start();
    const { a } = announcer(info('a', 1));
    void a.start();
    clock.advance(3000);
    const sock = net.sockets.find((s) => s.address === '10.0.0.100')!;
    sock.emit('error', new Error('EPERM'));
    sock.emit('warning', new Error('junk'));
    sock.emit('packet', null, { address: '1.1.1.1', port: 5353 });
    expect(b.stats()).toMatchObject({ errors: 1, malformed: 1, listenerErrors: 1 });
    expect(b.instances()).toHaveLength(1);
    await a.stop();
    await b.close();
  });
});
