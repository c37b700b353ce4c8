/**
 * Pure coders of sdk/mdns/records.ts: TXT round trips and limits, the record set, and reading
 * announcements back from real dns-packet bytes.
 */
import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';
import {
  buildRecords,
  decodeTxt,
  encodeTxt,
  goodbyes,
  instanceLabel,
  hostLabel,
  parseAnnouncement,
  DEFAULT_TTLS,
  RFC6762_TTLS,
  SERVICES_ENUMERATION,
  TXT_KEYS,
  type AnnounceInfo,
  type TxtFields,
} from '../../../../sdk/mdns/records.js';
import { DecodeError, UnsupportedVersionError, BadOptionError, PeerlbError } from '../../../../sdk/core/errors.js';
import { LIMITS, PROTOCOL_VERSION } from '../../../../sdk/core/protocol.js';

const INFO: AnnounceInfo = {
  node: 'n1',
  service: 'game',
  host: '10.0.0.5',
  agentPort: 7946,
  udpPort: 7001,
  tcpPort: 7000,
  weight: 100,
  zone: 'rack1',
  health: 'healthy',
  loadBucket: 4,
};

const strs = (bufs: Buffer[]) => bufs.map((b) => b.toString('utf8'));

describe('TXT', () => {
  it('encodes short keys, version first, each string within 255 bytes', () => {
    const txt = encodeTxt(INFO);
    expect(strs(txt)).toEqual(['v=1', 'svc=game', 'node=n1', 'udp=7001', 'tcp=7000', 'w=100', 'zone=rack1', 'h=healthy', 'load=4']);
    for (const b of txt) {
      expect(b.length).toBeLessThanOrEqual(LIMITS.maxTxtStringBytes);
      expect(b.toString().split('=')[0]!.length).toBeLessThanOrEqual(LIMITS.maxTxtKeyLength);
    }
    for (const k of Object.values(TXT_KEYS)) expect(k.length).toBeLessThanOrEqual(9);
  });

  const { host: _h, agentPort: _p, ...INFO_TXT } = INFO;
  const cases: [string, TxtFields][] = [
    ['all fields', INFO_TXT],
    ['no optional fields', { service: 'g', node: 'a', weight: 1, health: 'unhealthy', loadBucket: 0 }],
    ['udp only, draining, full load', { service: 'stream-1', node: 'host.example:9@x', udpPort: 65535, weight: 10_000, health: 'draining', loadBucket: 10 }],
    ['unicode zone', { service: 'game', node: 'n2', tcpPort: 1, weight: 7, zone: 'zürich-ä', health: 'healthy', loadBucket: 9 }],
    ['longest strings that fit', { service: 's'.repeat(251), node: 'n'.repeat(250), zone: 'z'.repeat(250), weight: 100, health: 'healthy', loadBucket: 1 }],
  ];
  it.each(cases)('round trips encode → decode → encode: %s', (_name, fields) => {
    const first = encodeTxt(fields);
    const decoded = decodeTxt(first);
    expect(decoded.version).toBe(PROTOCOL_VERSION);
    const { version: _v, ...back } = decoded;
    expect(back).toEqual({ ...fields });
    expect(Buffer.concat(encodeTxt(back))).toEqual(Buffer.concat(first));
  });

  it('ignores unknown keys, empty strings, "=value" strings; keys are case-insensitive; the first of a repeated key wins (RFC 6763 §6.4)', () => {
    const t = decodeTxt(['', '=junk', 'V=1', 'SVC=game', 'node=n1', 'node=other', 'future=42', 'flag', 'w=5', 'W=6']);
    expect(t).toEqual({ version: 1, service: 'game', node: 'n1', weight: 5, health: 'healthy', loadBucket: 0 });
  });

  it('defaults weight, health and load like parseServerRecord', () => {
    expect(decodeTxt([Buffer.from('v=1'), Buffer.from('svc=a'), Buffer.from('node=b')])).toEqual({ version: 1, service: 'a', node: 'b', weight: 100, health: 'healthy', loadBucket: 0 });
  });

  const base = ['v=1', 'svc=game', 'node=n1'];
  const bad: [string, unknown[]][] = [
    ['no v', ['svc=game', 'node=n1']],
    ['v not a number', ['v=one', 'svc=game', 'node=n1']],
    ['no svc', ['v=1', 'node=n1']],
    ['no node', ['v=1', 'svc=game']],
    ['empty node', ['v=1', 'svc=game', 'node=']],
    ['known key without value', [...base, 'udp']],
    ['udp 0', [...base, 'udp=0']],
    ['udp 65536', [...base, 'udp=65536']],
    ['udp with letters', [...base, 'udp=70a1']],
    ['tcp negative', [...base, 'tcp=-1']],
    ['tcp with spaces', [...base, 'tcp= 80']],
    ['weight 0', [...base, 'w=0']],
    ['weight 10001', [...base, 'w=10001']],
    ['weight fraction', [...base, 'w=1.5']],
    ['bad health', [...base, 'h=sick']],
    ['load 11', [...base, 'load=11']],
    ['load negative', [...base, 'load=-1']],
    ['invalid UTF-8', [...base, Buffer.from([0x7a, 0x6f, 0x6e, 0x65, 0x3d, 0xff, 0xfe])]],
    ['string over 255 bytes', [...base, Buffer.alloc(256, 0x61)]],
    ['not bytes', [...base, 42]],
  ];
  it.each(bad)('rejects %s with a DecodeError', (_name, strings) => {
    expect(() => decodeTxt(strings)).toThrow(DecodeError);
  });

  it('rejects another protocol version with UnsupportedVersionError', () => {
    const err = (() => {
      try {
        decodeTxt(['v=2', 'svc=game', 'node=n1']);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UnsupportedVersionError);
    expect((err as UnsupportedVersionError).code).toBe('PEERLB_ERR_UNSUPPORTED_VERSION');
    // The version is checked first: a v=2 record with fields this build does not understand is still "unsupported".
    expect(() => decodeTxt(['v=2', 'w=banana'])).toThrow(UnsupportedVersionError);
  });

  it('rejects a non-list', () => {
    expect(() => decodeTxt('v=1' as unknown as unknown[])).toThrow(DecodeError);
  });

  it('enforces the 255-byte string limit and field ranges when encoding', () => {
    expect(() => encodeTxt({ ...INFO, node: 'n'.repeat(251) })).toThrow(/255/);
    expect(() => encodeTxt({ ...INFO, node: 'n'.repeat(251) })).toThrow(PeerlbError);
    expect(() => encodeTxt({ ...INFO, zone: 'ü'.repeat(126) })).toThrow(/RFC 6763 §6.1/);
    expect(() => encodeTxt({ ...INFO, weight: 0 })).toThrow(BadOptionError);
    expect(() => encodeTxt({ ...INFO, loadBucket: 11 })).toThrow(BadOptionError);
    expect(() => encodeTxt({ ...INFO, udpPort: 70_000 })).toThrow(BadOptionError);
    expect(() => encodeTxt({ ...INFO, health: 'ok' as never })).toThrow(BadOptionError);
  });
});

describe('record set', () => {
  it('holds the DNS-SD records of RFC 6763 §4, §7.1, §9 and the server types', () => {
    const { names, records } = buildRecords(INFO);
    const rows = records.map((r) => [r.rr.name, r.rr.type, r.unique, (r.rr as { ttl: number }).ttl, r.rr.type === 'TXT' ? 'txt' : (r.rr as { data: unknown }).data]);
    expect(names).toEqual({
      label: 'n1',
      instance: 'n1._peerlb._tcp.local',
      subtype: '_game._sub._peerlb._tcp.local',
      hostname: 'peerlb-n1.local',
      udpType: '_game._udp.local',
      udpInstance: 'n1._game._udp.local',
      tcpType: '_game._tcp.local',
      tcpInstance: 'n1._game._tcp.local',
    });
    const srv = (port: number) => ({ priority: 0, weight: 0, port, target: 'peerlb-n1.local' });
    expect(rows).toEqual([
      [SERVICES_ENUMERATION, 'PTR', false, 4500, '_peerlb._tcp.local'],
      [SERVICES_ENUMERATION, 'PTR', false, 4500, '_game._udp.local'],
      [SERVICES_ENUMERATION, 'PTR', false, 4500, '_game._tcp.local'],
      ['_peerlb._tcp.local', 'PTR', false, 4500, 'n1._peerlb._tcp.local'],
      ['_game._sub._peerlb._tcp.local', 'PTR', false, 4500, 'n1._peerlb._tcp.local'],
      ['n1._peerlb._tcp.local', 'SRV', true, 20, srv(7946)],
      ['n1._peerlb._tcp.local', 'TXT', true, 20, 'txt'],
      ['_game._udp.local', 'PTR', false, 4500, 'n1._game._udp.local'],
      ['n1._game._udp.local', 'SRV', true, 20, srv(7001)],
      ['n1._game._udp.local', 'TXT', true, 20, 'txt'],
      ['_game._tcp.local', 'PTR', false, 4500, 'n1._game._tcp.local'],
      ['n1._game._tcp.local', 'SRV', true, 20, srv(7000)],
      ['n1._game._tcp.local', 'TXT', true, 20, 'txt'],
      ['peerlb-n1.local', 'A', true, 20, '10.0.0.5'],
    ]);
  });

  it('leaves out the server types it has no port for, uses AAAA for IPv6, and RFC TTLs on request', () => {
    const { records } = buildRecords({ ...INFO, udpPort: undefined, tcpPort: undefined, host: 'fd00::5' }, { ttls: RFC6762_TTLS });
    expect(records.map((r) => `${r.rr.name} ${r.rr.type} ${(r.rr as { ttl: number }).ttl}`)).toEqual([
      `${SERVICES_ENUMERATION} PTR 4500`,
      '_peerlb._tcp.local PTR 4500',
      '_game._sub._peerlb._tcp.local PTR 4500',
      'n1._peerlb._tcp.local SRV 120',
      'n1._peerlb._tcp.local TXT 4500',
      'peerlb-n1.local AAAA 120',
    ]);
    expect(DEFAULT_TTLS).toEqual({ host: 20, txt: 20, ptr: 4500 });
  });

  it('names: dots leave instance labels, host labels are RFC 1123, renames add " (N)" and "-N", labels stay within 63 bytes', () => {
    expect(instanceLabel('web-1.prod')).toBe('web-1-prod');
    expect(instanceLabel('n1', 2)).toBe('n1 (2)');
    expect(Buffer.byteLength(instanceLabel('x'.repeat(100), 17))).toBeLessThanOrEqual(63);
    expect(instanceLabel('x'.repeat(100), 17).endsWith(' (17)')).toBe(true);
    expect(hostLabel({ node: 'Web_1.prod' })).toBe('peerlb-web-1-prod');
    expect(hostLabel({ node: 'n1', hostname: 'My Host' }, 3)).toBe('my-host-3');
    expect(hostLabel({ node: 'n', hostname: '---' })).toBe('peerlb');
    expect(hostLabel({ node: 'y'.repeat(80) }, 12).length).toBeLessThanOrEqual(63);
    const { names } = buildRecords({ ...INFO, node: 'z'.repeat(70) }, { rename: 2 });
    expect(Buffer.byteLength(names.label)).toBeLessThanOrEqual(63);
  });

  it('rejects what cannot be announced', () => {
    expect(() => buildRecords({ ...INFO, service: 'no_underscores' })).toThrow(BadOptionError);
    expect(() => buildRecords({ ...INFO, service: 'sixteen-chars-xx' })).toThrow(BadOptionError);
    expect(() => buildRecords({ ...INFO, host: 'example.com' })).toThrow(BadOptionError);
    expect(() => buildRecords({ ...INFO, agentPort: 0 })).toThrow(BadOptionError);
  });

  it('round trips through dns-packet bytes: encode → decode → encode is byte-identical', () => {
    const answers = buildRecords(INFO).records.map((r) => ({ ...r.rr, flush: r.unique }) as Answer);
    const bytes = dnsPacket.encode({ type: 'response', id: 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, answers });
    const decoded = dnsPacket.decode(bytes);
    expect(decoded.answers).toHaveLength(answers.length);
    expect(dnsPacket.encode(decoded)).toEqual(bytes);
    // Unique records carry the cache-flush bit, shared ones do not.
    for (const rr of decoded.answers!) expect((rr as { flush?: boolean }).flush).toBe(rr.type !== 'PTR');
  });
});

describe('parseAnnouncement', () => {
  const wire = (answers: Answer[], additionals: Answer[] = []) =>
    dnsPacket.decode(dnsPacket.encode({ type: 'response', id: 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, answers, additionals }));

  it('reads an announcement back: info → records → bytes → announcement', () => {
    const rrs = buildRecords(INFO).records.map((r) => r.rr);
    const { announcements, errors } = parseAnnouncement(wire(rrs));
    expect(errors).toEqual([]);
    expect(announcements).toEqual([
      { instance: 'n1._peerlb._tcp.local', node: 'n1', service: 'game', host: '10.0.0.5', agentPort: 7946, udpPort: 7001, tcpPort: 7000, weight: 100, zone: 'rack1', health: 'healthy', loadBucket: 4, ttl: 20 },
    ]);
  });

  it('reads pieces from the Additional section, IPv6 hosts, and goodbyes as TTL 0', () => {
    const rrs = buildRecords({ ...INFO, host: '::1', zone: undefined }).records.map((r) => r.rr);
    const ptr = rrs.filter((r) => r.type === 'PTR');
    const rest = rrs.filter((r) => r.type !== 'PTR');
    const [a] = parseAnnouncement(wire(ptr, rest)).announcements;
    expect(a).toMatchObject({ host: '::1', ttl: 20 });
    expect(a!.zone).toBeUndefined();
    expect(parseAnnouncement(wire(goodbyes(rrs))).announcements[0]!.ttl).toBe(0);
  });

  it('skips incomplete instances and reports bad ones as typed errors', () => {
    const rrs = buildRecords(INFO).records.map((r) => r.rr);
    const noAddress = rrs.filter((r) => r.type !== 'A');
    expect(parseAnnouncement(wire(noAddress))).toEqual({ announcements: [], errors: [] });

    const badTxt = rrs.map((r) => (r.type === 'TXT' ? ({ ...r, data: ['v=1', 'svc=game', 'node=n1', 'w=0'] } as Answer) : r));
    const r1 = parseAnnouncement(wire(badTxt));
    expect(r1.announcements).toEqual([]);
    expect(r1.errors[0]).toBeInstanceOf(DecodeError);

    const v2 = rrs.map((r) => (r.type === 'TXT' ? ({ ...r, data: ['v=2', 'svc=game', 'node=n1'] } as Answer) : r));
    expect(parseAnnouncement(wire(v2)).errors[0]).toBeInstanceOf(UnsupportedVersionError);

    const two = [...rrs, ...buildRecords({ ...INFO, node: 'n2', udpPort: undefined, tcpPort: undefined }).records.map((r) => r.rr)];
    expect(parseAnnouncement(wire(two)).announcements.map((a) => a.node).sort()).toEqual(['n1', 'n2']);
  });

  it('never throws on junk', () => {
    for (const junk of [null, undefined, 5, {}, { answers: 5 }, { answers: [null, 1, 'x', { type: 'SRV' }] }, { answers: [{ name: 'a._peerlb._tcp.local', type: 'SRV', data: null }] }])
      expect(() => parseAnnouncement(junk as never)).not.toThrow();
    const r = parseAnnouncement({ answers: [{ name: 'a._peerlb._tcp.local', type: 'SRV', data: { port: 0, target: 'h.local' } }, { name: 'a._peerlb._tcp.local', type: 'TXT', data: [] }, { name: 'h.local', type: 'A', data: '1.2.3.4' }] });
    expect(r.errors).toHaveLength(1);
  });
});
