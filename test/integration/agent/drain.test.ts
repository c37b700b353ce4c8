import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../../agent/index.js';
import { waitForDrain, type DrainOptions, type DrainResult } from '../../../agent/drain.js';
import { countEstablished } from '../../../agent/load/proc-net.js';
import { ManualClock } from '../../../sdk/core/clock.js';
import { BadOptionError } from '../../../sdk/core/errors.js';
import { openClients, ownLoopback, tcpServer } from '../../support/net.js';
import { sleep } from '../../support/until.js';

/** Let promise callbacks run (no timers involved). */
const flush = () => new Promise((r) => setImmediate(r));

function track(p: Promise<DrainResult>) {
  const box: { result?: DrainResult } = {};
  void p.then((r) => (box.result = r));
  return box;
}

describe('waitForDrain', () => {
  it('resolves at once when nothing is left', async () => {
    const clock = new ManualClock();
    expect(await waitForDrain({ count: () => 0, timeoutMs: 1000, clock })).toEqual({ drained: true, remaining: 0, waitedMs: 0 });
    expect(clock.pending()).toBe(0);
  });

  it('polls every pollMs until the count reaches 0', async () => {
    const clock = new ManualClock();
    const counts = [5, 3, 3, 1, 0];
    let calls = 0;
    const box = track(waitForDrain({ count: () => counts[calls++]!, timeoutMs: 10_000, pollMs: 100, clock }));
    for (let i = 0; i < 3; i++) {
      clock.advance(100);
      await flush();
      expect(box.result).toBeUndefined();
    }
    clock.advance(100);
    await flush();
    expect(box.result).toEqual({ drained: true, remaining: 0, waitedMs: 400 });
    expect(calls).toBe(5);
    expect(clock.pending()).toBe(0);
  });

  it('gives up at the deadline with the last count', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const box = track(waitForDrain({ count: async () => (calls++, 7), timeoutMs: 1000, clock }));
    for (let t = 0; t < 999; t += 333) {
      await flush(); // an async count schedules the next look when it returns
      clock.advance(333);
    }
    await flush();
    expect(box.result).toBeUndefined();
    clock.advance(1);
    await flush();
    expect(box.result).toEqual({ drained: false, remaining: 7, waitedMs: 1000 });
    expect(calls).toBe(4); // at 0, 250, 500, 750: default pollMs 250 after each look returned
    expect(clock.pending()).toBe(0);
  });

  it('is bounded even when count never returns', async () => {
    const clock = new ManualClock();
    const box = track(waitForDrain({ count: () => new Promise<number>(() => {}), timeoutMs: 500, clock }));
    clock.advance(500);
    await flush();
    expect(box.result).toEqual({ drained: false, remaining: -1, waitedMs: 500 });
  });

  it('retries a failing or nonsensical count, and reports the last error', async () => {
    const clock = new ManualClock();
    const script: (number | Error | string)[] = [new Error('EIO'), 4, 'x', new Error('ENOENT')];
    let i = 0;
    const count = () => {
      const s = script[Math.min(i++, script.length - 1)]!;
      if (s instanceof Error) throw s;
      return s as number;
    };
    const box = track(waitForDrain({ count, timeoutMs: 1000, pollMs: 100, clock }));
    clock.advance(1000);
    await flush();
    expect(box.result).toMatchObject({ drained: false, remaining: 4, waitedMs: 1000 });
    expect(box.result!.error?.message).toBe('ENOENT');

    const box2 = track(waitForDrain({ count: () => Promise.reject(new Error('nope')), timeoutMs: 300, clock }));
    await flush();
    clock.advance(300);
    await flush();
    expect(box2.result).toMatchObject({ drained: false, remaining: -1 });
    expect(box2.result!.error?.message).toBe('nope');
  });

  it('timeoutMs 0 takes one look without waiting', async () => {
    const clock = new ManualClock();
    expect(await waitForDrain({ count: () => 0, timeoutMs: 0, clock })).toMatchObject({ drained: true });
    const box = track(waitForDrain({ count: () => 2, timeoutMs: 0, clock }));
    clock.advance(0);
    await flush();
    expect(box.result).toEqual({ drained: false, remaining: 2, waitedMs: 0 });
  });

  it('an abort signal ends the wait with aborted: true', async () => {
    const clock = new ManualClock();
    const ac = new AbortController();
    const box = track(waitForDrain({ count: () => 3, timeoutMs: 10_000, clock, signal: ac.signal }));
    clock.advance(600);
    ac.abort();
    await flush();
    expect(box.result).toEqual({ drained: false, remaining: 3, waitedMs: 600, aborted: true });
    expect(clock.pending()).toBe(0);
    const pre = await waitForDrain({ count: () => 3, timeoutMs: 10_000, clock, signal: AbortSignal.abort() });
    expect(pre).toMatchObject({ drained: false, aborted: true });
  });

  it.each([
    [{ count: 3, timeoutMs: 10 }, 'drain.count'],
    [{ count: () => 0, timeoutMs: -1 }, 'drainTimeoutMs'],
    [{ count: () => 0, timeoutMs: NaN }, 'drainTimeoutMs'],
    [{ count: () => 0 }, 'drainTimeoutMs'],
    [{ count: () => 0, timeoutMs: 10, pollMs: 0 }, 'drain.pollMs'],
  ] as [unknown, string][])('rejects %j naming %s', async (opts, option) => {
    const p = waitForDrain(opts as unknown as DrainOptions);
    await expect(p).rejects.toThrow(BadOptionError);
    await expect(waitForDrain(opts as unknown as DrainOptions)).rejects.toThrow(`option "${option}"`);
  });

  it('drains real connections counted from /proc/net/tcp', async () => {
    const host = await ownLoopback('127.0.0.4');
    const srv = await tcpServer(host);
    try {
      const clients = await openClients(host, srv.port, 3);
      const start = Date.now();
      setTimeout(() => clients.forEach((s) => s.destroy()), 50);
      const r = await waitForDrain({ count: () => countEstablished(srv.port, { host }), timeoutMs: 5000, pollMs: 10 });
      expect(r.drained).toBe(true);
      expect(Date.now() - start).toBeLessThan(5000);
    } finally {
      await srv.close();
    }
  });
});

/** An in-process agent (UDP server only: no connections to count) whose JSON log lines are kept. */
async function agentWithLogs(extra: Record<string, unknown> = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)));
  const agent = await startAgent(
    { service: 'game', node: 'd1', host: '127.0.0.1', udpPort: 7001, port: 0, gossipProfile: 'local', loadIntervalMs: 100, ...extra },
    { log: pino({ level: 'info' }, out) },
  );
  return { agent, lines };
}


describe('agent.drain and reported sessions', () => {
  it('a sessions figure the server stopped renewing does not hold the drain to its timeout', async () => {
    // loadIntervalMs 100: reports count for 300 ms. Before the fix the one report below made the
    // drain wait the whole drainTimeoutMs, however old it was.
    const { agent, lines } = await agentWithLogs({ drainTimeoutMs: 10_000 });
    try {
      agent.report({ sessions: 12 });
      await sleep(400);
      const r = await agent.drain();
      expect(r).toMatchObject({ drained: true, remaining: 0 });
      const log = lines.find((l) => l.msg === 'drain finished');
      expect(log).toMatchObject({ drained: true, waitedFor: ['nothing'], sessions: 0, sessionsReport: 'expired' });
    } finally {
      await agent.stop();
    }
  });

  it("the README's snippet (report, then drain) ends when the report expires, not at the timeout", async () => {
    const { agent, lines } = await agentWithLogs({ drainTimeoutMs: 10_000 });
    try {
      agent.report({ sessions: 12 });
      const r = await agent.drain();
      expect(r.drained).toBe(true);
      // It did wait for the sessions while they were fresh, and says so.
      expect(lines.find((l) => l.msg === 'drain finished')).toMatchObject({ drained: true, waitedFor: ['reported sessions'], sessionsReport: 'expired' });
    } finally {
      await agent.stop();
    }
  });

  it('fresh reports of sessions still hold the drain (until the timeout), and the log names them', async () => {
    const { agent, lines } = await agentWithLogs({ drainTimeoutMs: 700 });
    const keep = setInterval(() => agent.report({ sessions: 5 }), 50);
    try {
      agent.report({ sessions: 5 });
      const r = await agent.drain();
      expect(r).toMatchObject({ drained: false, remaining: 5 });
      expect(lines.find((l) => l.msg === 'drain finished')).toMatchObject({ drained: false, waitedFor: ['reported sessions'], sessions: 5, sessionsReport: 'fresh' });
    } finally {
      clearInterval(keep);
      await agent.stop();
    }
  });

  it('a report of 0 sessions ends the drain at once', async () => {
    const { agent } = await agentWithLogs({ drainTimeoutMs: 10_000 });
    try {
      agent.report({ sessions: 12 });
      setTimeout(() => agent.report({ sessions: 0 }), 100);
      const r = await agent.drain();
      expect(r.drained).toBe(true);
    } finally {
      await agent.stop();
    }
  });
});
