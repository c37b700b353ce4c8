/**
 * The /v1/watch client (sdk/core/discovery/agents.ts) over an injected connector, with no socket
 * and no sleep: a fake connection and a ManualClock. An asynchronous verifier (WebCrypto's kind)
 * delays frames but never reorders them; without a protocol ping the heartbeat is ping frames on
 * the clock, pong frames keep the subscription, and a silent agent is given up and resubscribed.
 * The W3C connector (websocket.ts) over a fake WebSocket: binary frames as bytes, its connect
 * timeout on the clock, and `terminate` reporting the close without a closing handshake.
 */
import { describe, expect, it } from 'vitest';
import { AgentWatch } from '../../../../../sdk/core/discovery/agents.js';
import { webSocketConnector, type W3CWebSocket, type WatchConnector, type WatchHandlers } from '../../../../../sdk/core/discovery/websocket.js';
import type { DiscoverySink } from '../../../../../sdk/core/discovery/source.js';
import { ManualClock } from '../../../../../sdk/core/clock.js';
import { PROTOCOL_VERSION, type ServerRecord, type WatchServerFrame } from '../../../../../sdk/core/protocol.js';
import { decodeWatchServerFrame, encodeWatchFrame, msgpackWatchCodec, unpackFrame } from '../../../../../sdk/core/msgpack.js';
import { jsonWatchCodec } from '../../../../../sdk/core/discovery/json-codec.js';
import type { SignatureVerifier } from '../../../../../sdk/core/signing.js';

const V = PROTOCOL_VERSION;
const rec = (id: string, extra: Partial<ServerRecord> = {}): ServerRecord => ({ id, service: 'game', host: '127.0.0.1', udpPort: 7000, weight: 100, health: 'healthy', sig: 'A'.repeat(86) + '==', sigv: 1, ...extra });
const frame = (f: WatchServerFrame) => new Uint8Array(encodeWatchFrame(f));
const flush = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

interface Fake {
  url: string;
  h: WatchHandlers;
  sent: unknown[];
  terminated: boolean;
}

/** A connector whose connections the test drives; `ping` only when asked for (a ws-like one). */
function fakeConnector(withPing = false): { connect: WatchConnector; conns: Fake[]; pings: () => number } {
  const conns: Fake[] = [];
  let pings = 0;
  const connect: WatchConnector = (url, _o, h) => {
    const c: Fake = { url, h, sent: [], terminated: false };
    conns.push(c);
    return {
      send: (b) => c.sent.push(typeof b === 'string' ? JSON.parse(b) : unpackFrame(b, 4096)),
      ...(withPing ? { ping: () => void pings++ } : {}),
      terminate: () => {
        if (c.terminated) return;
        c.terminated = true;
        queueMicrotask(() => h.close());
      },
    };
  };
  return { connect, conns, pings: () => pings };
}

function recorder(): { sink: DiscoverySink; ops: string[] } {
  const ops: string[] = [];
  return {
    ops,
    sink: {
      upsert: (r) => void ops.push(`upsert ${r.id}:${r.udpPort}`),
      remove: (id, why) => void ops.push(`remove ${id} ${why}`),
      reset: (rs) => void ops.push(`reset ${rs.map((r) => r.id).join(',')}`),
      error: (e) => void ops.push(`error ${e.message}`),
    },
  };
}

/** A verifier whose answers come when the test releases them (in any order it likes). */
function slowVerifier(bad: Set<number> = new Set()): { v: SignatureVerifier; release: (order?: 'reverse') => void; pending: () => number } {
  const waiting: { port: number; resolve: (ok: boolean) => void }[] = [];
  return {
    v: {
      verify: (data) => {
        const port = (JSON.parse(new TextDecoder().decode(data)) as unknown[])[4] as number;
        return new Promise<boolean>((resolve) => waiting.push({ port, resolve }));
      },
    },
    release: (order) => {
      const list = waiting.splice(0);
      if (order === 'reverse') list.reverse();
      for (const w of list) w.resolve(!bad.has(w.port));
    },
    pending: () => waiting.length,
  };
}

describe('AgentWatch over an injected connector', () => {
  it('an asynchronous verifier delays frames, never reorders them; a refused record leaves the view in its turn', async () => {
    const clock = new ManualClock();
    const f = fakeConnector(true);
    const sv = slowVerifier(new Set([7003]));
    const rejected: string[] = [];
    const w = new AgentWatch({ service: 'game', agents: ['ws://127.0.0.1:1'], connect: f.connect, codec: msgpackWatchCodec, clock, verify: sv.v, onRejected: (e) => rejected.push(`${e.server} ${e.reason}`) });
    const r = recorder();
    w.start(r.sink);
    const c = f.conns[0]!;
    c.h.open();
    expect(c.sent[0]).toMatchObject({ t: 'hello', v: V, service: 'game' });
    c.h.message(frame({ t: 'snapshot', v: V, node: 'a', servers: [rec('s1'), rec('s2', { udpPort: 7002 })], agents: [] }));
    c.h.message(frame({ t: 'upsert', v: V, server: rec('s1', { udpPort: 7003 }) })); // a bad signature
    c.h.message(frame({ t: 'remove', v: V, id: 's2', reason: 'left' })); // no check, but after the others
    c.h.message(frame({ t: 'upsert', v: V, server: rec('s3', { udpPort: 7004 }) }));
    await flush();
    expect(r.ops).toEqual([]);
    // Checks answered out of order (last first): the frames still apply in order.
    while (sv.pending() > 0) {
      sv.release('reverse');
      await flush();
    }
    expect(r.ops).toEqual(['reset s1,s2', 'remove s1 rejected', 'remove s2 left', 'upsert s3:7004']);
    expect(rejected).toEqual(['s1 bad-signature']);
    w.close();
  });

  it('a snapshot whose check ends after its socket closed does not reset the backoff of that close', async () => {
    const f = fakeConnector(true);
    const sv = slowVerifier();
    const w = new AgentWatch({ service: 'game', agents: ['ws://127.0.0.1:1'], connect: f.connect, codec: msgpackWatchCodec, clock: new ManualClock(), verify: sv.v });
    const r = recorder();
    w.start(r.sink);
    const c = f.conns[0]!;
    c.h.open();
    c.h.message(frame({ t: 'snapshot', v: V, node: 'a', servers: [rec('s1')], agents: [] }));
    c.h.close(); // the agent drops the socket while the snapshot is being checked
    await flush();
    const failures = (w as unknown as { failuresInRow: number }).failuresInRow;
    expect(failures).toBeGreaterThan(0);
    sv.release();
    await flush();
    expect((w as unknown as { failuresInRow: number }).failuresInRow).toBe(failures);
    expect(r.ops).toEqual([]);
    w.close();
  });

  it('a synchronous verifier applies each frame at once, as before', () => {
    const f = fakeConnector(true);
    const w = new AgentWatch({ service: 'game', agents: ['ws://127.0.0.1:1'], connect: f.connect, codec: msgpackWatchCodec, clock: new ManualClock(), verify: { verify: () => true } });
    const r = recorder();
    w.start(r.sink);
    f.conns[0]!.h.open();
    f.conns[0]!.h.message(frame({ t: 'snapshot', v: V, node: 'a', servers: [rec('s1')], agents: [] }));
    expect(r.ops).toEqual(['reset s1']);
    w.close();
  });

  it('without a protocol ping: ping frames on the clock, pongs keep it, silence is given up and resubscribed', async () => {
    const clock = new ManualClock();
    const f = fakeConnector(false);
    const agents: (string | undefined)[] = [];
    const w = new AgentWatch({ service: 'game', agents: ['ws://127.0.0.1:1'], connect: f.connect, codec: msgpackWatchCodec, clock, pingMs: 100, pongTimeoutMs: 300, onAgent: (u) => agents.push(u) });
    const r = recorder();
    w.start(r.sink);
    const c = f.conns[0]!;
    c.h.open();
    c.h.message(frame({ t: 'snapshot', v: V, node: 'a', servers: [], agents: [] }));
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      const last = c.sent[c.sent.length - 1] as { t: string; n: number };
      expect(last).toEqual({ t: 'ping', v: V, n: i });
      c.h.message(frame({ t: 'pong', v: V, n: i }));
    }
    expect(c.terminated).toBe(false);
    // The agent goes silent: given up after the pong timeout, not before.
    clock.advance(300);
    expect(c.terminated).toBe(false);
    clock.advance(100);
    expect(c.terminated).toBe(true);
    await flush();
    expect(agents).toEqual(['ws://127.0.0.1:1', undefined]);
    // …and subscribed again (the only agent: at once, after a success).
    clock.advance(0);
    expect(f.conns.length).toBe(2);
    f.conns[1]!.h.open();
    expect(agents[2]).toBe('ws://127.0.0.1:1');
    w.close();
  });

  it('with a protocol ping (Node’s ws), the heartbeat uses it and sends no ping frames', () => {
    const clock = new ManualClock();
    const f = fakeConnector(true);
    const w = new AgentWatch({ service: 'game', agents: ['ws://127.0.0.1:1'], connect: f.connect, codec: msgpackWatchCodec, clock, pingMs: 100, pongTimeoutMs: 300 });
    w.start(recorder().sink);
    const c = f.conns[0]!;
    c.h.open();
    for (let i = 0; i < 5; i++) {
      clock.advance(100);
      c.h.pong();
    }
    expect(f.pings()).toBe(5);
    expect(c.sent.map((x) => (x as { t: string }).t)).toEqual(['hello']);
    w.close();
  });

  it('a pong frame decodes; a bad n is a decode error', () => {
    expect(decodeWatchServerFrame(frame({ t: 'pong', v: V, n: 5 }))).toEqual({ t: 'pong', v: V, n: 5 });
    expect(() => decodeWatchServerFrame(frame({ t: 'pong', v: V, n: -1 }))).toThrow(/n must be/);
  });
});

describe('AgentWatch, JSON text frames (the core default: /v1/watch?format=json)', () => {
  const text = (f: WatchServerFrame) => JSON.stringify(f);

  it('by default subscribes with format=json, says hello in JSON text, applies text frames and ignores binary ones', () => {
    const clock = new ManualClock();
    const f = fakeConnector(false);
    const w = new AgentWatch({ service: 'game', agents: ['ws://127.0.0.1:1'], connect: f.connect, clock, pingMs: 100, pongTimeoutMs: 300 });
    const r = recorder();
    w.start(r.sink);
    const c = f.conns[0]!;
    expect(c.url).toBe('ws://127.0.0.1:1/v1/watch?format=json');
    c.h.open();
    expect(c.sent).toEqual([{ t: 'hello', v: V, service: 'game' }]);
    c.h.message(text({ t: 'snapshot', v: V, node: 'a', servers: [rec('s1')], agents: [] }));
    // A binary frame on a JSON subscription is not one of its frames: ignored, as text is on msgpack.
    c.h.message(frame({ t: 'upsert', v: V, server: rec('s9') }));
    c.h.message(text({ t: 'upsert', v: V, server: rec('s2', { udpPort: 7002 }) }));
    c.h.message(text({ t: 'remove', v: V, id: 's1', reason: 'dead' }));
    expect(r.ops).toEqual(['reset s1', 'upsert s2:7002', 'remove s1 dead']);
    // The heartbeat is JSON ping frames.
    clock.advance(100);
    expect(c.sent[1]).toEqual({ t: 'ping', v: V, n: 0 });
    w.close();
  });

  it('a frame that is not JSON, or over the size limit, is a decode error and the subscription starts over', async () => {
    const clock = new ManualClock();
    const f = fakeConnector(false);
    const w = new AgentWatch({ service: 'game', agents: ['ws://127.0.0.1:1'], connect: f.connect, clock });
    const r = recorder();
    w.start(r.sink);
    const c = f.conns[0]!;
    c.h.open();
    c.h.message(text({ t: 'snapshot', v: V, node: 'a', servers: [rec('s1')], agents: [] }));
    c.h.message('{"t":"upsert",');
    expect(r.ops[1]).toMatch(/^error malformed JSON/);
    expect(c.terminated).toBe(true);
    expect(() => jsonWatchCodec.decode('x'.repeat(16 * 1024 * 1024 + 1))).toThrow(/limit|large/i);
    expect(() => jsonWatchCodec.decode(new Uint8Array([0xff, 0xfe]))).toThrow(/UTF-8/);
    expect(jsonWatchCodec.decode(new TextEncoder().encode(text({ t: 'pong', v: V, n: 3 })))).toEqual({ t: 'pong', v: V, n: 3 });
    await flush();
    w.close();
  });
});

/** A fake W3C WebSocket: the test opens, feeds and closes it. */
class FakeWS implements W3CWebSocket {
  static last: FakeWS | undefined;
  binaryType = 'blob';
  readyState = 0;
  onopen: W3CWebSocket['onopen'] = null;
  onmessage: W3CWebSocket['onmessage'] = null;
  onerror: W3CWebSocket['onerror'] = null;
  onclose: W3CWebSocket['onclose'] = null;
  sent: Uint8Array[] = [];
  closed = 0;
  constructor(readonly url: string) {
    FakeWS.last = this;
  }
  send(d: Uint8Array) {
    this.sent.push(d);
  }
  close() {
    this.closed++;
    this.readyState = 2;
  }
}

describe('webSocketConnector (W3C)', () => {
  const handlers = (log: string[]): WatchHandlers => ({
    open: () => log.push('open'),
    message: (d) => log.push(typeof d === 'string' ? `text ${d}` : `bytes ${[...d].join(',')}`),
    pong: () => log.push('pong'),
    refused: () => log.push('refused'),
    error: (e) => log.push(`error ${e.message}`),
    close: () => log.push('close'),
  });

  it('reads binary frames as bytes (binaryType arraybuffer), text as text; sends only when open', () => {
    const clock = new ManualClock();
    const log: string[] = [];
    const conn = webSocketConnector(FakeWS)('ws://h:1/v1/watch', { maxPayload: 10, connectTimeoutMs: 1000, clock }, handlers(log));
    const ws = FakeWS.last!;
    expect(ws.url).toBe('ws://h:1/v1/watch');
    expect(ws.binaryType).toBe('arraybuffer');
    conn.send(new Uint8Array([9]));
    expect(ws.sent).toEqual([]);
    ws.readyState = 1;
    ws.onopen!({});
    conn.send(new Uint8Array([1]));
    ws.onmessage!({ data: new Uint8Array([1, 2, 3]).buffer });
    ws.onmessage!({ data: 'hi' });
    expect(ws.sent).toEqual([new Uint8Array([1])]);
    expect(log).toEqual(['open', 'bytes 1,2,3', 'text hi']);
    // Open: the connect timeout does not fire.
    clock.advance(5000);
    expect(log).toEqual(['open', 'bytes 1,2,3', 'text hi']);
  });

  it('a socket not open within connectTimeoutMs (on the clock) is given up; terminate reports the close once, without waiting for the handshake', async () => {
    const clock = new ManualClock();
    const log: string[] = [];
    webSocketConnector(FakeWS)('ws://h:1/v1/watch', { maxPayload: 10, connectTimeoutMs: 1000, clock }, handlers(log));
    const ws = FakeWS.last!;
    clock.advance(999);
    expect(log).toEqual([]);
    clock.advance(1);
    await flush();
    expect(ws.closed).toBe(1);
    expect(log).toEqual(['error agent ws://h:1/v1/watch: not open within 1000 ms', 'close']);
    // Events after that are not reported.
    ws.onclose?.({});
    expect(log.filter((l) => l === 'close').length).toBe(1);
  });
});
