/**
 * Pure responder logic: which records answer which question (RFC 6762 §6, RFC 6763 §12),
 * known-answer suppression (§7.1), conflicts (§9), the probe tiebreak (§8.2), packet splitting (§7.2, §17).
 */
import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import type { Answer, Question } from 'dns-packet';
import { buildRecords, SERVICES_ENUMERATION, type AnnounceInfo } from '../../../../sdk/mdns/records.js';
import { answerQuestions, compareProbeRecords, findConflicts, isKnownAnswer } from '../../../../agent/mdns/responder.js';
import { questionClass, splitPacket, MAX_PACKET_BYTES } from '../../../../sdk/mdns/packet.js';
import { recordKey } from '../../../../sdk/mdns/keys.js';

const INFO: AnnounceInfo = { node: 'n1', service: 'game', host: '10.0.0.5', agentPort: 7946, udpPort: 7001, weight: 100, health: 'healthy', loadBucket: 0 };
const { records: OWNED } = buildRecords(INFO);
const q = (name: string, type: string, klass = 'IN'): Question => ({ name, type, class: klass }) as unknown as Question;
const rows = (rs: { rr: Answer }[]) => rs.map((r) => `${r.rr.name} ${r.rr.type}`);
const rec = (name: string, type: string) => OWNED.find((r) => r.rr.name === name && r.rr.type === type)!.rr;

describe('answerQuestions', () => {
  it('answers a browse (PTR) with the instance, adding its SRV, TXT and address (RFC 6763 §12.1)', () => {
    for (const name of ['_peerlb._tcp.local', '_game._sub._peerlb._tcp.local', '_GAME._sub._peerlb._TCP.local']) {
      const plan = answerQuestions(OWNED, [q(name, 'PTR')]);
      expect(rows(plan.answers)).toEqual([`${name.toLowerCase() === name ? name : '_game._sub._peerlb._tcp.local'} PTR`]);
      expect(rows(plan.additionals)).toEqual(['n1._peerlb._tcp.local SRV', 'n1._peerlb._tcp.local TXT', 'peerlb-n1.local A']);
    }
  });

  it('answers the service enumeration (RFC 6763 §9) without additionals', () => {
    const plan = answerQuestions(OWNED, [q(SERVICES_ENUMERATION, 'PTR')]);
    expect(plan.answers.map((r) => (r.rr as { data: string }).data)).toEqual(['_peerlb._tcp.local', '_game._udp.local']);
    expect(plan.additionals).toEqual([]);
  });

  it('answers ANY and typed questions for every name it owns', () => {
    expect(rows(answerQuestions(OWNED, [q('n1._peerlb._tcp.local', 'ANY')]).answers)).toEqual(['n1._peerlb._tcp.local SRV', 'n1._peerlb._tcp.local TXT']);
    expect(rows(answerQuestions(OWNED, [q('n1._peerlb._tcp.local', 'ANY')]).additionals)).toEqual(['peerlb-n1.local A']);
    expect(rows(answerQuestions(OWNED, [q('n1._game._udp.local', 'SRV')]).answers)).toEqual(['n1._game._udp.local SRV']);
    expect(rows(answerQuestions(OWNED, [q('peerlb-n1.local', 'A')]).answers)).toEqual(['peerlb-n1.local A']);
    expect(rows(answerQuestions(OWNED, [q('peerlb-n1.local', 'ANY', 'ANY')]).answers)).toEqual(['peerlb-n1.local A']);
    expect(answerQuestions(OWNED, [q('peerlb-n1.local', 'AAAA')]).answers).toEqual([]);
    expect(answerQuestions(OWNED, [q('other.local', 'ANY')]).answers).toEqual([]);
    expect(answerQuestions(OWNED, [q('peerlb-n1.local', 'A', 'CH')]).answers).toEqual([]);
  });

  it('notices the unicast-response bit (dns-packet decodes class IN|QU as UNKNOWN_32769)', () => {
    expect(questionClass({ class: 'UNKNOWN_32769' })).toEqual({ klass: 1, qu: true });
    expect(questionClass({ class: 'IN' })).toEqual({ klass: 1, qu: false });
    const plan = answerQuestions(OWNED, [q('peerlb-n1.local', 'A', 'UNKNOWN_32769')]);
    expect(plan.unicastRequested).toBe(true);
    expect(rows(plan.answers)).toEqual(['peerlb-n1.local A']);
  });

  const ptr = rec('_peerlb._tcp.local', 'PTR');
  const table: [string, Answer[], number][] = [
    ['no known answers', [], 1],
    ['known with full TTL', [{ ...ptr, ttl: 4500 } as Answer], 0],
    ['known with exactly half the TTL', [{ ...ptr, ttl: 2250 } as Answer], 0],
    ['known with less than half the TTL', [{ ...ptr, ttl: 2249 } as Answer], 1],
    ['known in another letter case', [{ ...ptr, name: '_PEERLB._tcp.local', data: 'N1._peerlb._tcp.local', ttl: 4000 } as Answer], 0],
    ['a different instance is known', [{ ...ptr, data: 'n2._peerlb._tcp.local', ttl: 4500 } as Answer], 1],
    ['known answer of another type', [{ name: '_peerlb._tcp.local', type: 'TXT', ttl: 4500, data: ['x'] } as Answer], 1],
  ];
  it.each(table)('known-answer suppression (§7.1): %s', (_n, known, expected) => {
    const plan = answerQuestions(OWNED, [q('_peerlb._tcp.local', 'PTR')], known);
    expect(plan.answers).toHaveLength(expected);
    expect(plan.suppressed).toBe(1 - expected);
  });

  it('leaves known records out of the additionals too', () => {
    const srv = rec('n1._peerlb._tcp.local', 'SRV');
    const plan = answerQuestions(OWNED, [q('_peerlb._tcp.local', 'PTR')], [srv]);
    expect(rows(plan.additionals)).toEqual(['n1._peerlb._tcp.local TXT', 'peerlb-n1.local A']);
    expect(isKnownAnswer(srv, [srv])).toBe(true);
  });
});

describe('findConflicts (§9)', () => {
  const srv = rec('n1._peerlb._tcp.local', 'SRV') as unknown as { name: string; type: 'SRV'; class: 'IN'; ttl: number; data: { priority: number; weight: number; port: number; target: string } };
  it.each([
    ['identical record', { ...srv }, 0],
    ['same name, other port', { ...srv, data: { ...srv.data, port: 1 } }, 1],
    ['same name in capitals, other port', { ...srv, name: 'N1._PEERLB._tcp.local', data: { ...srv.data, port: 1 } }, 1],
    ['a goodbye (TTL 0)', { ...srv, ttl: 0, data: { ...srv.data, port: 1 } }, 0],
    ['other address for our host', { name: 'peerlb-n1.local', type: 'A', ttl: 120, data: '10.9.9.9' }, 1],
    ['another PTR under a shared name', { name: '_peerlb._tcp.local', type: 'PTR', ttl: 4500, data: 'x._peerlb._tcp.local' }, 0],
    ['another name', { ...srv, name: 'n2._peerlb._tcp.local', data: { ...srv.data, port: 1 } }, 0],
  ])('%s', (_n, rr, n) => {
    expect(findConflicts(OWNED, [rr])).toHaveLength(n);
  });

  it('ignores records we sent ourselves (multicast loopback)', () => {
    const old = { ...srv, data: { ...srv.data, port: 1 } } as Answer;
    expect(findConflicts(OWNED, [old], (k) => k === recordKey(old))).toEqual([]);
  });

  it('never throws on junk', () => {
    expect(findConflicts(OWNED, [null, 5, { name: 5 }, { name: 'n1._peerlb._tcp.local', type: 'SRV', ttl: 'x' }])).toEqual([]);
  });
});

describe('compareProbeRecords (§8.2)', () => {
  const mk = (port: number) => buildRecords({ ...INFO, agentPort: port }).records.filter((r) => r.unique && r.rr.name === 'n1._peerlb._tcp.local').map((r) => r.rr);
  it('identical sets tie; the greater rdata wins; more records win', () => {
    expect(compareProbeRecords(mk(7000), mk(7000))).toBe(0);
    expect(compareProbeRecords(mk(7001), mk(7000))).toBeGreaterThan(0);
    expect(compareProbeRecords(mk(7000), mk(7001))).toBeLessThan(0);
    expect(compareProbeRecords(mk(7000).filter((r) => r.type === 'TXT'), mk(7000))).toBeLessThan(0);
    // Order in the packet does not matter.
    expect(compareProbeRecords([...mk(7000)].reverse(), mk(7000))).toBe(0);
  });
});

describe('splitPacket (§7.2, §17)', () => {
  it('spreads known answers over packets within the size limit, TC on all but the last', () => {
    const known = Array.from({ length: 200 }, (_, i) => ({ name: '_peerlb._tcp.local', type: 'PTR', class: 'IN', ttl: 4500, data: `node-${i}._peerlb._tcp.local` }) as Answer);
    const parts = splitPacket({ type: 'query', id: 0, flags: 0, questions: [q('_peerlb._tcp.local', 'PTR')], answers: known });
    expect(parts.length).toBeGreaterThan(3);
    parts.forEach((p, i) => {
      expect(dnsPacket.encode(p).length).toBeLessThanOrEqual(MAX_PACKET_BYTES);
      expect(((p.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0).toBe(i < parts.length - 1);
      expect(p.questions).toHaveLength(i === 0 ? 1 : 0);
    });
    expect(parts.flatMap((p) => p.answers)).toEqual(known);
  });

  it('splits a response without TC and leaves a small message alone', () => {
    const many = Array.from({ length: 60 }, (_, i) => buildRecords({ ...INFO, node: `node-${i}` }).records[3]!.rr);
    const parts = splitPacket({ type: 'response', id: 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: many });
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(((p.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) === 0).toBe(true);
    const one = { type: 'response' as const, answers: many.slice(0, 2) };
    expect(splitPacket(one)).toEqual([one]);
  });
});

describe('known answers: the work follows the matches', () => {
  it('a browse query listing 500 other instances encodes the rdata of none of them (PTR names compared as text first), and still suppresses ours', () => {
    const ptrCodec = (dnsPacket as unknown as { record(t: string): { encode(d: unknown): Buffer } }).record('PTR');
    const others = Array.from({ length: 500 }, (_, i) => ({ name: '_peerlb._tcp.local', type: 'PTR', class: 'IN', ttl: 4500, data: `o${i}._peerlb._tcp.local` }) as Answer);
    const encode = ptrCodec.encode;
    let calls = 0;
    ptrCodec.encode = (d: unknown) => {
      calls++;
      return encode(d);
    };
    try {
      const plan = answerQuestions(OWNED, [q('_peerlb._tcp.local', 'PTR')], others);
      expect(rows(plan.answers)).toEqual(['_peerlb._tcp.local PTR']);
      expect(calls).toBeLessThan(10);
      calls = 0;
      const ours = { ...rec('_peerlb._tcp.local', 'PTR'), name: '_PEERLB._tcp.local', data: 'N1._peerlb._tcp.local', ttl: 4500 } as Answer;
      const known = answerQuestions(OWNED, [q('_peerlb._tcp.local', 'PTR')], [...others, ours]);
      expect(known.answers).toEqual([]);
      expect(known.suppressed).toBe(1);
      expect(calls).toBeLessThan(10);
    } finally {
      ptrCodec.encode = encode;
    }
  });
});
