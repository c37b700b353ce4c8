/**
 * The Node half of signed announcements (the bytes, the forms of the public key and the WebCrypto
 * verifier are runtime-neutral, in sdk/core/signing.ts): private keys, key files, signing, Node's
 * KeyObject forms of the public key, and the node:crypto verifier (synchronous).
 *
 * Keys: the private key is a PKCS#8 PEM (`peerlb keygen --signing`), or base64 of its DER or of the
 * raw 32-byte seed; the public key is what `peerlb keygen --public` prints (base64 of the raw 32
 * bytes), an SPKI PEM, or base64 of the SPKI DER (the PEM's body), hex of the raw 32 bytes also.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';
import type { ServerRecord } from '../core/protocol.js';
import {
  PUBLIC_FORMS,
  SPKI_PREFIX,
  keyBytes,
  recordSigningBytes,
  signatureBytes,
  type PublicKey,
  type RejectReason,
  type SignatureVerifier,
  type SignedFields,
} from '../core/signing.js';

export { TXT_SIG_KEY, mdnsSigningBytes, recordSigningBytes, RecordVerifier, type RejectReason, type SignedFields } from '../core/signing.js';

/** DER prefix that wraps a raw Ed25519 private seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI = Buffer.from(SPKI_PREFIX);

function isEd25519(k: KeyObject): boolean {
  return k.asymmetricKeyType === 'ed25519';
}

const PRIVATE_FORMS = 'PKCS#8 PEM, base64 of its DER, or base64 of the raw 32-byte seed';

/** An Ed25519 private key (see the module comment for the forms); `where` names the source in errors. */
export function parsePrivateKey(input: string | KeyObject, where: string): KeyObject {
  let k: KeyObject;
  try {
    if (typeof input !== 'string') k = input;
    else if (input.includes('-----BEGIN')) k = createPrivateKey(input);
    else {
      const raw = keyBytes(input);
      if (raw?.length === 32) k = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
      else if (raw && raw.length > 32 && raw.length <= 256 && raw[0] === 0x30) k = createPrivateKey({ key: Buffer.from(raw), format: 'der', type: 'pkcs8' });
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
      if (raw?.length === 32) k = createPublicKey({ key: Buffer.concat([SPKI, raw]), format: 'der', type: 'spki' });
      else if (raw && raw.length > 32 && raw.length <= 256 && raw[0] === 0x30) k = createPublicKey({ key: Buffer.from(raw), format: 'der', type: 'spki' });
      else throw new Error(raw ? `decodes to ${raw.length} bytes, not 32 raw bytes or an SPKI DER` : 'neither base64 nor hex');
    }
  } catch (err) {
    throw new ConfigError(`${where}: not an Ed25519 public key (${PUBLIC_FORMS}): ${(err as Error).message}`, { cause: err });
  }
  if (k.type !== 'public' || !isEd25519(k)) throw new ConfigError(`${where}: must be an Ed25519 public key, got ${k.asymmetricKeyType ?? k.type}`);
  return k;
}

/** parsePublicKey as the core holds a key: its raw bytes, and the KeyObject as `native`. */
export function nodePublicKey(input: unknown, where: string): PublicKey {
  const k = parsePublicKey(input as string | KeyObject, where);
  return { raw: new Uint8Array(k.export({ format: 'der', type: 'spki' }).subarray(SPKI.length)), native: k };
}

/** The KeyObject of a core PublicKey (the one it was parsed from, or one made from its raw bytes). */
export function keyObjectOf(key: PublicKey): KeyObject {
  const n = key.native as KeyObject | undefined;
  if (n && typeof n === 'object' && (n as KeyObject).type === 'public') return n;
  return createPublicKey({ key: Buffer.concat([SPKI, key.raw]), format: 'der', type: 'spki' });
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
  return pub.export({ format: 'der', type: 'spki' }).subarray(SPKI.length).toString('base64');
}

export function signBytes(data: Uint8Array, key: KeyObject): string {
  return sign(null, data, key).toString('base64');
}

/** The node:crypto Ed25519 verifier: synchronous, as the SDK has always checked. */
export function nodeVerifier(key: KeyObject | PublicKey): SignatureVerifier {
  const k = 'raw' in key ? keyObjectOf(key) : key;
  return {
    verify(data, sig) {
      try {
        return verify(null, data, k, sig);
      } catch {
        return false;
      }
    },
  };
}

/** True when `sig` (base64) is a valid signature of `data` under `key`. Never throws. */
export function verifyBytes(data: Uint8Array, sig: unknown, key: KeyObject): boolean {
  const s = signatureBytes(sig);
  if (!s) return false;
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

/** Why a record was refused, or undefined when its signature holds. */
export function checkRecordSignature(r: ServerRecord, key: KeyObject): RejectReason | undefined {
  if (r.sig === undefined) return 'unsigned';
  if (r.sigv === undefined) return 'bad-signature';
  return verifyBytes(recordSigningBytes(r, r.sigv), r.sig, key) ? undefined : 'bad-signature';
}
