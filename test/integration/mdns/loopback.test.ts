/**
 * The announcer and the browser on real multicast sockets, loopback only (interface 127.0.0.1,
 * bound to 0.0.0.0, multicast loopback on). Another socket captures what goes on the wire and
 * decodes it with dns-packet (through multicast-dns). Service and node names carry a per-run
 * suffix, so other tests and agents on this host's 5353 cannot be mistaken for ours; the fuzz
 * test uses a port of its own so its garbage reaches no one else.
 */
import dgram from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';
import { AnnouncerState, MdnsAnnouncer } from '../../../agent/mdns/announcer.js';
import { decodeTxt, parseAnnouncement, type AnnounceInfo } from '../../../sdk/mdns/records.js';
import { recordKey } from '../../../sdk/mdns/keys.js';
import { createMdnsSocket, waitReady, type MdnsRinfo } from '../../../sdk/mdns/socket.js';
import { MdnsBrowser, type BrowsedInstance } from '../../../sdk/mdns/browser.js';
import { XorShiftRandom } from '../../../sdk/core/random.js';
import { LIMITS } from '../../../sdk/core/protocol.js';
import { garbage, mutate, type Full } from '../../support/fake-mdns.js';
import { sleep, until } from '../../support/until.js';

const IFACE = '127.0.0.1';
const RUN = Math.random().toString(36).slice(2, 8);
const Q = (name: string, type: string): Question => ({ name, type, class: 'IN' }) as Question;
const info = (node: string, service: string, agentPort: number, over: Partial<AnnounceInfo> = {}): AnnounceInfo => ({
  node,
  service,
  host: '127.0.0.1',
  agentPort,
  udpPort: agentPort + 1,
  tcpPort: agentPort + 2,
  weight: 100,
  health: 'healthy',
  loadBucket: 0,
  ...over,
});


interface Captured {
  t: number;
  p: Full;
  rinfo: MdnsRinfo;
}

/** A second socket on the link that records every packet. */
async function observer(port = 5353) {
  const sock = createMdnsSocket(IFACE, port);
  const got: Captured[] = [];
  sock.on('packet', (p: DecodedPacket, rinfo: MdnsRinfo) => got.push({ t: performance.now(), p: p as Full, rinfo }));
  sock.on('error', () => {});
  sock.on('warning', () => {});
  await waitReady(sock);
  return { sock, got, close: () => new Promise<void>((r) => sock.destroy(() => r())) };
}

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

const rrsOf = (p: Full) => [...p.answers, ...p.additionals];
const mentions = (p: Full, name: string) => [...rrsOf(p), ...p.authorities].some((rr) => rr.name === name);

// Independent scenarios (own names; the fuzz has its own port): run them side by side, the file
// then takes as long as the slowest one.
describe.concurrent('mDNS on loopback', () => {
  it('announcer: probes, announces twice a second apart, answers, suppresses known answers, says goodbye; the packets hold the whole record set', async () => {
    const svc = `c${RUN}`;
    const node = `cap-${RUN}`;
    const obs = await observer();
    closers.push(obs.close);
    const a = new MdnsAnnouncer({ info: info(node, svc, 21000), interface: IFACE });
    closers.push(() => a.stop());
    await a.start();
    const instance = `${node}._peerlb._tcp.local`;
    const all = new Set(a.records().map((rr) => recordKey(rr)));
    const isAnnouncement = (c: Captured) => c.p.type === 'response' && all.size > 0 && [...all].every((k) => c.p.answers.some((rr) => recordKey(rr) === k));
    await until(() => obs.got.filter(isAnnouncement).length >= 2, 4000, 'two announcements');
    expect(a.state).toBe(AnnouncerState.Announced);

    // Probing: three queries for our names with our records as authorities, 250 ms apart (§8.1).
    const probes = obs.got.filter((c) => c.p.type === 'query' && c.p.authorities.some((rr) => rr.name === instance));
    expect(probes).toHaveLength(3);
    for (let i = 1; i < 3; i++) expect(probes[i]!.t - probes[i - 1]!.t).toBeGreaterThan(200);
    for (let i = 1; i < 3; i++) expect(probes[i]!.t - probes[i - 1]!.t).toBeLessThan(500);
    const ann = obs.got.filter(isAnnouncement);
    expect(ann).toHaveLength(2);
    const gap = ann[1]!.t - ann[0]!.t;
    expect(gap).toBeGreaterThan(900);
    expect(gap).toBeLessThan(1600);
    expect(ann[0]!.t - probes[2]!.t).toBeGreaterThan(200);

    // The record set, as a DNS-SD browser sees it.
    const rrs = ann[0]!.p.answers;
    const find = (name: string, type: string) => rrs.filter((rr) => rr.name === name && rr.type === type);
    const data = (rr: Answer | undefined) => (rr as { data: unknown } | undefined)?.data;
    const host = `peerlb-cap-${RUN}.local`;
    expect(find('_peerlb._tcp.local', 'PTR').map(data)).toEqual([instance]);
    expect(find(`_${svc}._sub._peerlb._tcp.local`, 'PTR').map(data)).toEqual([instance]);
    expect(find(instance, 'SRV').map(data)).toEqual([{ priority: 0, weight: 0, port: 21000, target: host }]);
    expect(find(host, 'A').map(data)).toEqual(['127.0.0.1']);
    for (const [proto, port] of [['udp', 21001], ['tcp', 21002]] as const) {
      const inst = `${node}._${svc}._${proto}.local`;
      expect(find(`_${svc}._${proto}.local`, 'PTR').map(data)).toEqual([inst]);
      expect(find(inst, 'SRV').map(data)).toEqual([{ priority: 0, weight: 0, port, target: host }]);
      expect(find(inst, 'TXT')).toHaveLength(1);
    }
    expect(find('_services._dns-sd._udp.local', 'PTR').map(data)).toEqual(['_peerlb._tcp.local', `_${svc}._udp.local`, `_${svc}._tcp.local`]);
    for (const rr of rrs) expect((rr as { flush: boolean }).flush).toBe(rr.type !== 'PTR');
    const txt = find(instance, 'TXT')[0] as { data: Buffer[] };
    for (const s of txt.data) {
      expect(s.length).toBeLessThanOrEqual(LIMITS.maxTxtStringBytes);
      expect(s.toString().split('=')[0]!.length).toBeLessThanOrEqual(LIMITS.maxTxtKeyLength);
    }
    expect(decodeTxt(txt.data)).toMatchObject({ version: 1, service: svc, node, udpPort: 21001, tcpPort: 21002, weight: 100, health: 'healthy', loadBucket: 0 });
    expect(parseAnnouncement(ann[0]!.p)).toEqual({
      announcements: [{ instance, node, service: svc, host: '127.0.0.1', agentPort: 21000, udpPort: 21001, tcpPort: 21002, weight: 100, health: 'healthy', loadBucket: 0, ttl: 20 }],
      errors: [],
    });

    // Known-answer suppression (§7.1), then a plain query answered — a second after the last announcement (§6).
    await sleep(1100);
    const ptr = find(`_${svc}._sub._peerlb._tcp.local`, 'PTR')[0]!;
    let from = obs.got.length;
    obs.sock.send({ type: 'query', questions: [Q(`_${svc}._sub._peerlb._tcp.local`, 'PTR')], answers: [{ ...ptr, ttl: 4000, flush: false } as Answer] });
    await sleep(400);
    expect(obs.got.slice(from).filter((c) => c.p.type === 'response' && mentions(c.p, instance))).toEqual([]);
    expect(a.stats().suppressed).toBe(1);
    from = obs.got.length;
    obs.sock.send({ type: 'query', questions: [Q(`_${svc}._sub._peerlb._tcp.local`, 'PTR')] });
    await until(() => obs.got.slice(from).some((c) => c.p.type === 'response' && mentions(c.p, instance)), 1000, 'an answer');
    const answer = obs.got.slice(from).find((c) => c.p.type === 'response' && mentions(c.p, instance))!.p;
    expect(answer.answers.map((rr) => `${rr.name} ${rr.type}`)).toEqual([`_${svc}._sub._peerlb._tcp.local PTR`]);
    expect(answer.additionals.map((rr) => `${rr.name} ${rr.type}`)).toEqual([`${instance} SRV`, `${instance} TXT`, `${host} A`]);

    // Goodbye: every record, TTL 0 (§10.1).
    from = obs.got.length;
    await a.stop();
    await until(() => obs.got.slice(from).some((c) => c.p.type === 'response' && mentions(c.p, instance)), 1000, 'the goodbye');
    const bye = obs.got.slice(from).find((c) => c.p.type === 'response' && mentions(c.p, instance))!.p;
    expect(new Set(bye.answers.map((rr) => recordKey(rr)))).toEqual(all);
    for (const rr of bye.answers) expect((rr as { ttl: number }).ttl).toBe(0);
  });

  it('announcer: renames on a real conflict: a second agent claiming the same node becomes "node (2)"', async () => {
    const node = `dup-${RUN}`;
    const first = new MdnsAnnouncer({ info: info(node, `d${RUN}`, 22000), interface: IFACE });
    closers.push(() => first.stop());
    await first.start();
    const second = new MdnsAnnouncer({ info: info(node, `d${RUN}`, 22100), interface: IFACE });
    closers.push(() => second.stop());
    await second.start();
    expect(second.names().label).toBe(`${node} (2)`);
    expect(second.names().hostname).toBe(`peerlb-dup-${RUN}-2.local`);
    expect(second.stats().renames).toBe(1);
    expect(first.names().label).toBe(node);
    await Promise.all([first.stop(), second.stop()]);
  });

  it('browser: finds three announcers, sees a TXT update, drops one at its goodbye, expires one that vanished', async () => {
    const svc = `b${RUN}`;
    const b = new MdnsBrowser({ service: svc, interface: IFACE });
    closers.push(() => b.close());
    const events: [string, number, BrowsedInstance | string, string?][] = [];
    b.on('up', (i) => events.push(['up', performance.now(), i]));
    b.on('update', (i) => events.push(['update', performance.now(), i]));
    b.on('down', (id, reason) => events.push(['down', performance.now(), id, reason]));
    await b.start();

    const as = [1, 2, 3].map((i) => new MdnsAnnouncer({ info: info(`n${i}-${RUN}`, svc, 23000 + 10 * i), interface: IFACE }));
    // The fourth vanishes without a goodbye: its own socket, short TTLs, destroyed under it.
    const sock4 = createMdnsSocket(IFACE);
    sock4.on('error', () => {});
    await waitReady(sock4);
    const vanishing = new MdnsAnnouncer({ info: info(`n4-${RUN}`, svc, 23040), interface: IFACE, mdns: sock4, ttls: { host: 2, txt: 2, ptr: 4500 } });
    for (const a of as) closers.push(() => a.stop());
    closers.push(() => vanishing.stop());
    await Promise.all([...as, vanishing].map((a) => a.start()));
    await until(() => b.instances().length === 4, 5000, 'four instances');
    const ids = b.instances().map((i) => i.id).sort();
    expect(ids).toEqual([1, 2, 3, 4].map((i) => `n${i}-${RUN}`));
    const one = b.instances().find((i) => i.id === `n1-${RUN}`)!;
    expect(one).toMatchObject({ host: '127.0.0.1', agentPort: 23010, udpPort: 23011, tcpPort: 23012, agentUrl: 'ws://127.0.0.1:23010', service: svc });

    // A TXT change arrives as one update (at most a second later: the §6 rate limit).
    as[0]!.update(info(`n1-${RUN}`, svc, 23010, { loadBucket: 6, health: 'draining' }));
    await until(() => events.some((e) => e[0] === 'update' && (e[2] as BrowsedInstance).loadBucket === 6), 2500, 'the update');
    expect(b.instances().find((i) => i.id === `n1-${RUN}`)).toMatchObject({ loadBucket: 6, health: 'draining' });

    // Goodbye: down as soon as it arrives (its records stay cached for the §10.1 second).
    const t = performance.now();
    await as[1]!.stop();
    await until(() => events.some((e) => e[0] === 'down' && e[2] === `n2-${RUN}`), 2500, 'n2 down');
    const down = events.find((e) => e[0] === 'down' && e[2] === `n2-${RUN}`)!;
    expect(down[3]).toBe('goodbye');
    const ms = down[1] - t;
    expect(ms).toBeLessThanOrEqual(500);

    // Vanished (socket gone, no goodbye): expired once its 2 s TTL ran out unanswered.
    const cut = performance.now();
    await new Promise<void>((r) => sock4.destroy(() => r()));
    await until(() => events.some((e) => e[0] === 'down' && e[2] === `n4-${RUN}`), 4000, 'n4 expired');
    const expired = events.find((e) => e[0] === 'down' && e[2] === `n4-${RUN}`)!;
    expect(expired[3]).toBe('expired');
    expect(expired[1] - cut).toBeLessThanOrEqual(2500);
    expect(b.instances().map((i) => i.id).sort()).toEqual([`n1-${RUN}`, `n3-${RUN}`]);
    await Promise.all([as[0]!.stop(), as[2]!.stop(), b.close()]);
  });

  it('garbage: 1,500 garbage and mutated packets (at least 1,000 received by each) into a live announcer and browser: both keep running and still answer', async () => {
    // A port of its own: this garbage must not reach anything else on the host.
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const svc = `f${RUN}`;
    const node = `fz-${RUN}`;
    const obs = await observer(port);
    closers.push(obs.close);
    const a = new MdnsAnnouncer({ info: info(node, svc, 24000), interface: IFACE, port });
    const b = new MdnsBrowser({ service: svc, interface: IFACE, port });
    closers.push(() => a.stop(), () => b.close());
    await Promise.all([a.start(), b.start()]);
    await until(() => b.instances().length === 1, 5000, 'the browser to find the announcer');

    // Raw senders, from the mDNS port and from an ephemeral one (legacy unicast path).
    const senders: dgram.Socket[] = [];
    for (const bindPort of [port, 0]) {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      s.on('error', () => {});
      s.on('message', () => {});
      await new Promise<void>((r) => s.bind(bindPort, '0.0.0.0', () => r()));
      s.setMulticastInterface(IFACE);
      s.setMulticastLoopback(true);
      senders.push(s);
    }
    closers.push(async () => senders.forEach((s) => s.close()));
    const random = new XorShiftRandom(3);
    const ghost = info(`ghost-${RUN}`, svc, 25000);
    const ghostRecords = new MdnsAnnouncer({ info: ghost, interface: IFACE }).records();
    const seeds = [
      dnsPacket.encode({ type: 'query', questions: [Q(`_${svc}._sub._peerlb._tcp.local`, 'PTR'), Q(`${node}._peerlb._tcp.local`, 'ANY')] }),
      dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: ghostRecords.map((rr) => ({ ...rr, flush: rr.type !== 'PTR' }) as Answer) }),
      dnsPacket.encode({ type: 'query', questions: [Q(`ghost-${RUN}._peerlb._tcp.local`, 'ANY')], authorities: ghostRecords.filter((rr) => rr.type !== 'PTR') }),
      dnsPacket.encode({ type: 'query', flags: dnsPacket.TRUNCATED_RESPONSE, questions: [Q('_peerlb._tcp.local', 'PTR')], answers: ghostRecords.slice(0, 2) }),
    ];
    const before = { a: a.stats(), b: b.stats() };
    // Paced, so that most survive the receive buffers of a busy machine (UDP may drop some).
    for (let i = 0; i < 1500; i++) {
      const bytes = i % 5 === 4 ? garbage(random, 400) : mutate(seeds[i % seeds.length]!, random);
      senders[i % 2]!.send(bytes.length ? bytes : Buffer.from([0]), port, '224.0.0.251');
      if (i % 25 === 24) await sleep(8);
    }
    // Judged by what arrived, however long a busy machine takes to deliver it (bounded at 15 s).
    const seen = (now: { packetsIn: number; malformed: number }, then: { packetsIn: number; malformed: number }) => now.packetsIn + now.malformed - then.packetsIn - then.malformed;
    await until(() => seen(a.stats(), before.a) >= 1000 && seen(b.stats(), before.b) >= 1000, 15_000, '1000 of 1500 packets received').catch(() => undefined);
    const sa = a.stats();
    const sb = b.stats();
    const seenA = seen(sa, before.a);
    const seenB = seen(sb, before.b);
    expect(seenA).toBeGreaterThanOrEqual(1000);
    expect(seenB).toBeGreaterThanOrEqual(1000);
    expect(sa.malformed - before.a.malformed).toBeGreaterThan(200);
    expect(sb.malformed - before.b.malformed).toBeGreaterThan(200);

    // Still answering: (should a mutation have looked like a conflict, it re-probes and keeps its name)
    await until(() => a.state === AnnouncerState.Announced, 5000, 'announced');
    expect(a.names().label).toBe(node);
    let answered = false;
    for (let attempt = 0; attempt < 4 && !answered; attempt++) {
      await sleep(1100); // past the one-second multicast limit (§6)
      const from = obs.got.length;
      obs.sock.send({ type: 'query', questions: [Q(`${node}._peerlb._tcp.local`, 'SRV')] });
      await sleep(300);
      answered = obs.got.slice(from).some((c) => c.p.type === 'response' && c.p.answers.some((rr) => rr.name === `${node}._peerlb._tcp.local` && rr.type === 'SRV' && (rr as { data: { port: number } }).data.port === 24000));
    }
    expect(answered).toBe(true);
    // …and the browser still holds it, and still finds a newcomer.
    expect(b.instances().map((i) => i.id)).toContain(node);
    const late = new MdnsAnnouncer({ info: info(`late-${RUN}`, svc, 26000), interface: IFACE, port });
    closers.push(() => late.stop());
    await late.start();
    await until(() => b.instances().some((i) => i.id === `late-${RUN}`), 5000, 'the newcomer');
    await Promise.all([a.stop(), late.stop(), b.close()]);
  });
});
