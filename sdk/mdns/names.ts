/**
 * DNS-SD names and TTLs of the records an agent announces (RFC 6763 §4, §7, §9; RFC 6762 §10):
 * instance and host labels (with the rename suffix a conflict adds), the service types, and the
 * TTLs by kind of record. Pure; the record set itself is records.ts.
 */
import { MDNS_SERVICE_TYPE } from '../core/protocol.js';
import type { AnnounceInfo } from './records.js';

/** RFC 6763 §9: the meta-query that lists every service type on the link. */
export const SERVICES_ENUMERATION = '_services._dns-sd._udp.local';
/** RFC 6762 §3: the link-local domain. */
export const LOCAL_DOMAIN = 'local';
/** RFC 1035 §2.3.4: a label holds at most 63 octets. */
export const MAX_LABEL_BYTES = 63;

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
