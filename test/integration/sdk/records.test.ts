/**
 * Server records from the network (and from a feed) are checked beyond their types: the host is an
 * IP literal a server can have (no name to look up per datagram, not 0.0.0.0 or ::, not multicast
 * or broadcast, nothing 255 characters long), and there is at least one port to reach it on.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../sdk/core/errors.js';
import { createFeed } from '../../../sdk/core/discovery/feed.js';
import { MdnsAnnouncer } from '../../../agent/mdns/announcer.js';
import type { AnnounceInfo } from '../../../sdk/mdns/records.js';
import { join, type Cluster } from '../../../sdk/index.js';
import { until } from '../../support/security.js';
import { ipFamily, parseUsableServerRecord, serverAddressProblem, type ServerRecord } from '../../../sdk/core/protocol.js';

const rec = (over: Partial<ServerRecord> & Record<string, unknown> = {}) => ({ id: 'a', service: 'game', host: '10.0.0.5', udpPort: 7001, weight: 100, health: 'healthy', ...over });

const LITERALS = [
  '127.0.0.1', '10.0.0.5', '255.255.255.254', '1.2.3.4', '::1', 'fe80::1', 'fe80::1%lo', '2001:db8::1', '2001:db8:0:0:0:0:0:1',
  '::ffff:10.0.0.1', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:7:8', '1::', '::', '0.0.0.0', 'FE80::ABCD',
];
const NOT_LITERALS = [
  '', 'localhost', 'game.example', 'no such host!!', 'x'.repeat(255), '10.0.0', '10.0.0.256', '010.0.0.1', '1.2.3.4.5', ' 1.2.3.4',
  '1:2:3:4:5:6:7:8:9', '1::2::3', ':::', '12345::', 'g::1', '1:2:3:4:5:6:7', '::1%', '[::1]', '1.2.3.4:80', '::ffff:1.2.3', '1:2:3:4:5:6:7:1.2.3.4',
];

describe('ipFamily: as net.isIP, without Node', () => {
  it.each([...LITERALS, ...NOT_LITERALS])('%j', (v) => {
    expect(ipFamily(v)).toBe(net.isIP(v));
  });
});

describe('serverAddressProblem', () => {
  it.each(['127.0.0.1', '10.0.0.5', '::1', 'fe80::1%lo', '2001:db8::1', '::ffff:10.0.0.1'])('%s is a server address', (v) => {
    expect(serverAddressProblem(v)).toBeUndefined();
  });
  it.each(['0.0.0.0', '::', '0:0:0:0:0:0:0:0', '::0', '::ffff:0.0.0.0', '224.0.0.251', '239.255.255.250', '255.255.255.255', 'ff02::fb', 'localhost', 'no such host!!', 'x'.repeat(255), 7, null])(
    '%j is not',
    (v) => {
      expect(serverAddressProblem(v)).toBeTypeOf('string');
    },
  );
});

describe('parseUsableServerRecord (watch frames, mDNS, feeds)', () => {
  it.each(['0.0.0.0', '::', 'no such host!!', 'x'.repeat(255), 'localhost', '224.0.0.1'])('refuses host %j', (host) => {
    expect(() => parseUsableServerRecord(rec({ host }))).toThrow(DecodeError);
    expect(() => parseUsableServerRecord(rec({ host }))).toThrow(/server\.host/);
  });

  it('refuses a record with neither a UDP nor a TCP port', () => {
    expect(() => parseUsableServerRecord(rec({ udpPort: undefined }))).toThrow(/needs a udpPort, a tcpPort or a wsPort/);
    expect(() => parseUsableServerRecord(rec({ udpPort: null, tcpPort: null } as never))).toThrow(DecodeError);
    expect(parseUsableServerRecord(rec({ udpPort: undefined, tcpPort: 7000 }))).toMatchObject({ tcpPort: 7000 });
  });

  it('takes IPv4 and IPv6 literals', () => {
    for (const host of ['10.0.0.5', '::1', 'fe80::1%eth0']) expect(parseUsableServerRecord(rec({ host })).host).toBe(host);
  });

  it('a feed checks the same: a record with a host name throws and changes nothing', () => {
    const feed = createFeed();
    expect(() => feed.upsert(rec({ host: 'game.example' }) as ServerRecord)).toThrow(DecodeError);
    expect(() => createFeed([rec({ host: '0.0.0.0' }) as ServerRecord])).toThrow(DecodeError);
  });
});

describe('server records from mDNS', () => {
  it('an announcement of 0.0.0.0 (or with no port) is left out of the view and reported; a genuine one is in it', async () => {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const svc = `v${Math.random().toString(36).slice(2, 7)}`;
    const info = (node: string, over: Partial<AnnounceInfo>): AnnounceInfo => ({ node, service: svc, host: '127.0.0.1', agentPort: 7946, udpPort: 41_000, weight: 100, health: 'healthy', loadBucket: 0, ...over });
    const announcers = [
      new MdnsAnnouncer({ info: info('good', {}), interface: '127.0.0.1', port }),
      new MdnsAnnouncer({ info: info('zero', { host: '0.0.0.0' }), interface: '127.0.0.1', port }),
      new MdnsAnnouncer({ info: info('noport', { udpPort: undefined }), interface: '127.0.0.1', port }),
    ];
    let c: Cluster | undefined;
    try {
      for (const a of announcers) await a.start();
      const errors: Error[] = [];
      // waitForServersMs 0: listening before the first answers come (errors are not kept for later listeners).
      c = await join({ service: svc, discovery: { mdns: { interface: '127.0.0.1', port, subscribe: false } }, waitForServersMs: 0 });
      c.on('error', (e) => errors.push(e));
      await until(() => errors.length >= 2 && c!.servers().length > 0, 5000, 'two reports and the genuine server');
      expect(c.servers().map((s) => s.id)).toEqual(['good']);
      expect(errors.map((e) => e.message).join('\n')).toMatch(/unspecified/);
      expect(errors.map((e) => e.message).join('\n')).toMatch(/needs a udpPort, a tcpPort or a wsPort/);
    } finally {
      await c?.close();
      await Promise.all(announcers.map((a) => a.stop()));
    }
  });
});
