/**
 * MdnsAnnouncer on a ManualClock over the in-memory link (fake-mdns.ts): every RFC 6762 timing
 * is checked to the millisecond without sleeping. loopback.test.ts repeats the essentials on
 * real sockets.
 */
import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import type { Answer, Question } from 'dns-packet';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { AnnouncerState, MdnsAnnouncer } from '../../../../agent/mdns/announcer.js';
import { buildRecords, type AnnounceInfo } from '../../../../sdk/mdns/records.js';
import { recordKey } from '../../../../sdk/mdns/keys.js';
import { FakeMdnsNet, fixedRandom, garbage, mutate, type Full, type Sent } from '../../../support/fake-mdns.js';

const INFO: AnnounceInfo = { node: 'x', service: 'game', host: '10.0.0.1', agentPort: 7946, udpPort: 7001, tcpPort: 7000, weight: 100, health: 'healthy', loadBucket: 0 };
const Q = (name: string, type: string): Question => ({ name, type, class: 'IN' }) as Question;

function setup() {
  const clock = new ManualClock(0);
  const net = new FakeMdnsNet(clock);
  const querier = net.socket('10.0.0.9');
  const make = (info: AnnounceInfo = INFO, address = '10.0.0.1', random = fixedRandom(0.5), ttls?: { host: number; txt: number; ptr: number }) =>
    new MdnsAnnouncer({ info, interface: '127.0.0.1', mdns: net.socket(address), clock, random, ttls });
  const query = (questions: Question[], answers: Answer[] = [], flags = 0) => querier.send({ type: 'query', id: 0, flags, questions, answers });
  /** Responses sent from `address` after time `t`. */
  const responses = (address: string, t = 0) => net.sentBy(address, 'response').filter((s) => s.at >= t);
  return { clock, net, querier, make, query, responses };
}

async function announced(a: MdnsAnnouncer, clock: ManualClock) {
  const p = a.start();
  clock.advance(2000);
  await p;
  expect(a.state).toBe(AnnouncerState.Announced);
}

const names = (s: Sent, section: 'answers' | 'additionals' = 'answers') => (s.packet[section] ?? []).map((rr) => `${rr.name} ${rr.type}`);

describe('MdnsAnnouncer phases', () => {
  it('probes three times 250 ms apart after a random 0–250 ms delay, then announces twice one second apart (RFC 6762 §8.1, §8.3)', async () => {
    const { clock, net, make } = setup();
    const a = make();
    const states: string[] = [];
    a.on('state', (s) => states.push(s));
    let claimedAt = -1;
    a.on('state', (s) => s === AnnouncerState.Announcing && (claimedAt = clock.now()));
    const p = a.start();
    clock.advance(3000);
    await p;
    const sent = net.sentBy('10.0.0.1');
    expect(sent.map((s) => [s.at, s.packet.type])).toEqual([
      [125, 'query'],
      [375, 'query'],
      [625, 'query'],
      [875, 'response'],
      [1875, 'response'],
    ]);
    expect(claimedAt).toBe(875);
    expect(states).toEqual(['probing', 'announcing', 'announced']);

    // A probe asks ANY for each unique name and proposes our records in the Authority section, without cache-flush bits.
    const probe = sent[0]!.packet;
    expect(probe.questions.map((q) => `${q.name} ${q.type}`)).toEqual(['x._peerlb._tcp.local ANY', 'x._game._udp.local ANY', 'x._game._tcp.local ANY', 'peerlb-x.local ANY']);
    expect(probe.authorities.map((rr) => `${rr.name} ${rr.type}`).sort()).toEqual(
      buildRecords(INFO).records.filter((r) => r.unique).map((r) => `${r.rr.name} ${r.rr.type}`).sort(),
    );
    for (const rr of probe.authorities) expect((rr as { flush?: boolean }).flush).toBe(false);

    // An announcement is every record, unique ones with the cache-flush bit (§10.2).
    for (const s of sent.slice(3)) {
      expect(s.packet.answers.map((rr) => recordKey(rr)).sort()).toEqual(a.records().map((rr) => recordKey(rr)).sort());
      for (const rr of s.packet.answers) expect((rr as { flush?: boolean }).flush).toBe(rr.type !== 'PTR');
    }
    await a.stop();
  });

  it('renames to "node (2)" when another host defends the name (§8.1, §9)', async () => {
    const { clock, make, responses } = setup();
    const a = make({ ...INFO, agentPort: 1000 });
    await announced(a, clock);
    const b = make({ ...INFO, agentPort: 2000 }, '10.0.0.2');
    const renames: string[] = [];
    b.on('rename', (n, prev) => renames.push(`${prev.label} -> ${n.label}`));
    const p = b.start();
    clock.advance(3000);
    await p;
    expect(renames).toEqual(['x -> x (2)']);
    expect(b.names()).toMatchObject({ label: 'x (2)', instance: 'x (2)._peerlb._tcp.local', hostname: 'peerlb-x-2.local' });
    expect(b.stats()).toMatchObject({ conflicts: 1, renames: 1 });
    expect(b.state).toBe(AnnouncerState.Announced);
    const last = responses('10.0.0.2').at(-1)!;
    expect(names(last)).toContain('x (2)._peerlb._tcp.local SRV');
    // The defender keeps its name and saw no conflict.
    expect(a.names().label).toBe('x');
    expect(a.stats()).toMatchObject({ conflicts: 0, renames: 0 });
    expect(a.state).toBe(AnnouncerState.Announced);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('simultaneous probes: the tiebreak loser (lexicographically smaller records) waits one second, then renames (§8.2)', async () => {
    const { clock, make } = setup();
    const hi = make({ ...INFO, agentPort: 2000 }, '10.0.0.1');
    const lo = make({ ...INFO, agentPort: 1000 }, '10.0.0.2');
    const p = Promise.all([hi.start(), lo.start()]);
    clock.advance(6000);
    await p;
    expect(hi.names().label).toBe('x');
    expect(lo.names().label).toBe('x (2)');
    expect(lo.stats().tiebreaksLost).toBeGreaterThanOrEqual(1);
    expect(hi.stats().tiebreaksLost).toBe(0);
    await Promise.all([hi.stop(), lo.stop()]);
  });

  it('a conflicting response after announcing sends it back to probing; with no defender it keeps its name (§9)', async () => {
    const { clock, net, make } = setup();
    const a = make();
    await announced(a, clock);
    const liar = net.socket('10.0.0.7');
    liar.send({ type: 'response', answers: [{ name: 'x._peerlb._tcp.local', type: 'SRV', ttl: 20, flush: true, data: { port: 1, target: 'evil.local' } }] });
    clock.advance(0);
    expect(a.state).toBe(AnnouncerState.Probing);
    clock.advance(2000);
    expect(a.state).toBe(AnnouncerState.Announced);
    expect(a.names().label).toBe('x');
    expect(a.stats()).toMatchObject({ conflicts: 1, renames: 0 });
    await a.stop();
  });

  it('stop sends one goodbye: every record, TTL 0 (§10.1)', async () => {
    const { clock, make, responses } = setup();
    const a = make();
    await announced(a, clock);
    const t = clock.now();
    await a.stop();
    const bye = responses('10.0.0.1', t);
    expect(bye).toHaveLength(1);
    expect(bye[0]!.packet.answers.map((rr) => recordKey(rr)).sort()).toEqual(a.records().map((rr) => recordKey(rr)).sort());
    for (const rr of bye[0]!.packet.answers) expect((rr as { ttl: number }).ttl).toBe(0);
    expect(a.state).toBe(AnnouncerState.Stopped);
    await a.stop(); // idempotent
  });

  it('stop while probing sends nothing and resolves start()', async () => {
    const { clock, net, make } = setup();
    const a = make();
    const p = a.start();
    clock.advance(400);
    await a.stop();
    await p;
    expect(net.sentBy('10.0.0.1', 'response')).toEqual([]);
    clock.advance(5000);
    expect(net.sentBy('10.0.0.1').every((s) => s.at <= 400)).toBe(true);
  });
});

describe('MdnsAnnouncer answers', () => {
  it('answers a browse with the PTR, adding SRV, TXT and A, after a 20–120 ms delay for a shared record (§6, RFC 6763 §12)', async () => {
    const { clock, make, query, responses } = setup();
    const a = make();
    await announced(a, clock);
    clock.advance(2000);
    const t = clock.now();
    query([Q('_game._sub._peerlb._tcp.local', 'PTR')]);
    clock.advance(500);
    const r = responses('10.0.0.1', t);
    expect(r).toHaveLength(1);
    expect(r[0]!.at - t).toBe(70); // 20 + 0.5 × 100
    expect(names(r[0]!)).toEqual(['_game._sub._peerlb._tcp.local PTR']);
    expect(names(r[0]!, 'additionals')).toEqual(['x._peerlb._tcp.local SRV', 'x._peerlb._tcp.local TXT', 'peerlb-x.local A']);
    for (const rr of r[0]!.packet.additionals) expect((rr as { flush?: boolean }).flush).toBe(true);
    expect(a.stats().answered).toBe(1);
    await a.stop();
  });

  it('answers ANY at once (unique records) and the service enumeration (RFC 6763 §9)', async () => {
    const { clock, make, query, responses } = setup();
    const a = make();
    await announced(a, clock);
    clock.advance(2000);
    let t = clock.now();
    query([Q('x._game._udp.local', 'ANY')]);
    clock.advance(0);
    let r = responses('10.0.0.1', t);
    expect(r.map((s) => s.at - t)).toEqual([0]);
    expect(names(r[0]!)).toEqual(['x._game._udp.local SRV', 'x._game._udp.local TXT']);
    expect(names(r[0]!, 'additionals')).toEqual(['peerlb-x.local A']);

    clock.advance(2000);
    t = clock.now();
    query([Q('_services._dns-sd._udp.local', 'PTR')]);
    clock.advance(200);
    r = responses('10.0.0.1', t);
    expect(r[0]!.packet.answers.map((rr) => (rr as { data: string }).data)).toEqual(['_peerlb._tcp.local', '_game._udp.local', '_game._tcp.local']);
    await a.stop();
  });

  it('known-answer suppression: no answer when the querier lists it with at least half our TTL (§7.1)', async () => {
    const { clock, make, query, responses } = setup();
    const a = make();
    await announced(a, clock);
    clock.advance(2000);
    const ptr = a.records().find((rr) => rr.name === '_peerlb._tcp.local')!;
    let t = clock.now();
    query([Q('_peerlb._tcp.local', 'PTR')], [{ ...ptr, ttl: 2250 } as Answer]);
    clock.advance(500);
    expect(responses('10.0.0.1', t)).toEqual([]);
    expect(a.stats().suppressed).toBe(1);

    t = clock.now();
    query([Q('_peerlb._tcp.local', 'PTR')], [{ ...ptr, ttl: 2249 } as Answer]);
    clock.advance(500);
    expect(responses('10.0.0.1', t)).toHaveLength(1);
    await a.stop();
  });

  it('multicasts a record at most once a second (§6): an answer asked for within the second goes out when it is up, once', async () => {
    const { clock, make, query, responses } = setup();
    const a = make();
    await announced(a, clock);
    // Just after the second announcement: everything went out less than a second ago.
    const t0 = clock.now();
    query([Q('peerlb-x.local', 'A')]);
    clock.advance(10);
    expect(responses('10.0.0.1', t0)).toEqual([]);
    // Deferred, not dropped: it goes out once the second since the announcement is up.
    clock.advance(1000);
    expect(responses('10.0.0.1', t0)).toHaveLength(1);
    const t1 = clock.now();
    // Three queries within the next second: one answer, when that second is up, not three.
    query([Q('peerlb-x.local', 'A')]);
    clock.advance(10);
    query([Q('peerlb-x.local', 'A')]);
    clock.advance(300);
    query([Q('peerlb-x.local', 'A')]);
    clock.advance(10);
    expect(responses('10.0.0.1', t1)).toEqual([]);
    clock.advance(1000);
    expect(responses('10.0.0.1', t1)).toHaveLength(1);
    clock.advance(3000);
    expect(responses('10.0.0.1', t1)).toHaveLength(1);
    expect(a.stats().rateLimited).toBeGreaterThanOrEqual(2);
    await a.stop();
  });

  it('a deferred answer (§6) carries its additionals: a browse just after an announcement gets PTR with SRV, TXT and A', async () => {
    const { clock, make, query, responses } = setup();
    const a = make();
    await announced(a, clock);
    const t0 = clock.now();
    query([Q('_peerlb._tcp.local', 'PTR')]);
    clock.advance(1200);
    const r = responses('10.0.0.1', t0);
    expect(r.length).toBeGreaterThanOrEqual(1);
    const all = r.flatMap((s) => [...names(s), ...names(s, 'additionals')]);
    for (const type of ['PTR', 'SRV', 'TXT', 'A']) expect(all.some((n) => n.endsWith(` ${type}`)), `${type} in ${JSON.stringify(all)}`).toBe(true);
    await a.stop();
  });

  it('legacy unicast: a query from another port gets a unicast answer with its id, its questions, TTL ≤ 10 s, no cache-flush (§6.7)', async () => {
    const { clock, net, make, responses } = setup();
    const a = make();
    await announced(a, clock);
    const legacy = net.socket('10.0.0.50', 40000);
    const got: Full[] = [];
    legacy.on('packet', (p: Full) => p.type === 'response' && got.push(p));
    const t = clock.now();
    legacy.send({ type: 'query', id: 4242, questions: [Q('x._peerlb._tcp.local', 'SRV')] });
    clock.advance(10);
    const r = responses('10.0.0.1', t);
    expect(r).toHaveLength(1);
    expect(r[0]!.to).toEqual({ address: '10.0.0.50', port: 40000 });
    expect(got).toHaveLength(1);
    expect(got[0]!.id).toBe(4242);
    expect(got[0]!.questions).toEqual([{ name: 'x._peerlb._tcp.local', type: 'SRV', class: 'IN' }]);
    for (const rr of [...got[0]!.answers, ...got[0]!.additionals]) {
      expect((rr as { ttl: number }).ttl).toBeLessThanOrEqual(10);
      expect((rr as { flush: boolean }).flush).toBe(false);
    }
    expect(a.stats().unicastAnswers).toBe(1);
    await a.stop();
  });

  it('QU bit: unicast if the record was multicast within a quarter of its TTL, else multicast (§5.4)', async () => {
    const { clock, net, make, responses } = setup();
    const a = make();
    await announced(a, clock);
    const quQuery = () => {
      const bytes = dnsPacket.encode({ type: 'query', id: 0, questions: [Q('peerlb-x.local', 'A')] });
      bytes.writeUInt16BE(0x8001, bytes.length - 2); // class IN with the unicast-response bit
      net.deliver(bytes, { address: '10.0.0.9', port: 5353 }, undefined);
    };
    let t = clock.now();
    quQuery();
    clock.advance(10);
    expect(responses('10.0.0.1', t).map((s) => s.to)).toEqual([{ address: '10.0.0.9', port: 5353 }]);
    clock.advance(6000); // > 20 s / 4 since the last multicast of the A record
    t = clock.now();
    quQuery();
    clock.advance(10);
    expect(responses('10.0.0.1', t).map((s) => s.to)).toEqual([undefined]);
    await a.stop();
  });

  it('a truncated query waits 400–500 ms for the rest of its known answers (§7.2)', async () => {
    const { clock, make, query, responses } = setup();
    const a = make();
    await announced(a, clock);
    clock.advance(2000);
    const ptr = a.records().find((rr) => rr.name === '_peerlb._tcp.local')!;
    const other = { ...ptr, data: 'other._peerlb._tcp.local' } as Answer;
    // The rest arrives and holds our PTR: no answer at all.
    let t = clock.now();
    query([Q('_peerlb._tcp.local', 'PTR')], [other], dnsPacket.TRUNCATED_RESPONSE);
    clock.advance(100);
    query([], [ptr]);
    clock.advance(1000);
    expect(responses('10.0.0.1', t)).toEqual([]);
    // No rest: the answer comes after 450 ms (0.5 of the window), plus the shared-record delay.
    t = clock.now();
    query([Q('_peerlb._tcp.local', 'PTR')], [other], dnsPacket.TRUNCATED_RESPONSE);
    clock.advance(1000);
    expect(responses('10.0.0.1', t).map((s) => s.at - t)).toEqual([450 + 70]);
    await a.stop();
  });
});

describe('MdnsAnnouncer updates', () => {
  it('re-announces changed records twice, each at most once a second (§8.4, §6)', async () => {
    const { clock, make, responses } = setup();
    const a = make();
    await announced(a, clock);
    clock.advance(5000);
    const t = clock.now();
    // The weight (a load-only change has an interval of its own: load-bucket.test.ts).
    for (let i = 1; i <= 10; i++) {
      a.update({ ...INFO, weight: 100 + i });
      clock.advance(100);
    }
    clock.advance(5000);
    const sent = responses('10.0.0.1', t);
    // Only the TXT records changed.
    for (const s of sent) expect(new Set(s.packet.answers.map((rr) => rr.type))).toEqual(new Set(['TXT']));
    const times = sent.map((s) => s.at - t);
    expect(times).toEqual([0, 1000, 2000]);
    const weight = (s: Sent) => (s.packet.answers[0] as { data: Buffer[] }).data.map(String).find((x) => x.startsWith('w='));
    expect(sent.map(weight)).toEqual(['w=101', 'w=110', 'w=110']);
    await a.stop();
  });

  it('an unchanged update sends nothing; an update while probing goes out with the announcement', async () => {
    const { clock, net, make } = setup();
    const a = make();
    const p = a.start();
    clock.advance(300);
    a.update({ ...INFO, health: 'draining' });
    clock.advance(3000);
    await p;
    const firstAnnouncement = net.sentBy('10.0.0.1', 'response')[0]!;
    expect(firstAnnouncement.packet.answers.some((rr) => rr.type === 'TXT' && (rr as { data: Buffer[] }).data.map(String).includes('h=draining'))).toBe(true);
    const n = net.log.length;
    a.update({ ...INFO, health: 'draining' });
    clock.advance(3000);
    expect(net.sentBy('10.0.0.1').filter((s) => net.log.indexOf(s) >= n)).toEqual([]);
    await a.stop();
  });

  it('new names: goodbye for the old records, then probing and announcing the new ones', async () => {
    const { clock, make, responses } = setup();
    const a = make();
    await announced(a, clock);
    clock.advance(3000);
    const t = clock.now();
    a.update({ ...INFO, service: 'chess', tcpPort: undefined });
    expect(a.state).toBe(AnnouncerState.Probing);
    const bye = responses('10.0.0.1', t)[0]!;
    expect(bye.packet.answers.every((rr) => (rr as { ttl: number }).ttl === 0)).toBe(true);
    expect(names(bye)).toContain('_game._sub._peerlb._tcp.local PTR');
    expect(names(bye)).toContain('x._game._tcp.local SRV');
    expect(names(bye)).not.toContain('_peerlb._tcp.local PTR'); // still ours
    clock.advance(2500);
    expect(a.state).toBe(AnnouncerState.Announced);
    expect(a.names()).toMatchObject({ subtype: '_chess._sub._peerlb._tcp.local', udpInstance: 'x._chess._udp.local' });
    expect(a.names().tcpInstance).toBeUndefined();
    await a.stop();
  });

  it('rejects info it cannot announce, before changing anything', async () => {
    const { clock, make } = setup();
    const a = make();
    await announced(a, clock);
    expect(() => a.update({ ...INFO, weight: 0 })).toThrow(/weight/);
    expect(() => a.update({ ...INFO, host: 'nope' })).toThrow(/host/);
    expect(a.records().find((rr) => rr.type === 'A')).toMatchObject({ data: '10.0.0.1' });
    expect(() => new MdnsAnnouncer({ info: { ...INFO, service: 'bad_name' }, interface: '127.0.0.1' })).toThrow(/service/);
    await a.stop();
  });
});

describe('MdnsAnnouncer robustness', () => {
  it('counts socket errors and warnings instead of crashing', async () => {
    const { clock, net, make } = setup();
    const a = make();
    await announced(a, clock);
    const sock = net.sockets.find((s) => s.address === '10.0.0.1')!;
    sock.emit('error', new Error('EHOSTUNREACH'));
    sock.emit('warning', new Error('bad packet'));
    sock.emit('packet', null, { address: '1.2.3.4', port: 5353 });
    sock.emit('packet', { type: 'query', questions: 'nope', answers: 5 }, { address: '1.2.3.4', port: 5353 });
    sock.emit('packet', { type: 'response', answers: [null, { name: 5 }, { name: 'x._peerlb._tcp.local', type: 'SRV' }] }, undefined);
    expect(a.stats()).toMatchObject({ errors: 1, malformed: 1 });
    expect(a.state).toBe(AnnouncerState.Announced);
    await a.stop();
  });

  it('5,000 garbage and mutated packets: keeps running and still answers correctly', async () => {
    const { clock, net, make, query, responses } = setup();
    const a = make();
    await announced(a, clock);
    const random = new XorShiftRandom(7);
    const other = buildRecords({ ...INFO, node: 'other', host: '10.0.0.8', agentPort: 9000 }).records;
    const seeds = [
      dnsPacket.encode({ type: 'query', questions: [Q('_peerlb._tcp.local', 'PTR'), Q('x._peerlb._tcp.local', 'ANY'), Q('_services._dns-sd._udp.local', 'PTR')] }),
      dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: other.map((r) => ({ ...r.rr, flush: r.unique }) as Answer) }),
      dnsPacket.encode({ type: 'query', questions: [Q('other._peerlb._tcp.local', 'ANY')], authorities: other.filter((r) => r.unique).map((r) => r.rr) }),
      dnsPacket.encode({ type: 'query', flags: dnsPacket.TRUNCATED_RESPONSE, questions: [Q('_peerlb._tcp.local', 'PTR')], answers: other.slice(0, 3).map((r) => r.rr) }),
    ];
    for (let i = 0; i < 5000; i++) {
      const bytes = i % 5 === 4 ? garbage(random) : mutate(seeds[i % seeds.length]!, random);
      net.deliver(bytes, { address: `10.0.${random.int(4)}.${2 + random.int(200)}`, port: random.next() < 0.8 ? 5353 : 1024 + random.int(60000) }, undefined);
      if (i % 50 === 49) clock.advance(10);
    }
    clock.advance(5000); // time for a re-probe, should a mutation have looked like a conflict
    const s = a.stats();
    // Every packet is accounted for: decoded (and handled or ignored), or counted as malformed.
    expect(s.packetsIn + s.malformed).toBeGreaterThanOrEqual(5000);
    expect(s.malformed).toBeGreaterThan(1000);
    expect(s.queriesIn).toBeGreaterThan(100);
    expect(s.responsesIn).toBeGreaterThan(100);
    expect(a.state).toBe(AnnouncerState.Announced);
    expect(a.names().label).toBe('x');
    clock.advance(2000);
    const t = clock.now();
    query([Q('_game._sub._peerlb._tcp.local', 'PTR')]);
    clock.advance(200);
    const r = responses('10.0.0.1', t);
    expect(r).toHaveLength(1);
    expect(names(r[0]!, 'additionals')).toEqual(['x._peerlb._tcp.local SRV', 'x._peerlb._tcp.local TXT', 'peerlb-x.local A']);
    await a.stop();
  });
});
