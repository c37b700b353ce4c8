/**
 * Signed announcements: a cluster may have an Ed25519 signing key. Each agent that has it signs
 * what it says about ITS OWN server — its mDNS TXT data and its own member record — and nothing
 * else: other members' records travel through gossip with the signature their own agent made,
 * unchanged, and every agent relays them that way on /v1/watch. A member whose agent has no key is
 * relayed unsigned. An SDK given the public key (`join({ verify: { publicKey } })`) ignores servers
 * whose signature is missing or wrong, whichever agent relays them, and says so with a 'rejected'
 * event.
 *
 * What is covered:
 *  - mDNS: the host address (A/AAAA), the agent port (SRV) and every TXT string but `sig=`, in
 *    order. A forger can neither invent a server nor point a real one's TXT at another address or
 *    port. The instance name is left out on purpose: a responder renames itself on a name conflict
 *    (`n1 (2)`), and the name is not what clients connect to.
 *  - /v1/watch: a record's identity and endpoint — id, service, host, UDP and TCP ports, weight,
 *    zone, agent URL — and `sigv`, the origin's gossip incarnation when it signed. The origin signs
 *    again whenever its incarnation changes (a new meta, a refutation): a few times a day, not once
 *    a second. Agents keep a member's signature only when it came with the incarnation it names, so
 *    an old signed meta cannot be replayed over a newer one through gossip (agents order a member's
 *    updates by incarnation and ignore older ones).
 * What is not:
 *  - Load and health. They change every second; signing each report and verifying 10,000 of them a
 *    second in every client would cost more than it protects. Among agents they are authenticated
 *    by the keyring's seal; a forged load or health (by a keyring holder, or on a client's plain
 *    ws:// subscription) can only divert picks among genuine, signed servers, never to another one.
 *  - Freshness and completeness. Whoever can tamper with a client's subscription can replay a
 *    genuine old record or hide servers; mDNS TTLs bound how long a replayed TXT misleads.
 *
 * Keys: the private key is a PKCS#8 PEM (`peerlb keygen --signing`), or base64 of its DER or of the
 * raw 32-byte seed; the public key is what `peerlb keygen --public` prints (base64 of the raw 32
 * bytes), an SPKI PEM, or base64 of the SPKI DER (the PEM's body), hex of the raw 32 bytes also.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import type { ServerRecord } from './protocol.js';

/** DER prefixes that wrap a raw Ed25519 key (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** TXT key of the signature (≤ 9 chars, RFC 6763 §6.4); `sig=` + 88 base64 chars = 92 bytes. */
export const TXT_SIG_KEY = 'sig';
const MDNS_DOMAIN = 'peerlb-mdns-v1';
const RECORD_DOMAIN = 'peerlb-record-v2';

function isEd25519(k: KeyObject): boolean {
  return k.asymmetricKeyType === 'ed25519';
}

/** A key pasted as text: base64 (or base64url, any whitespace) or hex, decoded; undefined when it is neither. */
function keyBytes(input: string): Buffer | undefined {
  const t = input.replace(/\s+/g, '');
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  const b64 = t.replace(/-/g, '+').replace(/_/g, '/');
  if (b64.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  return Buffer.from(b64, 'base64');
}

const PRIVATE_FORMS = 'PKCS#8 PEM, base64 of its DER, or base64 of the raw 32-byte seed';
const PUBLIC_FORMS = 'base64 of the raw 32 bytes as `peerlb keygen --public` prints, SPKI PEM, or base64 of the SPKI DER';

/** An Ed25519 private key (see the module comment for the forms); `where` names the source in errors. */
export function parsePrivateKey(input: string | KeyObject, where: string): KeyObject {
  let k: KeyObject;
  try {
    if (typeof input !== 'string') k = input;
    else if (input.includes('-----BEGIN')) k = createPrivateKey(input);
    else {
      const raw = keyBytes(input);
      if (raw?.length === 32) k = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
      else if (raw && raw.length > 32 && raw.length <= 256 && raw[0] === 0x30) k = createPrivateKey({ key: raw, format: 'der', type: 'pkcs8' });
      else throw new Error(raw ? `decodes to ${raw.length} bytes, not a 32-byte seed or a PKCS#8 DER` : 'neither base64 nor hex');
    }
  } catch (err) {
    throw new ConfigError(`${where}: not an Ed25519 private key (${PRIVATE_FORMS}): ${(err as Error).message}`, { cause: err });
  }
  if (k.type !== 'private' || !isEd25519(k)) throw new ConfigError(`${where}: must be an Ed25519 private key, got ${k.asymmetricKeyType ?? k.type}`);
  return k;
}

/**
 * An Ed25519 public key in any form a user pastes: what `peerlb keygen --public` prints (base64
 * of the raw 32 bytes), an SPKI PEM, base64 of the SPKI DER (a PEM's body, e.g. `MCowBQYDK2VwAyEA…`),
 * base64url or hex of the raw bytes, or a KeyObject (a private one gives its public half).
 */
export function parsePublicKey(input: string | KeyObject, where: string): KeyObject {
  let k: KeyObject;
  try {
    if (typeof input !== 'string') k = input.type === 'private' ? createPublicKey(input) : input;
    else if (input.includes('-----BEGIN')) k = createPublicKey(input);
    else {
      const raw = keyBytes(input);
      if (raw?.length === 32) k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
      else if (raw && raw.length > 32 && raw.length <= 256 && raw[0] === 0x30) k = createPublicKey({ key: raw, format: 'der', type: 'spki' });
      else throw new Error(raw ? `decodes to ${raw.length} bytes, not 32 raw bytes or an SPKI DER` : 'neither base64 nor hex');
    }
  } catch (err) {
    throw new ConfigError(`${where}: not an Ed25519 public key (${PUBLIC_FORMS}): ${(err as Error).message}`, { cause: err });
  }
  if (k.type !== 'public' || !isEd25519(k)) throw new ConfigError(`${where}: must be an Ed25519 public key, got ${k.asymmetricKeyType ?? k.type}`);
  return k;
}

/** Read a signing key file; a missing file or a key that does not parse is a ConfigError naming it. */
export function loadPrivateKeyFile(path: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`cannot read signing key file ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { cause: err });
  }
  return parsePrivateKey(text.trim(), `signing key file ${path}`);
}

/** The raw 32-byte public key, base64 (what `verify.publicKey` takes). */
export function publicKeyBase64(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length).toString('base64');
}

function lp(parts: (string | Uint8Array)[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
    const len = Buffer.allocUnsafe(2);
    len.writeUInt16BE(Math.min(b.length, 0xffff));
    out.push(len, b);
  }
  return Buffer.concat(out);
}

/** The bytes an mDNS TXT signature covers. `txt`: the TXT strings without the `sig=` one, in order. */
export function mdnsSigningBytes(host: string, agentPort: number, txt: readonly Uint8Array[]): Buffer {
  return lp([MDNS_DOMAIN, host, String(agentPort), ...txt]);
}

/** What a record's signature covers: its identity and endpoint, and the version it was signed at. */
export type SignedFields = Pick<ServerRecord, 'id' | 'service' | 'host' | 'udpPort' | 'tcpPort' | 'weight' | 'zone' | 'agent'>;

/** The bytes a server record's signature covers (see the module comment): not its load nor its health. */
export function recordSigningBytes(r: SignedFields, version: number): Buffer {
  return Buffer.from(JSON.stringify([RECORD_DOMAIN, r.id, r.service, r.host, r.udpPort ?? 0, r.tcpPort ?? 0, r.weight, r.zone ?? null, r.agent ?? null, version]), 'utf8');
}

export function signBytes(data: Uint8Array, key: KeyObject): string {
  return sign(null, data, key).toString('base64');
}

/** True when `sig` (base64) is a valid signature of `data` under `key`. Never throws. */
export function verifyBytes(data: Uint8Array, sig: unknown, key: KeyObject): boolean {
  if (typeof sig !== 'string' || sig.length === 0 || sig.length > 128) return false;
  const s = Buffer.from(sig, 'base64');
  if (s.length !== 64) return false;
  try {
    return verify(null, data, key, s);
  } catch {
    return false;
  }
}

/** The origin's signature of its own record at `version` (its incarnation), base64. */
export function signFields(r: SignedFields, version: number, key: KeyObject): string {
  return signBytes(recordSigningBytes(r, version), key);
}

/** A copy of the record signed at `version` (as its origin agent would: for tests and tools). */
export function signRecord(r: ServerRecord, key: KeyObject, version = 1): ServerRecord {
  return { ...r, sig: signFields(r, version, key), sigv: version };
}

export type RejectReason = 'unsigned' | 'bad-signature';

/** Why a record was refused, or undefined when its signature holds. */
export function checkRecordSignature(r: ServerRecord, key: KeyObject): RejectReason | undefined {
  if (r.sig === undefined) return 'unsigned';
  if (r.sigv === undefined) return 'bad-signature';
  return verifyBytes(recordSigningBytes(r, r.sigv), r.sig, key) ? undefined : 'bad-signature';
}

/**
 * Checks records for a client's view, verifying each distinct signed part once: a record's load
 * changes every second, its signed part a few times a day, so a stream of upserts costs one
 * signature check per change. `fresh` says whether this (signed part, signature) is new for the
 * id: a refusal is reported once per change of the record, not once per frame. Bounded: the memory
 * is emptied when it holds `max` ids.
 */
export class RecordVerifier {
  private readonly seen = new Map<string, { what: string; why: RejectReason | undefined }>();
  constructor(
    private readonly key: KeyObject,
    private readonly max = 20_000,
  ) {}

  check(r: ServerRecord): { why: RejectReason | undefined; fresh: boolean } {
    const bytes = recordSigningBytes(r, r.sigv ?? -1);
    const what = `${r.sig ?? ''}|${bytes.toString('utf8')}`;
    const prev = this.seen.get(r.id);
    if (prev && prev.what === what) return { why: prev.why, fresh: false };
    const why: RejectReason | undefined = r.sig === undefined ? 'unsigned' : r.sigv !== undefined && verifyBytes(bytes, r.sig, this.key) ? undefined : 'bad-signature';
    if (!prev && this.seen.size >= this.max) this.seen.clear();
    this.seen.set(r.id, { what, why });
    return { why, fresh: true };
  }
}
