/**
 * Gossip frames between agents and their pure codec: `encodeFrame(frame) → Buffer`,
 * `decodeFrame(bytes) → GossipFrame`, which throws only DecodeError, FrameTooLargeError or
 * UnsupportedVersionError, whatever the bytes (`tryDecodeFrame` returns them instead).
 *
 * Every frame is one msgpack array, tuples rather than maps so that no key names cross the wire:
 *
 *   [version, type, senderNode, senderAddr, ...body]
 *
 *   ping            [.., seq, targetNode, updates?, loads?, sources?, seats?]
 *   ack             [.., seq, updates?, loads?, sources?, seats?]
 *   nack            [.., seq]
 *   ping-req        [.., seq, targetNode, targetAddr, wantNack, updates?, loads?, sources?, seats?]
 *   gossip          [.., updates, loads, sources?, seats?]
 *   push-pull-req   [.., join, states, page?]
 *   push-pull-resp  [.., states, page?]
 *   leave           [.., incarnation]
 *
 *   page            [index, count]: one part of a full state too large for one frame (see
 *                   push-pull.ts); absent: the whole state. Only page 0 of a request is answered.
 *   incarnation     0..MAX_INCARNATION (2^32 − 1, memberlist's uint32): anything above is a
 *                   decode error, and no agent ever sends one (a refutation stops at the cap).
 *
 *   update  alive   [0, node, incarnation, addr, meta, loadSeq?]
 *                   (loadSeq: the member's load seq when it took this incarnation, sent by the
 *                   member itself: loads of this incarnation are not older than that)
 *           suspect [1, node, incarnation, fromNode]
 *           dead    [2, node, incarnation, fromNode]
 *           left    [3, node, incarnation]
 *   meta            [id | nil (= node), service, host, udpPort | 0, tcpPort | 0, weight, zone | nil, health 0..2, sigv?, sig?, ws?]
 *                   (ws: [wsPort, wsPath | nil (= '/'), tls 0|1], the server's WebSocket endpoint; with
 *                   it an unsigned meta sends nil, nil for sigv, sig. Older decoders ignore it.)
 *                   (sig: the 64-byte Ed25519 signature the member's own agent made of its record at
 *                   incarnation sigv, sdk/core/signing.ts; relayed unchanged. The decoder keeps it only
 *                   when sigv is the incarnation of the update or state carrying it: a signature of
 *                   an older meta never rides on a newer incarnation. Frames without it still decode.)
 *   loads           one flat array, 6 values per entry:
 *                   key, seq mod 128, connections, sessions, utilization %, age in 10 ms
 *                   (key: the node name when ≤ 4 chars, else its 32-bit hash — see loadKey;
 *                   the receiver rebuilds the full seq from the last one it has, see loadSeqAfter)
 *   sources         one source code per load entry, in the same order (what its utilization is):
 *                   0 not known, 1 reported, 2 active/capacity, 3 host CPU, 4 none (LOAD_SOURCE_CODES);
 *                   sent whenever loads is not empty. Codes this version does not know decode as
 *                   not known; absent (a frame of an earlier release): none known.
 *   seats           the seats of the load entries that have them (issue 17: an agent with a
 *                   capacity), one flat array, 4 values per such entry: index into the loads
 *                   (increasing), capacity, held, claimed. Sent only when an entry has seats;
 *                   entries without cost nothing. Absent: no entry has seats.
 *   state           [node, addr, incarnation, status 0..3, meta, [seq, conns, sessions, util %, age 10 ms, source?, [capacity, held, claimed]?] | nil]
 *                   (source is sent as 0 when there are seats and no source)
 *
 * The sources array is an addition within protocol version 1, not a new version: decoders of
 * earlier releases ignore values past the ones they know (see decodeFrame), so they drop it and
 * keep the loads; frames from them have no sources, and their figures decode as "not known". It
 * is a separate array rather than a 7th value per entry (the stride of 6 is what old decoders
 * check) or bits folded into the utilization % (old decoders take 0..10,000 there, and would
 * read a folded value as a utilization of several hundred %, silently): one byte per entry.
 * The seats array is an addition in the same manner, after sources (and the seats of a state a
 * 7th load value, past the 6 old decoders read): a frame with seats decodes in an earlier release
 * as the same frame without them.
 *
 * Addresses (senderAddr, addr of alive updates and states, targetAddr) are ws:// or wss:// URLs
 * with a host and a port: the decoder refuses anything else (see gossipAddrPort).
 *
 * Load entries are the bulk of the traffic (every agent reports every second), hence the flat
 * array, integers instead of floats (utilization to 1 %, age to 10 ms: msgpack then needs one byte
 * for each in the common case) and short keys. An entry is ~10 bytes.
 */
import { DecodeError, FrameTooLargeError, UnsupportedVersionError, PeerlbError } from '../../sdk/core/errors.js';
import { pack, unpackFrame } from '../../sdk/core/msgpack.js';
import { LIMITS, PROTOCOL_VERSION, parseWsUrl, parseServerRecord, HEALTH_VALUES, type Health, type LoadReport, type LoadSeats, type LoadSource, type ServerRecord } from '../../sdk/core/protocol.js';
import { hashKey } from '../../sdk/core/hash.js';

/** What an agent says about its server: the ServerRecord without `load` and `agent`. */
export type MemberMeta = Omit<ServerRecord, 'load' | 'agent'>;

export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';
export const MEMBER_STATUSES: readonly MemberStatus[] = ['alive', 'suspect', 'dead', 'left'];

export interface Sender {
  node: string;
  addr: string;
}

export type StateUpdate =
  | { kind: 'alive'; node: string; incarnation: number; addr: string; meta: MemberMeta; loadSeq?: number }
  | { kind: 'suspect'; node: string; incarnation: number; from: string }
  | { kind: 'dead'; node: string; incarnation: number; from: string }
  | { kind: 'left'; node: string; incarnation: number };

/** A load report in flight. `ageMs` is how old it is when this copy is sent. */
export interface LoadEntry {
  /** The origin: its node name, or its `nodeHash` (see loadKey). */
  key: string | number;
  /** The report's seq; only its low 7 bits cross the wire (decoded entries hold 0..127). */
  seq: number;
  connections: number;
  sessions: number;
  utilization: number;
  ageMs: number;
  /** What utilization is; absent: not known (a sender of an older version, or relayed through one). */
  source?: LoadSource;
  /** The origin's seats, when its agent has a capacity (absent: none, or relayed through an older version). */
  seats?: LoadSeats;
}

/** One member in a push-pull exchange. */
export interface MemberState {
  node: string;
  addr: string;
  incarnation: number;
  status: MemberStatus;
  meta: MemberMeta;
  load?: LoadReport;
}

/** One page of a full state sent in several frames: `index` in 0..count − 1. */
export interface Page {
  index: number;
  count: number;
}

/**
 * Largest incarnation on the wire (memberlist's incarnation is a uint32). Every agent can encode
 * and decode every value up to it, so a refutation is always deliverable; see member-updates.ts (refute) for
 * what happens at the cap.
 */
export const MAX_INCARNATION = 0xffffffff;
/** Most pages one full state may be split into. */
export const MAX_PAGES = 1024;

export interface Piggyback {
  updates: StateUpdate[];
  loads: LoadEntry[];
}

export type GossipFrame =
  | { type: 'ping'; from: Sender; seq: number; target: string; piggyback?: Piggyback }
  | { type: 'ack'; from: Sender; seq: number; piggyback?: Piggyback }
  | { type: 'nack'; from: Sender; seq: number }
  | { type: 'ping-req'; from: Sender; seq: number; target: string; targetAddr: string; nack: boolean; piggyback?: Piggyback }
  | { type: 'gossip'; from: Sender; piggyback: Piggyback }
  | { type: 'push-pull-req'; from: Sender; join: boolean; states: MemberState[]; page?: Page }
  | { type: 'push-pull-resp'; from: Sender; states: MemberState[]; page?: Page }
  | { type: 'leave'; from: Sender; incarnation: number };

export type FrameType = GossipFrame['type'];

const TYPE_CODES: Record<FrameType, number> = {
  ping: 1,
  ack: 2,
  nack: 3,
  'ping-req': 4,
  gossip: 5,
  'push-pull-req': 6,
  'push-pull-resp': 7,
  leave: 8,
};
const TYPE_BY_CODE = new Map<number, FrameType>(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as FrameType]));
const KIND_CODES = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;

/** Most updates, load entries, or member states one frame may carry (the 1 MiB frame limit binds first in practice). */
export const MAX_ITEMS = LIMITS.maxServers;
/** Values of one load entry in the flat loads array. */
export const LOAD_ENTRY_FIELDS = 6;
/** Values per entry in the flat seats array: index into the loads, capacity, held, claimed. */
export const SEAT_ENTRY_FIELDS = 4;
/**
 * Bytes a seats entry's index is counted as in loadEntrySize: the size is taken when the entry is
 * queued, before its place in a frame is known; 3 covers every index below MAX_ITEMS.
 */
const SEAT_INDEX_BYTES = 3;
/** Largest count a load field carries (as sdk/core/protocol.ts parseLoad). */
const MAX_COUNT = 1e9;
/** Largest utilization on the wire, in % (parseLoad accepts 0..100). */
const MAX_UTIL_PCT = 10_000;
/** Ages beyond ~28 hours are clamped: such a report is worthless anyway. */
const MAX_AGE_CS = 10_000_000;
/** Wire codes of load sources (0: not known). Codes only ever get added, never renumbered. */
export const LOAD_SOURCE_CODES: Readonly<Record<LoadSource, number>> = { reported: 1, capacity: 2, cpu: 3, none: 4 };
const SOURCE_BY_CODE = new Map<number, LoadSource>(Object.entries(LOAD_SOURCE_CODES).map(([k, v]) => [v, k as LoadSource]));
/** Largest source code a decoder accepts (one msgpack byte); those it does not know decode as not known. */
const MAX_SOURCE_CODE = 127;

// ---------------------------------------------------------------------------------------------
// Keys of load entries

/** 32-bit hash of a node name, the key of its load entries when the name is long. */
export function nodeHash(node: string): number {
  return hashKey(node);
}

/**
 * The key a node's load entries carry: the name itself when it is at most 4 characters (msgpack
 * needs ≤ 5 bytes either way), else its 32-bit hash (5 bytes instead of the whole name). Receivers
 * map the hash back to a member; two members with the same hash make it ambiguous, and their load
 * entries are dropped (push-pull still carries their loads by name).
 */
export function loadKey(node: string): string | number {
  return node.length <= 4 ? node : nodeHash(node);
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers of load entries

/**
 * Load entries carry their seq modulo 128 (one msgpack byte instead of up to five: a report a
 * second makes a seq ≥ 65536 within a day). Receivers extend it from the last seq they have, in
 * serial number arithmetic (RFC 1982): 1..63 ahead is newer, 0 the same, 64..127 older. That holds
 * while a receiver misses fewer than 64 reports in a row; push-pull carries the full seq and
 * re-anchors it.
 */
export const LOAD_SEQ_MOD = 128;

function seqMod(seq: number): number {
  return ((seq % LOAD_SEQ_MOD) + LOAD_SEQ_MOD) % LOAD_SEQ_MOD;
}

/**
 * The full seq of a load entry whose wire seq is `wire` (0..127), given the last full seq `last`:
 * a newer seq, or undefined for the same or an older report. With `anyIsNewer` (the last report is
 * too old for the window to be trusted) the entry is taken as newer; the result may then undercount
 * by multiples of 128 until a push-pull brings the full seq. Pure.
 */
export function loadSeqAfter(last: number, wire: number, anyIsNewer = false): number | undefined {
  const d = seqMod(wire - last);
  if (anyIsNewer) return last + (d === 0 ? LOAD_SEQ_MOD : d);
  if (d === 0 || d >= LOAD_SEQ_MOD / 2) return undefined;
  return last + d;
}

// ---------------------------------------------------------------------------------------------
// Encoding

const HEALTH_CODE: Record<Health, number> = { healthy: 0, unhealthy: 1, draining: 2 };

function metaTuple(meta: MemberMeta, node: string): unknown[] {
  return [
    meta.id === node ? null : meta.id,
    meta.service,
    meta.host,
    meta.udpPort ?? 0,
    meta.tcpPort ?? 0,
    meta.weight,
    meta.zone ?? null,
    HEALTH_CODE[meta.health] ?? 0,
    ...(meta.sig !== undefined && meta.sigv !== undefined ? [meta.sigv, Buffer.from(meta.sig, 'base64')] : meta.wsPort !== undefined ? [null, null] : []),
    ...(meta.wsPort !== undefined ? [[meta.wsPort, meta.wsPath ?? null, meta.wsTls === true ? 1 : 0]] : []),
  ];
}

function updateTuple(u: StateUpdate): unknown[] {
  switch (u.kind) {
    case 'alive':
      return u.loadSeq === undefined
        ? [KIND_CODES.alive, u.node, u.incarnation, u.addr, metaTuple(u.meta, u.node)]
        : [KIND_CODES.alive, u.node, u.incarnation, u.addr, metaTuple(u.meta, u.node), u.loadSeq];
    case 'suspect':
      return [KIND_CODES.suspect, u.node, u.incarnation, u.from];
    case 'dead':
      return [KIND_CODES.dead, u.node, u.incarnation, u.from];
    case 'left':
      return [KIND_CODES.left, u.node, u.incarnation];
  }
}

function count(n: number): number {
  return Math.min(MAX_COUNT, Math.max(0, Math.round(Number.isFinite(n) ? n : 0)));
}
function utilPct(u: number): number {
  return Math.min(MAX_UTIL_PCT, Math.max(0, Math.round((Number.isFinite(u) ? u : 0) * 100)));
}
function ageCs(ms: number): number {
  return Math.min(MAX_AGE_CS, Math.max(0, Math.round((Number.isFinite(ms) ? ms : 0) / 10)));
}

function loadValues(e: LoadEntry): unknown[] {
  return [e.key, seqMod(e.seq), count(e.connections), count(e.sessions), utilPct(e.utilization), ageCs(e.ageMs)];
}

function sourceCode(s: LoadSource | undefined): number {
  return s === undefined ? 0 : (LOAD_SOURCE_CODES[s] ?? 0);
}

function seatValues(s: LoadSeats): [number, number, number] {
  return [Math.max(1, count(s.capacity)), count(s.held), count(s.claimed)];
}

function loadTuple(l: LoadReport): unknown[] {
  const t: unknown[] = [l.seq, count(l.connections), count(l.sessions), utilPct(l.utilization), ageCs(l.ageMs)];
  const code = sourceCode(l.source);
  if (l.seats) return [...t, code, seatValues(l.seats)];
  return code === 0 ? t : [...t, code];
}

function stateTuple(s: MemberState): unknown[] {
  return [s.node, s.addr, s.incarnation, MEMBER_STATUSES.indexOf(s.status), metaTuple(s.meta, s.node), s.load ? loadTuple(s.load) : null];
}

function piggybackTail(p: Piggyback | undefined): unknown[] {
  if (!p || (p.updates.length === 0 && p.loads.length === 0)) return [];
  const loads: unknown[] = [];
  const seats: number[] = [];
  for (let i = 0; i < p.loads.length; i++) {
    const e = p.loads[i]!;
    loads.push(...loadValues(e));
    if (e.seats) seats.push(i, ...seatValues(e.seats));
  }
  if (p.loads.length === 0) return [p.updates.map(updateTuple), loads];
  const sources = p.loads.map((e) => sourceCode(e.source));
  return seats.length ? [p.updates.map(updateTuple), loads, sources, seats] : [p.updates.map(updateTuple), loads, sources];
}

function pageTail(p: Page | undefined): unknown[] {
  return p ? [[p.index, p.count]] : [];
}

/** Encode a frame. Pure; the caller is trusted (values are not re-validated, counts are rounded). */
export function encodeFrame(frame: GossipFrame): Buffer {
  const head: unknown[] = [PROTOCOL_VERSION, TYPE_CODES[frame.type], frame.from.node, frame.from.addr];
  switch (frame.type) {
    case 'ping':
      return pack([...head, frame.seq, frame.target, ...piggybackTail(frame.piggyback)]);
    case 'ack':
      return pack([...head, frame.seq, ...piggybackTail(frame.piggyback)]);
    case 'nack':
      return pack([...head, frame.seq]);
    case 'ping-req':
      return pack([...head, frame.seq, frame.target, frame.targetAddr, frame.nack, ...piggybackTail(frame.piggyback)]);
    case 'gossip': {
      const tail = piggybackTail(frame.piggyback);
      return pack([...head, ...(tail.length ? tail : [[], []])]);
    }
    case 'push-pull-req':
      return pack([...head, frame.join, frame.states.map(stateTuple), ...pageTail(frame.page)]);
    case 'push-pull-resp':
      return pack([...head, frame.states.map(stateTuple), ...pageTail(frame.page)]);
    case 'leave':
      return pack([...head, frame.incarnation]);
  }
}

/** Encoded size of one update inside a frame's updates array (to fill a frame's byte budget). */
export function updateSize(u: StateUpdate): number {
  return pack(updateTuple(u)).length;
}

/**
 * Encoded size of one load entry inside the flat loads array, with its source code and its seats
 * (computed, not packed: it runs for every entry relayed; the seats' index counted as
 * SEAT_INDEX_BYTES, from above). The sources and seats arrays' headers are in PIGGYBACK_ARRAY_OVERHEAD.
 */
export function loadEntrySize(e: LoadEntry): number {
  let n = 1;
  for (const v of loadValues(e)) n += typeof v === 'string' ? strSize(v) : uintSize(v as number);
  if (e.seats) {
    n += SEAT_INDEX_BYTES;
    for (const v of seatValues(e.seats)) n += uintSize(v);
  }
  return n;
}

/** msgpack size of a non-negative integer. */
function uintSize(v: number): number {
  if (v < 128) return 1;
  if (v < 256) return 2;
  if (v < 65536) return 3;
  if (v < 4294967296) return 5;
  return 9;
}

/** msgpack size of a string. */
function strSize(s: string): number {
  const b = Buffer.byteLength(s);
  return b + (b < 32 ? 1 : b < 256 ? 2 : b < 65536 ? 3 : 5);
}

/**
 * Bytes of a frame beyond its piggyback: the headers of its four arrays (updates ≤ 3, the flat
 * loads ≤ 5, sources ≤ 3, the flat seats ≤ 3 bytes), and a byte to spare.
 */
export const PIGGYBACK_ARRAY_OVERHEAD = 15;

// ---------------------------------------------------------------------------------------------
// Decoding: everything from the network is untrusted.

function str(v: unknown, what: string, max: number = LIMITS.maxStringLength): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new DecodeError(`${what} must be a non-empty string of at most ${max} chars`);
  return v;
}

/**
 * The port of a gossip address (ws:// or wss:// with a host and a port in 1..65535; a URL without
 * a port means the scheme's default), or undefined when `addr` is not one. Never throws.
 */
export function gossipAddrPort(addr: string): number | undefined {
  return parseWsUrl(addr)?.port;
}

/**
 * Addresses already found to be gossip URLs. Every frame names its sender's address, and the
 * same few dozen recur: parsed once, not per frame. Bounded: emptied when full.
 */
const goodAddrs = new Set<string>();
const MAX_GOOD_ADDRS = 4096;

/**
 * A member's or sender's address: decoded only when it is a gossip URL. Everything downstream
 * (the transport, /v1/members, the watch's agent list) parses it as one; an address that is not
 * must fail here, as a decode error, not later inside a handler.
 */
function addr(v: unknown, what: string): string {
  const s = str(v, what);
  if (goodAddrs.has(s)) return s;
  if (gossipAddrPort(s) === undefined) throw new DecodeError(`${what} must be a ws:// or wss:// URL with a host and a port, got ${JSON.stringify(s.slice(0, 64))}`);
  if (goodAddrs.size >= MAX_GOOD_ADDRS) goodAddrs.clear();
  goodAddrs.add(s);
  return s;
}
function uint(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw new DecodeError(`${what} must be an integer in 0..${max}`);
  return v;
}
function bool(v: unknown, what: string): boolean {
  if (v === true || v === 1) return true;
  if (v === false || v === 0) return false;
  throw new DecodeError(`${what} must be a boolean`);
}
function list(v: unknown, what: string, max: number = MAX_ITEMS): unknown[] {
  if (!Array.isArray(v)) throw new DecodeError(`${what} must be an array`);
  if (v.length > max) throw new DecodeError(`${what} has ${v.length} items, more than ${max}`);
  return v;
}
function tuple(v: unknown, what: string, minLen: number): unknown[] {
  if (!Array.isArray(v) || v.length < minLen) throw new DecodeError(`${what} must be an array of at least ${minLen} values`);
  return v;
}

/** Size of an Ed25519 signature. */
const SIG_BYTES = 64;

function parseMeta(v: unknown, node: string, incarnation: number): MemberMeta {
  const t = tuple(v, 'meta', 8);
  const health = HEALTH_VALUES[uint(t[7], 'meta.health', HEALTH_VALUES.length - 1)]!;
  const udp = uint(t[3], 'meta.udpPort', 65535);
  const tcp = uint(t[4], 'meta.tcpPort', 65535);
  const rec = parseServerRecord({
    id: t[0] === null ? node : t[0],
    service: t[1],
    host: t[2],
    udpPort: udp === 0 ? undefined : udp,
    tcpPort: tcp === 0 ? undefined : tcp,
    weight: t[5],
    zone: t[6] === null ? undefined : t[6],
    health,
  });
  const meta: MemberMeta = { id: rec.id, service: rec.service, host: rec.host, weight: rec.weight, health: rec.health };
  if (rec.udpPort !== undefined) meta.udpPort = rec.udpPort;
  if (rec.tcpPort !== undefined) meta.tcpPort = rec.tcpPort;
  if (rec.zone !== undefined) meta.zone = rec.zone;
  if (t.length > 10 && t[10] !== null) {
    const ws = tuple(t[10], 'meta.ws', 3);
    const w = parseServerRecord({ id: rec.id, service: rec.service, host: rec.host, wsPort: ws[0], wsPath: ws[1] === null ? undefined : ws[1], wsTls: uint(ws[2], 'meta.ws.tls', 1) === 1 });
    if (w.wsPort === undefined) throw new DecodeError('meta.ws needs a port');
    meta.wsPort = w.wsPort;
    if (w.wsPath !== undefined) meta.wsPath = w.wsPath;
    if (w.wsTls) meta.wsTls = true;
  }
  if (t.length > 8 && t[8] !== null) {
    const sigv = uint(t[8], 'meta.sigv');
    const sig = t[9];
    if (!(sig instanceof Uint8Array) || sig.length !== SIG_BYTES) throw new DecodeError(`meta.sig must be ${SIG_BYTES} bytes`);
    // Only the signature of this very incarnation (see the module comment): else relayed unsigned.
    if (sigv === incarnation) {
      meta.sig = Buffer.from(sig.buffer, sig.byteOffset, sig.length).toString('base64');
      meta.sigv = sigv;
    }
  }
  return meta;
}

function parseUpdate(v: unknown): StateUpdate {
  const t = tuple(v, 'update', 3);
  const kind = uint(t[0], 'update.kind', 3);
  const node = str(t[1], 'update.node');
  const incarnation = uint(t[2], 'update.incarnation', MAX_INCARNATION);
  switch (kind) {
    case KIND_CODES.alive:
      if (t.length < 5) throw new DecodeError('alive update needs addr and meta');
      return t[5] === undefined || t[5] === null
        ? { kind: 'alive', node, incarnation, addr: addr(t[3], 'update.addr'), meta: parseMeta(t[4], node, incarnation) }
        : { kind: 'alive', node, incarnation, addr: addr(t[3], 'update.addr'), meta: parseMeta(t[4], node, incarnation), loadSeq: uint(t[5], 'update.loadSeq') };
    case KIND_CODES.suspect:
      return { kind: 'suspect', node, incarnation, from: str(t[3], 'update.from') };
    case KIND_CODES.dead:
      return { kind: 'dead', node, incarnation, from: str(t[3], 'update.from') };
    default:
      return { kind: 'left', node, incarnation };
  }
}

function parseLoadFields(seq: unknown, c: unknown, s: unknown, u: unknown, a: unknown, src: unknown, maxSeq = Number.MAX_SAFE_INTEGER): Omit<LoadEntry, 'key'> {
  const l: Omit<LoadEntry, 'key'> = {
    seq: uint(seq, 'load.seq', maxSeq),
    connections: uint(c, 'load.connections', MAX_COUNT),
    sessions: uint(s, 'load.sessions', MAX_COUNT),
    utilization: uint(u, 'load.utilization', MAX_UTIL_PCT) / 100,
    ageMs: uint(a, 'load.age', MAX_AGE_CS) * 10,
  };
  const source = src === undefined || src === null ? undefined : SOURCE_BY_CODE.get(uint(src, 'load.source', MAX_SOURCE_CODE));
  if (source !== undefined) l.source = source;
  return l;
}

/** A load's seats from the wire: capacity 1..MAX_COUNT, held and claimed 0..MAX_COUNT (as parseSeats). */
function parseSeatFields(c: unknown, h: unknown, cl: unknown): LoadSeats {
  const capacity = uint(c, 'load.seats.capacity', MAX_COUNT);
  if (capacity < 1) throw new DecodeError('load.seats.capacity must be an integer in 1..' + MAX_COUNT);
  return { capacity, held: uint(h, 'load.seats.held', MAX_COUNT), claimed: uint(cl, 'load.seats.claimed', MAX_COUNT) };
}

/** The seats array of a piggyback onto its `loads`: each index names one entry, in increasing order. */
function applySeats(v: unknown, loads: LoadEntry[]): void {
  if (v === undefined || v === null) return;
  const flat = list(v, 'load seats', loads.length * SEAT_ENTRY_FIELDS);
  if (flat.length % SEAT_ENTRY_FIELDS !== 0) throw new DecodeError(`load seats must have a multiple of ${SEAT_ENTRY_FIELDS} values`);
  let last = -1;
  for (let j = 0; j < flat.length; j += SEAT_ENTRY_FIELDS) {
    const i = uint(flat[j], 'load seats index', loads.length - 1);
    if (i <= last) throw new DecodeError('load seats indexes must increase');
    last = i;
    loads[i]!.seats = parseSeatFields(flat[j + 1], flat[j + 2], flat[j + 3]);
  }
}

function parseLoads(v: unknown, sources: unknown): LoadEntry[] {
  const flat = list(v, 'loads', MAX_ITEMS * LOAD_ENTRY_FIELDS);
  if (flat.length % LOAD_ENTRY_FIELDS !== 0) throw new DecodeError(`loads must have a multiple of ${LOAD_ENTRY_FIELDS} values`);
  const n = flat.length / LOAD_ENTRY_FIELDS;
  const src = sources === undefined || sources === null ? undefined : list(sources, 'load sources', MAX_ITEMS);
  if (src && src.length !== n) throw new DecodeError(`load sources has ${src.length} codes for ${n} load entries`);
  const out: LoadEntry[] = [];
  for (let i = 0; i < n; i++) {
    const j = i * LOAD_ENTRY_FIELDS;
    const k = flat[j];
    const key = typeof k === 'string' ? str(k, 'load.key') : uint(k, 'load.key', 0xffffffff);
    out.push({ key, ...parseLoadFields(flat[j + 1], flat[j + 2], flat[j + 3], flat[j + 4], flat[j + 5], src?.[i], LOAD_SEQ_MOD - 1) });
  }
  return out;
}

function parsePiggyback(t: unknown[], at: number, required: boolean): Piggyback | undefined {
  if (t.length <= at) {
    if (required) throw new DecodeError('frame is missing its updates and loads');
    return undefined;
  }
  return {
    updates: list(t[at], 'updates').map(parseUpdate),
    loads: t.length > at + 1 ? parseLoadsWithSeats(t[at + 1], t[at + 2], t[at + 3]) : [],
  };
}

function parseLoadsWithSeats(v: unknown, sources: unknown, seats: unknown): LoadEntry[] {
  const loads = parseLoads(v, sources);
  applySeats(seats, loads);
  return loads;
}

function parseState(v: unknown): MemberState {
  const t = tuple(v, 'state', 5);
  const node = str(t[0], 'state.node');
  const incarnation = uint(t[2], 'state.incarnation', MAX_INCARNATION);
  const s: MemberState = {
    node,
    addr: addr(t[1], 'state.addr'),
    incarnation,
    status: MEMBER_STATUSES[uint(t[3], 'state.status', MEMBER_STATUSES.length - 1)]!,
    meta: parseMeta(t[4], node, incarnation),
  };
  if (t[5] !== undefined && t[5] !== null) {
    const l = tuple(t[5], 'state.load', 5);
    s.load = parseLoadFields(l[0], l[1], l[2], l[3], l[4], l[5]);
    if (l[6] !== undefined && l[6] !== null) {
      const st = tuple(l[6], 'state.load.seats', 3);
      s.load.seats = parseSeatFields(st[0], st[1], st[2]);
    }
  }
  return s;
}

function parsePage(v: unknown): Page | undefined {
  if (v === undefined || v === null) return undefined;
  const t = tuple(v, 'page', 2);
  const count = uint(t[1], 'page.count', MAX_PAGES);
  if (count < 1) throw new DecodeError('page.count must be at least 1');
  return { index: uint(t[0], 'page.index', count - 1), count };
}

/**
 * Decode one frame from an untrusted peer. Throws DecodeError (malformed), FrameTooLargeError
 * (over `maxBytes`, checked before parsing) or UnsupportedVersionError; never anything else.
 * Values past the ones this version knows are ignored (room for additions within a version).
 */
export function decodeFrame(bytes: Uint8Array, maxBytes: number = LIMITS.maxFrameBytes): GossipFrame {
  try {
    return decodeUnsafe(bytes, maxBytes);
  } catch (err) {
    if (err instanceof DecodeError || err instanceof FrameTooLargeError || err instanceof UnsupportedVersionError) throw err;
    // Nothing above should throw anything else; if it does, it is still the peer's bytes.
    throw new DecodeError(`malformed frame: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

export type DecodeResult = { ok: true; frame: GossipFrame } | { ok: false; error: DecodeError | FrameTooLargeError | UnsupportedVersionError };

/** decodeFrame without throwing: for the receive path. */
export function tryDecodeFrame(bytes: Uint8Array, maxBytes: number = LIMITS.maxFrameBytes): DecodeResult {
  try {
    return { ok: true, frame: decodeFrame(bytes, maxBytes) };
  } catch (err) {
    return { ok: false, error: err as DecodeError };
  }
}

function decodeUnsafe(bytes: Uint8Array, maxBytes: number): GossipFrame {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('frame must be bytes');
  const v = unpackFrame(bytes, maxBytes);
  if (!Array.isArray(v)) throw new DecodeError('gossip frame must be an array');
  if (v.length < 4) throw new DecodeError('gossip frame must have at least version, type, sender node and addr');
  if (typeof v[0] !== 'number' || !Number.isInteger(v[0])) throw new DecodeError('frame version must be an integer');
  if (v[0] !== PROTOCOL_VERSION) throw new UnsupportedVersionError(v[0], PROTOCOL_VERSION);
  const type = typeof v[1] === 'number' ? TYPE_BY_CODE.get(v[1]) : undefined;
  if (!type) throw new DecodeError(`unknown gossip frame type ${JSON.stringify(typeof v[1] === 'bigint' ? String(v[1]) : v[1])}`);
  const from: Sender = { node: str(v[2], 'sender node'), addr: addr(v[3], 'sender addr') };
  const need = (n: number) => {
    if (v.length < n) throw new DecodeError(`${type} frame is too short`);
  };
  switch (type) {
    case 'ping': {
      need(6);
      const f: GossipFrame = { type, from, seq: uint(v[4], 'seq'), target: str(v[5], 'ping target') };
      const p = parsePiggyback(v, 6, false);
      if (p) f.piggyback = p;
      return f;
    }
    case 'ack': {
      need(5);
      const f: GossipFrame = { type, from, seq: uint(v[4], 'seq') };
      const p = parsePiggyback(v, 5, false);
      if (p) f.piggyback = p;
      return f;
    }
    case 'nack':
      need(5);
      return { type, from, seq: uint(v[4], 'seq') };
    case 'ping-req': {
      need(8);
      const f: GossipFrame = { type, from, seq: uint(v[4], 'seq'), target: str(v[5], 'ping-req target'), targetAddr: addr(v[6], 'ping-req target addr'), nack: bool(v[7], 'ping-req nack') };
      const p = parsePiggyback(v, 8, false);
      if (p) f.piggyback = p;
      return f;
    }
    case 'gossip':
      return { type, from, piggyback: parsePiggyback(v, 4, true)! };
    case 'push-pull-req': {
      need(6);
      const f: GossipFrame = { type, from, join: bool(v[4], 'push-pull join'), states: list(v[5], 'states').map(parseState) };
      const page = parsePage(v[6]);
      if (page) f.page = page;
      return f;
    }
    case 'push-pull-resp': {
      need(5);
      const f: GossipFrame = { type, from, states: list(v[4], 'states').map(parseState) };
      const page = parsePage(v[5]);
      if (page) f.page = page;
      return f;
    }
    case 'leave':
      need(5);
      return { type, from, incarnation: uint(v[4], 'leave incarnation', MAX_INCARNATION) };
  }
}

/** True for the errors decodeFrame may throw. */
export function isDecodeFailure(err: unknown): err is PeerlbError {
  return err instanceof DecodeError || err instanceof FrameTooLargeError || err instanceof UnsupportedVersionError;
}
