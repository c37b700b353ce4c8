/**
 * Subscribers that say hello and never read, on a real agent process: unsent bytes are bounded
 * per subscriber (4 MiB) and in total (limits.maxWatchPendingBytes, 64 MiB), the stalled ones cut
 * first; the agent's memory stays bounded and its genuine members stay alive.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnAgent, stopAll, membersOf, until, type AgentProc } from '../helpers/agents.js';
import { rawGossip, frame, meta, sleep, type RawClient } from './helpers.js';
import { clientFrame, rawUpgrade, type RawUpgrade } from './raw-sockets.js';

const procs: AgentProc[] = [];
const held: RawUpgrade[] = [];
const gossip: RawClient[] = [];
afterEach(async () => {
  held.splice(0).forEach((u) => u.sock.destroy());
  gossip.splice(0).forEach((g) => g.ws.terminate());
  await stopAll(procs.splice(0));
});

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

describe('never-reading /v1/watch subscribers', () => {
  it('100 subscribers that say hello and never read: agent RSS stays bounded, the stalled are cut, genuine members stay alive and a new client gets its snapshot', async () => {
    const a = await spawnAgent('np1');
    procs.push(a);
    procs.push(await spawnAgent('np2', { join: [a.url] }));
    await until(async () => (await membersOf(a.url)).filter((m) => m.status === 'alive').length === 2, 20_000, 'np1 and np2');
    // 1,000 made-up members (a snapshot of ~0.7 MB of JSON), from one raw gossip socket.
    const g = await rawGossip(a.url, { localAddress: '127.0.0.9' });
    gossip.push(g);
    const N = 1000;
    // Long names and zones (records near their 255-character fields): ~0.75 KB a delta.
    const name = (i: number) => `fake-${i}-${'n'.repeat(180)}`;
    const round = (inc: number) => {
      for (let off = 0; off < N; off += 100) {
        const updates = Array.from({ length: 100 }, (_, k) => ({
          kind: 'alive' as const,
          node: name(off + k),
          incarnation: inc,
          addr: `ws://127.0.0.9:${10_000 + off + k}`,
          meta: meta(name(off + k), { zone: `zone-${inc}-${'z'.repeat(240)}` }),
        }));
        g.send(frame({ type: 'gossip', from: { node: 'fake-src', addr: 'ws://127.0.0.9:9999' }, piggyback: { updates, loads: [] } }));
      }
    };
    round(1);
    await until(async () => (await membersOf(a.url)).length >= N, 20_000, 'the made-up members');
    await sleep(1000);
    const rss0 = rssMb(a.proc.pid!);
    // 100 subscribers (JSON, as a browser would), from ten addresses: hello, then never read.
    for (let i = 0; i < 100; i++) {
      const u = await rawUpgrade(a.port, '/v1/watch?format=json', `127.0.0.${50 + (i % 10)}`);
      expect(u.status).toBe(101);
      u.sock.write(clientFrame(JSON.stringify({ t: 'hello', v: 1, service: 'game' })));
      u.sock.pause();
      u.sock.on('error', () => {});
      held.push(u);
    }
    const rssHello = rssMb(a.proc.pid!);
    const trace: string[] = [];
    let pendingPeak = 0;
    // Churn: every made-up member changes, round after round (each change is a delta to every
    // subscriber, ~0.75 MB each per round); the next round once the agent has caught up (it answers).
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(a.proc.pid!))), 100);
    try {
      for (let inc = 2; inc <= 21; inc++) {
        round(inc);
        await sleep(200);
        trace.push(`${inc}:${rssMb(a.proc.pid!).toFixed(0)}`);
        const text = await (await fetch(`http://127.0.0.1:${a.port}/metrics`, { signal: AbortSignal.timeout(60_000) })).text();
        pendingPeak = Math.max(pendingPeak, Number(/^peerlb_watch_pending_bytes\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? NaN));
      }
      await sleep(1000);
    } finally {
      clearInterval(sampler);
    }
    const m = await (await fetch(`http://127.0.0.1:${a.port}/metrics`, { signal: AbortSignal.timeout(60_000) })).text();
    const budgetCuts = Number(/^peerlb_refused_total\{[^}]*endpoint="watch"[^}]*reason="pending_budget"[^}]*\} (\d+)/m.exec(m)?.[1] ?? NaN);
    const slowCuts = Number(/^peerlb_refused_total\{[^}]*endpoint="watch"[^}]*reason="slow"[^}]*\} (\d+)/m.exec(m)?.[1] ?? NaN);
    console.log(`RSS after the hellos ${rssHello.toFixed(0)} MB; by round ${trace.join(' ')}; unsent watch bytes at most ${(pendingPeak / 2 ** 20).toFixed(1)} MiB`);
    console.log(`never-reading subscribers: RSS ${rss0.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB; cut by the budget ${budgetCuts}, as slow ${slowCuts}`);
    // Unsent bytes across subscribers stay within the budget (64 MiB) plus one subscriber's share (4 MiB).
    expect(budgetCuts).toBeGreaterThan(0);
    expect(pendingPeak).toBeLessThanOrEqual((64 + 4) * 2 ** 20);
    // Memory: the made-up members' churn alone takes ~+85 MB here; 100 subscribers at 4 MiB each would add 400.
    expect(peak - rss0).toBeLessThan(300);
    // The genuine member is alive, and a new client gets its snapshot.
    const page = (await (await fetch(`http://127.0.0.1:${a.port}/v1/members`, { signal: AbortSignal.timeout(30_000) })).json()) as Array<{ node: string; status: string }>;
    expect(page.find((x) => x.node === 'np2')?.status).toBe('alive');
    const w = await rawUpgrade(a.port, '/v1/watch?format=json', '127.0.0.1');
    held.push(w);
    expect(w.status).toBe(101);
    let got = '';
    w.sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    w.sock.write(clientFrame(JSON.stringify({ t: 'hello', v: 1, service: 'game' })));
    await until(() => got.includes('"t":"snapshot"') && got.includes('"np2"'), 10_000, 'a snapshot for a new client');
  }, 240_000);
});
