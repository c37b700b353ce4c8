/**
 * The DNS-SD record set an agent announces, and the pure coders both sides use (STYLE.md
 * practice 5): `buildRecords` (info → records), `encodeTxt` / `decodeTxt` (TXT strings), and
 * `parseAnnouncement` (a received response → announcements, or typed errors).
 *
 * This module imports nothing from the agent: the SDK's mDNS browser uses it too.
 *
 * For an agent `n1` of service `game` on 10.0.0.5 (agent port 7946, server udp 7001 / tcp 7000):
 *
 *   _services._dns-sd._udp.local  PTR  _peerlb._tcp.local              RFC 6763 §9 (enumeration)
 *   _services._dns-sd._udp.local  PTR  _game._udp.local
 *   _services._dns-sd._udp.local  PTR  _game._tcp.local
 *   _peerlb._tcp.local            PTR  n1._peerlb._tcp.local           RFC 6763 §4.1
 *   _game._sub._peerlb._tcp.local PTR  n1._peerlb._tcp.local           RFC 6763 §7.1 (subtype)
 *   n1._peerlb._tcp.local         SRV  0 0 7946 peerlb-n1.local        RFC 6763 §5, RFC 2782
 *   n1._peerlb._tcp.local         TXT  v=1 svc=game node=n1 udp=7001 tcp=7000 w=100 h=healthy load=0
 *   _game._udp.local              PTR  n1._game._udp.local             the server itself, so any
 *   n1._game._udp.local           SRV  0 0 7001 peerlb-n1.local        DNS-SD browser lists it
 *   n1._game._udp.local           TXT  (same strings)
 *   _game._tcp.local              PTR  n1._game._tcp.local
 *   n1._game._tcp.local           SRV  0 0 7000 peerlb-n1.local
 *   n1._game._tcp.local           TXT  (same strings)
 *   peerlb-n1.local               A    10.0.0.5                        (AAAA for an IPv6 host)
 *
 * PTR records are shared (many hosts may hold the same name); SRV, TXT and A/AAAA are unique to
 * this host: they are probed (RFC 6762 §8.1) and sent with the cache-flush bit (§10.2).
 */
import net from 'node:net';
import type { Answer, SrvData } from 'dns-packet';
import { DecodeError, PeerlbError, UnsupportedVersionError, BadOptionError } from '../core/errors.js';
import { DEFAULT_WEIGHT, HEALTH_VALUES, LIMITS, MAX_WEIGHT, MDNS_SERVICE_TYPE, PROTOCOL_VERSION, type Health } from '../core/protocol.js';
import { mdnsSigningBytes, TXT_SIG_KEY } from '../core/signing.js';

/** Signs the bytes an mDNS TXT signature covers (sdk/core/signing.ts), returning base64. */
export type TxtSigner = (data: Buffer) => string;

/** What an agent announces about itself and its server. */
export interface AnnounceInfo {
  /** The node id, as in gossip: TXT `node`, and the base of the instance name. */
  node: string;
  /** Service name (RFC 6335: 1–15 letters, digits, hyphens): the subtype and `_<service>._udp`. */
  service: string;
  /** IPv4 or IPv6 literal of the host: the A or AAAA record. */
  host: string;
  /** Host label without `.local` (default `peerlb-<node>`, made a valid host label). */
  hostname?: string;
  /** The agent's port: SRV of the `_peerlb._tcp` instance. */
  agentPort: number;
  udpPort?: number;
  tcpPort?: number;
  weight: number;
  zone?: string;
  health: Health;
  /** 0..10: utilization in tenths, coarse on purpose so TXT changes (and packets) stay rare. */
  loadBucket: number;
  /**
   * The utilization (0..1) the bucket comes from. Given, the announcer derives `loadBucket` from
   * it with hysteresis and a minimum interval (load-bucket.ts); records built here ignore it.
   */
  utilization?: number;
}

/** The TXT fields (RFC 6763 §6): everything a browser needs besides SRV and the address. */
export interface TxtFields {
  service: string;
  node: string;
  udpPort?: number;
  tcpPort?: number;
  weight: number;
  zone?: string;
  health: Health;
  loadBucket: number;
}

export interface DecodedTxt extends TxtFields {
  version: number;
  /** TXT `sig=`: the Ed25519 signature (base64), when the cluster signs its announcements. */
  sig?: string;
}

/** One announced instance, as a received response describes it. */
export interface Announcement extends TxtFields {
  /** Full instance name, e.g. `n1._peerlb._tcp.local`. */
  instance: string;
  host: string;
  agentPort: number;
  /** Smallest TTL of the SRV, TXT and address records, in seconds; 0 means a goodbye. */
  ttl: number;
  /** When the TXT has a `sig=`: it, and the bytes it must sign (address, agent port, the other TXT strings). */
  signature?: { sig: string; data: Buffer };
}

// ---------------------------------------------------------------------------------------------
// Names and TTLs

/** RFC 6763 §9: the meta-query that lists every service type on the link. */
export const SERVICES_ENUMERATION = '_services._dns-sd._udp.local';
/** RFC 6762 §3: the link-local domain. */
export const LOCAL_DOMAIN = 'local';
/** RFC 1035 §2.3.4: a label holds at most 63 octets. */
export const MAX_LABEL_BYTES = 63;
/** RFC 6763 §6.2: the whole TXT record SHOULD stay within 1300 bytes (so a packet fits an MTU). */
export const MAX_TXT_TOTAL_BYTES = 1300;
/** Largest load bucket: tenths of utilization. */
export const MAX_LOAD_BUCKET = 10;

/** TTLs in seconds, by kind of record. */
export interface Ttls {
  /** SRV, A, AAAA: records naming or naming the address of a host. */
  host: number;
  /** TXT: the instance's data. */
  txt: number;
  /** PTR: the lists (service type, subtype, enumeration). */
  ptr: number;
}

/**
 * RFC 6762 §10: "120 seconds for records containing a host name (SRV, A, AAAA), 75 minutes for
 * other records" (TXT, PTR).
 */
export const RFC6762_TTLS: Readonly<Ttls> = Object.freeze({ host: 120, txt: 4500, ptr: 4500 });

/**
 * peerlb's default: SRV, TXT and A/AAAA live 20 s, PTR keeps the RFC's 75 minutes.
 *
 * The TTL of SRV/TXT/address is how long a server that vanished without a goodbye (kill -9, power
 * loss, a cut cable) stays in an mDNS-only view. For TCP the SDK notices a dead server at the
 * first refused connect, but UDP has no such signal: datagrams to a dead server are silently
 * lost, so every second of stale record black-holes that server's share of traffic. TXT carries
 * live data (health, load bucket): its TTL bounds how stale it gets when both re-announcements of
 * a change were lost. The cost is refresh traffic: browsers query at 80 % of the TTL (RFC 6762
 * §5.2) and every multicast answer refreshes every cache on the link, so it is about three
 * records per agent per 16 s whatever the number of clients. PTR records only say "this instance
 * exists": keeping 4500 s lets continuous PTR queries carry them as known answers, which silences
 * every responder (§7.1), so the frequent browse queries cost one small packet and no answers.
 */
export const DEFAULT_TTLS: Readonly<Ttls> = Object.freeze({ host: 20, txt: 20, ptr: 4500 });

/** RFC 6762 §10.1: a goodbye is the record with TTL zero. */
export const GOODBYE_TTL = 0;

export interface RecordNames {
  /** The instance label (the node, or `node (2)` after a conflict). */
  label: string;
  /** `<label>._peerlb._tcp.local` */
  instance: string;
  /** `_<service>._sub._peerlb._tcp.local` */
  subtype: string;
  /** `<hostname>.local` */
  hostname: string;
  /** `_<service>._udp.local` and `<label>._<service>._udp.local`, when there is a UDP port. */
  udpType?: string;
  udpInstance?: string;
  tcpType?: string;
  tcpInstance?: string;
}

export const subtypeName = (service: string): string => `_${service}._sub.${MDNS_SERVICE_TYPE}`;
export const serverServiceType = (service: string, proto: 'udp' | 'tcp'): string => `_${service}._${proto}.${LOCAL_DOMAIN}`;

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > maxBytes) break;
    out += ch;
  }
  return out;
}

/**
 * The instance label for a node: the node itself, with dots replaced (dns-packet cannot escape a
 * dot inside a label) and room left for a ` (NN)` rename suffix. The node id proper travels in
 * TXT `node`, so this label is only a name.
 */
export function instanceLabel(node: string, rename = 1): string {
  const suffix = rename > 1 ? ` (${rename})` : '';
  const base = truncateUtf8(node.replace(/\./g, '-'), MAX_LABEL_BYTES - Buffer.byteLength(suffix));
  return base + suffix;
}

/** A host label (RFC 1123: letters, digits, hyphens), `peerlb-<node>` unless given; `-N` after a conflict. */
export function hostLabel(info: Pick<AnnounceInfo, 'node' | 'hostname'>, rename = 1): string {
  const raw = info.hostname ?? `peerlb-${info.node}`;
  const suffix = rename > 1 ? `-${rename}` : '';
  let base = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '');
  if (base === '') base = 'peerlb';
  base = base.slice(0, MAX_LABEL_BYTES - suffix.length).replace(/-+$/, '');
  return base + suffix;
}

/** RFC 6335 §5.1: 1–15 chars, letters digits and hyphens, at least one letter, no leading, trailing or double hyphen. */
export function isServiceName(s: string): boolean {
  return /^[A-Za-z0-9](?:-?[A-Za-z0-9])*$/.test(s) && s.length <= 15 && /[A-Za-z]/.test(s);
}

export function recordNames(info: Pick<AnnounceInfo, 'node' | 'service' | 'hostname' | 'udpPort' | 'tcpPort'>, rename = 1): RecordNames {
  const label = instanceLabel(info.node, rename);
  const names: RecordNames = {
    label,
    instance: `${label}.${MDNS_SERVICE_TYPE}`,
    subtype: subtypeName(info.service),
    hostname: `${hostLabel(info, rename)}.${LOCAL_DOMAIN}`,
  };
  if (info.udpPort !== undefined) {
    names.udpType = serverServiceType(info.service, 'udp');
    names.udpInstance = `${label}.${names.udpType}`;
  }
  if (info.tcpPort !== undefined) {
    names.tcpType = serverServiceType(info.service, 'tcp');
    names.tcpInstance = `${label}.${names.tcpType}`;
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// TXT (RFC 6763 §6)

/** TXT keys: short (≤ 9 chars, §6.4), the version first (§6.7). */
export const TXT_KEYS = {
  version: 'v',
  service: 'svc',
  node: 'node',
  udpPort: 'udp',
  tcpPort: 'tcp',
  weight: 'w',
  zone: 'zone',
  health: 'h',
  loadBucket: 'load',
  sig: TXT_SIG_KEY,
} as const;

for (const k of Object.values(TXT_KEYS)) if (k.length > LIMITS.maxTxtKeyLength) throw new Error(`TXT key ${k} too long`);

const isPort = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536;

function limitError(message: string): PeerlbError {
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

// ---------------------------------------------------------------------------------------------
// The record set

/** A record this host answers for; `unique` ones are probed and sent with the cache-flush bit. */
export interface OwnedRecord {
  rr: Answer;
  unique: boolean;
}

export interface RecordSet {
  names: RecordNames;
  records: OwnedRecord[];
}

export function checkAnnounceInfo(info: AnnounceInfo): void {
  if (!isServiceName(info.service)) throw new BadOptionError('service', `must be an RFC 6335 service name (1-15 letters, digits, hyphens), got ${JSON.stringify(info.service)}`);
  if (typeof info.node !== 'string' || info.node.length === 0) throw new BadOptionError('node', 'must be a non-empty string');
  if (!net.isIP(info.host)) throw new BadOptionError('host', `must be an IPv4 or IPv6 literal, got ${JSON.stringify(info.host)}`);
  if (!isPort(info.agentPort)) throw new BadOptionError('agentPort', 'must be a port (1..65535)');
}

/**
 * Every record of the set for `info`, named with rename number `rename` (1 = no suffix).
 * Throws BadOptionError / PEERLB_ERR_LIMIT when info cannot be announced.
 */
export function buildRecords(info: AnnounceInfo, opts: { rename?: number; ttls?: Ttls; sign?: TxtSigner } = {}): RecordSet {
  checkAnnounceInfo(info);
  const ttls = opts.ttls ?? DEFAULT_TTLS;
  const names = recordNames(info, opts.rename ?? 1);
  const txt = encodeTxt(info, opts.sign ? { sign: opts.sign, host: info.host, agentPort: info.agentPort } : undefined);
  const shared = (name: string, data: string): OwnedRecord => ({ rr: { name, type: 'PTR', class: 'IN', ttl: ttls.ptr, data }, unique: false });
  const srv = (name: string, port: number): OwnedRecord => ({
    rr: { name, type: 'SRV', class: 'IN', ttl: ttls.host, data: { priority: 0, weight: 0, port, target: names.hostname } },
    unique: true,
  });
  const text = (name: string): OwnedRecord => ({ rr: { name, type: 'TXT', class: 'IN', ttl: ttls.txt, data: txt.map((b) => Buffer.from(b)) }, unique: true });

  const records: OwnedRecord[] = [shared(SERVICES_ENUMERATION, MDNS_SERVICE_TYPE)];
  if (names.udpType) records.push(shared(SERVICES_ENUMERATION, names.udpType));
  if (names.tcpType) records.push(shared(SERVICES_ENUMERATION, names.tcpType));
  records.push(shared(MDNS_SERVICE_TYPE, names.instance), shared(names.subtype, names.instance));
  records.push(srv(names.instance, info.agentPort), text(names.instance));
  if (names.udpType && names.udpInstance && info.udpPort !== undefined)
    records.push(shared(names.udpType, names.udpInstance), srv(names.udpInstance, info.udpPort), text(names.udpInstance));
  if (names.tcpType && names.tcpInstance && info.tcpPort !== undefined)
    records.push(shared(names.tcpType, names.tcpInstance), srv(names.tcpInstance, info.tcpPort), text(names.tcpInstance));
  records.push({ rr: { name: names.hostname, type: net.isIPv6(info.host) ? 'AAAA' : 'A', class: 'IN', ttl: ttls.host, data: info.host }, unique: true });

  for (const r of records)
    for (const label of r.rr.name.split('.'))
      if (Buffer.byteLength(label) > MAX_LABEL_BYTES) throw limitError(`DNS label "${label}" is longer than ${MAX_LABEL_BYTES} bytes`);
  return { names, records };
}

/** The same records with TTL 0: RFC 6762 §10.1 goodbyes. */
export function goodbyes(records: readonly Answer[]): Answer[] {
  return records.map((rr) => ({ ...rr, ttl: GOODBYE_TTL }) as Answer);
}

// ---------------------------------------------------------------------------------------------
// Reading announcements

/** Is `name` (any case) an instance of `_peerlb._tcp.local`? Returns the lower-cased name or undefined. */
export function peerlbInstanceName(name: unknown): string | undefined {
  if (typeof name !== 'string') return undefined;
  const n = name.toLowerCase();
  const suffix = '.' + MDNS_SERVICE_TYPE;
  return n.length > suffix.length && n.endsWith(suffix) ? n : undefined;
}

/** SRV data from an untrusted record, or a DecodeError. */
export function checkSrv(data: unknown): SrvData & { target: string; port: number } {
  if (typeof data !== 'object' || data === null) throw new DecodeError('SRV data must be an object');
  const d = data as Record<string, unknown>;
  if (!isPort(d.port)) throw new DecodeError(`SRV port must be 1..65535, got ${String(d.port)}`);
  if (typeof d.target !== 'string' || d.target.length === 0 || d.target === '.') throw new DecodeError('SRV target must be a host name');
  return { priority: Number(d.priority) || 0, weight: Number(d.weight) || 0, port: d.port, target: d.target };
}

/** Put an announcement together from its pieces; throws DecodeError / UnsupportedVersionError. */
export function assembleAnnouncement(instance: string, srv: unknown, txt: unknown, address: unknown, ttl: number): Announcement {
  const s = checkSrv(srv);
  if (typeof address !== 'string' || !net.isIP(address)) throw new DecodeError(`address of ${s.target} is not an IP literal`);
  const t = decodeTxt(txt as unknown[]);
  const a: Announcement = {
    instance,
    node: t.node,
    service: t.service,
    host: address,
    agentPort: s.port,
    weight: t.weight,
    health: t.health,
    loadBucket: t.loadBucket,
    ttl,
  };
  if (t.sig !== undefined) {
    const others: Uint8Array[] = [];
    for (const x of txt as unknown[]) {
      const b = typeof x === 'string' ? Buffer.from(x, 'utf8') : x instanceof Uint8Array ? x : undefined;
      if (!b) continue;
      const eq = b.indexOf(0x3d);
      if (Buffer.from(eq < 0 ? b : b.subarray(0, eq)).toString('latin1').toLowerCase() !== TXT_KEYS.sig) others.push(b);
    }
    a.signature = { sig: t.sig, data: asBuffer(mdnsSigningBytes(address, s.port, others)) };
  }
  if (t.udpPort !== undefined) a.udpPort = t.udpPort;
  if (t.tcpPort !== undefined) a.tcpPort = t.tcpPort;
  if (t.zone !== undefined) a.zone = t.zone;
  return a;
}

export interface ParsedAnnouncements {
  announcements: Announcement[];
  /** One per instance whose records were present but wrong (bad TXT, version, SRV, address). */
  errors: PeerlbError[];
}

/**
 * Every complete `_peerlb._tcp` instance in a received response (answers and additionals):
 * SRV, TXT and an A/AAAA for the SRV target. Incomplete instances (a piece in another packet)
 * are skipped, not errors; a browser resolves those itself. Never throws.
 */
export function parseAnnouncement(packet: { answers?: unknown; additionals?: unknown }): ParsedAnnouncements {
  const out: ParsedAnnouncements = { announcements: [], errors: [] };
  const all: Answer[] = [];
  for (const list of [packet?.answers, packet?.additionals]) if (Array.isArray(list)) for (const rr of list) if (rr && typeof rr === 'object') all.push(rr as Answer);
  const ttlOf = (rr: Answer): number => (typeof (rr as { ttl?: unknown }).ttl === 'number' ? (rr as { ttl: number }).ttl : 0);
  const seen = new Set<string>();
  for (const rr of all) {
    if (rr.type !== 'SRV') continue;
    const instance = peerlbInstanceName(rr.name);
    if (!instance || seen.has(instance)) continue;
    seen.add(instance);
    const txt = all.find((x) => x.type === 'TXT' && typeof x.name === 'string' && x.name.toLowerCase() === instance);
    if (!txt) continue;
    const srvData = (rr as { data?: unknown }).data as { target?: unknown } | undefined;
    const target = typeof srvData?.target === 'string' ? srvData.target.toLowerCase() : undefined;
    const addr =
      all.find((x) => x.type === 'A' && typeof x.name === 'string' && x.name.toLowerCase() === target) ??
      all.find((x) => x.type === 'AAAA' && typeof x.name === 'string' && x.name.toLowerCase() === target);
    if (target !== undefined && !addr) continue;
    try {
      const ttl = Math.min(ttlOf(rr), ttlOf(txt), addr ? ttlOf(addr) : 0);
      out.announcements.push(assembleAnnouncement(instance, srvData, (txt as { data?: unknown }).data, (addr as { data?: unknown } | undefined)?.data, ttl));
    } catch (err) {
      out.errors.push(err instanceof PeerlbError ? err : new DecodeError(`instance ${instance}: ${(err as Error).message}`, { cause: err }));
    }
  }
  return out;
}

/** The core's signing bytes (a Uint8Array) as a Buffer, without a copy. */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
