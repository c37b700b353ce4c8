/**
 * The /v1/watch application-level heartbeat, through a real `peerlb agent` process: a browser's
 * WebSocket cannot send protocol pings, so the client sends `ping` frames and the agent answers
 * each with a `pong` frame (at most MAX_PONGS_PER_SEC a second per subscriber). A client over a
 * W3C WebSocket (the core's connector, here over the `ws` package's W3C surface, with no protocol
 * ping) stays subscribed on pongs alone, and when the agent stops answering (SIGSTOP, by PID) it
 * gives the subscription up and resubscribes once the agent answers again (SIGCONT).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ownLoopback } from '../support/net.js';
import { startCliAgent, stopCliAgents, until, type OpsAgent } from '../support/ops.js';
import { AgentWatch } from '../../sdk/core/discovery/agents.js';
import { webSocketConnector, type WebSocketConstructor } from '../../sdk/core/discovery/websocket.js';
import { PROTOCOL_VERSION, type WatchServerFrame } from '../../sdk/core/protocol.js';
import { decodeWatchServerFrame, encodeWatchFrame } from '../../sdk/core/msgpack.js';
import { MAX_PONGS_PER_SEC } from '../../agent/subscriptions.js';

describe('watch heartbeat frames, real agent process', () => {
  const procs: OpsAgent[] = [];
  let a: OpsAgent;
  const watches: AgentWatch[] = [];

  beforeAll(async () => {
    const H = await ownLoopback('127.0.0.36');
    a = await startCliAgent(procs, 'hb-a', H, { extra: ['--health-interval', '200'] });
  }, 30_000);

  afterAll(async () => {
    for (const w of watches) w.close();
    if (a?.proc.pid) {
      try {
        process.kill(a.proc.pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    await stopCliAgents(procs);
  }, 30_000);

  /** A raw subscriber: every frame it gets, decoded (binary) or parsed (JSON text). */
  async function raw(json: boolean): Promise<{ ws: WebSocket; frames: WatchServerFrame[] }> {
    const ws = new WebSocket(`${a.url}/v1/watch${json ? '?format=json' : ''}`);
    const frames: WatchServerFrame[] = [];
    ws.on('message', (d: Buffer, isBinary) => frames.push(isBinary ? decodeWatchServerFrame(d) : (JSON.parse(d.toString()) as WatchServerFrame)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const hello = { t: 'hello', v: PROTOCOL_VERSION, service: 'game' } as const;
    ws.send(json ? JSON.stringify(hello) : encodeWatchFrame(hello));
    await until(() => frames.some((f) => f.t === 'snapshot'), 10_000, 'the snapshot');
    return { ws, frames };
  }

  it('answers a ping frame with a pong of the same n (msgpack and JSON), at most MAX_PONGS_PER_SEC a second', async () => {
    const m = await raw(false);
    m.ws.send(encodeWatchFrame({ t: 'ping', v: PROTOCOL_VERSION, n: 41 }));
    await until(() => m.frames.some((f) => f.t === 'pong'), 5000, 'a pong');
    expect(m.frames.filter((f) => f.t === 'pong')).toEqual([{ t: 'pong', v: PROTOCOL_VERSION, n: 41 }]);

    const j = await raw(true);
    j.ws.send(JSON.stringify({ t: 'ping', v: PROTOCOL_VERSION, n: 7 }));
    await until(() => j.frames.some((f) => f.t === 'pong'), 5000, 'a JSON pong');
    expect(j.frames.filter((f) => f.t === 'pong')).toEqual([{ t: 'pong', v: PROTOCOL_VERSION, n: 7 }]);

    // A burst (in a window of its own): answered up to the cap within its second, the rest
    // ignored; the subscription stays. (Straddling two windows, at most twice the cap: still not all.)
    await new Promise((r) => setTimeout(r, 1100));
    const before = m.frames.length;
    for (let n = 100; n < 100 + 3 * MAX_PONGS_PER_SEC; n++) m.ws.send(encodeWatchFrame({ t: 'ping', v: PROTOCOL_VERSION, n }));
    await until(() => m.frames.slice(before).filter((f) => f.t === 'pong').length >= MAX_PONGS_PER_SEC, 5000, 'the burst answered');
    await new Promise((r) => setTimeout(r, 300));
    const pongs = m.frames.slice(before).filter((f) => f.t === 'pong') as { n: number }[];
    expect(pongs.length).toBeLessThanOrEqual(2 * MAX_PONGS_PER_SEC);
    expect(pongs.map((p) => p.n)).toEqual(pongs.map((_, i) => 100 + i));
    // Not a ping (a bad n, another type): no answer, the subscription stays.
    await new Promise((r) => setTimeout(r, 1000)); // past the burst's window
    const mark = m.frames.length;
    m.ws.send(encodeWatchFrame({ t: 'ping', v: PROTOCOL_VERSION, n: -1 } as never));
    m.ws.send(encodeWatchFrame({ t: 'hello', v: PROTOCOL_VERSION, service: 'game' }));
    m.ws.send(encodeWatchFrame({ t: 'ping', v: PROTOCOL_VERSION, n: 9 }));
    await until(() => m.frames.slice(mark).some((f) => f.t === 'pong'), 5000, 'the pong after the bad frames');
    expect(m.frames.slice(mark).filter((f) => f.t === 'pong')).toEqual([{ t: 'pong', v: PROTOCOL_VERSION, n: 9 }]);
    expect(m.ws.readyState).toBe(WebSocket.OPEN);
    m.ws.terminate();
    j.ws.terminate();
  }, 30_000);

  it('a W3C-socket client stays subscribed on pong frames, gives a stopped agent up and resubscribes after SIGCONT', async () => {
    const agents: (string | undefined)[] = [];
    let resets = 0;
    const w = new AgentWatch({
      service: 'game',
      agents: [a.url],
      // The core's own connector: no protocol ping, so the heartbeat is ping frames.
      connect: webSocketConnector(WebSocket as unknown as WebSocketConstructor),
      pingMs: 100,
      pongTimeoutMs: 500,
      onAgent: (u) => agents.push(u),
    });
    watches.push(w);
    w.start({ upsert: () => {}, remove: () => {}, reset: () => void resets++, error: () => {} });
    await until(() => resets === 1, 10_000, 'the first snapshot');
    // 2 s: four times the pong timeout, longer than the agent's quiet spells; pongs keep it up.
    await new Promise((r) => setTimeout(r, 2000));
    expect(agents).toEqual([a.url]);
    expect(resets).toBe(1);

    process.kill(a.proc.pid!, 'SIGSTOP');
    try {
      await until(() => agents.includes(undefined), 10_000, 'the client to give the stopped agent up');
    } finally {
      process.kill(a.proc.pid!, 'SIGCONT');
    }
    await until(() => resets >= 2 && agents[agents.length - 1] === a.url, 15_000, 'the resubscription after SIGCONT');
    expect(agents[0]).toBe(a.url);
    expect(agents[1]).toBeUndefined();
  }, 40_000);
});
