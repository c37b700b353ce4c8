import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatIp, isLoopbackAddress, parseIp } from '../../../../agent/load/addr.js';
import {
  countEstablished,
  countEstablishedIn,
  decodeProcAddress,
  parseProcNetTcp,
  TCP_STATE,
} from '../../../../agent/load/proc-net.js';
import { BadOptionError, ConfigError } from '../../../../sdk/core/errors.js';
import { hasIPv6Loopback, openClients, ownLoopback, tcpServer } from '../../../support/net.js';
import { until } from '../../../support/until.js';

// Written as a little-endian x86-64 kernel prints them (trailing columns as in a real file).
const TAIL = '00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1';
const TCP4_LE = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  `   0: 00000000:1F40 00000000:0000 0A ${TAIL}`, // LISTEN 0.0.0.0:8000
  `   1: 0100007F:1F40 0100007F:C350 01 ${TAIL}`, // 127.0.0.1:8000 <- 127.0.0.1:50000, server side
  `   2: 0100007F:C350 0100007F:1F40 01 ${TAIL}`, // the client side of the same connection
  `   3: 0100007F:1F40 0100007F:C351 06 ${TAIL}`, // TIME_WAIT
  `   4: 0500000A:1F40 0900000A:9C40 01 ${TAIL}`, // 10.0.0.5:8000 <- 10.0.0.9:40000
  `   5: 0500000A:1F41 0900000A:9C41 01 ${TAIL}`, // another port
  `   6: 0100007F:1F40 0100007F:C352 08 ${TAIL}`, // CLOSE_WAIT
  '',
].join('\n');

const TCP6_LE = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  `   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A ${TAIL}`, // LISTEN [::]:8000
  `   1: 00000000000000000000000001000000:1F40 00000000000000000000000001000000:D431 01 ${TAIL}`, // [::1]:8000
  `   2: 0000000000000000FFFF00000100007F:1F40 0000000000000000FFFF00000100007F:D432 01 ${TAIL}`, // ::ffff:127.0.0.1
  `   3: 0000000000000000FFFF00000500000A:1F40 0000000000000000FFFF00000900000A:D433 01 ${TAIL}`, // ::ffff:10.0.0.5
  `   4: B80D0120000000000000000005000000:1F40 B80D0120000000000000000009000000:D434 01 ${TAIL}`, // [2001:db8::5]
].join('\n');

// The same sockets as a big-endian kernel (s390x, ppc64) prints them: addresses in network order.
const TCP4_BE = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  `   0: 7F000001:1F40 7F000001:C350 01 ${TAIL}`,
  `   1: 0A000005:1F40 0A000009:9C40 01 ${TAIL}`,
].join('\n');
const TCP6_BE = [
  '  sl  local_address                         remote_address                        st',
  `   0: 00000000000000000000000000000001:1F40 00000000000000000000000000000001:D431 01 ${TAIL}`,
  `   1: 00000000000000000000FFFF7F000001:1F40 00000000000000000000FFFF7F000001:D432 01 ${TAIL}`,
  `   2: 20010DB8000000000000000000000005:1F40 20010DB8000000000000000000000009:D434 01 ${TAIL}`,
].join('\n');

describe('addresses', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:7f00:1', '127.0.0.1'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['fe80::1%lo', 'fe80::1'],
    ['2001:0db8:0:0:0:0:0:5', '2001:db8::5'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['::', '::'],
  ])('parses %s as %s', (text, canon) => {
    expect(formatIp(parseIp(text)!)).toBe(canon);
  });

  it.each(['', 'localhost', '1.2.3', '256.0.0.1', '1::2::3', 'x', '1:2:3:4:5:6:7:8:9', 42, null])('rejects %j', (text) => {
    expect(parseIp(text)).toBeUndefined();
  });

  it.each([
    ['127.0.0.1', true],
    ['127.255.3.4', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:127.8.0.1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['::2', false],
    ['128.0.0.1', false],
    ['::127.0.0.1', false], // IPv4-compatible (deprecated), not mapped: not loopback
    [undefined, false],
    ['localhost', false],
  ])('loopback(%j) = %s', (addr, want) => {
    expect(isLoopbackAddress(addr)).toBe(want);
  });
});

describe('parseProcNetTcp', () => {
  it('decodes little-endian IPv4 lines, skipping the header', () => {
    const rows = parseProcNetTcp(TCP4_LE, { endianness: 'LE' });
    expect(rows).toHaveLength(7);
    expect(rows[0]).toEqual({ family: 4, localAddress: '0.0.0.0', localPort: 8000, remoteAddress: '0.0.0.0', remotePort: 0, state: TCP_STATE.LISTEN });
    expect(rows[1]).toEqual({ family: 4, localAddress: '127.0.0.1', localPort: 8000, remoteAddress: '127.0.0.1', remotePort: 50000, state: TCP_STATE.ESTABLISHED });
    expect(rows[4]).toMatchObject({ localAddress: '10.0.0.5', remoteAddress: '10.0.0.9', remotePort: 40000 });
  });

  it('decodes little-endian IPv6 lines, IPv4-mapped included', () => {
    const rows = parseProcNetTcp(TCP6_LE, { endianness: 'LE' });
    expect(rows.map((r) => r.localAddress)).toEqual(['::', '::1', '::ffff:127.0.0.1', '::ffff:10.0.0.5', '2001:db8::5']);
    expect(rows.every((r) => r.family === 6 && r.localPort === 8000)).toBe(true);
    expect(rows[4]!.remoteAddress).toBe('2001:db8::9');
  });

  it('decodes big-endian text', () => {
    expect(parseProcNetTcp(TCP4_BE, { endianness: 'BE' }).map((r) => r.localAddress)).toEqual(['127.0.0.1', '10.0.0.5']);
    expect(parseProcNetTcp(TCP6_BE, { endianness: 'BE' }).map((r) => r.localAddress)).toEqual(['::1', '::ffff:127.0.0.1', '2001:db8::5']);
  });

  it('shows what reading with the wrong byte order would do', () => {
    expect(formatIp(decodeProcAddress('0100007F', 'BE')!)).toBe('1.0.0.127');
    expect(formatIp(decodeProcAddress('0100007F', 'LE')!)).toBe('127.0.0.1');
  });

  it('skips malformed and truncated lines without failing', () => {
    const text = [
      TCP4_LE.split('\n')[1],
      'garbage',
      '   9: 0100007F:1F40 0100007F:C3', // cut short
      '   9: 0100007F:1F40 00000000000000000000000001000000:C350 01 x', // mixed families
      '   9: 0100007G:1F40 0100007F:C350 01', // not hex
      '',
      '\r',
      TCP4_LE.split('\n')[2],
    ].join('\n');
    expect(parseProcNetTcp(text, { endianness: 'LE' })).toHaveLength(2);
    expect(parseProcNetTcp('', { endianness: 'LE' })).toEqual([]);
  });
});

describe('countEstablishedIn', () => {
  it('counts only ESTABLISHED sockets whose local port is the server port', () => {
    // rows 1 and 4: the client half (local port 50000), TIME_WAIT, CLOSE_WAIT, LISTEN don't count
    expect(countEstablishedIn(TCP4_LE, 8000, { endianness: 'LE' })).toBe(2);
    expect(countEstablishedIn(TCP4_LE, 8001, { endianness: 'LE' })).toBe(1);
    expect(countEstablishedIn(TCP4_LE, 50000, { endianness: 'LE' })).toBe(1);
    expect(countEstablishedIn(TCP4_LE, 9999, { endianness: 'LE' })).toBe(0);
    expect(countEstablishedIn(TCP6_LE, 8000, { endianness: 'LE' })).toBe(4);
  });

  it('filters by local address, matching IPv4-mapped forms', () => {
    const c = (text: string, host: string, endianness: 'LE' | 'BE' = 'LE') => countEstablishedIn(text, 8000, { host, endianness });
    expect(c(TCP4_LE, '127.0.0.1')).toBe(1);
    expect(c(TCP6_LE, '127.0.0.1')).toBe(1); // the dual-stack socket's ::ffff:127.0.0.1
    expect(c(TCP6_LE, '::ffff:127.0.0.1')).toBe(1);
    expect(c(TCP4_LE, '::ffff:10.0.0.5')).toBe(1);
    expect(c(TCP6_LE, '::1')).toBe(1);
    expect(c(TCP6_LE, '2001:db8::5')).toBe(1);
    expect(c(TCP6_LE, '2001:db8::9')).toBe(0); // a remote address, not local
    expect(c(TCP4_LE, '0.0.0.0')).toBe(2); // wildcard bind: every local address
    expect(c(TCP6_LE, '::')).toBe(4);
    expect(c(TCP4_BE, '127.0.0.1', 'BE')).toBe(1);
    expect(c(TCP6_BE, '127.0.0.1', 'BE')).toBe(1);
    expect(c(TCP6_BE, '::1', 'BE')).toBe(1);
  });

  it('rejects a bad port or host with an error naming it', () => {
    for (const p of [0, 65536, 1.5, NaN, -1, '80' as unknown as number]) {
      expect(() => countEstablishedIn(TCP4_LE, p)).toThrow(BadOptionError);
    }
    expect(() => countEstablishedIn(TCP4_LE, 80, { host: 'example.com' })).toThrow(/option "host"/);
  });
});

describe('countEstablished with a procfs directory', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function fixture(files: Record<string, string>): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), 'peerlb-proc-'));
    await mkdir(join(dir, 'net'));
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'net', name), text);
    return dir;
  }

  // The fixtures are little-endian, so these assertions hold on the x86/arm64 machines we run on.
  const le = endianness() === 'LE';

  it.skipIf(!le)('sums tcp and tcp6', async () => {
    const root = await fixture({ tcp: TCP4_LE, tcp6: TCP6_LE });
    expect(await countEstablished(8000, { procRoot: root })).toBe(6);
    expect(await countEstablished(8000, { procRoot: root, host: '127.0.0.1' })).toBe(2);
  });

  it.skipIf(!le)('treats a missing tcp6 file as no IPv6 sockets', async () => {
    const root = await fixture({ tcp: TCP4_LE });
    expect(await countEstablished(8000, { procRoot: root })).toBe(2);
  });

  it('fails clearly without procfs', async () => {
    const root = await fixture({});
    await expect(countEstablished(8000, { procRoot: root })).rejects.toThrow(ConfigError);
    await expect(countEstablished(8000, { procRoot: root })).rejects.toThrow(/net\/tcp.*procfs/);
  });

  it('rejects bad options', async () => {
    await expect(countEstablished(0)).rejects.toThrow(/option "port"/);
    await expect(countEstablished(80, { host: 'nope' })).rejects.toThrow(/option "host"/);
  });
});

const v6 = await hasIPv6Loopback();

describe('countEstablished on real loopback sockets', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it('counts N connections to an IPv4 server, and fewer after some close', async () => {
    const host = await ownLoopback('127.0.0.2');
    const srv = await tcpServer(host);
    cleanups.push(srv.close);
    // Filtered by this file's own address: another test file may use the same port number on
    // 127.0.0.1 at the same time.
    const count = () => countEstablished(srv.port, { host });
    expect(await count()).toBe(0);
    const clients = await openClients(host, srv.port, 5);
    cleanups.push(() => clients.forEach((s) => s.destroy()));
    await until(() => srv.accepted.size === 5, 5000, 'server to accept 5');
    expect(await count()).toBe(5);
    expect(await countEstablished(srv.port, { host: `::ffff:${host}` })).toBe(5);
    expect(await countEstablished(srv.port, { host: '127.0.0.99' })).toBe(0);

    clients.slice(0, 2).forEach((s) => s.destroy());
    await until(async () => (await count()) === 3, 5000, 'count to drop to 3');
    clients.slice(2).forEach((s) => s.destroy());
    await until(async () => (await count()) === 0, 5000, 'count to drop to 0');
  });

  it.skipIf(!v6)('counts IPv4 clients of a dual-stack server (IPv4-mapped in tcp6) and IPv6 clients', async () => {
    const host = await ownLoopback('127.0.0.2');
    const srv = await tcpServer('::');
    cleanups.push(srv.close);
    const a = await openClients(host, srv.port, 3);
    const b = await openClients('::1', srv.port, 2);
    cleanups.push(() => [...a, ...b].forEach((s) => s.destroy()));
    await until(() => srv.accepted.size === 5, 5000, 'server to accept 5');
    expect(await countEstablished(srv.port, { host })).toBe(3);
    expect(await countEstablished(srv.port, { host: `::ffff:${host}` })).toBe(3);
    expect(await countEstablished(srv.port, { host: '::1' })).toBe(2);
    // Unfiltered, a wildcard server may also hold a stray connection from a parallel test file.
    expect(await countEstablished(srv.port)).toBeGreaterThanOrEqual(5);
    expect(await countEstablished(srv.port, { host: '::' })).toBeGreaterThanOrEqual(5);
  });
});
