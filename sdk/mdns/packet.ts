/**
 * Packet helpers both mDNS halves use (RFC 6762): the port, the class bits of questions and
 * records, the size a packet may have, and splitting a large message into packets (§7.2, §17).
 * Pure: nothing here touches a socket or a clock.
 */
import dnsPacket from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';
import { recordKey } from './keys.js';

/** The well-known mDNS port (RFC 6762 §3); queries from any other port are "legacy unicast" (§6.7). */
export const MDNS_PORT = 5353;
/** RFC 6762 §5.4: the top bit of a question's class asks for a unicast response. */
export const QU_BIT = 0x8000;
/** RFC 6762 §10.2: the top bit of a record's class is the cache-flush bit. */
export const CACHE_FLUSH_BIT = 0x8000;
/**
 * RFC 6762 §17: a packet, IP and UDP headers included, MUST NOT exceed 9000 bytes, and SHOULD fit
 * the MTU. dns-packet never compresses names, so we stay under an Ethernet MTU (1500 − 40 IPv6 −
 * 8 UDP, rounded down) and split larger messages.
 */
export const MAX_PACKET_BYTES = 1440;

/** Class number and unicast-response bit of a decoded question (dns-packet names QU classes `UNKNOWN_<n>`). */
export function questionClass(q: { class?: unknown }): { klass: number; qu: boolean } {
  const c = q.class;
  let n = 1;
  if (c === undefined || c === 'IN') n = 1;
  else if (c === 'ANY') n = 255;
  else if (typeof c === 'string' && /^UNKNOWN_\d+$/.test(c)) n = Number(c.slice(8));
  else if (typeof c === 'number') n = c;
  else n = 0;
  return { klass: n & ~QU_BIT, qu: (n & QU_BIT) !== 0 };
}

/** Encoded size of a message, or Infinity when it cannot be encoded. */
export function packetSize(p: Packet): number {
  try {
    return dnsPacket.encodingLength(p);
  } catch {
    return Infinity;
  }
}

/**
 * Split a message into packets of at most `max` bytes. Questions and authorities stay in the
 * first packet; answers, then additionals, are spread. For a query the Answer section is the
 * known-answer list, and every packet but the last has the TC bit (§7.2: "more known answers
 * follow"). A record too big on its own still goes, alone. Pure.
 */
export function splitPacket(p: Packet, max: number = MAX_PACKET_BYTES): Packet[] {
  if (packetSize(p) <= max) return [p];
  const isQuery = p.type !== 'response';
  const base = (first: boolean): Packet => ({
    id: p.id ?? 0,
    type: p.type ?? 'query',
    flags: p.flags ?? 0,
    questions: first ? (p.questions ?? []) : [],
    answers: [],
    authorities: first ? (p.authorities ?? []) : [],
    additionals: [],
  });
  const out: Packet[] = [];
  let cur = base(true);
  const push = (section: 'answers' | 'additionals', rr: Answer) => {
    cur[section]!.push(rr);
    if (packetSize(cur) > max && cur.answers!.length + cur.additionals!.length > 1) {
      cur[section]!.pop();
      out.push(cur);
      cur = base(false);
      cur[section]!.push(rr);
    }
  };
  for (const rr of p.answers ?? []) push('answers', rr);
  for (const rr of p.additionals ?? []) push('additionals', rr);
  out.push(cur);
  if (isQuery) for (let i = 0; i < out.length - 1; i++) out[i]!.flags = (out[i]!.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE;
  return out;
}

/** Questions and known answers of a query, order-free: how a query's multicast echo is recognised. */
export function querySignature(p: { questions?: unknown; answers?: unknown }): string {
  const qs = (Array.isArray(p.questions) ? p.questions : []).map((q: { name?: unknown; type?: unknown }) => `${String(q?.name).toLowerCase()}|${String(q?.type)}`).sort();
  const ks = (Array.isArray(p.answers) ? p.answers : []).map((rr: Answer) => (rr && typeof rr.name === 'string' ? recordKey(rr) : '?')).sort();
  return JSON.stringify([qs, ks]);
}

/** The answers and additionals of a received message that look like records (an object with a name), at most `max`. */
export function recordsOf(packet: { answers?: unknown; additionals?: unknown }, max = Infinity): Answer[] {
  const all: Answer[] = [];
  for (const list of [packet.answers, packet.additionals])
    if (Array.isArray(list)) for (const rr of list) if (rr && typeof rr === 'object' && typeof rr.name === 'string' && all.length < max) all.push(rr as Answer);
  return all;
}
