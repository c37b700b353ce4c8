/**
 * UDP sends in a view that mixes UDP servers with TCP-only ones (no udpPort): real datagrams to
 * real UDP servers on loopback. A send is only ever placed on a server with a UDP port, keyed or
 * not, and a key's server among the UDP servers is the one the full hash ring gives it whenever
 * that one has a UDP port. With no UDP server at all, a send fails with NoServersError.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NoServersError } from '../../../sdk/core/errors.js';
import { hashKey } from '../../../sdk/core/hash.js';
import type { StrategyName } from '../../../sdk/core/pickers/index.js';
import { startTcpServer, startUdpServer, type TcpTestServer, type UdpTestServer } from '../../support/servers.js';
import { rec, testBalancer, testCluster, udpRound, type TestCluster } from '../../support/balancer-fixtures.js';

let udps: UdpTestServer[] = [];
let tcps: TcpTestServer[] = [];
let clusters: TestCluster[] = [];

afterEach(async () => {
  for (const c of clusters) c.close();
  clusters = [];
  await Promise.all([...udps, ...tcps].map((s) => s.close()));
  udps = [];
  tcps = [];
});

async function mixed(strategy: StrategyName): Promise<TestCluster> {
  for (let i = 0; i < 3; i++) udps.push(await startUdpServer({ id: `u${i}` }));
  for (let i = 0; i < 2; i++) tcps.push(await startTcpServer({ id: `t${i}` }));
  const c = testCluster(
    [...udps.map((u) => rec(u.id, { udpPort: u.port, tcpPort: undefined })), ...tcps.map((t) => rec(t.id, { tcpPort: t.port, udpPort: undefined }))],
    { strategy },
  );
  clusters.push(c);
  return c;
}

describe('UDP with TCP-only servers in the view', () => {
  it.each<StrategyName>(['round-robin', 'p2c', 'least-connections', 'consistent-hash', 'weighted-random'])('strategy %s: every datagram without a key reaches a UDP server', async (strategy) => {
    const c = await mixed(strategy);
    const u = c.udp();
    const n = 600;
    const replies = await udpRound(u, new Array(n).fill(undefined));
    for (const r of replies) {
      expect(r.sentTo).toMatch(/^u\d$/);
      expect(r.from).toBe(r.sentTo);
    }
    expect(udps.reduce((s, x) => s + x.received, 0)).toBe(n);
    if (strategy !== 'consistent-hash') for (const x of udps) expect(x.received).toBeGreaterThan(n / 6);
    await u.close();
  });

  it.each<StrategyName>(['p2c', 'consistent-hash'])('strategy %s: every key reaches a UDP server, the same one each time, and the one of the full ring when it has a UDP port', async (strategy) => {
    const c = await mixed(strategy);
    const u = c.udp();
    const keys = Array.from({ length: 3000 }, (_, i) => `player-${i}`);
    const first = await udpRound(u, keys, 200);
    const second = await udpRound(u, keys, 200);
    let onTcpOnly = 0;
    for (let i = 0; i < keys.length; i++) {
      expect(first[i]!.from).toMatch(/^u\d$/);
      expect(second[i]!.from).toBe(first[i]!.from);
      const owner = c.b.pick(hashKey(keys[i]!))!;
      if (owner.udpPort !== undefined) expect(first[i]!.from).toBe(owner.id);
      else onTcpOnly++;
    }
    // About 2/5 of the keys hash onto the TCP-only servers: all of them were delivered elsewhere.
    expect(onTcpOnly).toBeGreaterThan(600);
    expect(udps.reduce((s, x) => s + x.received, 0)).toBe(2 * keys.length);
    await u.close();
  });

  it('no server with a UDP port: the send fails with NoServersError', async () => {
    tcps.push(await startTcpServer({ id: 't0' }));
    const c = testCluster([rec('t0', { tcpPort: tcps[0]!.port, udpPort: undefined })]);
    clusters.push(c);
    const u = c.udp();
    for (const key of [undefined, 'k']) {
      const err = await new Promise<Error | null>((resolve) => {
        const s = u.send('x', key === undefined ? undefined : { key }, resolve);
        expect(s).toBeUndefined();
      });
      expect(err).toBeInstanceOf(NoServersError);
    }
    // A UDP server arrives: sends go to it.
    udps.push(await startUdpServer({ id: 'u0' }));
    c.feed.upsert(rec('u0', { udpPort: udps[0]!.port, tcpPort: undefined }));
    const replies = await udpRound(u, [undefined, 'k']);
    expect(replies.map((r) => r.from)).toEqual(['u0', 'u0']);
    await u.close();
  });

  it('no candidate has a UDP port: datagrams go to UDP servers outside the choice set (another zone; then unhealthy ones, not draining)', () => {
    const tcpOnly = { udpPort: undefined, tcpPort: 9 };
    const zoned = testBalancer([rec('t0', { ...tcpOnly, zone: 'z1' }), rec('t1', { ...tcpOnly, zone: 'z1' }), rec('u0', { zone: 'z2', tcpPort: undefined })], { zone: 'z1' });
    expect(zoned.b.zoneLocal).toBe(true);
    for (const h of [-1, 1, 2 ** 31]) expect(zoned.b.pickUdp(h)?.id).toBe('u0');
    zoned.close();
    const sick = testBalancer([rec('t0', tcpOnly), rec('u0', { health: 'unhealthy', tcpPort: undefined }), rec('u1', { health: 'draining', tcpPort: undefined })]);
    for (let i = 0; i < 20; i++) expect(sick.b.pickUdp(i % 2 ? -1 : i)?.id).toBe('u0');
    sick.feed.remove('u0');
    expect(sick.b.pickUdp(-1)).toBeUndefined();
    sick.close();
  });

  it('weighted-round-robin: TCP and UDP picks interleaved each keep exact proportions (no picker state shared through the servers)', () => {
    // a and c take datagrams, b is TCP-only: the TCP picker runs over a, b, c, the UDP one over a, c.
    const t = testBalancer([rec('a', { weight: 500 }), rec('b', { weight: 100, udpPort: undefined }), rec('c', { weight: 100 })], { strategy: 'weighted-round-robin' });
    const tcp = new Map<string, number>();
    const udp = new Map<string, number>();
    for (let i = 0; i < 7000; i++) {
      const s = t.b.pick(-1)!;
      tcp.set(s.id, (tcp.get(s.id) ?? 0) + 1);
      if (i < 6000) {
        const u = t.b.pickUdp(-1)!;
        udp.set(u.id, (udp.get(u.id) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(tcp)).toEqual({ a: 5000, b: 1000, c: 1000 });
    expect(Object.fromEntries(udp)).toEqual({ a: 5000, c: 1000 });
    t.close();
  });
});
