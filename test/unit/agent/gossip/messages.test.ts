import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  tryDecodeFrame,
  loadKey,
  loadSeqAfter,
  nodeHash,
  updateSize,
  loadEntrySize,
  type GossipFrame,
  type MemberMeta,
  type StateUpdate,
  type LoadEntry,
} from '../../../../agent/gossip/messages.js';
import { DecodeError, FrameTooLargeError, UnsupportedVersionError } from '../../../../sdk/core/errors.js';
import { PROTOCOL_VERSION } from '../../../../sdk/core/protocol.js';
import { pack, unpackFrame } from '../../../../sdk/core/msgpack.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';

const from = { node: 'n1', addr: 'ws://10.0.0.1:7946' };
const meta: MemberMeta = { id: 'n1', service: 'game', host: '10.0.0.1', udpPort: 7001, tcpPort: 7000, weight: 100, zone: 'rack1', health: 'healthy' };
const meta2: MemberMeta = { id: 'server-7', service: 'game', host: '10.0.0.2', weight: 250, health: 'draining' };
const updates: StateUpdate[] = [
  { kind: 'alive', node: 'n1', incarnation: 3, addr: 'ws://10.0.0.1:7946', meta },
  { kind: 'alive', node: 'n2', incarnation: 0, addr: 'ws://10.0.0.2:7946', meta: meta2 },
  { kind: 'suspect', node: 'n3', incarnation: 7, from: 'n1' },
  { kind: 'dead', node: 'n4', incarnation: 2 ** 32 - 1, from: 'n5' },
  { kind: 'left', node: 'a-much-longer-node-name', incarnation: 1 },
];
const loads: LoadEntry[] = [
  { key: 'n1', seq: 5, connections: 12, sessions: 3, utilization: 0.42, ageMs: 120, source: 'cpu' },
  { key: nodeHash('a-much-longer-node-name'), seq: 127, connections: 0, sessions: 1_000_000, utilization: 1, ageMs: 0 },
  { key: 'n7', seq: 6, connections: 1, sessions: 2, utilization: 0.3, ageMs: 10, source: 'reported' },
  { key: 'n8', seq: 7, connections: 50, sessions: 0, utilization: 0.5, ageMs: 10, source: 'capacity' },
  { key: 'n9', seq: 8, connections: 0, sessions: 0, utilization: 0, ageMs: 10, source: 'none' },
];

const frames: GossipFrame[] = [
  { type: 'ping', from, seq: 1, target: 'n2' },
  { type: 'ping', from, seq: 4_000_000_000, target: 'n2', piggyback: { updates, loads } },
  { type: 'ack', from, seq: 9 },
  { type: 'ack', from, seq: 9, piggyback: { updates: [], loads } },
  { type: 'nack', from, seq: 10 },
  { type: 'ping-req', from, seq: 11, target: 'n3', targetAddr: 'ws://10.0.0.3:7946', nack: true },
  { type: 'ping-req', from, seq: 12, target: 'n3', targetAddr: 'ws://10.0.0.3:7946', nack: false, piggyback: { updates: updates.slice(2), loads: [] } },
  { type: 'gossip', from, piggyback: { updates, loads } },
  { type: 'gossip', from, piggyback: { updates: [], loads: [] } },
  {
    type: 'push-pull-req',
    from,
    join: true,
    states: [
      { node: 'n1', addr: 'ws://10.0.0.1:7946', incarnation: 3, status: 'alive', meta, load: { seq: 123_456, connections: 5, sessions: 6, utilization: 0.07, ageMs: 1230 } },
      { node: 'n2', addr: 'ws://10.0.0.2:7946', incarnation: 9, status: 'dead', meta: meta2 },
      { node: 'n3', addr: 'ws://10.0.0.3:7946', incarnation: 1, status: 'alive', meta: { ...meta2, id: 'n3' }, load: { seq: 9, connections: 0, sessions: 0, utilization: 0.9, ageMs: 0, source: 'cpu' } },
    ],
  },
  { type: 'push-pull-resp', from, states: [{ node: 'n9', addr: 'ws://[::1]:7946', incarnation: 1, status: 'left', meta: { ...meta2, id: 'n9' } }] },
  { type: 'push-pull-resp', from, states: [] },
  { type: 'leave', from, incarnation: 4 },
  { type: 'push-pull-resp', from, states: [], page: { index: 2, count: 3 } },
  { type: 'leave', from, incarnation: 2 ** 32 - 1 },
];

describe('gossip codec round trips', () => {
  it.each(frames.map((f) => [f.type, f] as const))('%s', (_type, f) => {
    const bytes = encodeFrame(f);
    const back = decodeFrame(bytes);
    expect(back).toEqual(f);
    // encode → decode → encode is stable
    expect(Buffer.compare(encodeFrame(back), bytes)).toBe(0);
  });

  it('carries the protocol version and the sender in every frame', () => {
    for (const f of frames) {
      const tuple = unpackFrame(encodeFrame(f)) as unknown[];
      expect(tuple.slice(0, 4)).toEqual([PROTOCOL_VERSION, expect.any(Number), from.node, from.addr]);
    }
  });

  it('sends only the low 7 bits of a load seq, rounds counts, keeps utilization to 1 % and age to 10 ms', () => {
    const f: GossipFrame = {
      type: 'gossip',
      from,
      piggyback: { updates: [], loads: [{ key: 'n1', seq: 1000, connections: 3.6, sessions: -2, utilization: 0.4249, ageMs: 1234 }] },
    };
    const back = decodeFrame(encodeFrame(f));
    expect(back.type === 'gossip' && back.piggyback.loads[0]).toEqual({ key: 'n1', seq: 1000 % 128, connections: 4, sessions: 0, utilization: 0.42, ageMs: 1230 });
  });

  it('carries what each load figure is in a sources array beside the loads, and keeps the 6-value entries as they were', () => {
    const f: GossipFrame = { type: 'gossip', from, piggyback: { updates: [], loads } };
    const t = unpackFrame(encodeFrame(f)) as unknown[];
    // [version, type, node, addr, updates, loads, sources]: the entries an earlier release reads are unchanged…
    expect(t).toHaveLength(7);
    expect(t[5]).toEqual([
      ...['n1', 5, 12, 3, 42, 12],
      ...[nodeHash('a-much-longer-node-name'), 127, 0, 1_000_000, 100, 0],
      ...['n7', 6, 1, 2, 30, 1],
      ...['n8', 7, 50, 0, 50, 1],
      ...['n9', 8, 0, 0, 0, 1],
    ]);
    // …and the sources follow them: 3 host CPU, 0 not known, 1 reported, 2 active/capacity, 4 none.
    expect(t[6]).toEqual([3, 0, 1, 2, 4]);
    // What an earlier release decodes (it ignores values past the ones it knows): the same loads, no sources.
    const old = decodeFrame(pack(t.slice(0, 6)));
    expect(old.type === 'gossip' && old.piggyback.loads).toEqual(loads.map(({ source: _s, ...e }) => e));
    // In a state, the source is a 6th value of the load tuple (earlier releases read 5).
    const pp = unpackFrame(encodeFrame(frames.find((x) => x.type === 'push-pull-req')!)) as unknown[];
    expect((pp[5] as unknown[][]).map((s) => s[5])).toEqual([[123_456, 5, 6, 7, 123], null, [9, 0, 0, 90, 0, 3]]);
  });

  it('decodes frames without sources (earlier releases) as not known, unknown codes as not known, and refuses bad ones', () => {
    const base = [PROTOCOL_VERSION, 5, from.node, from.addr, [], ['n1', 5, 12, 3, 42, 12, 'n2', 6, 1, 1, 10, 1]];
    const loadsOf = (v: unknown[]) => {
      const f = decodeFrame(pack(v));
      return f.type === 'gossip' ? f.piggyback.loads.map((e) => e.source) : undefined;
    };
    expect(loadsOf(base)).toEqual([undefined, undefined]);
    expect(loadsOf([...base, null])).toEqual([undefined, undefined]);
    expect(loadsOf([...base, [1, 3]])).toEqual(['reported', 'cpu']);
    expect(loadsOf([...base, [9, 127]])).toEqual([undefined, undefined]); // a newer release's codes
    for (const bad of [[1], [1, 2, 3], [1, 128], [1, -1], [1, 'cpu'], [1, 1.5], 'cpu', { a: 1 }]) {
      expect(() => decodeFrame(pack([...base, bad])), JSON.stringify(bad)).toThrow(DecodeError);
    }
    const state = (load: unknown[]) => [PROTOCOL_VERSION, 7, from.node, from.addr, [['n1', 'ws://10.0.0.1:7946', 1, 0, [null, 'game', '10.0.0.1', 7001, 0, 100, null, 0], load]]];
    const stateSource = (load: unknown[]) => {
      const f = decodeFrame(pack(state(load)));
      return f.type === 'push-pull-resp' ? f.states[0]!.load!.source : 'wrong frame';
    };
    expect(stateSource([1, 0, 0, 50, 0])).toBeUndefined();
    expect(stateSource([1, 0, 0, 50, 0, 2])).toBe('capacity');
    expect(stateSource([1, 0, 0, 50, 0, 99])).toBeUndefined();
    expect(() => decodeFrame(pack(state([1, 0, 0, 50, 0, 300])))).toThrow(DecodeError);
  });

  it('keeps load entries small: ~10 bytes with a short name', () => {
    // With its source code: one byte more than the 6 values.
    expect(loadEntrySize({ key: 'n42', seq: 70, connections: 100, sessions: 100, utilization: 0.5, ageMs: 300, source: 'cpu' })).toBeLessThanOrEqual(10);
    expect(loadEntrySize({ key: loadKey('game-server-eu-west-042'), seq: 123_456, connections: 100, sessions: 100, utilization: 0.5, ageMs: 300, source: 'reported' })).toBeLessThanOrEqual(11);
    expect(updateSize(updates[0]!)).toBeLessThan(60);
  });
});

describe('load keys and sequence numbers', () => {
  it('uses short names as they are and hashes long ones', () => {
    expect(loadKey('n1')).toBe('n1');
    expect(loadKey('abcd')).toBe('abcd');
    expect(loadKey('abcde')).toBe(nodeHash('abcde'));
    expect(nodeHash('abcde')).toBe(nodeHash('abcde'));
    expect(nodeHash('abcde')).not.toBe(nodeHash('abcdf'));
  });

  it.each([
    // last, wire, anyIsNewer, expected
    [5, 6, false, 6],
    [5, 5, false, undefined],
    [5, 4, false, undefined],
    [5, 68, false, 68],
    [5, 69, false, undefined], // 64 ahead: ambiguous, taken as older
    [127, 0, false, 128],
    [1000, 1000 % 128, false, undefined],
    [1000, (1000 + 3) % 128, false, 1003],
    [1000, (1000 - 3) % 128, false, undefined],
    [1000, (1000 - 3) % 128, true, 1125], // too old to trust the window: newer, may undercount
    [1000, 1000 % 128, true, 1128],
  ])('loadSeqAfter(%i, %i, %s) = %s', (last, wire, any, expected) => {
    expect(loadSeqAfter(last, wire, any)).toBe(expected);
  });
});

describe('gossip codec against hostile bytes', () => {
  const typed = (err: unknown) => err instanceof DecodeError || err instanceof FrameTooLargeError || err instanceof UnsupportedVersionError;

  it('rejects an unknown version with UnsupportedVersionError', () => {
    expect(() => decodeFrame(pack([2, 1, 'n1', 'ws://x', 1, 'n2']))).toThrow(UnsupportedVersionError);
    expect(() => decodeFrame(pack([0, 5, 'n1', 'ws://x', [], []]))).toThrow(UnsupportedVersionError);
    expect(() => decodeFrame(pack(['1', 5, 'n1', 'ws://x', [], []]))).toThrow(DecodeError);
  });

  it('rejects oversize frames before parsing them', () => {
    const big = encodeFrame({ type: 'gossip', from, piggyback: { updates, loads } });
    expect(() => decodeFrame(big, big.length - 1)).toThrow(FrameTooLargeError);
    expect(decodeFrame(big, big.length).type).toBe('gossip');
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['not msgpack', Buffer.from([0xc1])],
    ['a map', pack({ v: 1, t: 'ping' })],
    ['a string', pack('hello')],
    ['too short', pack([1, 1, 'n1'])],
    ['unknown type', pack([1, 99, 'n1', 'ws://x'])],
    ['type as string', pack([1, 'ping', 'n1', 'ws://x', 1, 'n2'])],
    ['empty node', pack([1, 5, '', 'ws://x', [], []])],
    ['node too long', pack([1, 5, 'x'.repeat(256), 'ws://x', [], []])],
    ['addr not a string', pack([1, 5, 'n1', 42, [], []])],
    ['negative seq', pack([1, 2, 'n1', 'ws://x', -1])],
    ['float seq', pack([1, 2, 'n1', 'ws://x', 1.5])],
    ['seq beyond 2^53', Buffer.concat([Buffer.from([0x95, 0x01, 0x02, 0xa2, 0x6e, 0x31, 0xa6, ...Buffer.from('ws://x')]), Buffer.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])])],
    ['ping without target', pack([1, 1, 'n1', 'ws://x', 1])],
    ['gossip without piggyback', pack([1, 5, 'n1', 'ws://x'])],
    ['updates not an array', pack([1, 5, 'n1', 'ws://x', 'nope', []])],
    ['update of unknown kind', pack([1, 5, 'n1', 'ws://x', [[9, 'n2', 1]], []])],
    ['alive without meta', pack([1, 5, 'n1', 'ws://x', [[0, 'n2', 1, 'ws://y']], []])],
    ['meta with a bad port', pack([1, 5, 'n1', 'ws://x', [[0, 'n2', 1, 'ws://y', [null, 'game', 'h', 70000, 0, 100, null, 0]]], []])],
    ['meta with weight 0', pack([1, 5, 'n1', 'ws://x', [[0, 'n2', 1, 'ws://y', [null, 'game', 'h', 0, 0, 0, null, 0]]], []])],
    ['meta with unknown health', pack([1, 5, 'n1', 'ws://x', [[0, 'n2', 1, 'ws://y', [null, 'game', 'h', 0, 0, 100, null, 3]]], []])],
    ['meta service too long', pack([1, 5, 'n1', 'ws://x', [[0, 'n2', 1, 'ws://y', [null, 'g'.repeat(300), 'h', 0, 0, 100, null, 0]]], []])],
    ['loads not a multiple of 6', pack([1, 5, 'n1', 'ws://x', [], ['n1', 1, 2, 3, 4]])],
    ['load seq ≥ 128', pack([1, 5, 'n1', 'ws://x', [], ['n1', 128, 0, 0, 0, 0]])],
    ['load utilization > 100x', pack([1, 5, 'n1', 'ws://x', [], ['n1', 1, 0, 0, 10_001, 0]])],
    ['load key negative', pack([1, 5, 'n1', 'ws://x', [], [-5, 1, 0, 0, 0, 0]])],
    ['load key a map', pack([1, 5, 'n1', 'ws://x', [], [{}, 1, 0, 0, 0, 0]])],
    ['too many updates', pack([1, 5, 'n1', 'ws://x', new Array(10_001).fill([3, 'n2', 1]), []])],
    ['push-pull state with a bad status', pack([1, 7, 'n1', 'ws://x', [['n2', 'ws://y', 1, 4, [null, 'game', 'h', 0, 0, 100, null, 0], null]]])],
    ['push-pull states not an array', pack([1, 7, 'n1', 'ws://x', 7])],
    ['push-pull join not a boolean', pack([1, 6, 'n1', 'ws://x', 'yes', []])],
    ['leave without incarnation', pack([1, 8, 'n1', 'ws://x'])],
    ['update incarnation 2^32 (over the cap)', pack([1, 5, 'n1', 'ws://x', [[2, 'n2', 2 ** 32, 'n1']], []])],
    ['update incarnation 2^53 − 1', pack([1, 5, 'n1', 'ws://x', [[1, 'n2', 2 ** 53 - 1, 'n1']], []])],
    ['state incarnation over the cap', pack([1, 7, 'n1', 'ws://x', [['n2', 'ws://y:1', 2 ** 32, 0, [null, 'game', 'h', 0, 0, 100, null, 0], null]]])],
    ['leave incarnation over the cap', pack([1, 8, 'n1', 'ws://x', 2 ** 40])],
    ['push-pull page index ≥ count', pack([1, 7, 'n1', 'ws://x', [], [3, 3]])],
    ['push-pull page count 0', pack([1, 7, 'n1', 'ws://x', [], [0, 0]])],
    ['trailing bytes', Buffer.concat([encodeFrame(frames[0]!), Buffer.from([0x00])])],
    ['deep nesting', Buffer.concat([Buffer.alloc(200_000, 0x91), Buffer.from([0x01])])],
    ['an extension type', Buffer.from([0xd4, 0x05, 0x01])],
  ])('%s → typed error', (_name, bytes) => {
    let caught: unknown;
    try {
      decodeFrame(bytes);
    } catch (err) {
      caught = err;
    }
    expect(caught, 'must throw').toBeDefined();
    expect(typed(caught), String(caught)).toBe(true);
    const r = tryDecodeFrame(bytes);
    expect(r.ok).toBe(false);
  });

  it('every truncation of every valid frame gives a typed error (or a valid shorter frame)', () => {
    for (const f of frames) {
      const bytes = encodeFrame(f);
      for (let n = 0; n < bytes.length; n++) {
        const r = tryDecodeFrame(bytes.subarray(0, n));
        if (!r.ok) expect(typed(r.error)).toBe(true);
      }
    }
  });

  it('random bytes and random bit flips never throw anything but the typed errors', () => {
    const rnd = new XorShiftRandom(1234);
    const valid = frames.map((f) => encodeFrame(f));
    for (let i = 0; i < 20_000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = Uint8Array.from({ length: rnd.int(64) }, () => rnd.int(256));
        if (i % 4 === 0 && bytes.length > 0) bytes[0] = 0x90 + rnd.int(16); // start like an array
      } else {
        const v = valid[rnd.int(valid.length)]!;
        bytes = Uint8Array.from(v);
        for (let k = 0; k <= rnd.int(3); k++) bytes[rnd.int(bytes.length)] ^= 1 << rnd.int(8);
      }
      try {
        decodeFrame(bytes);
      } catch (err) {
        if (!typed(err)) throw new Error(`untyped error ${String(err)} for ${Buffer.from(bytes).toString('hex')}`);
      }
    }
  });
});

describe('encoded sizes', () => {
  it('loadEntrySize is the exact size the entry takes in a frame', () => {
    const rnd = new XorShiftRandom(77);
    for (let i = 0; i < 500; i++) {
      const e: LoadEntry = {
        key: i % 3 === 0 ? nodeHash(`node-${i}`) : `n${i % 1000}`.slice(0, 1 + (i % 4)),
        seq: rnd.int(1 << 30),
        connections: rnd.int(10) < 5 ? rnd.int(200) : rnd.int(1e9),
        sessions: rnd.int(70_000),
        utilization: rnd.next() * (i % 10 === 0 ? 100 : 1),
        ageMs: rnd.int(3_000_000),
        ...(i % 5 === 0 ? {} : { source: (['reported', 'capacity', 'cpu', 'none'] as const)[i % 4] }),
      };
      // Against a frame with one entry already: the arrays' headers are PIGGYBACK_ARRAY_OVERHEAD's.
      const first: LoadEntry = { key: 'n0', seq: 1, connections: 0, sessions: 0, utilization: 0, ageMs: 0, source: 'cpu' };
      const one = encodeFrame({ type: 'gossip', from, piggyback: { updates: [], loads: [first] } }).length;
      const two = encodeFrame({ type: 'gossip', from, piggyback: { updates: [], loads: [first, e] } }).length;
      expect(two - one).toBe(loadEntrySize(e));
    }
  });
});

describe('the WebSocket endpoint in a member meta', () => {
  const wsMeta: MemberMeta = { ...meta, wsPort: 8080, wsPath: '/play', wsTls: true };
  const alive = (m: MemberMeta): GossipFrame => ({ type: 'gossip', from, piggyback: { updates: [{ kind: 'alive', node: 'n1', incarnation: 3, addr: 'ws://10.0.0.1:7946', meta: m }], loads: [] } });
  const metaOf = (f: GossipFrame) => (f.type === 'gossip' ? (f.piggyback.updates[0] as { meta: MemberMeta }).meta : undefined);

  it('round trips unsigned and signed, with and without a path', () => {
    const sig = Buffer.alloc(64, 7).toString('base64');
    for (const m of [wsMeta, { ...meta, wsPort: 1 }, { ...wsMeta, sig, sigv: 3 }, { ...meta2, wsPort: 9, wsPath: '/' }]) {
      const bytes = encodeFrame(alive(m));
      expect(metaOf(decodeFrame(bytes))).toEqual(m);
      expect(Buffer.compare(encodeFrame(decodeFrame(bytes)), bytes)).toBe(0);
    }
  });

  it('a meta without ws encodes exactly as before (8 values, or 10 with a signature)', () => {
    // What earlier releases send and expect: the ws value only ever appears as an 11th.
    const plain = encodeFrame(alive(meta));
    const withWs = encodeFrame(alive({ ...meta, wsPort: 8080 }));
    // An unsigned ws meta carries nil, nil for sigv, sig and then [port, path, tls]: 3 + 5 bytes or so more.
    expect(withWs.length - plain.length).toBeGreaterThan(4);
    expect(withWs.length - plain.length).toBeLessThan(16);
    expect(metaOf(decodeFrame(plain))).not.toHaveProperty('wsPort');
  });

  it('a bad ws value is a DecodeError, never a throw of another kind', () => {
    const bytes = encodeFrame(alive(wsMeta));
    // Swap the encoded path for one that breaks the rules, keeping the msgpack length byte valid.
    const i = bytes.indexOf(Buffer.from('/play'));
    expect(i).toBeGreaterThan(0);
    const bad = Buffer.from(bytes);
    bad.write('p lay', i, 'latin1');
    expect(() => decodeFrame(bad)).toThrow(DecodeError);
    const noSlash = Buffer.from(bytes);
    noSlash.write('xplay', i, 'latin1');
    expect(() => decodeFrame(noSlash)).toThrow(/wsPath/);
  });
});
