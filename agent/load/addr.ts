/**
 * IP address helpers shared by the load concerns: parse a textual address into 16 bytes (IPv4 as
 * IPv4-mapped IPv6, RFC 4291 §2.5.5.2) so that `127.0.0.1`, `::ffff:127.0.0.1` and the kernel's
 * hex forms compare equal, and decide whether a peer is on loopback.
 *
 * Pure functions: no I/O, never throw on bad input (they return `undefined` / `false`).
 */
import { isIPv4, isIPv6 } from 'node:net';

/** 16 bytes of an IPv6 address; IPv4 addresses are stored IPv4-mapped (`::ffff:a.b.c.d`). */
export type IpBytes = Uint8Array;

function parseIPv4Into(s: string, out: Uint8Array, at: number): boolean {
  if (!isIPv4(s)) return false;
  const parts = s.split('.');
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i]);
  return true;
}

/**
 * Parse an IPv4 or IPv6 literal (optionally in brackets, optionally with a `%zone`) into 16 bytes.
 * Returns undefined for anything else, hostnames included.
 */
export function parseIp(text: unknown): IpBytes | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return undefined;
  let s = text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const out = new Uint8Array(16);
  if (isIPv4(s)) {
    out[10] = 0xff;
    out[11] = 0xff;
    parseIPv4Into(s, out, 12);
    return out;
  }
  if (!isIPv6(s)) return undefined;
  // Split around the one "::" allowed (RFC 4291 §2.2); the last group may be a dotted quad.
  const dbl = s.indexOf('::');
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const tail = dbl >= 0 ? s.slice(dbl + 2) : '';
  const toWords = (part: string): number[] | undefined => {
    if (part === '') return [];
    const words: number[] = [];
    const groups = part.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (g.includes('.')) {
        if (i !== groups.length - 1) return undefined;
        const q = new Uint8Array(4);
        if (!parseIPv4Into(g, q, 0)) return undefined;
        words.push((q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        words.push(parseInt(g, 16));
      }
    }
    return words;
  };
  const hw = toWords(head);
  const tw = toWords(tail);
  if (!hw || !tw) return undefined;
  const zeros = 8 - hw.length - tw.length;
  if (zeros < 0 || (dbl < 0 && zeros !== 0)) return undefined;
  const words = [...hw, ...new Array<number>(zeros).fill(0), ...tw];
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** True when the 16 bytes are an IPv4-mapped address (`::ffff:0:0/96`). */
export function isV4Mapped(b: IpBytes): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** True for the unspecified addresses `0.0.0.0` and `::` (a wildcard bind). */
export function isUnspecified(b: IpBytes): boolean {
  if (isV4Mapped(b)) return b[12] === 0 && b[13] === 0 && b[14] === 0 && b[15] === 0;
  return b.every((x) => x === 0);
}

export function sameIp(a: IpBytes, b: IpBytes): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Text form: dotted quad for IPv4 and IPv4-mapped (`::ffff:` prefix kept when `mapped` is true),
 * RFC 5952 §4 compressed lower-case hex for the rest.
 */
export function formatIp(b: IpBytes, mapped = false): string {
  if (isV4Mapped(b)) {
    const v4 = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
    return mapped ? `::ffff:${v4}` : v4;
  }
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  // RFC 5952 §4.2.3: compress the longest run of ≥ 2 zero words, the first one on a tie.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/**
 * Is this remote address loopback? 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1 (RFC 4291 §2.5.3), and
 * 127.0.0.0/8 written IPv4-mapped (`::ffff:127.0.0.1`, what a dual-stack socket reports).
 * Anything unparseable is not loopback.
 */
export function isLoopbackAddress(address: unknown): boolean {
  const b = parseIp(address);
  if (!b) return false;
  if (isV4Mapped(b)) return b[12] === 127;
  for (let i = 0; i < 15; i++) if (b[i] !== 0) return false;
  return b[15] === 1;
}
