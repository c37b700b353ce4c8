/**
 * Sealed gossip through real sockets: agents holding the cluster key form a cluster; an agent
 * with another key, or an outsider writing unsealed or forged frames, never joins and never
 * changes anyone's state, and each failure is counted (in /metrics). A replayed frame changes
 * nothing. An agent without a keyring warns that its cluster is open.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../../../agent/index.js';
import { createSealer, Keyring, type Sealer } from '../../../agent/gossip/keyring.js';
import { tryDecodeFrame, type GossipFrame } from '../../../agent/gossip/messages.js';
import { replyBinding } from '../../../agent/gossip/ws-transport.js';
import { agent, alive, known, until, sleep, rawGossip, newKey, sealerFor, meta, frame, droppedByReason, gossipSink } from '../../support/security.js';

const running: Agent[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});
async function start(node: string, opts: Parameters<typeof agent>[1] = {}): Promise<Agent> {
  const a = await agent(node, opts);
  running.push(a);
  return a;
}

describe('keyring: sealed gossip', () => {
  it('agents with the key form a cluster; an agent with another key cannot join, and its failures are counted in /metrics', async () => {
    const key = newKey();
    const a = await start('k1', { keyring: [key] });
    const b = await start('k2', { keyring: [key], join: [a.url] });
    await until(() => alive(a).length === 2 && alive(b).length === 2, 5000, 'k1 and k2 to see each other');

    const before = await droppedByReason(a.port);
    expect(before.auth ?? 0).toBe(0);
    const evil = await start('evil', { keyring: [newKey()], join: [a.url, b.url] });
    // It keeps trying (joins, probes of the seeds, push-pull): give it a few gossip rounds.
    await sleep(2500);
    expect(alive(a)).toEqual(['k1', 'k2']);
    expect(known(a)).toEqual(['k1', 'k2']);
    expect(known(b)).toEqual(['k1', 'k2']);
    // …and the outsider learned nothing either: nothing it received opened.
    expect(known(evil)).toEqual(['evil']);
    const after = await droppedByReason(a.port);
    expect(after.auth).toBeGreaterThan(0);
    const s = a.gossipStats();
    expect(s.sealer!.auth).toBeGreaterThan(0);
    expect(s.transport.authCutoffs).toBeGreaterThan(0);
  });

  it('an outsider cannot inject a member: unsealed frames, frames sealed with another key, and tampered sealed frames are dropped, counted, and the socket is cut (1008)', async () => {
    const key = newKey();
    const a = await start('i1', { keyring: [key] });
    const b = await start('i2', { keyring: [key], join: [a.url] });
    await until(() => alive(a).length === 2, 5000, 'i1 and i2');
    const ghostAlive = (node: string) =>
      frame({ type: 'gossip', from: { node, addr: 'ws://127.0.0.9:1' }, piggyback: { updates: [{ kind: 'alive', node, incarnation: 1, addr: 'ws://127.0.0.9:1', meta: meta(node) }], loads: [] } });
    const pushPull = (node: string) =>
      frame({ type: 'push-pull-req', from: { node, addr: 'ws://127.0.0.9:1' }, join: true, states: [{ node, addr: 'ws://127.0.0.9:1', incarnation: 1, status: 'alive', meta: meta(node) }] });
    const killI2 = frame({ type: 'gossip', from: { node: 'x', addr: 'ws://127.0.0.9:1' }, piggyback: { updates: [{ kind: 'dead', node: 'i2', incarnation: 99, from: 'x' }], loads: [] } });

    const genuine = sealerFor(key).seal(ghostAlive('tampered'));
    const tampered = Buffer.from(genuine);
    tampered[tampered.length - 20]! ^= 0x01;
    const attempts: [string, Buffer][] = [
      ['unsealed alive', ghostAlive('ghost1')],
      ['unsealed push-pull', pushPull('ghost2')],
      ['unsealed dead of a real member', killI2],
      ['sealed with another key', Buffer.from(sealerFor(newKey()).seal(ghostAlive('ghost3')))],
      ['sealed with another key, dead of a real member', Buffer.from(sealerFor(newKey()).seal(killI2))],
      ['tampered', tampered],
    ];
    const before = await droppedByReason(a.port);
    for (const [what, bytes] of attempts) {
      const c = await rawGossip(a.url);
      c.send(bytes);
      const closed = await Promise.race([c.closed, sleep(3000).then(() => undefined)]);
      expect(closed, what).toBeDefined();
      expect(closed!.code, what).toBe(1008);
      expect(closed!.reason, what).toMatch(/authentication failed/);
    }
    await sleep(300);
    expect(known(a)).toEqual(['i1', 'i2']);
    expect(alive(a)).toEqual(['i1', 'i2']);
    expect(alive(b)).toEqual(['i1', 'i2']);
    const after = await droppedByReason(a.port);
    expect((after.auth ?? 0) - (before.auth ?? 0)).toBe(attempts.length);
    expect(a.gossipStats().transport.authCutoffs).toBeGreaterThanOrEqual(attempts.length);
  });

  /** Frames an agent sends back on an outsider's socket (answers go where the question came from), opened. */
  function answers(c: { ws: import('ws').WebSocket; binding: Buffer | undefined }, sealer: Sealer): GossipFrame[] {
    const got: GossipFrame[] = [];
    c.ws.on('message', (d: Buffer) => {
      const o = sealer.open(d, replyBinding(c.binding));
      if (!(o instanceof Uint8Array)) return;
      const r = tryDecodeFrame(o);
      if (r.ok) got.push(r.frame);
    });
    return got;
  }

  it('a replayed frame changes nothing: on its own socket it is a counted replay, on a new socket an authentication failure (frames are bound to their socket)', async () => {
    const key = newKey();
    const a = await start('r1', { keyring: [key] });
    const member = sealerFor(key);
    const sink = await gossipSink(sealerFor(key));
    closers.push(sink.close);
    const from = { node: 'm', addr: sink.url };
    const c = await rawGossip(a.url);
    const back = answers(c, sealerFor(key));
    const acks = (seq: number) => [...sink.frames, ...back].filter((f) => f.type === 'ack' && f.seq === seq).length;
    expect(c.binding?.length).toBe(16); // the agent gave the socket its challenge
    const seal = (f: Parameters<typeof frame>[0]) => Buffer.from(member.seal(frame(f), c.binding));
    const p77 = seal({ type: 'ping', from, seq: 77, target: 'r1' });
    c.send(p77);
    await until(() => acks(77) === 1, 3000, 'the ack to the first ping');
    // A genuine frame joins m (the ping's sender is a member now); remember the state.
    const membersBefore = JSON.stringify(a.members().map((m) => [m.node, m.status, m.incarnation]));
    const replayBefore = a.gossipStats().transport.dropped.replay;
    const authBefore = a.gossipStats().sealer!.auth;
    for (let i = 0; i < 5; i++) c.send(p77);
    // The same bytes on a new socket: sealed for another challenge, they do not even open.
    const c2 = await rawGossip(a.url);
    c2.send(p77);
    const cut = await Promise.race([c2.closed, sleep(3000).then(() => undefined)]);
    expect(cut?.code).toBe(1008);
    // Control: a fresh seal of the same ping is answered, so replays would have been seen.
    c.send(seal({ type: 'ping', from, seq: 78, target: 'r1' }));
    await until(() => acks(78) === 1, 3000, 'the ack to a fresh ping');
    await sleep(200);
    expect(acks(77)).toBe(1);
    expect(a.gossipStats().transport.dropped.replay - replayBefore).toBe(5);
    expect((await droppedByReason(a.port)).replay).toBe(5);
    expect(a.gossipStats().sealer!.auth - authBefore).toBe(1);
    expect(JSON.stringify(a.members().map((m) => [m.node, m.status, m.incarnation]))).toBe(membersBefore);
    // Replays on their own socket are not authentication failures: that socket stays open.
    expect(c.ws.readyState).toBe(c.ws.OPEN);

    // A state change, then the replay of what it overrode: m says it left; its old alive comes back.
    const aliveM = seal({ type: 'gossip', from, piggyback: { updates: [{ kind: 'alive', node: 'm', incarnation: 5, addr: sink.url, meta: meta('m', { weight: 7 }) }], loads: [] } });
    c.send(aliveM);
    await until(() => a.members().some((m) => m.node === 'm' && m.weight === 7 && m.incarnation === 5), 3000, 'm at incarnation 5');
    c.send(seal({ type: 'leave', from, incarnation: 5 }));
    await until(() => a.members().some((m) => m.node === 'm' && m.status === 'left'), 3000, 'm left');
    c.send(aliveM);
    c.send(p77);
    await sleep(300);
    expect(a.members().find((m) => m.node === 'm')!.status).toBe('left');
    expect(a.gossipStats().transport.dropped.replay - replayBefore).toBe(7);
  });

  it('a frame captured on its way to one agent, replayed to another agent of the same cluster, is refused and changes nothing there', async () => {
    const key = newKey();
    const a = await start('x1', { keyring: [key] });
    const b = await start('x2', { keyring: [key], join: [a.url] });
    await until(() => alive(a).length === 2 && alive(b).length === 2, 5000, 'x1 and x2');
    const member = sealerFor(key);
    const sink = await gossipSink(sealerFor(key));
    closers.push(sink.close);
    // A member's alive update for a new node, sent to x1 on x1's socket: x1 takes it.
    const f = frame({ type: 'gossip', from: { node: 'g', addr: sink.url }, piggyback: { updates: [{ kind: 'alive', node: 'g', incarnation: 1, addr: sink.url, meta: meta('g') }], loads: [] } });
    const toA = await rawGossip(a.url);
    const captured = Buffer.from(member.seal(f, toA.binding));
    toA.send(captured);
    await until(() => known(a).includes('g'), 3000, 'x1 to take the genuine frame');
    // The captured bytes, replayed into x2 (same key, within the replay window): refused, socket cut.
    const bBefore = b.gossipStats().sealer!.auth;
    const toB = await rawGossip(b.url);
    toB.send(captured);
    const cut = await Promise.race([toB.closed, sleep(3000).then(() => undefined)]);
    expect(cut?.code).toBe(1008);
    expect(b.gossipStats().sealer!.auth - bBefore).toBe(1);
    expect(b.gossipStats().sealer!.replay).toBe(0); // refused before any replay window was consulted
    // Control: the same content sealed for x2's own socket is taken (so the refusal was the binding).
    const toB2 = await rawGossip(b.url);
    const g2 = frame({ type: 'gossip', from: { node: 'g2', addr: sink.url }, piggyback: { updates: [{ kind: 'alive', node: 'g2', incarnation: 1, addr: sink.url, meta: meta('g2') }], loads: [] } });
    toB2.send(Buffer.from(member.seal(g2, toB2.binding)));
    await until(() => known(b).includes('g2'), 3000, 'x2 to take a frame sealed for its socket');
  });

  it('a frame sealed under a key the receiver has as second key opens (receivers try every installed key)', async () => {
    const k1 = newKey();
    const k2 = newKey();
    const a = await start('t1', { keyring: [k1, k2] });
    const sink = await gossipSink(sealerFor(k1));
    closers.push(sink.close);
    const c = await rawGossip(a.url);
    const back = answers(c, sealerFor(k1));
    c.send(Buffer.from(sealerFor(k2).seal(frame({ type: 'ping', from: { node: 'm2', addr: sink.url }, seq: 5, target: 't1' }), c.binding)));
    await until(() => [...sink.frames, ...back].some((f) => f.type === 'ack' && f.seq === 5), 3000, 'an ack (sealed with the primary k1)');
    // Sealed under the primary: it opened with k1 only (on the socket the ping came in on).
    expect(a.gossipStats().sealer!.auth).toBe(0);
  });

  it('sealer unit checks: wrong key, truncation, bit flips, stale timestamps and counters below the window are refused', () => {
    const k = Buffer.from(newKey(), 'base64');
    let t = 1_000_000;
    const tx = createSealer(new Keyring([k]), { now: () => t });
    const rx = createSealer(new Keyring([k]), { now: () => t });
    const w = tx.seal(Buffer.from('hello'));
    expect(Buffer.from(rx.open(w) as Uint8Array).toString()).toBe('hello');
    expect(rx.open(w)).toEqual({ reject: 'replay' });
    for (let i = 0; i < w.length; i++) {
      const f = Buffer.from(w);
      f[i]! ^= 0x80;
      expect(rx.open(f), `flip byte ${i}`).toHaveProperty('reject');
    }
    for (let n = 0; n < w.length; n++) expect(rx.open(w.subarray(0, n))).toEqual({ reject: 'auth' });
    const old = tx.seal(Buffer.from('old'));
    t += 31_000;
    expect(rx.open(old)).toEqual({ reject: 'replay' });
    // Reordering within the window is fine; far below it is not.
    const frames = Array.from({ length: 2100 }, (_, i) => tx.seal(Buffer.from([i & 255])));
    expect(rx.open(frames[2099]!)).toBeInstanceOf(Uint8Array);
    expect(rx.open(frames[2000]!)).toBeInstanceOf(Uint8Array);
    expect(rx.open(frames[10]!)).toEqual({ reject: 'replay' });
    expect(rx.counters().auth).toBeGreaterThanOrEqual(2 * w.length - 1);
  });

  it('an agent without a keyring warns at start that its cluster is open', async () => {
    const lines: Array<{ level: number; msg: string; node?: string }> = [];
    const { createLogger } = await import('../../../agent/log.js');
    const { Writable } = await import('node:stream');
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { level: number; msg: string });
        cb();
      },
    });
    const logger = createLogger({ level: 'info', destination: sink, pretty: false });
    const open = await startAgent({ service: 'game', node: 'open1', host: '127.0.0.1', port: 0, udpPort: 40_000 }, { log: logger });
    running.push(open);
    const sealed = await startAgent({ service: 'game', node: 'sealed1', host: '127.0.0.1', port: 0, udpPort: 40_000, keyring: [newKey()] }, { log: logger });
    running.push(sealed);
    await sleep(100);
    const warn = lines.filter((l) => /cluster is open/.test(l.msg));
    expect(warn.length).toBe(1);
    expect(warn[0]!.node).toBe('open1');
    expect(warn[0]!.level).toBe(40); // pino's warn
  });
});
