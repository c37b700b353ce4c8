/**
 * The /v1/watch hello timeout runs on the agent's clock (issue 14: timers through the injectable
 * clock). A real HTTP server and a real `ws` client on loopback; the subscriptions take a
 * ManualClock: a socket that never says hello stays open while the clock stands still, however
 * long real time runs, and is closed with PEERLB_ERR_TIMEOUT as soon as the clock passes the
 * timeout. On the old code (a global setTimeout) the first check fails: the socket is closed after
 * 200 ms of real time.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Subscriptions } from '../../../agent/subscriptions.js';
import { ManualClock } from '../../../sdk/core/clock.js';
import { sleep, until } from '../../support/until.js';

const closers: Array<() => void> = [];
afterEach(() => {
  while (closers.length) closers.pop()!();
});

async function serve(subs: Subscriptions): Promise<number> {
  const server = http.createServer((_q, r) => r.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => subs.handleUpgrade(req, socket, head));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    subs.close();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

describe('/v1/watch hello timeout on the injected clock', () => {
  it('waits for the clock, not for real time, and then closes with PEERLB_ERR_TIMEOUT', async () => {
    const clock = new ManualClock();
    const subs = new Subscriptions({ node: 'n1', clock, helloTimeoutMs: 200, snapshot: () => ({ servers: [], agents: [] }) });
    const port = await serve(subs);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/watch`);
    const frames: Buffer[] = [];
    let closed = false;
    ws.on('message', (d) => frames.push(d as Buffer));
    ws.on('close', () => (closed = true));
    await new Promise<void>((r, j) => ws.once('open', () => r()).once('error', j));
    closers.push(() => ws.terminate());

    await sleep(600); // three times the timeout in real time: the clock has not moved
    expect(closed).toBe(false);
    expect(subs.counters.helloTimeouts).toBe(0);

    clock.advance(199);
    await sleep(50);
    expect(closed).toBe(false);
    clock.advance(1);
    await until(() => closed, 5000, 'the socket closed after the clock passed the timeout');
    expect(subs.counters.helloTimeouts).toBe(1);
    expect(Buffer.concat(frames).toString('latin1')).toContain('PEERLB_ERR_TIMEOUT');
  });
});
