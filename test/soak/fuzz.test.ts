/**
 * Fuzz, bounded by count (the soak project): each part sends exactly its count, scaled by
 * PEERLB_SOAK_SCALE (1 in `npm test`, more in `npm run soak`), and judges what came out; the test
 * timeout is the only bound in time, so a slow machine takes longer but sees the same inputs
 * (and the outcome never depends on how many inputs fit in a wall-clock budget):
 *
 *  1. the gossip codec: 120,000 random and mutated frames into decodeFrame / tryDecodeFrame
 *     (and 20,000 into the watch codec): nothing but the three decode errors may come out;
 *  2. a live agent's gossip port, sealed cluster: 104,000 frames through real WebSockets —
 *     frames sealed with the cluster key around garbage and mutated content (they reach the
 *     decoder), and, each on a socket of its own, truncated and bit-flipped sealed frames, frames
 *     sealed with another key, unsealed garbage and unsealed valid frames;
 *  3. a live open agent's gossip port: 104,000 unsealed random and mutated frames;
 *  4. mDNS, on loopback only (interface 127.0.0.1, socket bound to 0.0.0.0) on a port of its own:
 *     10,000 random and mutated packets received by a live announcer/responder and by a
 *     browser, while a verifying SDK watches.
 *
 * Afterwards the targets still run and answer, membership is what it was, and heapUsed (after a
 * GC) grew by less than a generous but real bound. The counts and times are printed.
 *
 * Seeds never carry an address an agent would send to (a mutated one could name a host outside
 * loopback): pings are misdirected, the rest are acks, nacks, empty gossip and leaves of strangers.
 */
import dgram from 'node:dgram';
import { generateKeyPairSync } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';
import { createMdnsSocket, waitReady } from '../../sdk/mdns/socket.js';
import type { Agent } from '../../agent/index.js';
import { decodeFrame, tryDecodeFrame, type GossipFrame } from '../../agent/gossip/messages.js';
import { DecodeError, FrameTooLargeError, UnsupportedVersionError } from '../../sdk/core/errors.js';
import { PROTOCOL_VERSION } from '../../sdk/core/protocol.js';
import { decodeWatchClientFrame, decodeWatchServerFrame, encodeWatchFrame, pack } from '../../sdk/core/msgpack.js';
import { XorShiftRandom, type Random } from '../../sdk/core/random.js';
import { MdnsAnnouncer, AnnouncerState } from '../../agent/mdns/announcer.js';
import { MdnsBrowser } from '../../sdk/mdns/browser.js';
import { signBytes, publicKeyBase64 } from '../../sdk/node/signing.js';
import { join, type Cluster } from '../../sdk/index.js';
import { garbage, mutate } from '../support/fake-mdns.js';
import { agent, alive, known, until, sleep, rawGossip, newKey, sealerFor, frame, meta, type RawClient } from '../support/security.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMiB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / (1 << 20);
};

const running: Agent[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});

/** Counts × PEERLB_SOAK_SCALE (a positive integer; 1 when unset, as in `npm test`). */
const SCALE = Number(process.env.PEERLB_SOAK_SCALE ?? 1);
if (!Number.isInteger(SCALE) || SCALE < 1) throw new Error(`PEERLB_SOAK_SCALE must be a positive integer, not ${process.env.PEERLB_SOAK_SCALE}`);
const GOSSIP_FRAMES = 120_000 * SCALE;
const WATCH_FRAMES = 20_000 * SCALE;
const AGENT_FRAMES = 104_000 * SCALE;
const MDNS_PACKETS = 10_000 * SCALE;
/** Test timeouts grow with the counts (the only time bound: a part never stops early). */
const timeout = (ms: number) => ms * SCALE;

const FROM = { node: 'zz-fuzz', addr: 'ws://127.0.0.1:1' };
/** Valid frames of every kind that change nothing and make no agent send anywhere. */
function seeds(target: string): Buffer[] {
  const pb = { updates: [], loads: [{ key: 'nobody', seq: 3, connections: 1, sessions: 2, utilization: 0.5, ageMs: 20 }] };
  const frames: GossipFrame[] = [
    { type: 'ack', from: FROM, seq: 12345, piggyback: pb },
    { type: 'nack', from: FROM, seq: 777 },
    { type: 'gossip', from: FROM, piggyback: { updates: [], loads: [] } },
    { type: 'gossip', from: FROM, piggyback: pb },
    { type: 'ping', from: FROM, seq: 5, target: `not-${target}` },
    { type: 'leave', from: { node: 'zz-stranger', addr: 'ws://127.0.0.1:1' }, incarnation: 3 },
  ];
  return frames.map(frame);
}

/** All seeds, including ones that would be valid membership news (for the pure codec only). */
function codecSeeds(): Buffer[] {
  const m = meta('n1', { zone: 'z', tcpPort: 7000 });
  const state = { node: 'n1', addr: 'ws://127.0.0.1:7946', incarnation: 3, status: 'alive' as const, meta: m, load: { connections: 1, sessions: 2, utilization: 0.3, seq: 9, ageMs: 10 } };
  const pb = {
    updates: [
      { kind: 'alive' as const, node: 'n1', incarnation: 1, addr: 'ws://127.0.0.1:7946', meta: m },
      { kind: 'suspect' as const, node: 'n2', incarnation: 2, from: 'n1' },
      { kind: 'dead' as const, node: 'n3', incarnation: 3, from: 'n1' },
      { kind: 'left' as const, node: 'n4', incarnation: 4 },
    ],
    loads: [
      { key: 'n1', seq: 3, connections: 1, sessions: 2, utilization: 0.5, ageMs: 20 },
      { key: 123456789, seq: 100, connections: 10, sessions: 20, utilization: 1, ageMs: 1000 },
    ],
  };
  const frames: GossipFrame[] = [
    { type: 'ping', from: FROM, seq: 1, target: 'n1', piggyback: pb },
    { type: 'ack', from: FROM, seq: 1, piggyback: pb },
    { type: 'nack', from: FROM, seq: 1 },
    { type: 'ping-req', from: FROM, seq: 1, target: 'n2', targetAddr: 'ws://127.0.0.1:2', nack: true, piggyback: pb },
    { type: 'gossip', from: FROM, piggyback: pb },
    { type: 'push-pull-req', from: FROM, join: true, states: [state, { ...state, node: 'n2', status: 'suspect', load: undefined }] },
    { type: 'push-pull-resp', from: FROM, states: [state] },
    { type: 'leave', from: FROM, incarnation: 7 },
  ];
  return frames.map(frame);
}

/** A random msgpack value: nested arrays and maps of numbers, strings, booleans, nil, binary. */
function randomValue(r: Random, depth = 0): unknown {
  switch (r.int(depth > 3 ? 6 : 9)) {
    case 0:
      return r.int(300) - 50;
    case 1:
      return [0, 1, -1, 2 ** 31, 2 ** 53, -(2 ** 40), 1.5, NaN, Infinity][r.int(9)];
    case 2:
      return 'x'.repeat(r.int(300));
    case 3:
      return [null, true, false, undefined][r.int(4)];
    case 4:
      return Buffer.alloc(r.int(64), r.int(256));
    case 5:
      return ['alive', 'n1', 'ws://127.0.0.1:1', '', 'healthy'][r.int(5)];
    case 6:
      return Array.from({ length: r.int(8) }, () => randomValue(r, depth + 1));
    case 7:
      return Object.fromEntries(Array.from({ length: r.int(5) }, (_, i) => [['t', 'v', 'servers', `k${i}`][r.int(4)]!, randomValue(r, depth + 1)]));
    default:
      // Shaped like a frame: the right version and a real type, then anything.
      return [PROTOCOL_VERSION, 1 + r.int(9), randomValue(r, depth + 1), randomValue(r, depth + 1), ...Array.from({ length: r.int(6) }, () => randomValue(r, depth + 1))];
  }
}

/** One fuzz input: mutated seed (bit flips, byte changes, inserts, deletes, truncation), garbage, random msgpack, or a truncation. */
function fuzzInput(r: Random, seedList: Buffer[], i: number): Buffer {
  const seed = seedList[i % seedList.length]!;
  switch (i % 8) {
    case 0:
      return garbage(r, 300);
    case 1:
      return pack(randomValue(r));
    case 2:
      return seed.subarray(0, r.int(seed.length));
    case 3: {
      const b = Buffer.from(seed);
      b[r.int(b.length)]! ^= 1 << r.int(8);
      return b;
    }
    default:
      return mutate(seed, r);
  }
}

describe('fuzz', () => {
  it('codec: 120,000 random and mutated frames into the gossip decoder (and 20,000 into the watch decoders): only decode errors come out', () => {
    const r = new XorShiftRandom(11);
    const s = codecSeeds();
    for (const b of s) expect(tryDecodeFrame(b).ok).toBe(true);
    const watchSeeds = [
      encodeWatchFrame({ t: 'snapshot', v: 1, node: 'n', servers: [{ ...meta('a'), load: { connections: 1, sessions: 1, utilization: 0.1, seq: 1, ageMs: 1 }, agent: 'ws://127.0.0.1:1', sig: 'AAAA' }], agents: ['ws://127.0.0.1:1'] }),
      encodeWatchFrame({ t: 'upsert', v: 1, server: meta('b') }),
      encodeWatchFrame({ t: 'remove', v: 1, id: 'b', reason: 'left' }),
      encodeWatchFrame({ t: 'hello', v: 1, service: 'game', token: 't' }),
    ];
    const t0 = performance.now();
    let n = 0;
    let ok = 0;
    const errs = new Map<string, number>();
    while (n < GOSSIP_FRAMES) {
      const input = fuzzInput(r, s, n);
      const res = tryDecodeFrame(input);
      if (res.ok) ok++;
      else {
        expect(res.error instanceof DecodeError || res.error instanceof FrameTooLargeError || res.error instanceof UnsupportedVersionError).toBe(true);
        errs.set(res.error.code, (errs.get(res.error.code) ?? 0) + 1);
      }
      if (n % 10 === 0) {
        try {
          decodeFrame(input);
        } catch (err) {
          expect(err instanceof DecodeError || err instanceof FrameTooLargeError || err instanceof UnsupportedVersionError, String(err)).toBe(true);
        }
      }
      n++;
    }
    let w = 0;
    while (w < WATCH_FRAMES) {
      const input = fuzzInput(r, watchSeeds, w);
      for (const decode of [decodeWatchServerFrame, decodeWatchClientFrame]) {
        try {
          decode(input);
        } catch (err) {
          expect(err instanceof DecodeError || err instanceof FrameTooLargeError || err instanceof UnsupportedVersionError, String(err)).toBe(true);
        }
      }
      w++;
    }
    const ms = Math.round(performance.now() - t0);
    console.log(`fuzz codec: ${n} gossip frames (${ok} decoded, errors ${JSON.stringify(Object.fromEntries(errs))}) + ${w} watch frames in ${ms} ms`);
    expect(ok).toBeGreaterThan(0);
    // An oversized buffer is refused before parsing.
    expect(tryDecodeFrame(Buffer.alloc((1 << 20) + 1))).toMatchObject({ ok: false, error: { code: 'PEERLB_ERR_FRAME_TOO_LARGE' } });
  }, timeout(60_000));

  /** Send `frames` on `c`, pausing while its socket has more than 1 MiB unsent. */
  async function pump(c: RawClient, frames: Buffer[]): Promise<void> {
    for (const f of frames) {
      c.send(f);
      if (c.ws.bufferedAmount > 1 << 20) while (c.ws.bufferedAmount > 256 << 10) await sleep(1);
    }
  }

  it('a live sealed agent: 104,000 frames into its gossip port — authentic frames around garbage, tampered, truncated, foreign-key and unsealed frames; it keeps running, answering, its members, and its heap', async () => {
    const key = newKey();
    // The auth-failure rate limit (tested in limits.test.ts) is lifted here, so every failing
    // socket reaches the sealer rather than a 429.
    const limits = { authFailures: 1_000_000_000 };
    const a = await agent('fz1', { keyring: [key], limits });
    const b = await agent('fz2', { keyring: [key], join: [a.url], limits });
    const c = await agent('fz3', { keyring: [key], join: [a.url], limits });
    running.push(a, b, c);
    await until(() => [a, b, c].every((x) => alive(x).length === 3), 8000, 'three agents');
    await sleep(500);
    const heapBefore = heapMiB();
    const membersBefore = known(a);
    const r = new XorShiftRandom(21);
    const s = seeds('fz1');
    const member = sealerFor(key);
    const foreign = sealerFor(newKey());
    const t0 = performance.now();
    let authentic = 0;
    let failing = 0;
    let sockets = 0;
    const conns: RawClient[] = [];
    for (let i = 0; i < 4; i++) conns.push(await rawGossip(a.url));
    while (authentic + failing < AGENT_FRAMES) {
      // 1,000 authentic frames (sealed with the cluster key for their socket, fuzzed content) over four sockets…
      const batch = Array.from({ length: 1000 }, (_, i) => fuzzInput(r, s, authentic + i));
      await Promise.all(conns.map((cn, k) => pump(cn, batch.filter((_, i) => i % 4 === k).map((f) => Buffer.from(member.seal(f, cn.binding))))));
      authentic += batch.length;
      // …then 20 failing ones, each on a socket of its own (the first bad frame cuts a socket).
      const bad: Buffer[] = [];
      for (let i = 0; i < 20; i++) {
        const valid = Buffer.from(member.seal(s[i % s.length]!));
        switch (i % 5) {
          case 0:
            bad.push(valid.subarray(0, r.int(valid.length)));
            break;
          case 1: {
            valid[r.int(valid.length)]! ^= 1 << r.int(8);
            bad.push(valid);
            break;
          }
          case 2:
            bad.push(Buffer.from(foreign.seal(fuzzInput(r, s, i))));
            break;
          case 3:
            bad.push(garbage(r, 400));
            break;
          default:
            bad.push(fuzzInput(r, s, i));
        }
      }
      await Promise.all(
        bad.map(async (f) => {
          const cn = await rawGossip(a.url);
          cn.send(f.length ? f : Buffer.from([0]));
          await Promise.race([cn.closed, sleep(3000)]);
        }),
      );
      sockets += bad.length;
      failing += bad.length;
    }
    // Every authentic frame went through the sealer; wait for the last ones to be read.
    await until(() => a.gossipStats().sealer!.opened >= authentic, 10_000, 'the last authentic frames');
    const ms = Math.round(performance.now() - t0);
    for (const cn of conns) cn.ws.terminate();
    const st = a.gossipStats();
    console.log(
      `fuzz sealed agent: ${authentic + failing} frames (${authentic} authentic with fuzzed content, ${failing} failing on ${sockets} sockets) in ${ms} ms; ` +
        `sealer ${JSON.stringify(st.sealer)}, decode errors ${st.decodeErrors}, auth cut-offs ${st.transport.authCutoffs}`,
    );
    // Every failing frame failed authentication (GCM covers every byte, the header through the AAD).
    expect(st.sealer!.auth).toBe(failing);
    expect(st.decodeErrors).toBeGreaterThan(authentic / 4);
    // Still running, answering, and the membership is what it was.
    const h = await (await fetch(`http://127.0.0.1:${a.port}/v1/health`)).json();
    expect(h).toEqual({ node: 'fz1', health: 'healthy' });
    await sleep(1000);
    expect(known(a)).toEqual(membersBefore);
    expect(alive(a)).toEqual(['fz1', 'fz2', 'fz3']);
    expect(alive(b)).toEqual(['fz1', 'fz2', 'fz3']);
    b.report({ sessions: 99 });
    await until(() => a.members().find((m) => m.node === 'fz2')?.load?.sessions === 99, 5000, 'gossip after the fuzz');
    const heapAfter = heapMiB();
    console.log(`fuzz sealed agent: heapUsed ${heapBefore.toFixed(1)} → ${heapAfter.toFixed(1)} MiB`);
    expect(heapAfter - heapBefore).toBeLessThan(48);
  }, timeout(90_000));

  it('a live open agent: 104,000 unsealed random and mutated frames into its gossip port; it keeps running, answering, its members, and its heap', async () => {
    const a = await agent('op1');
    const b = await agent('op2', { join: [a.url] });
    running.push(a, b);
    await until(() => alive(a).length === 2 && alive(b).length === 2, 5000, 'two agents');
    await sleep(300);
    const heapBefore = heapMiB();
    const r = new XorShiftRandom(31);
    const s = seeds('op1');
    const before = a.gossipStats().transport.framesIn;
    const t0 = performance.now();
    const conns: RawClient[] = [];
    for (let i = 0; i < 4; i++) conns.push(await rawGossip(a.url));
    let n = 0;
    while (n < AGENT_FRAMES) {
      const batch = Array.from({ length: 2000 }, (_, i) => {
        const f = fuzzInput(r, s, n + i);
        return f.length ? f : Buffer.from([0xc1]);
      });
      await Promise.all(conns.map((cn, k) => pump(cn, batch.filter((_, i) => i % 4 === k))));
      n += batch.length;
    }
    await until(() => a.gossipStats().transport.framesIn - before >= n, 10_000, 'the last frames');
    const ms = Math.round(performance.now() - t0);
    for (const cn of conns) cn.ws.terminate();
    const st = a.gossipStats();
    console.log(`fuzz open agent: ${n} frames in ${ms} ms; decode errors ${st.decodeErrors}, too large ${st.transport.dropped.tooLarge}`);
    expect(st.decodeErrors).toBeGreaterThan(n / 4);
    const h = await (await fetch(`http://127.0.0.1:${a.port}/v1/health`)).json();
    expect(h).toEqual({ node: 'op1', health: 'healthy' });
    await sleep(500);
    expect(known(a)).toEqual(['op1', 'op2']);
    expect(alive(b)).toEqual(['op1', 'op2']);
    const heapAfter = heapMiB();
    console.log(`fuzz open agent: heapUsed ${heapBefore.toFixed(1)} → ${heapAfter.toFixed(1)} MiB`);
    expect(heapAfter - heapBefore).toBeLessThan(48);
  }, timeout(90_000));

  it('mDNS on loopback (own port): 10,000 random and mutated packets received by a live signed announcer/responder and by a browser; both keep running and answering; a verifying SDK still sees only the genuine server', async () => {
    const IFACE = '127.0.0.1';
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const RUN = Math.random().toString(36).slice(2, 7);
    const svc = `z${RUN}`;
    const node = `zg-${RUN}`;
    const { privateKey } = generateKeyPairSync('ed25519');
    const info = { node, service: svc, host: '127.0.0.1', agentPort: 24_000, udpPort: 24_001, weight: 100, health: 'healthy' as const, loadBucket: 0 };
    const ann = new MdnsAnnouncer({ info, interface: IFACE, port, sign: (d) => signBytes(d, privateKey) });
    const br = new MdnsBrowser({ service: svc, interface: IFACE, port });
    closers.push(() => ann.stop(), () => br.close());
    await Promise.all([ann.start(), br.start()]);
    const cl: Cluster = await join({ service: svc, discovery: { mdns: { interface: IFACE, port, subscribe: false } }, verify: { publicKey: publicKeyBase64(privateKey) }, waitForServersMs: 5000 });
    closers.push(() => cl.close());
    await until(() => br.instances().length === 1 && cl.servers().length === 1, 5000, 'the browser and the SDK to find the announcer');
    const heapBefore = heapMiB();

    const senders: dgram.Socket[] = [];
    for (const bindPort of [port, 0]) {
      const so = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      so.on('error', () => {});
      so.on('message', () => {});
      await new Promise<void>((res) => so.bind(bindPort, '0.0.0.0', () => res()));
      so.setMulticastInterface(IFACE);
      so.setMulticastLoopback(true);
      so.setMulticastTTL(1);
      senders.push(so);
    }
    closers.push(async () => senders.forEach((so) => so.close()));
    const r = new XorShiftRandom(41);
    const Q = (name: string, type: string): Question => ({ name, type, class: 'IN' }) as Question;
    const ghost = new MdnsAnnouncer({ info: { ...info, node: `zh-${RUN}`, agentPort: 25_000 }, interface: IFACE, port: 1, sign: (d) => signBytes(Buffer.concat([d, Buffer.from('x')]), privateKey) }).records();
    const real = ann.records();
    const mdnsSeeds = [
      dnsPacket.encode({ type: 'query', questions: [Q(`_${svc}._sub._peerlb._tcp.local`, 'PTR'), Q(`${node}._peerlb._tcp.local`, 'ANY')] }),
      dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: ghost.map((rr) => ({ ...rr, flush: rr.type !== 'PTR' }) as Answer) }),
      dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: real.map((rr) => ({ ...rr, flush: rr.type !== 'PTR' }) as Answer) }),
      dnsPacket.encode({ type: 'query', questions: [Q(`zh-${RUN}._peerlb._tcp.local`, 'ANY')], authorities: ghost.filter((rr) => rr.type !== 'PTR') }),
      dnsPacket.encode({ type: 'query', flags: dnsPacket.TRUNCATED_RESPONSE, questions: [Q('_peerlb._tcp.local', 'PTR')], answers: ghost.slice(0, 2) }),
    ];
    const seen = () => {
      const sa = ann.stats();
      const sb = br.stats();
      return { a: sa.packetsIn + sa.malformed, b: sb.packetsIn + sb.malformed, malformedA: sa.malformed, malformedB: sb.malformed };
    };
    const start = seen();
    const t0 = performance.now();
    let sent = 0;
    // 10,000 packets in batches of 25, each batch paced by reception (UDP drops what a busy
    // receiver cannot read in time): the next batch goes when both have seen this one, or after
    // 200 ms (so the whole run is bounded: 400 batches × 200 ms at most, per scale). Stops at the
    // count; judged on what was sent and received.
    while (sent < MDNS_PACKETS) {
      for (let i = 0; i < 25; i++, sent++) {
        const bytes = sent % 4 === 3 ? garbage(r, 500) : mutate(mdnsSeeds[sent % mdnsSeeds.length]!, r);
        senders[sent % 2]!.send(bytes.length ? bytes : Buffer.from([0]), port, '224.0.0.251');
      }
      await until(() => {
        const now = seen();
        return now.a - start.a >= sent && now.b - start.b >= sent;
      }, 200, 'both to see the batch', 2).catch(() => {});
    }
    await sleep(300);
    const end = seen();
    const ms = Math.round(performance.now() - t0);
    const got = { announcer: end.a - start.a, browser: end.b - start.b, malformedA: end.malformedA - start.malformedA, malformedB: end.malformedB - start.malformedB };
    console.log(`fuzz mDNS: ${sent} packets sent in ${ms} ms; received by the announcer ${got.announcer} (${got.malformedA} malformed), by the browser ${got.browser} (${got.malformedB} malformed)`);
    // Judged on what arrived: both received packets of ours (no more than were sent, a few of
    // their own aside), and a garbage packet is every fourth sent, so at least an eighth of what
    // each received was malformed — counted as such, not a crash.
    expect(got.announcer).toBeGreaterThan(0);
    expect(got.browser).toBeGreaterThan(0);
    // Besides ours, each hears the other's (and its own looped-back) packets: answers to the
    // mutated queries, announcements, browse queries — counted, so the bound is exact.
    const theirs = ann.stats().packetsOut + br.stats().queriesSent + 100;
    expect(got.announcer).toBeLessThanOrEqual(sent + theirs);
    expect(got.browser).toBeLessThanOrEqual(sent + theirs);
    expect(got.malformedA).toBeGreaterThanOrEqual(Math.floor(got.announcer / 8));
    expect(got.malformedB).toBeGreaterThanOrEqual(Math.floor(got.browser / 8));

    // Still answering (past the one-second multicast limit) and still browsing; the SDK never took the ghost.
    await until(() => ann.state === AnnouncerState.Announced, 5000, 'announced');
    // An observer on the link, as test/integration/mdns/loopback.test.ts does it.
    const obs = createMdnsSocket(IFACE, port);
    const responses: DecodedPacket[] = [];
    obs.on('packet', (p: DecodedPacket) => p.type === 'response' && responses.push(p));
    obs.on('error', () => {});
    obs.on('warning', () => {});
    await waitReady(obs);
    closers.push(() => new Promise<void>((res) => obs.destroy(() => res())));
    // Mutated copies of its own records look like conflicts (RFC 6762 §9): it may have renamed
    // itself (`zg-… (2)`), as any responder must; it answers under the name it holds.
    const instance = ann.names().instance;
    console.log(`fuzz mDNS: announcer now ${JSON.stringify(ann.names().label)}, ${ann.stats().renames ?? 0} renames`);
    let answered = false;
    for (let attempt = 0; attempt < 4 && !answered; attempt++) {
      await sleep(1100); // past the one-second multicast limit (RFC 6762 §6)
      const from = responses.length;
      obs.send({ type: 'query', questions: [Q(instance, 'SRV')] });
      await sleep(300);
      answered = responses.slice(from).some((p) => (p.answers ?? []).some((rr) => rr.name === instance && rr.type === 'SRV' && (rr.data as { port: number }).port === 24_000));
    }
    expect(answered).toBe(true);
    expect(br.instances().map((i) => i.id)).toContain(node);
    expect(cl.servers().map((x) => x.id)).toEqual([node]);
    const heapAfter = heapMiB();
    console.log(`fuzz mDNS: heapUsed ${heapBefore.toFixed(1)} → ${heapAfter.toFixed(1)} MiB`);
    expect(heapAfter - heapBefore).toBeLessThan(48);
  }, timeout(150_000));
});
