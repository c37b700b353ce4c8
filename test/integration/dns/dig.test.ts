/**
 * The agent's DNS interface through real clients: dig (bind9-dnsutils) and Node's dns.Resolver
 * against a real agent process, whose view holds 14 servers (one more process and 13 agents in
 * this process, each with its own loopback address).
 */
import { Resolver } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../../../agent/index.js';
import { dig, digHeader, digSection, spawnDnsAgent, stopDnsAgents, type DnsAgent } from '../../support/dns.js';
import { until } from '../../support/until.js';

const SERVERS = 14;
let procs: DnsAgent[] = [];
const local: Agent[] = [];
let dnsPort = 0;

beforeAll(async () => {
  const a = await spawnDnsAgent('dns-a', { host: '127.0.1.1', dnsPort: 0, dnsBind: '127.0.0.1', extra: ['--dns-answers', '50', '--dns-ttl', '0'] });
  procs = [a];
  dnsPort = a.dnsPort!;
  for (let i = 2; i <= SERVERS; i++)
    local.push(await startAgent({ service: 'game', node: `srv-${i}`, host: `127.0.2.${i}`, tcpPort: 7000 + i, udpPort: 7100 + i, port: 0, join: [a.url], gossipProfile: 'local', health: { type: 'none' }, ...(i === 2 ? { wsPort: 8002, zone: 'r2' } : {}) }, { log: false }));
  await until(async () => digSection(await dig(dnsPort, ['game.peerlb', 'A', '+tcp']), 'ANSWER').length === SERVERS, 20_000, `${SERVERS} A records`);
}, 60_000);

afterAll(async () => {
  await Promise.all(local.map((l) => l.stop()));
  await stopDnsAgents(procs);
});

describe('dig against an agent', () => {
  it('A: every healthy server, authoritative (aa), not recursive (no ra)', async () => {
    const out = await dig(dnsPort, ['game.peerlb', 'A', '+bufsize=1232']);
    const { status, flags } = digHeader(out);
    expect(status).toBe('NOERROR');
    expect(flags).toContain('aa');
    expect(flags).not.toContain('ra');
    const hosts = digSection(out, 'ANSWER').map((r) => r[4]).sort();
    expect(hosts).toEqual(['127.0.1.1', ...Array.from({ length: SERVERS - 1 }, (_, i) => `127.0.2.${i + 2}`)].sort());
    expect(digSection(out, 'ANSWER').every((r) => r[1] === '0')).toBe(true); // --dns-ttl 0
  });

  it('SRV over TCP: the TCP ports, the server weights, and the targets\' A records in the additional section', async () => {
    const out = await dig(dnsPort, ['_game._tcp.peerlb', 'SRV', '+tcp']);
    const srv = digSection(out, 'ANSWER');
    expect(srv.length).toBe(SERVERS);
    expect(srv.find((r) => r[7] === 'srv-3.node.peerlb.')?.slice(3, 7)).toEqual(['SRV', '0', '100', '7003']);
    const extra = digSection(out, 'ADDITIONAL').filter((r) => r[3] === 'A');
    expect(extra.find((r) => r[0] === 'srv-3.node.peerlb.')?.[4]).toBe('127.0.2.3');
    expect(extra.length).toBe(SERVERS);
  });

  it('_<service>._ws: the WebSocket endpoint; <node>.node and <zone>.<service>', async () => {
    expect(digSection(await dig(dnsPort, ['_game._ws.peerlb', 'SRV']), 'ANSWER').map((r) => [r[6], r[7]])).toEqual([['8002', 'srv-2.node.peerlb.']]);
    expect(digSection(await dig(dnsPort, ['srv-5.node.peerlb', 'A']), 'ANSWER').map((r) => r[4])).toEqual(['127.0.2.5']);
    expect(digSection(await dig(dnsPort, ['r2.game.peerlb', 'A']), 'ANSWER').map((r) => r[4])).toEqual(['127.0.2.2']);
  });

  it('an unknown name in the zone: NXDOMAIN with the SOA in authority', async () => {
    const out = await dig(dnsPort, ['nosuch.peerlb', 'A']);
    expect(digHeader(out).status).toBe('NXDOMAIN');
    expect(digHeader(out).flags).toContain('aa');
    const soa = digSection(out, 'AUTHORITY');
    expect(soa.map((r) => r[3])).toEqual(['SOA']);
    expect(soa[0]![10]).toBe('0'); // minimum = the TTL (--dns-ttl 0): the negative TTL
  });

  it('a name outside the zone: REFUSED, not authoritative', async () => {
    const out = await dig(dnsPort, ['example.com', 'A']);
    expect(digHeader(out).status).toBe('REFUSED');
    expect(digHeader(out).flags).not.toContain('aa');
    expect(digSection(out, 'ANSWER')).toEqual([]);
  });

  it('ANY: one HINFO "RFC8482"; NODATA: NOERROR, no answer, the SOA', async () => {
    expect(digSection(await dig(dnsPort, ['game.peerlb', 'ANY']), 'ANSWER').map((r) => [r[3], r[4]])).toEqual([['HINFO', '"RFC8482"']]);
    const nodata = await dig(dnsPort, ['game.peerlb', 'TXT']);
    expect(digHeader(nodata).status).toBe('NOERROR');
    expect(digSection(nodata, 'ANSWER')).toEqual([]);
    expect(digSection(nodata, 'AUTHORITY').map((r) => r[3])).toEqual(['SOA']);
  });

  it('over 512 bytes without EDNS: TC over UDP; dig then retries over TCP and gets every record', async () => {
    const udp = await dig(dnsPort, ['_game._tcp.peerlb', 'SRV', '+noedns', '+ignore']);
    expect(digHeader(udp).flags).toContain('tc');
    expect(digSection(udp, 'ANSWER')).toEqual([]);
    expect(udp).toMatch(/SERVER: .*\(UDP\)/);
    const retried = await dig(dnsPort, ['_game._tcp.peerlb', 'SRV', '+noedns']);
    expect(retried).toMatch(/SERVER: .*\(TCP\)/);
    expect(digHeader(retried).flags).not.toContain('tc');
    expect(digSection(retried, 'ANSWER').length).toBe(SERVERS);
  });

  it('EDNS: the client size counts (+bufsize=1232 fits, 512 does not), OPT echoed with udp 1232', async () => {
    const big = await dig(dnsPort, ['_game._tcp.peerlb', 'SRV', '+bufsize=1232', '+ignore']);
    expect(digHeader(big).flags).not.toContain('tc');
    expect(digSection(big, 'ANSWER').length).toBe(SERVERS);
    expect(big).toMatch(/EDNS: version: 0, flags:; udp: 1232/);
    expect(big).toMatch(/MSG SIZE {2}rcvd: (\d+)/);
    expect(Number(/MSG SIZE {2}rcvd: (\d+)/.exec(big)![1])).toBeGreaterThan(512);
    const small = await dig(dnsPort, ['_game._tcp.peerlb', 'SRV', '+bufsize=512', '+ignore']);
    expect(digHeader(small).flags).toContain('tc');
    // A client offering 4096 still gets at most 1232 over UDP: 50 answers would not fit, so TC.
    const aBig = await dig(dnsPort, ['game.peerlb', 'A', '+bufsize=4096', '+ignore']);
    expect(Number(/MSG SIZE {2}rcvd: (\d+)/.exec(aBig)![1])).toBeLessThanOrEqual(1232);
  });

  it("Node's dns.Resolver resolves A and SRV through it", async () => {
    const r = new Resolver({ timeout: 2000, tries: 2 });
    r.setServers([`127.0.0.1:${dnsPort}`]);
    // Over 512 bytes Node (c-ares) retries over TCP by itself.
    expect((await r.resolve4('game.peerlb')).length).toBe(SERVERS);
    const srv = await r.resolveSrv('_game._tcp.peerlb');
    expect(srv.length).toBe(SERVERS);
    expect(srv.find((s) => s.name === 'srv-4.node.peerlb')).toMatchObject({ port: 7004, priority: 0, weight: 100 });
    await expect(r.resolve4('nosuch.peerlb')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('draining a server takes it out of the next answer', async () => {
    const target = local.find((l) => l.node === 'srv-6')!;
    void target.drain();
    await until(async () => !digSection(await dig(dnsPort, ['game.peerlb', 'A', '+tcp']), 'ANSWER').some((r) => r[4] === '127.0.2.6'), 10_000, 'srv-6 out of the answers');
    expect(digSection(await dig(dnsPort, ['srv-6.node.peerlb', 'A']), 'ANSWER').map((r) => r[4])).toEqual(['127.0.2.6']);
  });
});
