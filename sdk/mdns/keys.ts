/**
 * Keys of mDNS records (RFC 6762 §16: names compare case-insensitively), shared by the SDK's
 * browser and cache and the agent's responder (which re-exports them). Pure.
 */
import dnsPacket from 'dns-packet';

type RecordEncoder = { encode(data: unknown): Buffer };
const recordEncoder = (dnsPacket as unknown as { record(type: string): RecordEncoder }).record;

/** The raw rdata of a record (without its length prefix), or undefined when it cannot be encoded. */
export function rdataOf(rr: { type: string; data?: unknown }): Buffer | undefined {
  try {
    const b = recordEncoder(rr.type).encode(rr.data);
    return b.subarray(2);
  } catch {
    return undefined;
  }
}

/** Case-insensitive name + type + rdata: identifies a record regardless of TTL. */
export function recordKey(rr: { name: string; type: string; data?: unknown }): string {
  const rd = rdataOf(rr);
  return `${String(rr.name).toLowerCase()}|${rr.type}|${rd ? lowerNameRdata(rr.type, rd) : '?'}`;
}

/** Names in PTR/SRV rdata compare case-insensitively (RFC 6762 §16): lower-case them. */
function lowerNameRdata(type: string, rd: Buffer): string {
  // Only ASCII letters fold (RFC 6762 §16); SRV's first 6 bytes are priority, weight and port.
  const from = type === 'PTR' ? 0 : type === 'SRV' ? 6 : rd.length;
  if (from >= rd.length) return rd.toString('hex');
  const b = Buffer.from(rd);
  for (let i = from; i < b.length; i++) if (b[i]! >= 0x41 && b[i]! <= 0x5a) b[i] = b[i]! + 0x20;
  return b.toString('hex');
}

/** A record's TTL in seconds (0 when absent, as for OPT). */
export const ttlOf = (rr: unknown): number => {
  const t = (rr as { ttl?: unknown } | null)?.ttl;
  return typeof t === 'number' && Number.isFinite(t) ? t : 0;
};

/** Name + type: the RRset a unique record belongs to. */
export const rrsetKey = (rr: { name: string; type: string }): string => `${String(rr.name).toLowerCase()}|${rr.type}`;
