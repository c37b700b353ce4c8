/**
 * The runtime-neutral signing half (sdk/core/signing.ts) against the Node one (sdk/node/signing.ts):
 * the WebCrypto Ed25519 verifier and the node:crypto verifier agree on the same bytes (good,
 * tampered, wrong key, malformed signatures), the key's text forms parse to the same raw key
 * without a crypto library, and the record verifier copes with an asynchronous verifier.
 * No sockets, no sleeps.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  RecordVerifier,
  mdnsSigningBytes,
  parsePublicKeyText,
  recordSigningBytes,
  verifyWith,
  webCryptoVerifier,
  type SignatureVerifier,
} from '../../../../sdk/core/signing.js';
import { checkRecordSignature, nodePublicKey, nodeVerifier, publicKeyBase64, signBytes, signRecord } from '../../../../sdk/node/signing.js';
import type { ServerRecord } from '../../../../sdk/core/protocol.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const rec: ServerRecord = { id: 'n1', service: 'game', host: '127.0.0.1', udpPort: 7000, weight: 100, health: 'healthy', agent: 'ws://127.0.0.1:7946' };

describe('WebCrypto and node:crypto verifiers agree', () => {
  const web = webCryptoVerifier(parsePublicKeyText(publicKeyBase64(publicKey), 'k'));
  const node = nodeVerifier(publicKey);

  it('on good, tampered, wrong-key and malformed signatures of the record and mDNS bytes', async () => {
    await web.ready;
    const txt = [new TextEncoder().encode('v=1'), new TextEncoder().encode('w=100')];
    const datas = [recordSigningBytes(rec, 3), mdnsSigningBytes('127.0.0.1', 7946, txt), new Uint8Array(0)];
    const cases: [string, Uint8Array, unknown, boolean][] = [];
    for (const [i, d] of datas.entries()) {
      const good = signBytes(d, privateKey);
      const flipped = Buffer.from(good, 'base64');
      flipped[5]! ^= 1;
      const changed = new Uint8Array([...d, 1]);
      cases.push(
        [`${i} good`, d, good, true],
        [`${i} one bit of the signature flipped`, d, flipped.toString('base64'), false],
        [`${i} other data`, changed, good, false],
        [`${i} another key`, d, signBytes(d, other.privateKey), false],
        [`${i} not base64`, d, '!!!!', false],
        [`${i} too short`, d, good.slice(0, 40), false],
        [`${i} not a string`, d, 42, false],
        [`${i} empty`, d, '', false],
      );
    }
    for (const [name, d, sig, want] of cases) {
      const n = verifyWith(node, d, sig);
      const w = await verifyWith(web, d, sig);
      expect(typeof n, `${name}: node is synchronous`).toBe('boolean');
      expect(n, `${name}: node`).toBe(want);
      expect(w, `${name}: webcrypto`).toBe(want);
    }
  });

  it('a verifier that throws or rejects counts as a bad signature, never an exception', async () => {
    const d = recordSigningBytes(rec, 1);
    const sig = signBytes(d, privateKey);
    const throwing: SignatureVerifier = { verify: () => { throw new Error('x'); } };
    const rejecting: SignatureVerifier = { verify: () => Promise.reject(new Error('x')) };
    expect(verifyWith(throwing, d, sig)).toBe(false);
    await expect(verifyWith(rejecting, d, sig)).resolves.toBe(false);
  });
});

describe('public key text forms, without a crypto library', () => {
  it('raw base64, base64url, hex, SPKI DER base64 and SPKI PEM give the raw key node:crypto gives', () => {
    const raw = nodePublicKey(publicKey, 'k').raw;
    const der = publicKey.export({ format: 'der', type: 'spki' });
    const b64 = Buffer.from(raw).toString('base64');
    const forms = [b64, b64.replace(/=+$/, ''), Buffer.from(raw).toString('base64url'), Buffer.from(raw).toString('hex'), der.toString('base64'), publicKey.export({ format: 'pem', type: 'spki' }) as string, ` ${b64.slice(0, 10)}\n${b64.slice(10)} `];
    for (const f of forms) expect(Buffer.from(parsePublicKeyText(f, 'k').raw).equals(Buffer.from(raw)), f).toBe(true);
    // A public KeyObject too (it exports its SPKI), without node:crypto in the core.
    expect(Buffer.from(parsePublicKeyText(publicKey, 'k').raw).equals(Buffer.from(raw))).toBe(true);
  });

  it('anything else is a ConfigError naming where it came from', () => {
    const x25519 = generateKeyPairSync('x25519').publicKey;
    for (const bad of ['', 'not a key', 'AAAA', Buffer.alloc(33).toString('base64'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', x25519.export({ format: 'pem', type: 'spki' }) as string, 42, null, privateKey, x25519])
      expect(() => parsePublicKeyText(bad, 'verify.publicKey'), String(bad)).toThrow(/verify\.publicKey: .*Ed25519/);
  });
});

describe('RecordVerifier with an asynchronous verifier', () => {
  /** A verifier whose answers the test releases by hand (node:crypto underneath). */
  function deferred() {
    const node = nodeVerifier(publicKey);
    const waiting: (() => void)[] = [];
    let calls = 0;
    const v: SignatureVerifier = {
      verify: (d, s) => {
        calls++;
        return new Promise<boolean>((resolve) => waiting.push(() => resolve(node.verify(d, s) as boolean)));
      },
    };
    return { v, release: () => waiting.splice(0).forEach((f) => f()), calls: () => calls };
  }

  it('checks a signed part once: a repeat while it is being checked waits for that check and is not fresh', async () => {
    const d = deferred();
    const rv = new RecordVerifier(d.v);
    const signed = signRecord(rec, privateKey, 2);
    const first = rv.check(signed);
    const again = rv.check({ ...signed, load: { connections: 1, sessions: 0, utilization: 0.5, seq: 9, ageMs: 0 } });
    expect(first).toBeInstanceOf(Promise);
    expect(again).toBeInstanceOf(Promise);
    expect(d.calls()).toBe(1);
    d.release();
    await expect(first).resolves.toEqual({ why: undefined, fresh: true });
    await expect(again).resolves.toEqual({ why: undefined, fresh: false });
    // Settled: a later repeat answers at once.
    expect(rv.check(signed)).toEqual({ why: undefined, fresh: false });
    expect(d.calls()).toBe(1);
  });

  it('a wrong signature is bad-signature (fresh once), an unsigned record unsigned at once, a new signed part checked again', async () => {
    const d = deferred();
    const rv = new RecordVerifier(d.v);
    expect(rv.check(rec)).toEqual({ why: 'unsigned', fresh: true });
    const forged = signRecord(rec, other.privateKey, 1);
    const p = rv.check(forged);
    d.release();
    await expect(p).resolves.toEqual({ why: 'bad-signature', fresh: true });
    expect(rv.check(forged)).toEqual({ why: 'bad-signature', fresh: false });
    const moved = signRecord({ ...rec, udpPort: 7001 }, privateKey, 2);
    const q = rv.check(moved);
    d.release();
    await expect(q).resolves.toEqual({ why: undefined, fresh: true });
    expect(d.calls()).toBe(2);
  });
});

describe('the WebSocket endpoint in the signed bytes', () => {
  const ws: ServerRecord = { ...rec, wsPort: 8080, wsPath: '/game', wsTls: true };

  it('a record without ws fields signs exactly the bytes of the releases before them', () => {
    // The text recordSigningBytes made before ws endpoints existed, written out: old signatures verify.
    const old = JSON.stringify(['peerlb-record-v2', 'n1', 'game', '127.0.0.1', 7000, 0, 100, null, 'ws://127.0.0.1:7946', 3]);
    expect(new TextDecoder().decode(recordSigningBytes(rec, 3))).toBe(old);
    const oldSig = signBytes(new TextEncoder().encode(old), privateKey);
    expect(checkRecordSignature({ ...rec, sig: oldSig, sigv: 3 }, publicKey)).toBeUndefined();
  });

  it('covers port, path and TLS: adding, moving or dropping the endpoint breaks the signature', () => {
    const signed = signRecord(ws, privateKey, 5);
    expect(checkRecordSignature(signed, publicKey)).toBeUndefined();
    const forged: ServerRecord[] = [
      { ...signed, wsPort: 8081 },
      { ...signed, wsPath: '/other' },
      { ...signed, wsTls: undefined },
      { ...signed, wsPort: undefined, wsPath: undefined, wsTls: undefined },
    ];
    for (const f of forged) expect(checkRecordSignature(f, publicKey), JSON.stringify(f)).toBe('bad-signature');
    // A ws endpoint added to a record signed without one.
    const plain = signRecord(rec, privateKey, 5);
    expect(checkRecordSignature({ ...plain, wsPort: 9999 }, publicKey)).toBe('bad-signature');
  });

  it("an absent path signs as '/' (the same endpoint), and the WebCrypto verifier agrees", async () => {
    const a = { ...rec, wsPort: 8080 };
    expect(recordSigningBytes(a, 1)).toEqual(recordSigningBytes({ ...a, wsPath: '/' }, 1));
    expect(recordSigningBytes(a, 1)).not.toEqual(recordSigningBytes(rec, 1));
    const web = webCryptoVerifier(parsePublicKeyText(publicKeyBase64(publicKey), 'k'));
    await web.ready;
    const signed = signRecord(ws, privateKey, 2);
    expect(await web.verify(recordSigningBytes(signed, 2), Buffer.from(signed.sig!, 'base64'))).toBe(true);
    expect(await web.verify(recordSigningBytes({ ...signed, wsPath: '/x' }, 2), Buffer.from(signed.sig!, 'base64'))).toBe(false);
  });
});
