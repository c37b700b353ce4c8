/**
 * The WebSocket endpoint in mDNS TXT (sdk/mdns/txt.ts, issue 15): `ws=`, `wspath=`, `wstls=`
 * round trips, limits, a ws-only announcement, and the TXT signature covering them. Pure.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { decodeTxt, encodeTxt, TXT_KEYS, type TxtFields } from '../../../../sdk/mdns/txt.js';
import { buildRecords, parseAnnouncement, type AnnounceInfo } from '../../../../sdk/mdns/records.js';
import { toBrowsed } from '../../../../sdk/mdns/instance.js';
import { recordFromInstance } from '../../../../sdk/node/mdns-discovery.js';
import { parseUsableServerRecord } from '../../../../sdk/core/protocol.js';
import { BadOptionError, DecodeError } from '../../../../sdk/core/errors.js';
import { signBytes, verifyBytes } from '../../../../sdk/node/signing.js';

const strs = (bufs: Buffer[]) => bufs.map((b) => b.toString('utf8'));
const F: TxtFields = { service: 'game', node: 'n1', weight: 100, health: 'healthy', loadBucket: 0 };

describe('TXT ws fields', () => {
  it('encode ws=, wspath= (left out when /), wstls=1, after the other ports', () => {
    expect(strs(encodeTxt({ ...F, tcpPort: 7000, wsPort: 8080, wsPath: '/play', wsTls: true }))).toEqual([
      'v=1', 'svc=game', 'node=n1', 'tcp=7000', 'ws=8080', 'wspath=/play', 'wstls=1', 'w=100', 'h=healthy', 'load=0',
    ]);
    expect(strs(encodeTxt({ ...F, wsPort: 8080, wsPath: '/' }))).toEqual(['v=1', 'svc=game', 'node=n1', 'ws=8080', 'w=100', 'h=healthy', 'load=0']);
    for (const k of [TXT_KEYS.wsPort, TXT_KEYS.wsPath, TXT_KEYS.wsTls]) expect(k.length).toBeLessThanOrEqual(9);
  });

  it('round trip encode → decode (the path defaults to /)', () => {
    const cases: TxtFields[] = [
      { ...F, wsPort: 1, wsPath: '/' },
      { ...F, udpPort: 7001, wsPort: 65535, wsPath: '/' + 'p'.repeat(247), wsTls: true },
      { ...F, wsPort: 443, wsPath: '/a?b=c&d=%20' },
    ];
    for (const c of cases) {
      const { version: _v, ...back } = decodeTxt(encodeTxt(c));
      expect(back).toEqual(c);
    }
    expect(decodeTxt(['v=1', 'svc=g', 'node=a', 'ws=80'])).toMatchObject({ wsPort: 80, wsPath: '/' });
    expect(decodeTxt(['v=1', 'svc=g', 'node=a', 'ws=80'])).not.toHaveProperty('wsTls');
  });

  it('refuses bad ws fields when encoding (BadOptionError) and decoding (DecodeError)', () => {
    expect(() => encodeTxt({ ...F, wsPort: 0 })).toThrow(BadOptionError);
    expect(() => encodeTxt({ ...F, wsPort: 80, wsPath: 'x' })).toThrow(BadOptionError);
    expect(() => encodeTxt({ ...F, wsPort: 80, wsPath: '/' + 'p'.repeat(255) })).toThrow(BadOptionError);
    // A 255-char path is a valid record but does not fit one TXT string with its key (the agent refuses it up front).
    expect(() => encodeTxt({ ...F, wsPort: 80, wsPath: '/' + 'p'.repeat(254) })).toThrow(/more than 255/);
    expect(() => encodeTxt({ ...F, wsPath: '/x' })).toThrow(/need a wsPort/);
    const bad = [['ws=0'], ['ws=70000'], ['ws=x'], ['ws=80', 'wspath=nope'], ['ws=80', 'wspath=/a b'], ['ws=80', 'wstls=yes']];
    for (const extra of bad) expect(() => decodeTxt(['v=1', 'svc=g', 'node=a', ...extra]), extra.join(' ')).toThrow(DecodeError);
    // Without ws=, wspath= and wstls= describe nothing and are ignored.
    expect(decodeTxt(['v=1', 'svc=g', 'node=a', 'udp=1', 'wspath=nope', 'wstls=yes'])).not.toHaveProperty('wsPath');
  });

  it('a ws-only server is announced and read back into a usable record with its endpoint', () => {
    const info: AnnounceInfo = { ...F, host: '127.0.0.1', agentPort: 7946, wsPort: 8080, wsPath: '/g', wsTls: true };
    const { records } = buildRecords(info);
    const packet = dnsPacket.decode(dnsPacket.encode({ type: 'response', answers: records.map((r) => r.rr) }));
    const { announcements, errors } = parseAnnouncement(packet);
    expect(errors).toEqual([]);
    expect(announcements).toHaveLength(1);
    const rec = parseUsableServerRecord(recordFromInstance(toBrowsed(announcements[0]!)));
    expect(rec).toMatchObject({ id: 'n1', host: '127.0.0.1', wsPort: 8080, wsPath: '/g', wsTls: true });
    expect(rec.udpPort).toBeUndefined();
    expect(rec.tcpPort).toBeUndefined();
  });

  it('tls=1 says the agent is over TLS: found by mDNS, it is dialed at wss:// (its records name it so); without, ws://', () => {
    expect(strs(encodeTxt({ ...F, tcpPort: 7000, agentTls: true }))).toEqual(['v=1', 'svc=game', 'node=n1', 'tcp=7000', 'tls=1', 'w=100', 'h=healthy', 'load=0']);
    expect(strs(encodeTxt({ ...F, tcpPort: 7000, agentTls: false }))).not.toContain('tls=1');
    expect(TXT_KEYS.agentTls.length).toBeLessThanOrEqual(9);
    for (const [host, tls, url] of [
      ['127.0.0.1', true, 'wss://127.0.0.1:7946'],
      ['::1', true, 'wss://[::1]:7946'],
      ['127.0.0.1', false, 'ws://127.0.0.1:7946'],
    ] as const) {
      const info: AnnounceInfo = { ...F, host, agentPort: 7946, tcpPort: 7000, ...(tls ? { agentTls: true } : {}) };
      const { announcements, errors } = parseAnnouncement(dnsPacket.decode(dnsPacket.encode({ type: 'response', answers: buildRecords(info).records.map((r) => r.rr) })));
      expect(errors).toEqual([]);
      const b = toBrowsed(announcements[0]!);
      expect(b.agentUrl).toBe(url);
      expect(recordFromInstance(b).agent).toBe(url);
      if (tls) expect(b.agentTls).toBe(true);
      else expect(b).not.toHaveProperty('agentTls');
    }
    expect(() => decodeTxt(['v=1', 'svc=g', 'node=a', 'udp=1', 'tls=yes'])).toThrow(DecodeError);
    expect(decodeTxt(['v=1', 'svc=g', 'node=a', 'udp=1', 'tls=0'])).not.toHaveProperty('agentTls');
  });

  it('the TXT signature covers the ws strings: a changed ws port no longer verifies', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const info: AnnounceInfo = { ...F, host: '127.0.0.1', agentPort: 7946, wsPort: 8080 };
    const { records } = buildRecords(info, { sign: (d) => signBytes(d, privateKey) });
    const read = (rs: typeof records) => parseAnnouncement(dnsPacket.decode(dnsPacket.encode({ type: 'response', answers: rs.map((r) => r.rr) }))).announcements[0]!;
    const good = read(records);
    expect(verifyBytes(good.signature!.data, good.signature!.sig, publicKey)).toBe(true);
    const forged = records.map((r) =>
      r.rr.type === 'TXT' ? { ...r, rr: { ...r.rr, data: (r.rr.data as Buffer[]).map((b) => (b.toString() === 'ws=8080' ? Buffer.from('ws=6666') : b)) } } : r,
    ) as typeof records;
    const bad = read(forged);
    expect(bad.wsPort).toBe(6666);
    expect(verifyBytes(bad.signature!.data, bad.signature!.sig, publicKey)).toBe(false);
  });
});
