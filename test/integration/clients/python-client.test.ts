/**
 * examples/python-client/client.py against real agent processes and UDP servers on loopback: its
 * datagrams spread over the servers, and a server drained mid-run gets none after the blocking
 * query that shows it draining returns.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnAgent, stopAll, type AgentProc } from '../../support/agents.js';
import { until } from '../../support/until.js';

const CLIENT = fileURLToPath(new URL('../../../examples/python-client/client.py', import.meta.url));
const agents: AgentProc[] = [];
const socks: dgram.Socket[] = [];
afterEach(async () => {
  await stopAll(agents.splice(0));
  socks.splice(0).forEach((s) => s.close());
});

async function udpCounter(): Promise<{ port: number; got: () => number }> {
  const s = dgram.createSocket('udp4');
  socks.push(s);
  let n = 0;
  s.on('message', () => n++);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return { port: s.address().port, got: () => n };
}

describe('examples/python-client', () => {
  it('spreads datagrams over the servers and stops sending to a drained one after the next blocking query returns', async () => {
    const ua = await udpCounter();
    const ub = await udpCounter();
    const a = await spawnAgent('a1', { extra: ['--udp', String(ua.port), '--load-interval', '200'] });
    agents.push(a);
    const b = await spawnAgent('b1', { join: [a.url], extra: ['--udp', String(ub.port), '--load-interval', '200', '--drain-timeout', '20000'] });
    agents.push(b);
    const servers = async () => (await (await fetch(`http://127.0.0.1:${a.port}/v1/servers?service=game&healthy=1`)).json()) as unknown[];
    await until(async () => (await servers()).length === 2, 20_000, 'a sees both healthy');

    const py = spawn('python3', [CLIENT, '--agent', `http://127.0.0.1:${a.port}`, '--service', 'game', '--count', '200', '--interval-ms', '20', '--wait', '10s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    py.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
    });
    // 'close': stdout fully read (after 'exit' some lines may still be buffered).
    const exit = new Promise<number | null>((r) => py.once('close', (c) => r(c)));
    await until(() => lines.filter((l) => l.startsWith('sent ')).length >= 60, 60_000, '60 datagrams sent');
    const killedAt = lines.length;
    b.proc.kill('SIGTERM'); // drain: b publishes draining at once
    expect(await exit).toBe(0);

    // Every line is one whole line (the client's two threads print: a line inside another would lose a count).
    expect(lines.filter((l) => !/^(view \d+ \S*|sent \S+ [\d.]+:\d+|none)$/.test(l))).toEqual([]);
    const sentTo = (id: string, from = 0, to = lines.length) => lines.slice(from, to).filter((l) => l.startsWith(`sent ${id} `)).length;
    expect(sentTo('a1')).toBeGreaterThan(20);
    expect(sentTo('b1', 0, killedAt)).toBeGreaterThan(10);
    // The first view after the kill without b1: no datagram to b1 after it.
    const v = lines.findIndex((l, i) => i >= killedAt && l.startsWith('view ') && !l.split(' ')[2]!.split(',').includes('b1'));
    expect(v).toBeGreaterThan(0);
    expect(sentTo('b1', v)).toBe(0);
    expect(sentTo('a1', v)).toBeGreaterThan(0);
    // The UDP servers got them (loopback).
    await until(() => ua.got() + ub.got() >= 195, 10_000, 'datagrams arrived');
    expect(ub.got()).toBeLessThanOrEqual(sentTo('b1'));
    expect(ub.got()).toBeGreaterThan(0);
  });
});
