/**
 * The cluster keyring and the frame sealer built on it: agent-to-agent frames are sealed with
 * AES-256-GCM under the primary key, and receivers try the installed key the frame names.
 *
 * Keyring (like Serf's): several 32-byte keys may be installed at once; the first is the primary,
 * used to seal. Rotation with no downtime: install the new key on every agent (frames still go out
 * under the old one, and both open), make it primary everywhere (both still open), then remove the
 * old one.
 *
 * Key file: either JSON `{ "keys": ["<base64>", …] }` (or a bare JSON array), or one base64 key
 * per line (blank lines and `#` comments ignored) — what `peerlb keygen` prints is a valid keyring
 * of one key. The first key is the primary.
 *
 * A sealed frame on the wire:
 *
 *   [version 1 byte = 2][key id 4 bytes][nonce 12 bytes][ciphertext][GCM tag 16 bytes]
 *
 *   key id     first 4 bytes of SHA-256 of the key (says which key; not secret, not a check)
 *   nonce      random per frame (never derived: GCM must never reuse a nonce under a key)
 *   AAD        the version byte and key id, then the socket's binding (below), which is not sent
 *   plaintext  [stream 8 bytes][counter 6 bytes][timestamp ms 6 bytes][gossip frame]
 *
 * Replay protection (as IPsec / WireGuard): a sealer draws a random 64-bit stream id when it is
 * made (so an agent restarting with the same node id starts a fresh stream and rejoins at once),
 * and numbers its frames 1, 2, 3…. A receiver keeps, per stream, the highest counter and a window
 * of the REPLAY_WINDOW counters below it, and refuses a counter it has seen or one below the
 * window. A frame whose timestamp is more than `replayWindowMs` (30 s) away from the receiver's
 * clock is refused too, which bounds the state: a stream idle for twice that long can be forgotten,
 * since every frame it ever sent is now too old. Overhead: 53 bytes per frame.
 *
 * Binding (ws-transport.ts): the agent that accepts a gossip socket gives the dialer 16 random
 * bytes in the upgrade response (`x-peerlb-challenge`), and every frame on that socket is sealed
 * with them in its AAD. A frame captured on one socket does not open on any other — not at another
 * agent, not at the same agent on a new socket — so the per-stream window above only has to stop
 * replays within one socket (injected into its TCP stream). The binding defeats capture and
 * replay, not an active man in the middle of the link, who could swap one agent's challenge for
 * another's and so relay frames meant for one agent to the other (never read or forge one).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../sdk/core/errors.js';

export const KEY_BYTES = 32;
/** 2: frames bound to their socket (the challenge in the AAD); version 1 frames had no binding. */
export const SEAL_VERSION = 2;
const KEY_ID_BYTES = 4;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES;
const INNER_HEADER_BYTES = 8 + 6 + 6;
/** Bytes a sealed frame has beyond the plain one. */
export const SEAL_OVERHEAD_BYTES = HEADER_BYTES + INNER_HEADER_BYTES + TAG_BYTES;
/** Counters below the highest one seen that a stream may still deliver (reordering tolerance). */
export const REPLAY_WINDOW = 2048;
/** Default: frames whose timestamp is further than this from our clock are refused. */
export const DEFAULT_REPLAY_WINDOW_MS = 30_000;
/** Default: most streams remembered at once (only authenticated frames create one). */
export const DEFAULT_MAX_STREAMS = 65_536;
/** Most keys installed at once. */
export const MAX_KEYS = 16;

/** First 4 bytes of SHA-256 of a key, hex: how a key is named in logs and the admin endpoint. */
export function keyIdHex(key: Uint8Array): string {
  return createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

/** A new random key, base64 (what `peerlb keygen` prints). */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/** Decode one base64 key, or throw a ConfigError naming where it came from. */
export function parseKey(text: unknown, where: string): Buffer {
  if (typeof text !== 'string') throw new ConfigError(`${where}: a key must be a base64 string`);
  const s = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0) throw new ConfigError(`${where}: the key is not valid base64`);
  const b = Buffer.from(s, 'base64');
  if (b.length !== KEY_BYTES) throw new ConfigError(`${where}: a key must be ${KEY_BYTES} bytes (AES-256), this one is ${b.length} bytes`);
  return b;
}

/** Parse a keyring file's text (JSON `{ keys }`, a JSON array, or one key per line). */
export function parseKeyring(text: string, where: string): Buffer[] {
  const t = text.trim();
  let list: unknown[];
  if (t.startsWith('{') || t.startsWith('[')) {
    let json: unknown;
    try {
      json = JSON.parse(t);
    } catch (err) {
      throw new ConfigError(`${where} is not valid JSON: ${(err as Error).message}`);
    }
    const keys = Array.isArray(json) ? json : (json as { keys?: unknown })?.keys;
    if (!Array.isArray(keys)) throw new ConfigError(`${where} must hold { "keys": ["<base64>", …] }`);
    list = keys;
  } else {
    list = t
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
  }
  if (list.length === 0) throw new ConfigError(`${where} holds no key`);
  if (list.length > MAX_KEYS) throw new ConfigError(`${where} holds ${list.length} keys, more than ${MAX_KEYS}`);
  return list.map((k, i) => parseKey(k, `${where}, key ${i + 1}`));
}

/** Read and parse a keyring file; a missing or unreadable file is a ConfigError naming it. */
export function loadKeyringFile(path: string): Buffer[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new ConfigError(`cannot read key file ${path}: ${why}`, { cause: err });
  }
  return parseKeyring(text, `key file ${path}`);
}

interface Installed {
  key: Buffer;
  id: Buffer;
}

/** The installed keys; the first is the primary. Mutable: install, use, remove, replace. */
export class Keyring {
  private list: Installed[] = [];

  constructor(keys: readonly Uint8Array[]) {
    this.replace(keys);
  }

  /** Key ids (hex), primary first. Keys themselves are never listed. */
  ids(): string[] {
    return this.list.map((k) => k.id.toString('hex'));
  }

  get primary(): Installed {
    return this.list[0]!;
  }

  /** Keys whose id matches (normally one). */
  byId(id: Uint8Array): Installed[] {
    return this.list.filter((k) => k.id.equals(id));
  }

  /** Add a key (not primary); installing one already there changes nothing. */
  install(key: Uint8Array): void {
    const k = toInstalled(key);
    if (this.list.some((x) => x.key.equals(k.key))) return;
    if (this.list.length >= MAX_KEYS) throw new ConfigError(`keyring: at most ${MAX_KEYS} keys may be installed`);
    this.list.push(k);
  }

  /** Make an installed key the primary. */
  use(key: Uint8Array): void {
    const i = this.list.findIndex((x) => x.key.equals(Buffer.from(key)));
    if (i < 0) throw new ConfigError(`keyring: key ${keyIdHex(key)} is not installed; install it first`);
    const [k] = this.list.splice(i, 1);
    this.list.unshift(k!);
  }

  /** Remove a key that is not the primary. */
  remove(key: Uint8Array): void {
    const i = this.list.findIndex((x) => x.key.equals(Buffer.from(key)));
    if (i < 0) throw new ConfigError(`keyring: key ${keyIdHex(key)} is not installed`);
    if (i === 0) throw new ConfigError(`keyring: key ${keyIdHex(key)} is the primary; make another key primary first`);
    this.list.splice(i, 1);
  }

  /** Replace every key at once (a reloaded key file); the first becomes the primary. */
  replace(keys: readonly Uint8Array[]): void {
    if (keys.length === 0) throw new ConfigError('keyring: at least one key is required');
    if (keys.length > MAX_KEYS) throw new ConfigError(`keyring: at most ${MAX_KEYS} keys may be installed`);
    const list: Installed[] = [];
    for (const key of keys) {
      const k = toInstalled(key);
      if (!list.some((x) => x.key.equals(k.key))) list.push(k);
    }
    this.list = list;
  }
}

function toInstalled(key: Uint8Array): Installed {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new ConfigError(`keyring: a key must be ${KEY_BYTES} bytes`);
  const b = Buffer.from(key);
  return { key: b, id: createHash('sha256').update(b).digest().subarray(0, KEY_ID_BYTES) };
}

/** Why `open` refused a frame. */
export type OpenRejection = 'auth' | 'replay';

export interface SealerCounters {
  sealed: number;
  opened: number;
  /** Did not authenticate: unknown key id, tampered, truncated, not a sealed frame at all. */
  auth: number;
  /** Authentic but seen before (same stream and counter), or too old / too far in the future. */
  replay: number;
  /** New streams refused because `maxStreams` were remembered already. */
  streamsRefused: number;
}

export interface SealerOptions {
  /** Wall clock in ms (timestamps cross hosts, so this is Date.now, not a monotonic clock). */
  now?: () => number;
  replayWindowMs?: number;
  maxStreams?: number;
}

interface Stream {
  highest: number;
  /** Bit i (mod REPLAY_WINDOW) set: counter seen. */
  bits: Uint32Array;
  lastSeenAt: number;
}

export interface Sealer {
  /** Seal a frame; with `binding`, it opens only where the same binding is given. */
  seal(frame: Uint8Array, binding?: Uint8Array): Uint8Array;
  /** The plain frame, or why it was refused. */
  open(wire: Uint8Array, binding?: Uint8Array): Uint8Array | { reject: OpenRejection };
  counters(): SealerCounters;
  /** Streams remembered now (bounded by maxStreams). */
  readonly streams: number;
  readonly keyring: Keyring;
}

/** Seal and open gossip frames with a keyring, with replay protection. */
export function createSealer(keyring: Keyring, opts: SealerOptions = {}): Sealer {
  const now = opts.now ?? Date.now;
  const windowMs = opts.replayWindowMs ?? DEFAULT_REPLAY_WINDOW_MS;
  const maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
  const streamId = randomBytes(8);
  let counter = 0;
  const streams = new Map<string, Stream>();
  const c: SealerCounters = { sealed: 0, opened: 0, auth: 0, replay: 0, streamsRefused: 0 };
  let lastSweep = 0;

  const sweep = (t: number) => {
    // A stream silent for twice the window can send nothing that would pass the time check.
    if (t - lastSweep < windowMs && streams.size < maxStreams) return;
    lastSweep = t;
    for (const [k, s] of streams) if (t - s.lastSeenAt > 2 * windowMs) streams.delete(k);
  };

  return {
    keyring,
    get streams() {
      return streams.size;
    },
    counters: () => ({ ...c }),

    seal(frame: Uint8Array, binding?: Uint8Array): Uint8Array {
      const k = keyring.primary;
      const nonce = randomBytes(NONCE_BYTES);
      const head = Buffer.allocUnsafe(HEADER_BYTES);
      head[0] = SEAL_VERSION;
      k.id.copy(head, 1);
      nonce.copy(head, 1 + KEY_ID_BYTES);
      const inner = Buffer.allocUnsafe(INNER_HEADER_BYTES);
      streamId.copy(inner, 0);
      inner.writeUIntBE(++counter, 8, 6);
      inner.writeUIntBE(Math.max(0, Math.floor(now())), 14, 6);
      const cipher = createCipheriv('aes-256-gcm', k.key, nonce);
      cipher.setAAD(aad(head, binding));
      const body = Buffer.concat([cipher.update(inner), cipher.update(frame), cipher.final(), cipher.getAuthTag()]);
      c.sealed++;
      return Buffer.concat([head, body]);
    },

    open(wire: Uint8Array, binding?: Uint8Array): Uint8Array | { reject: OpenRejection } {
      const w = Buffer.isBuffer(wire) ? wire : Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength);
      if (w.length < HEADER_BYTES + INNER_HEADER_BYTES + TAG_BYTES || w[0] !== SEAL_VERSION) {
        c.auth++;
        return { reject: 'auth' };
      }
      const id = w.subarray(1, 1 + KEY_ID_BYTES);
      const nonce = w.subarray(1 + KEY_ID_BYTES, HEADER_BYTES);
      const body = w.subarray(HEADER_BYTES, w.length - TAG_BYTES);
      const tag = w.subarray(w.length - TAG_BYTES);
      let plain: Buffer | undefined;
      for (const k of keyring.byId(id)) {
        try {
          const d = createDecipheriv('aes-256-gcm', k.key, nonce);
          d.setAAD(aad(w, binding));
          d.setAuthTag(tag);
          plain = Buffer.concat([d.update(body), d.final()]);
          break;
        } catch {
          /* not this key */
        }
      }
      if (!plain) {
        c.auth++;
        return { reject: 'auth' };
      }
      const t = now();
      const ts = plain.readUIntBE(14, 6);
      if (Math.abs(t - ts) > windowMs) {
        c.replay++;
        return { reject: 'replay' };
      }
      const sid = plain.subarray(0, 8).toString('hex');
      const n = plain.readUIntBE(8, 6);
      sweep(t);
      let s = streams.get(sid);
      if (!s) {
        if (streams.size >= maxStreams) {
          c.streamsRefused++;
          c.replay++;
          return { reject: 'replay' };
        }
        s = { highest: 0, bits: new Uint32Array(REPLAY_WINDOW / 32), lastSeenAt: t };
        streams.set(sid, s);
      }
      if (!acceptCounter(s, n)) {
        c.replay++;
        return { reject: 'replay' };
      }
      s.lastSeenAt = t;
      c.opened++;
      return plain.subarray(INNER_HEADER_BYTES);
    },
  };
}

/** The additional authenticated data: version byte and key id, then the binding if any. */
function aad(head: Buffer, binding: Uint8Array | undefined): Buffer {
  const fixed = head.subarray(0, 1 + KEY_ID_BYTES);
  return binding && binding.length > 0 ? Buffer.concat([fixed, binding]) : fixed;
}

/** Sliding-window check (RFC 6479 style): true and marked when `n` is new. */
function acceptCounter(s: Stream, n: number): boolean {
  if (n === 0) return false;
  const bit = (i: number) => [Math.floor(i / 32) % (REPLAY_WINDOW / 32), 1 << (i % 32)] as const;
  if (n > s.highest) {
    // Clear the bits of the counters the window slides past.
    const steps = Math.min(n - s.highest, REPLAY_WINDOW);
    for (let i = 1; i <= steps; i++) {
      const [w, m] = bit(s.highest + i);
      s.bits[w]! &= ~m;
    }
    s.highest = n;
    const [w, m] = bit(n);
    s.bits[w]! |= m;
    return true;
  }
  if (s.highest - n >= REPLAY_WINDOW) return false;
  const [w, m] = bit(n);
  if (s.bits[w]! & m) return false;
  s.bits[w]! |= m;
  return true;
}

/** Constant-time equality of two keys given as base64 (for the admin endpoint). */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
