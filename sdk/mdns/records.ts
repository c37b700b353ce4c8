/**
 * The DNS-SD record set an agent announces, and the pure coders both sides use (ARCHITECTURE.md,
 * practice 5): `buildRecords` (info → records) and `parseAnnouncement` (a received response →
 * announcements, or typed errors). Names and TTLs are in names.ts, the TXT codec in txt.ts;
 * both are re-exported here.
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
import { BadOptionError, DecodeError, PeerlbError } from '../core/errors.js';
import { copyEndpoints, MDNS_SERVICE_TYPE } from '../core/protocol.js';
import { mdnsSigningBytes } from '../core/signing.js';
import { DEFAULT_TTLS, GOODBYE_TTL, MAX_LABEL_BYTES, SERVICES_ENUMERATION, isServiceName, recordNames, type RecordNames, type Ttls } from './names.js';
import { TXT_KEYS, asBuffer, decodeTxt, encodeTxt, isPort, limitError, type TxtFields, type TxtSigner } from './txt.js';

export * from './names.js';
export * from './txt.js';

/** What an agent announces about itself and its server: the TXT fields, and where it is. */
export interface AnnounceInfo extends TxtFields {
  /** IPv4 or IPv6 literal of the host: the A or AAAA record. */
  host: string;
  /** Host label without `.local` (default `peerlb-<node>`, made a valid host label). */
  hostname?: string;
  /** The agent's port: SRV of the `_peerlb._tcp` instance. */
  agentPort: number;
  /**
   * The utilization (0..1) the bucket comes from. Given, the announcer derives `loadBucket` from
   * it with hysteresis and a minimum interval (load-bucket.ts); records built here ignore it.
   */
  utilization?: number;
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
  copyEndpoints(t, a);
  if (t.zone !== undefined) a.zone = t.zone;
  if (t.agentTls) a.agentTls = true;
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
