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
 *    zone, agent URL, and the WebSocket endpoint (port, path, TLS) when there is one — and `sigv`, the origin's gossip incarnation when it signed. The origin signs
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
 * This file is the runtime-neutral half: the bytes a signature covers, the public key's text forms
 * (parsed without a crypto library), the verifier interface and a WebCrypto Ed25519 verifier
 * (browsers, Deno, Bun, Node ≥ 20). Signing, private keys, key files and Node's KeyObject are in
 * sdk/node/signing.ts, with the node:crypto verifier.
 *
 * Keys: the public key is what `peerlb keygen --public` prints (base64 of the raw 32 bytes), an
 * SPKI PEM, or base64 of the SPKI DER (the PEM's body), hex of the raw 32 bytes also.
 */
import { ConfigError } from './errors.js';
import type { ServerRecord } from './protocol.js';

/** DER prefix that wraps a raw Ed25519 public key in an SPKI (RFC 8410). */
export const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
/** TXT key of the signature (≤ 9 chars, RFC 6763 §6.4); `sig=` + 88 base64 chars = 92 bytes. */
export const TXT_SIG_KEY = 'sig';
const MDNS_DOMAIN = 'peerlb-mdns-v1';
const RECORD_DOMAIN = 'peerlb-record-v2';

const encoder = new TextEncoder();

/** Base64 (standard alphabet, padding optional) to bytes; undefined when it is not base64. */
export function fromBase64(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  let bin: string;
  try {
    bin = atob(s.replace(/=+$/, '') + '='.repeat((4 - (s.replace(/=+$/, '').length % 4)) % 4));
  } catch {
    return undefined;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Bytes to standard base64 with padding. */
export function toBase64(b: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < b.length; i++) bin += String.fromCharCode(b[i]!);
  return btoa(bin);
}

/** A key pasted as text: base64 (or base64url, any whitespace) or hex, decoded; undefined when it is neither. */
export function keyBytes(input: string): Uint8Array | undefined {
  const t = input.replace(/\s+/g, '');
  if (/^[0-9a-fA-F]{64}$/.test(t)) {
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
    return out;
  }
  const b64 = t.replace(/-/g, '+').replace(/_/g, '/');
  if (b64.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  return fromBase64(b64);
}

export const PUBLIC_FORMS = 'base64 of the raw 32 bytes as `peerlb keygen --public` prints, SPKI PEM, or base64 of the SPKI DER';

/**
 * An Ed25519 public key as the core holds it: the raw 32 bytes. `native` is the runtime's own key
 * object when the runtime made one (Node's KeyObject, sdk/node/signing.ts); the core never reads it.
 */
export interface PublicKey {
  readonly raw: Uint8Array;
  readonly native?: unknown;
}

/** The raw key inside an Ed25519 SPKI DER, or undefined when `der` is not one. */
function fromSpki(der: Uint8Array): Uint8Array | undefined {
  if (der.length !== SPKI_PREFIX.length + 32) return undefined;
  for (let i = 0; i < SPKI_PREFIX.length; i++) if (der[i] !== SPKI_PREFIX[i]) return undefined;
  return der.slice(SPKI_PREFIX.length);
}

/**
 * An Ed25519 public key given as text (see the module comment for the forms), parsed without a
 * crypto library; `where` names the source in errors (a ConfigError). A key object (Node's
 * KeyObject) is taken when it is a public key that exports its SPKI DER; other objects need the
 * Node entry's parser (sdk/node/signing.ts).
 */
export function parsePublicKeyText(input: unknown, where: string): PublicKey {
  let raw: Uint8Array | undefined;
  let why: string;
  if (typeof input === 'string') {
    if (input.includes('-----BEGIN')) {
      const m = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(input);
      const der = m ? keyBytes(m[1]!) : undefined;
      raw = der && fromSpki(der);
      why = m ? 'the PEM does not hold an Ed25519 SPKI' : 'a PEM must be a PUBLIC KEY block';
    } else {
      const b = keyBytes(input);
      raw = b?.length === 32 ? b : b && fromSpki(b);
      why = b ? `decodes to ${b.length} bytes, not 32 raw bytes or an Ed25519 SPKI DER` : 'neither base64 nor hex';
    }
  } else if (typeof input === 'object' && input !== null && typeof (input as { export?: unknown }).export === 'function') {
    const k = input as { type?: unknown; asymmetricKeyType?: unknown; export(o: object): Uint8Array };
    if (k.type !== 'public' || k.asymmetricKeyType !== 'ed25519')
      throw new ConfigError(`${where}: must be an Ed25519 public key, got ${String(k.asymmetricKeyType ?? k.type)}`);
    try {
      raw = fromSpki(new Uint8Array(k.export({ format: 'der', type: 'spki' })));
    } catch {
      raw = undefined;
    }
    why = 'the key object does not export an Ed25519 SPKI';
  } else why = `a string is expected, got ${input === null ? 'null' : typeof input}`;
  if (!raw) throw new ConfigError(`${where}: not an Ed25519 public key (${PUBLIC_FORMS}): ${why}`);
  return { raw, native: typeof input === 'object' ? input : undefined };
}

function lp(parts: (string | Uint8Array)[]): Uint8Array {
  const bufs = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
  const out = new Uint8Array(bufs.reduce((n, b) => n + 2 + b.length, 0));
  let o = 0;
  for (const b of bufs) {
    const len = Math.min(b.length, 0xffff);
    out[o++] = len >>> 8;
    out[o++] = len & 0xff;
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** The bytes an mDNS TXT signature covers. `txt`: the TXT strings without the `sig=` one, in order. */
export function mdnsSigningBytes(host: string, agentPort: number, txt: readonly Uint8Array[]): Uint8Array {
  return lp([MDNS_DOMAIN, host, String(agentPort), ...txt]);
}

/** What a record's signature covers: its identity and endpoint, and the version it was signed at. */
export type SignedFields = Pick<ServerRecord, 'id' | 'service' | 'host' | 'udpPort' | 'tcpPort' | 'weight' | 'zone' | 'agent' | 'wsPort' | 'wsPath' | 'wsTls'>;

/**
 * The signed text. A record with a wsPort appends [wsPort, path, tls] after the version (the path
 * as the view uses it: '/' when absent); one without keeps exactly the text of the releases before
 * ws endpoints, so their signatures still verify. A forger can neither add a ws endpoint to a
 * signed record nor move one: either changes the text. wsPath/wsTls without a wsPort are not part
 * of a record (parseServerRecord drops them) and are not signed.
 */
function recordSigningText(r: SignedFields, version: number): string {
  const base: unknown[] = [RECORD_DOMAIN, r.id, r.service, r.host, r.udpPort ?? 0, r.tcpPort ?? 0, r.weight, r.zone ?? null, r.agent ?? null, version];
  if (r.wsPort !== undefined) base.push(r.wsPort, r.wsPath ?? '/', r.wsTls === true);
  return JSON.stringify(base);
}

/** The bytes a server record's signature covers (see the module comment): not its load nor its health. */
export function recordSigningBytes(r: SignedFields, version: number): Uint8Array {
  return encoder.encode(recordSigningText(r, version));
}

/**
 * Checks Ed25519 signatures under one public key. `verify` returns (or resolves to) true when
 * `sig` (64 bytes) is a valid signature of `data`; it never throws nor rejects. Synchronous in Node
 * (node:crypto, sdk/node/signing.ts), asynchronous with WebCrypto (webCryptoVerifier).
 */
export interface SignatureVerifier {
  verify(data: Uint8Array, sig: Uint8Array): boolean | Promise<boolean>;
}

/** A signature as a record or TXT carries it (base64 text), decoded; undefined when it cannot be one. */
export function signatureBytes(sig: unknown): Uint8Array | undefined {
  if (typeof sig !== 'string' || sig.length === 0 || sig.length > 128) return undefined;
  const s = fromBase64(sig.replace(/\s+/g, ''));
  return s?.length === 64 ? s : undefined;
}

/** True (or a promise of it) when `sig` (base64) is a valid signature of `data`. Never throws. */
export function verifyWith(v: SignatureVerifier, data: Uint8Array, sig: unknown): boolean | Promise<boolean> {
  const s = signatureBytes(sig);
  if (!s) return false;
  try {
    const r = v.verify(data, s);
    return typeof r === 'boolean' ? r : r.then((ok) => ok === true, () => false);
  } catch {
    return false;
  }
}

/** The WebCrypto implementation in use (globalThis.crypto.subtle), or undefined when there is none. */
function subtle(): SubtleCryptoLike | undefined {
  return (globalThis as { crypto?: { subtle?: SubtleCryptoLike } }).crypto?.subtle;
}
interface SubtleCryptoLike {
  importKey(format: 'raw', key: Uint8Array, alg: { name: string }, extractable: boolean, usages: string[]): Promise<unknown>;
  verify(alg: { name: string }, key: unknown, sig: Uint8Array, data: Uint8Array): Promise<boolean>;
}

/**
 * An Ed25519 verifier over WebCrypto (`crypto.subtle`, async): browsers with Ed25519 (Chromium
 * 113+ behind none, Firefox 129+, Safari 17+), Deno, Bun, Node ≥ 20. The key is imported once,
 * at the first check. Where the runtime lacks Ed25519, every check is false (and `ready` rejects
 * with a ConfigError saying so).
 */
export function webCryptoVerifier(key: PublicKey | Uint8Array): SignatureVerifier & { ready: Promise<void> } {
  const raw = key instanceof Uint8Array ? key : key.raw;
  const s = subtle();
  const imported: Promise<unknown> = s
    ? s.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify'])
    : Promise.reject(new Error('no crypto.subtle in this runtime'));
  const ready = imported.then(
    () => undefined,
    (err: unknown) => {
      throw new ConfigError(`verify: this runtime's WebCrypto cannot verify Ed25519: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    },
  );
  ready.catch(() => {});
  return {
    ready,
    verify(data, sig) {
      return imported.then(
        (k) => s!.verify({ name: 'Ed25519' }, k, sig, data).then((ok) => ok === true, () => false),
        () => false,
      );
    },
  };
}

export type RejectReason = 'unsigned' | 'bad-signature';

type Why = RejectReason | undefined;

/**
 * Checks records for a client's view, verifying each distinct signed part once: a record's load
 * changes every second, its signed part a few times a day, so a stream of upserts costs one
 * signature check per change. `fresh` says whether this (signed part, signature) is new for the
 * id: a refusal is reported once per change of the record, not once per frame. Bounded: the memory
 * is emptied when it holds `max` ids.
 *
 * With a synchronous verifier `check` answers at once; with an asynchronous one (WebCrypto) it
 * returns a promise for a part not checked before, and a repeat of a part being checked waits for
 * that same check (it is not `fresh`). The caller keeps the records in order (agents.ts).
 */
export class RecordVerifier {
  private readonly seen = new Map<string, { what: string; why: Why | Promise<Why> }>();
  constructor(
    private readonly verifier: SignatureVerifier,
    private readonly max = 20_000,
  ) {}

  check(r: ServerRecord): { why: Why; fresh: boolean } | Promise<{ why: Why; fresh: boolean }> {
    const text = recordSigningText(r, r.sigv ?? -1);
    const what = `${r.sig ?? ''}|${text}`;
    const prev = this.seen.get(r.id);
    if (prev && prev.what === what) {
      const w = prev.why;
      return typeof w === 'object' ? w.then((why) => ({ why, fresh: false })) : { why: w, fresh: false };
    }
    let why: Why | Promise<Why>;
    if (r.sig === undefined) why = 'unsigned';
    else if (r.sigv === undefined) why = 'bad-signature';
    else {
      const ok = verifyWith(this.verifier, encoder.encode(text), r.sig);
      why = typeof ok === 'boolean' ? (ok ? undefined : 'bad-signature') : ok.then((v): Why => (v ? undefined : 'bad-signature'));
    }
    if (!prev && this.seen.size >= this.max) this.seen.clear();
    const entry = { what, why };
    this.seen.set(r.id, entry);
    if (typeof why !== 'object') return { why, fresh: true };
    return why.then((w) => {
      // Settled: later repeats answer at once.
      if (this.seen.get(r.id) === entry) entry.why = w;
      return { why: w, fresh: true };
    });
  }
}
