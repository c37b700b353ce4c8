/**
 * Signed announcements: a cluster may have an Ed25519 signing key. Agents sign what they tell
 * clients — their mDNS TXT data and every server record of the /v1/watch view — and an SDK given
 * the public key (`join({ verify: { publicKey } })`) ignores servers whose signature is missing or
 * wrong, and says so with a 'rejected' event.
 *
 * What is covered:
 *  - mDNS: the host address (A/AAAA), the agent port (SRV) and every TXT string but `sig=`, in
 *    order. A forger can neither invent a server nor point a real one's TXT at another address or
 *    port. The instance name is left out on purpose: a responder renames itself on a name conflict
 *    (`n1 (2)`), and the name is not what clients connect to.
 *  - /v1/watch: a record's id, service, host, UDP and TCP ports, weight, zone, health, agent URL and
 *    its load (connections, sessions, utilization, seq). The load's `ageMs` is not: it is computed
 *    as the record is sent and only ages a report.
 * What is not: freshness. An attacker who recorded a genuine announcement can replay it (it names a
 * real server of the cluster); the seq in signed load and mDNS TTLs bound how long that misleads.
 *
 * Keys: the private key is a PKCS#8 PEM (`peerlb keygen --signing`) or the base64 of the raw
 * 32-byte seed; the public key an SPKI PEM or the base64 of the raw 32 bytes.
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
const RECORD_DOMAIN = 'peerlb-record-v1';

function isEd25519(k: KeyObject): boolean {
  return k.asymmetricKeyType === 'ed25519';
}

/** An Ed25519 private key from PEM or base64 of the raw 32-byte seed; `where` names the source in errors. */
export function parsePrivateKey(input: string | KeyObject, where: string): KeyObject {
  let k: KeyObject;
  try {
    if (typeof input !== 'string') k = input;
    else if (input.includes('-----BEGIN')) k = createPrivateKey(input);
    else {
      const raw = Buffer.from(input.trim(), 'base64');
      if (raw.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(input.trim())) throw new Error('not the base64 of a 32-byte Ed25519 seed');
      k = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
    }
  } catch (err) {
    throw new ConfigError(`${where}: not an Ed25519 private key (PEM or base64 of 32 bytes): ${(err as Error).message}`, { cause: err });
  }
  if (k.type !== 'private' || !isEd25519(k)) throw new ConfigError(`${where}: must be an Ed25519 private key, got ${k.asymmetricKeyType ?? k.type}`);
  return k;
}

/** An Ed25519 public key from PEM or base64 of the raw 32 bytes. */
export function parsePublicKey(input: string | KeyObject, where: string): KeyObject {
  let k: KeyObject;
  try {
    if (typeof input !== 'string') k = input.type === 'private' ? createPublicKey(input) : input;
    else if (input.includes('-----BEGIN')) k = createPublicKey(input);
    else {
      const raw = Buffer.from(input.trim(), 'base64');
      if (raw.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(input.trim())) throw new Error('not the base64 of a 32-byte Ed25519 public key');
      k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    }
  } catch (err) {
    throw new ConfigError(`${where}: not an Ed25519 public key (PEM or base64 of 32 bytes): ${(err as Error).message}`, { cause: err });
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

/** The bytes a server record's signature covers (see the module comment). */
export function recordSigningBytes(r: ServerRecord): Buffer {
  const load = r.load ? [r.load.connections, r.load.sessions, r.load.utilization, r.load.seq] : null;
  return Buffer.from(
    JSON.stringify([RECORD_DOMAIN, r.id, r.service, r.host, r.udpPort ?? 0, r.tcpPort ?? 0, r.weight, r.zone ?? null, r.health, r.agent ?? null, load]),
    'utf8',
  );
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

/** A copy of the record with its signature. */
export function signRecord(r: ServerRecord, key: KeyObject): ServerRecord {
  return { ...r, sig: signBytes(recordSigningBytes(r), key) };
}

/** Why a record or announcement was refused, or undefined when its signature holds. */
export function checkRecordSignature(r: ServerRecord, key: KeyObject): 'unsigned' | 'bad-signature' | undefined {
  if (r.sig === undefined) return 'unsigned';
  return verifyBytes(recordSigningBytes(r), r.sig, key) ? undefined : 'bad-signature';
}
