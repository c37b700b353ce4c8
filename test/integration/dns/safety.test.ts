/**
 * The DNS interface under hostile input, against a real agent process: a UDP flood from one source
 * is slipped and dropped while another source is answered; malformed packets are counted and
 * dropped; TCP connections are capped per address; and a member killed with SIGKILL is out of the
 * answers as soon as the agent marks it dead (watched on /v1/events).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, digHeader, digSection, spawnDnsAgent, stopDnsAgents, type DnsAgent } from '../../support/dns.js';
import { until } from '../../support/until.js';

let agents: DnsAgent[] = [];
let a: DnsAgent;

beforeAll(async () => {
  a = await spawnDnsAgent('safe-a', { host: '127.0.1.1', dnsPort: 0, dnsBind: '127.0.0.1', extra: ['--dns-answers', '10'] });
  agents = [a];
  for (const [node, host] of [['safe-b', '127.0.1.2'], ['safe-c', '127.0.1.3']] as const) agents.push(await spawnDnsAgent(node, { host, join: [a.url] }));
  await until(async () => digSection(await dig(a.dnsPort!, ['game.peerlb', 'A']), 'ANSWER').length === 3, 20_000, '3 servers in the answer');
}, 60_000);

afterAll(() => stopDnsAgents(agents));

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.1.1:${a.port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
}

const aQuery = (id: number) => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'game.peerlb' }] });

describe('DNS under hostile input', () => {
  it('a flood of 50,000 queries from 127.0.0.2 is slipped (TC) and dropped, while 127.0.0.3 is still answered', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.2', () => r()));
    let answered = 0;
    let slipped = 0;
    sock.on('message', (m) => {
      const p = dnsPacket.decode(m);
      if (p.flag_tc) slipped++;
      else answered++;
    });
    const TOTAL = 50_000;
    for (let i = 0; i < TOTAL; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => new Promise<void>((r) => sock.send(aQuery((i + j) & 0xffff), a.dnsPort!, '127.0.0.1', () => r()))));
      await new Promise((r) => setImmediate(r));
    }
    // The other source, right after the flood (127.0.0.2's bucket is empty now).
    const other = await dig(a.dnsPort!, ['-b', '127.0.0.3', 'game.peerlb', 'A', '+tries=3']);
    expect(digHeader(other).status).toBe('NOERROR');
    expect(digHeader(other).flags).not.toContain('tc');
    expect(digSection(other, 'ANSWER').length).toBe(3);
    await until(async () => (await metric('peerlb_dns_rate_limited_total{action="drop"')) > 0, 10_000, 'drops counted');
    sock.close();
    expect(slipped).toBeGreaterThan(0);
    expect(answered + slipped).toBeLessThan(TOTAL);
    expect(await metric('peerlb_dns_rate_limited_total{action="slip"')).toBeGreaterThanOrEqual(slipped);
  });

  it('malformed packets are counted and dropped; the agent keeps answering', async () => {
    const before = await metric('peerlb_dns_malformed_total');
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.4', () => r()));
    const junk = [Buffer.from([1, 2, 3]), Buffer.alloc(12, 0xff), Buffer.concat([aQuery(7).subarray(0, 20), Buffer.from([0xc0, 0x0c])]), Buffer.alloc(0)];
    for (const j of junk) await new Promise<void>((r) => sock.send(j, a.dnsPort!, '127.0.0.1', () => r()));
    await until(async () => (await metric('peerlb_dns_malformed_total')) >= before + 3, 10_000, 'malformed counted');
    sock.close();
    expect(digHeader(await dig(a.dnsPort!, ['-b', '127.0.0.4', 'game.peerlb', 'A'])).status).toBe('NOERROR');
    expect(a.proc.exitCode).toBe(null);
  });

  it('TCP: past 16 connections from one address the next is closed; another address still gets in', async () => {
    const open = (local: string) =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: a.dnsPort!, localAddress: local }, () => resolve(s));
        s.once('error', reject);
      });
    const held = await Promise.all(Array.from({ length: 16 }, () => open('127.0.0.5')));
    const extra = await open('127.0.0.5');
    await until(() => extra.destroyed || extra.readableEnded, 10_000, 'the 17th connection closed');
    expect(held.every((s) => !s.destroyed)).toBe(true);
    const ok = await dig(a.dnsPort!, ['-b', '127.0.0.6', '+tcp', 'game.peerlb', 'A']);
    expect(digSection(ok, 'ANSWER').length).toBe(3);
    // Several queries on one connection (RFC 7766 §6.2.1), pipelined.
    const s = held[0]!;
    const replies: number[] = [];
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))).id!);
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
    });
    s.write(Buffer.concat([1, 2, 3].map((id) => dnsPacket.streamEncode({ type: 'query', id, questions: [{ type: 'A', name: 'game.peerlb' }] }))));
    await until(() => replies.length === 3, 10_000, 'three replies on one connection');
    expect(replies).toEqual([1, 2, 3]);
    for (const h of held) h.destroy();
    extra.destroy();
  });

  it('a TCP connection that sends nothing is closed at the idle timeout (10 s, RFC 7766 §6.2.3)', async () => {
    const s = net.connect({ host: '127.0.0.1', port: a.dnsPort!, localAddress: '127.0.0.7' });
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('connect', () => r()));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await until(() => s.destroyed || s.readableEnded, 25_000, 'the idle connection closed by the agent');
    await closed;
    expect(await metric('peerlb_dns_tcp_refused_total{reason="idle"')).toBeGreaterThanOrEqual(1);
  }, 40_000);

  it('kill -9 of a server\'s agent: out of the answers the moment this agent marks it dead', async () => {
    const c = agents.find((x) => x.node === 'safe-c')!;
    const ws = new WebSocket(`ws://127.0.1.1:${a.port}/v1/events`);
    const seenAfterDeath: string[][] = [];
    const dead = new Promise<void>((resolve) => {
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString()) as { type: string; event?: { kind: string; node: string } };
        if (m.type === 'event' && m.event?.kind === 'dead' && m.event.node === 'safe-c') {
          // At once: the first query after the death event.
          void dig(a.dnsPort!, ['game.peerlb', 'A']).then((out) => {
            seenAfterDeath.push(digSection(out, 'ANSWER').map((r) => r[4]!));
            resolve();
          });
        }
      });
    });
    await new Promise<void>((r) => ws.once('open', () => r()));
    c.proc.kill('SIGKILL');
    await dead;
    ws.close();
    expect(seenAfterDeath[0]!.sort()).toEqual(['127.0.1.1', '127.0.1.2']);
    // Before the death (suspect) it may still be answered; after it, never again.
    for (let i = 0; i < 5; i++) expect(digSection(await dig(a.dnsPort!, ['game.peerlb', 'A']), 'ANSWER').map((r) => r[4])).not.toContain('127.0.1.3');
  });
});
