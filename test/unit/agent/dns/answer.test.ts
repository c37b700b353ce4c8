/** The DNS answer (agent/dns/answer.ts), pure: names, rcodes, sizes and TC, EDNS, ANY, NODATA. */
import { describe, expect, it } from 'vitest';
import dnsPacket, { type Answer, type DecodedPacket, type Packet } from 'dns-packet';
import { answerQuery, EDNS_UDP_SIZE, type Chooser } from '../../../../agent/dns/answer.js';
import type { ServerRecord } from '../../../../sdk/core/protocol.js';

/** The decoded response, with records typed loosely (OPT has no data/ttl in dns-packet's types). */
type Rr = { name: string; type: string; ttl: number; data: unknown };
type Decoded = Omit<DecodedPacket, 'answers' | 'authorities' | 'additionals'> & { answers: Rr[]; authorities: Rr[]; additionals: Rr[] };

const config = { domain: 'peerlb.', answers: 3, ttl: 1 };
const first: Chooser = (records, n) => records.slice(0, n);

function rec(id: string, host: string, extra: Partial<ServerRecord> = {}): ServerRecord {
  return { id, service: 'game', host, weight: 100, health: 'healthy', tcpPort: 7000, udpPort: 7001, ...extra };
}

const records: ServerRecord[] = [
  rec('n1', '127.0.1.1', { zone: 'r1' }),
  rec('n2', '127.0.1.2', { zone: 'r2', wsPort: 8080 }),
  rec('n3', '127.0.1.3', { zone: 'r1', health: 'draining' }),
  rec('n4', '127.0.1.4', { health: 'unhealthy' }),
  rec('v6', '::1', { weight: 7 }),
];

function query(name: string, type: string, opts: { edns?: number; version?: number; flags?: number; id?: number } = {}): DecodedPacket {
  const p: Packet = { type: 'query', id: opts.id ?? 42, flags: opts.flags ?? dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as 'A', class: 'IN' }] };
  if (opts.edns !== undefined) p.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, ednsVersion: opts.version ?? 0, flags: 0, options: [] } as unknown as Answer];
  // Through the wire, as the server gets it.
  return dnsPacket.decode(dnsPacket.encode(p));
}

function ask(name: string, type: string, o: { edns?: number; version?: number; tcp?: boolean; recs?: ServerRecord[]; answers?: number; choose?: Chooser } = {}) {
  const r = answerQuery({ query: query(name, type, o), transport: o.tcp ? 'tcp' : 'udp', records: o.recs ?? records, config: { ...config, answers: o.answers ?? 3 }, choose: o.choose ?? first });
  return { ...r, packet: dnsPacket.decode(r.response) as unknown as Decoded };
}

describe('answerQuery: names', () => {
  it('<service>.<domain> A: the healthy servers only (not draining, not unhealthy), authoritative, not recursive, id and RD echoed', () => {
    const r = ask('game.peerlb', 'A');
    expect(r.rcode).toBe('NOERROR');
    expect(r.packet.id).toBe(42);
    expect(r.packet.flag_aa).toBe(true);
    expect(r.packet.flag_ra).toBe(false);
    expect(r.packet.flag_rd).toBe(true);
    expect(r.packet.answers!.map((a) => a.data)).toEqual(['127.0.1.1', '127.0.1.2']);
    expect(r.packet.answers!.every((a) => a.ttl === 1)).toBe(true);
  });

  it('names are case-insensitive and the trailing dot optional', () => {
    expect(ask('GaMe.PeerLB.', 'A').packet.answers!.length).toBe(2);
  });

  it('AAAA gives the IPv6 hosts', () => {
    expect(ask('game.peerlb', 'AAAA').packet.answers!.map((a) => a.data)).toEqual(['::1']);
  });

  it('at most --dns-answers, in the order the chooser gives', () => {
    const many = Array.from({ length: 10 }, (_, i) => rec(`m${i}`, `127.0.2.${i + 1}`));
    const reversed: Chooser = (rs, n) => [...rs].reverse().slice(0, n);
    expect(ask('game.peerlb', 'A', { recs: many, answers: 3, choose: reversed }).packet.answers!.map((a) => a.data)).toEqual(['127.0.2.10', '127.0.2.9', '127.0.2.8']);
  });

  it('servers sharing an address give one A record (no duplicates in an RRset)', () => {
    const same = [rec('a', '127.0.0.1'), rec('b', '127.0.0.1', { tcpPort: 7002 })];
    expect(ask('game.peerlb', 'A', { recs: same }).packet.answers!.length).toBe(1);
  });

  it('_<service>._tcp SRV: priority 0, the server weight, the TCP port, targets <node>.node with their A/AAAA in the additional section', () => {
    const r = ask('_game._tcp.peerlb', 'SRV', { answers: 10 });
    const srv = r.packet.answers!.map((a) => a.data as { priority: number; weight: number; port: number; target: string });
    expect(srv).toEqual([
      { priority: 0, weight: 100, port: 7000, target: 'n1.node.peerlb' },
      { priority: 0, weight: 100, port: 7000, target: 'n2.node.peerlb' },
      { priority: 0, weight: 7, port: 7000, target: 'v6.node.peerlb' },
    ]);
    const extra = r.packet.additionals!.filter((a) => a.type !== 'OPT').map((a) => [a.name, a.type, a.data]);
    expect(extra).toEqual([
      ['n1.node.peerlb', 'A', '127.0.1.1'],
      ['n2.node.peerlb', 'A', '127.0.1.2'],
      ['v6.node.peerlb', 'AAAA', '::1'],
    ]);
  });

  it('_<service>._udp SRV gives the UDP port; _<service>._ws the WebSocket port of servers that have one', () => {
    expect(ask('_game._udp.peerlb', 'SRV').packet.answers!.map((a) => (a.data as { port: number }).port)).toEqual([7001, 7001, 7001]);
    expect(ask('_game._ws.peerlb', 'SRV').packet.answers!.map((a) => (a.data as { port: number; target: string }).target)).toEqual(['n2.node.peerlb']);
  });

  it('<node>.node A: the member, whatever its health', () => {
    expect(ask('n3.node.peerlb', 'A').packet.answers!.map((a) => a.data)).toEqual(['127.0.1.3']);
  });

  it('<zone>.<service> A: that zone only', () => {
    expect(ask('r1.game.peerlb', 'A').packet.answers!.map((a) => a.data)).toEqual(['127.0.1.1']);
    expect(ask('r2.game.peerlb', 'A').packet.answers!.map((a) => a.data)).toEqual(['127.0.1.2']);
  });

  it('the apex answers SOA', () => {
    const r = ask('peerlb', 'SOA');
    expect(r.rcode).toBe('NOERROR');
    expect(r.packet.answers![0]!.type).toBe('SOA');
  });
});

describe('answerQuery: rcodes', () => {
  it.each(['nope.peerlb', 'x.y.game.peerlb', 'ghost.node.peerlb', '_nope._tcp.peerlb', 'r9.game.peerlb'])('%s: NXDOMAIN with the SOA (minimum = the TTL) in authority', (name) => {
    const r = ask(name, 'A');
    expect(r.rcode).toBe('NXDOMAIN');
    expect(r.packet.flag_aa).toBe(true);
    expect(r.packet.answers).toEqual([]);
    expect(r.packet.authorities!.map((a) => a.type)).toEqual(['SOA']);
    expect((r.packet.authorities![0]!.data as { minimum: number }).minimum).toBe(1);
  });

  it('a name outside the zone: REFUSED, not authoritative, no records', () => {
    const r = ask('example.com', 'A');
    expect(r.rcode).toBe('REFUSED');
    expect(r.packet.flag_aa).toBe(false);
    expect(r.packet.answers!.length + r.packet.authorities!.length).toBe(0);
    expect(ask('peerlb.example.com', 'A').rcode).toBe('REFUSED');
    expect(ask('xpeerlb', 'A').rcode).toBe('REFUSED');
  });

  it('NODATA: the name exists, the type does not: NOERROR, no answer, SOA in authority', () => {
    for (const [name, type] of [['game.peerlb', 'TXT'], ['game.peerlb', 'SRV'], ['_game._tcp.peerlb', 'A'], ['n1.node.peerlb', 'AAAA'], ['peerlb', 'A']] as const) {
      const r = ask(name, type);
      expect(r.rcode, `${name} ${type}`).toBe('NOERROR');
      expect(r.packet.answers).toEqual([]);
      expect(r.packet.authorities!.map((a) => a.type)).toEqual(['SOA']);
    }
  });

  it('a service whose servers are all draining or unhealthy: NOERROR and no answer (the name exists)', () => {
    const r = ask('game.peerlb', 'A', { recs: [records[2]!, records[3]!] });
    expect(r.rcode).toBe('NOERROR');
    expect(r.packet.answers).toEqual([]);
  });

  it('ANY: one HINFO "RFC8482" (RFC 8482), NXDOMAIN for a name that does not exist', () => {
    const r = ask('game.peerlb', 'ANY');
    expect(r.packet.answers!.map((a) => [a.type, (a.data as { cpu: string }).cpu])).toEqual([['HINFO', 'RFC8482']]);
    expect(ask('nope.peerlb', 'ANY').rcode).toBe('NXDOMAIN');
  });

  it('no question: FORMERR; an opcode other than QUERY: NOTIMP', () => {
    const noQ = dnsPacket.decode(dnsPacket.encode({ type: 'query', id: 1, questions: [] }));
    expect(answerQuery({ query: noQ, transport: 'udp', records, config, choose: first }).rcode).toBe('FORMERR');
    const update = query('game.peerlb', 'A', { flags: 5 << 11 });
    expect(answerQuery({ query: update, transport: 'udp', records, config, choose: first }).rcode).toBe('NOTIMP');
  });
});

describe('answerQuery: sizes and EDNS', () => {
  const many = Array.from({ length: 100 }, (_, i) => rec(`server-${i}`, `127.0.3.${i + 1}`));

  it('over 512 bytes without EDNS: TC, and nothing but the question', () => {
    const r = ask('game.peerlb', 'A', { recs: many, answers: 100 });
    expect(r.truncated).toBe(true);
    expect(r.packet.flag_tc).toBe(true);
    expect(r.packet.answers).toEqual([]);
    expect(r.response.length).toBeLessThanOrEqual(512);
  });

  it('the same over TCP: every answer, no TC', () => {
    const r = ask('game.peerlb', 'A', { recs: many, answers: 100, tcp: true });
    expect(r.truncated).toBe(false);
    expect(r.packet.answers!.length).toBe(100);
  });

  it('with EDNS the client size counts, up to 1232: 30 A records fit in 1232, not in 512', () => {
    expect(ask('game.peerlb', 'A', { recs: many, answers: 30 }).truncated).toBe(true);
    const r = ask('game.peerlb', 'A', { recs: many, answers: 30, edns: 4096 });
    expect(r.truncated).toBe(false);
    expect(r.packet.answers!.length).toBe(30);
    expect(r.response.length).toBeGreaterThan(512);
    // 100 records are over 1232 even though the client says 4096: we never send more than 1232.
    const big = ask('game.peerlb', 'A', { recs: many, answers: 100, edns: 4096 });
    expect(big.truncated).toBe(true);
    expect(big.response.length).toBeLessThanOrEqual(EDNS_UDP_SIZE);
  });

  it('an EDNS size under 512 is taken as 512', () => {
    expect(ask('game.peerlb', 'A', { recs: many, answers: 15, edns: 100 }).truncated).toBe(false);
  });

  it('EDNS is echoed with our size (1232); no OPT without one in the query', () => {
    const r = ask('game.peerlb', 'A', { edns: 4096 });
    const opt = r.packet.additionals!.find((a) => a.type === 'OPT') as unknown as { udpPayloadSize: number };
    expect(opt.udpPayloadSize).toBe(1232);
    expect(ask('game.peerlb', 'A').packet.additionals!.filter((a) => a.type === 'OPT')).toEqual([]);
  });

  it('EDNS version 1: BADVERS (extended rcode 16)', () => {
    const r = ask('game.peerlb', 'A', { edns: 1232, version: 1 });
    const opt = r.packet.additionals!.find((a) => a.type === 'OPT') as unknown as { extendedRcode: number };
    expect(opt.extendedRcode).toBe(1);
    expect(r.packet.answers).toEqual([]);
  });

  it('SRV whose additional section does not fit: the additional records go, without TC (RFC 2181 §9)', () => {
    const r = ask('_game._tcp.peerlb', 'SRV', { recs: many, answers: 6 });
    expect(r.truncated).toBe(false);
    expect(r.packet.answers!.length).toBe(6);
    expect(r.packet.additionals).toEqual([]);
    expect(r.response.length).toBeLessThanOrEqual(512);
  });
});
