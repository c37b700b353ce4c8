/**
 * The TXT codec (RFC 6763 §6): the fields a browser needs besides SRV and the address, as
 * `key=value` strings, version first. `encodeTxt` checks and encodes (optionally signed, `sig=`
 * last), `decodeTxt` reads untrusted strings into typed fields or a typed error. Pure.
 */
import { DecodeError, PeerlbError, UnsupportedVersionError, BadOptionError } from '../core/errors.js';
import { DEFAULT_WEIGHT, HEALTH_VALUES, LIMITS, MAX_WEIGHT, PROTOCOL_VERSION, wsPathProblem, type Endpoints, type Health } from '../core/protocol.js';
import { mdnsSigningBytes, TXT_SIG_KEY } from '../core/signing.js';

/** Signs the bytes an mDNS TXT signature covers (sdk/core/signing.ts), returning base64. */
export type TxtSigner = (data: Buffer) => string;

/** The TXT fields (RFC 6763 §6): everything a browser needs besides SRV and the address. */
/** The endpoints go in TXT as `udp=`, `tcp=`, `ws=<port>`, `wspath=<path>` (absent: '/'), `wstls=1`. */
export interface TxtFields extends Endpoints {
  /** Service name (RFC 6335: 1–15 letters, digits, hyphens): the subtype and `_<service>._udp`. */
  service: string;
  /** The node id, as in gossip: TXT `node`, and the base of the instance name. */
  node: string;
  weight: number;
  zone?: string;
  health: Health;
  /** 0..10: utilization in tenths, coarse on purpose so TXT changes (and packets) stay rare. */
  loadBucket: number;
  /** TXT `tls=1`: the agent's own port speaks TLS (`--tls-cert`), so it is dialed at wss:// (absent: ws://). */
  agentTls?: boolean;
}

export interface DecodedTxt extends TxtFields {
  version: number;
  /** TXT `sig=`: the Ed25519 signature (base64), when the cluster signs its announcements. */
  sig?: string;
}

/** RFC 6763 §6.2: the whole TXT record SHOULD stay within 1300 bytes (so a packet fits an MTU). */
export const MAX_TXT_TOTAL_BYTES = 1300;
/** Largest load bucket: tenths of utilization. */
export const MAX_LOAD_BUCKET = 10;

/** TXT keys: short (≤ 9 chars, §6.4), the version first (§6.7). */
export const TXT_KEYS = {
  version: 'v',
  service: 'svc',
  node: 'node',
  udpPort: 'udp',
  tcpPort: 'tcp',
  wsPort: 'ws',
  wsPath: 'wspath',
  wsTls: 'wstls',
  agentTls: 'tls',
  weight: 'w',
  zone: 'zone',
  health: 'h',
  loadBucket: 'load',
  sig: TXT_SIG_KEY,
} as const;

for (const k of Object.values(TXT_KEYS)) if (k.length > LIMITS.maxTxtKeyLength) throw new Error(`TXT key ${k} too long`);

/** A TCP/UDP port number (1..65535). */
export const isPort = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536;

/** The error for a record that passes an RFC size limit. */
export function limitError(message: string): PeerlbError {
  return new PeerlbError('PEERLB_ERR_LIMIT', message);
}

function checkFields(t: TxtFields): void {
  const str = (field: string, v: unknown, required: boolean) => {
    if (v === undefined && !required) return;
    if (typeof v !== 'string' || v.length === 0 || v.length > LIMITS.maxStringLength)
      throw new BadOptionError(field, `must be a non-empty string of at most ${LIMITS.maxStringLength} chars`);
  };
  str('service', t.service, true);
  str('node', t.node, true);
  str('zone', t.zone, false);
  if (t.udpPort !== undefined && !isPort(t.udpPort)) throw new BadOptionError('udpPort', 'must be a port (1..65535)');
  if (t.tcpPort !== undefined && !isPort(t.tcpPort)) throw new BadOptionError('tcpPort', 'must be a port (1..65535)');
  if (t.wsPort !== undefined && !isPort(t.wsPort)) throw new BadOptionError('wsPort', 'must be a port (1..65535)');
  if (t.wsPath !== undefined) {
    const problem = wsPathProblem(t.wsPath);
    if (problem) throw new BadOptionError('wsPath', problem);
  }
  if ((t.wsPath !== undefined || t.wsTls) && t.wsPort === undefined) throw new BadOptionError('wsPath', 'and wsTls need a wsPort');
  if (!Number.isInteger(t.weight) || t.weight < 1 || t.weight > MAX_WEIGHT) throw new BadOptionError('weight', `must be an integer in 1..${MAX_WEIGHT}`);
  if (!HEALTH_VALUES.includes(t.health)) throw new BadOptionError('health', `must be one of ${HEALTH_VALUES.join(', ')}`);
  if (!Number.isInteger(t.loadBucket) || t.loadBucket < 0 || t.loadBucket > MAX_LOAD_BUCKET)
    throw new BadOptionError('loadBucket', `must be an integer in 0..${MAX_LOAD_BUCKET}`);
}

/**
 * TXT strings for the fields, `key=value` each, version first. Throws BadOptionError for a bad
 * field and a PEERLB_ERR_LIMIT error when a string passes 255 bytes (§6.1) or the record 1300
 * bytes (§6.2).
 */
export function encodeTxt(t: TxtFields, signed?: { sign: TxtSigner; host: string; agentPort: number }): Buffer[] {
  checkFields(t);
  const pairs: [string, string | number | undefined][] = [
    [TXT_KEYS.version, PROTOCOL_VERSION],
    [TXT_KEYS.service, t.service],
    [TXT_KEYS.node, t.node],
    [TXT_KEYS.udpPort, t.udpPort],
    [TXT_KEYS.tcpPort, t.tcpPort],
    [TXT_KEYS.wsPort, t.wsPort],
    // '/' is the default: left out, so a ws endpoint costs one TXT string in the common case.
    [TXT_KEYS.wsPath, t.wsPath === '/' ? undefined : t.wsPath],
    [TXT_KEYS.wsTls, t.wsTls ? 1 : undefined],
    // Only with TLS: an agent without it announces what it did before.
    [TXT_KEYS.agentTls, t.agentTls ? 1 : undefined],
    [TXT_KEYS.weight, t.weight],
    [TXT_KEYS.zone, t.zone],
    [TXT_KEYS.health, t.health],
    [TXT_KEYS.loadBucket, t.loadBucket],
  ];
  const out: Buffer[] = [];
  let total = 0;
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    const b = Buffer.from(`${k}=${v}`, 'utf8');
    if (b.length > LIMITS.maxTxtStringBytes) throw limitError(`TXT string "${k}=…" is ${b.length} bytes, more than ${LIMITS.maxTxtStringBytes} (RFC 6763 §6.1)`);
    total += b.length + 1;
    out.push(b);
  }
  if (signed) {
    // Last, so that the strings before it are exactly what it signs.
    const b = Buffer.from(`${TXT_KEYS.sig}=${signed.sign(asBuffer(mdnsSigningBytes(signed.host, signed.agentPort, out)))}`, 'utf8');
    total += b.length + 1;
    out.push(b);
  }
  if (total > MAX_TXT_TOTAL_BYTES) throw limitError(`TXT record is ${total} bytes, more than ${MAX_TXT_TOTAL_BYTES} (RFC 6763 §6.2)`);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseUint(key: string, s: string, min: number, max: number): number {
  if (!/^[0-9]{1,6}$/.test(s)) throw new DecodeError(`TXT ${key}= must be a decimal integer, got ${JSON.stringify(s.slice(0, 40))}`);
  const n = Number(s);
  if (n < min || n > max) throw new DecodeError(`TXT ${key}= must be in ${min}..${max}, got ${n}`);
  return n;
}

/**
 * Decode TXT strings (as dns-packet gives them: Buffers). Keys are case-insensitive and only the
 * first of a repeated key counts (§6.4); unknown keys, empty strings and strings starting with
 * `=` are ignored; a known key with a missing or bad value is a DecodeError. A `v` other than
 * PROTOCOL_VERSION is an UnsupportedVersionError.
 */
export function decodeTxt(strings: readonly unknown[]): DecodedTxt {
  if (!Array.isArray(strings)) throw new DecodeError('TXT data must be a list of strings');
  if (strings.length > 64) throw new DecodeError(`TXT has ${strings.length} strings, more than 64`);
  const known = new Set<string>(Object.values(TXT_KEYS));
  const found = new Map<string, string>();
  for (const item of strings) {
    let b: Uint8Array;
    if (typeof item === 'string') b = Buffer.from(item, 'utf8');
    else if (item instanceof Uint8Array) b = item;
    else throw new DecodeError('TXT string must be bytes');
    if (b.length > LIMITS.maxTxtStringBytes) throw new DecodeError(`TXT string of ${b.length} bytes, more than ${LIMITS.maxTxtStringBytes}`);
    if (b.length === 0) continue;
    const eq = b.indexOf(0x3d);
    if (eq === 0) continue; // §6.4: a string starting with '=' is silently ignored
    const keyBytes = eq < 0 ? b : b.subarray(0, eq);
    // §6.4: keys are printable US-ASCII; anything else cannot be one of ours.
    if (keyBytes.some((c) => c < 0x20 || c > 0x7e)) continue;
    const key = Buffer.from(keyBytes).toString('latin1').toLowerCase();
    if (!known.has(key) || found.has(key)) continue;
    if (eq < 0) throw new DecodeError(`TXT ${key} has no value`);
    let value: string;
    try {
      value = utf8.decode(b.subarray(eq + 1));
    } catch {
      throw new DecodeError(`TXT ${key}= is not valid UTF-8`);
    }
    found.set(key, value);
  }

  const v = found.get(TXT_KEYS.version);
  if (v === undefined) throw new DecodeError('TXT has no v= (protocol version)');
  if (!/^[0-9]{1,9}$/.test(v)) throw new DecodeError(`TXT v= must be an integer, got ${JSON.stringify(v.slice(0, 40))}`);
  if (Number(v) !== PROTOCOL_VERSION) throw new UnsupportedVersionError(Number(v), PROTOCOL_VERSION);

  const str = (key: string, required: boolean): string | undefined => {
    const s = found.get(key);
    if (s === undefined) {
      if (required) throw new DecodeError(`TXT has no ${key}=`);
      return undefined;
    }
    if (s.length === 0 || s.length > LIMITS.maxStringLength) throw new DecodeError(`TXT ${key}= must be a non-empty string`);
    return s;
  };
  const out: DecodedTxt = {
    version: PROTOCOL_VERSION,
    service: str(TXT_KEYS.service, true)!,
    node: str(TXT_KEYS.node, true)!,
    weight: DEFAULT_WEIGHT,
    health: 'healthy',
    loadBucket: 0,
  };
  const udp = found.get(TXT_KEYS.udpPort);
  if (udp !== undefined) out.udpPort = parseUint(TXT_KEYS.udpPort, udp, 1, 65535);
  const tcp = found.get(TXT_KEYS.tcpPort);
  if (tcp !== undefined) out.tcpPort = parseUint(TXT_KEYS.tcpPort, tcp, 1, 65535);
  const ws = found.get(TXT_KEYS.wsPort);
  if (ws !== undefined) {
    out.wsPort = parseUint(TXT_KEYS.wsPort, ws, 1, 65535);
    const path = found.get(TXT_KEYS.wsPath) ?? '/';
    const problem = wsPathProblem(path);
    if (problem) throw new DecodeError(`TXT ${TXT_KEYS.wsPath}= ${problem}`);
    out.wsPath = path;
    const tls = found.get(TXT_KEYS.wsTls);
    if (tls !== undefined && tls !== '0' && tls !== '1') throw new DecodeError(`TXT ${TXT_KEYS.wsTls}= must be 0 or 1, got ${JSON.stringify(tls.slice(0, 40))}`);
    if (tls === '1') out.wsTls = true;
  }
  // wspath= and wstls= without ws= describe no endpoint: ignored, as unknown keys are.
  const agentTls = found.get(TXT_KEYS.agentTls);
  if (agentTls !== undefined && agentTls !== '0' && agentTls !== '1') throw new DecodeError(`TXT ${TXT_KEYS.agentTls}= must be 0 or 1, got ${JSON.stringify(agentTls.slice(0, 40))}`);
  if (agentTls === '1') out.agentTls = true;
  const w = found.get(TXT_KEYS.weight);
  if (w !== undefined) out.weight = parseUint(TXT_KEYS.weight, w, 1, MAX_WEIGHT);
  const zone = str(TXT_KEYS.zone, false);
  if (zone !== undefined) out.zone = zone;
  const h = found.get(TXT_KEYS.health);
  if (h !== undefined) {
    if (!HEALTH_VALUES.includes(h as Health)) throw new DecodeError(`TXT h= must be one of ${HEALTH_VALUES.join(', ')}`);
    out.health = h as Health;
  }
  const load = found.get(TXT_KEYS.loadBucket);
  if (load !== undefined) out.loadBucket = parseUint(TXT_KEYS.loadBucket, load, 0, MAX_LOAD_BUCKET);
  const sig = found.get(TXT_KEYS.sig);
  if (sig !== undefined) out.sig = sig;
  return out;
}

/** The core's signing bytes (a Uint8Array) as a Buffer, without a copy. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
