/**
 * The agent's TLS (issue 15): the `tls` option checked at the edge, and its PEM files read and
 * checked before any port is taken (a missing file, a key that does not match its certificate,
 * a CA file that holds no certificate: a ConfigError naming the option and the file).
 *
 * With TLS the agent's one port speaks https and wss only (agent/http.ts), its address is
 * wss://host:port, and it dials its peers at wss:// (agent/gossip/ws-transport.ts). A cluster is
 * all-TLS or not: a TLS agent joins wss:// seeds only and dials no ws:// peer, a plain agent the
 * reverse (the resolver refuses a seed of the other scheme; the transport refuses, and logs, a
 * peer of the other scheme learned by gossip). Peers' certificates are checked as any TLS client
 * does (chain and name): against the system CAs, NODE_EXTRA_CA_CERTS, and `tls.ca`.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { BadOptionError, ConfigError } from '../sdk/core/errors.js';
import { obj, onlyKnown, str } from '../sdk/core/validate.js';
import { nestedKeys } from './options-schema.js';

/** Header of the answer to a plain request on a TLS port (agent/http.ts), so that an agent dialing it at ws:// can say why. */
export const TLS_REQUIRED_HEADER = 'x-peerlb-tls';

/** The `tls` option as resolved: files (or PEM texts) as given. */
export interface TlsOption {
  cert: string;
  key: string;
  ca: string | undefined;
}

/** What the agent serves and dials with: the PEM bytes. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** CAs trusted for peers beside the system's (undefined: the system's and NODE_EXTRA_CA_CERTS only). */
  ca: Buffer | undefined;
}

/** A value that is PEM text itself rather than the name of a file holding it. */
const isPemText = (s: string): boolean => s.trimStart().startsWith('-----BEGIN ');

/** Check the `tls` option: an object with `cert` and `key` (and optionally `ca`), each a path or PEM text. */
export function resolveTls(v: unknown): TlsOption | undefined {
  if (v === undefined) return undefined;
  const o = obj('tls', v);
  onlyKnown('tls', o, nestedKeys('tls'));
  // PEM texts may be long (a chain); a path is at most 4096 bytes (PATH_MAX).
  const pemOrPath = (k: string) => {
    const s = o[k];
    return str(`tls.${k}`, s, typeof s === 'string' && isPemText(s) ? 1 << 20 : 4096);
  };
  const cert = pemOrPath('cert');
  const key = pemOrPath('key');
  const ca = pemOrPath('ca');
  if (cert === undefined && key === undefined && ca === undefined) return undefined;
  if (cert === undefined) throw new BadOptionError('tls.cert', 'is required with tls.key (--tls-key): the certificate the agent port serves');
  if (key === undefined) throw new BadOptionError('tls.key', 'is required with tls.cert (--tls-cert): the private key of the certificate');
  return { cert, key, ca };
}

function readPem(option: string, v: string): Buffer {
  if (isPemText(v)) return Buffer.from(v);
  try {
    return readFileSync(v);
  } catch (err) {
    throw new ConfigError(`cannot read ${option} file ${v}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Where a PEM value came from, for messages. */
const named = (option: string, v: string): string => (isPemText(v) ? option : `${option} (${v})`);

/** Read and check the PEM files of `o`: throws a ConfigError naming the option and file that is wrong. */
export function loadTls(o: TlsOption): TlsMaterial {
  const cert = readPem('tls.cert', o.cert);
  const key = readPem('tls.key', o.key);
  const ca = o.ca === undefined ? undefined : readPem('tls.ca', o.ca);
  try {
    new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(`${named('tls.cert', o.cert)} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    const why = /key values mismatch/i.test((err as Error).message) ? 'does not match the certificate' : `cannot be used: ${(err as Error).message}`;
    throw new ConfigError(`${named('tls.key', o.key)} ${why} of ${named('tls.cert', o.cert)}`, { cause: err });
  }
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new ConfigError(`${named('tls.ca', o.ca!)} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
    }
  }
  return { cert, key, ca };
}

/** The CAs a TLS client of this agent (a gossip dial) trusts: the system's, plus `ca` when given (Node's `ca` option replaces its defaults). */
export function trustedCas(m: TlsMaterial | undefined): (string | Buffer)[] | undefined {
  return m?.ca === undefined ? undefined : [...tls.rootCertificates, m.ca];
}

/** The scheme of this agent's address and of the seeds it joins: `wss:` with TLS, else `ws:`. */
export function gossipScheme(tlsOn: boolean): 'ws:' | 'wss:' {
  return tlsOn ? 'wss:' : 'ws:';
}

/**
 * Why a join seed of the other scheme is refused (a cluster is all-TLS or not), or undefined when
 * its scheme is this agent's.
 */
export function seedSchemeProblem(seed: string, tlsOn: boolean): string | undefined {
  const isTls = seed.startsWith('wss:');
  if (isTls === tlsOn) return undefined;
  return tlsOn
    ? `is ${seed}, a plain ws:// seed, but this agent serves TLS (tls.cert): a cluster is all-TLS or not; give its wss:// address, or run every agent with --tls-cert`
    : `is ${seed}, a wss:// seed, but this agent does not serve TLS: a cluster is all-TLS or not; set tls.cert and tls.key (--tls-cert, --tls-key) here too, or give a ws:// seed`;
}

/** OpenSSL / Node codes of a peer certificate this agent does not trust. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A dial's TLS error in words an operator can act on (the gossip transport's connect-failed
 * warning), or undefined when it is no TLS error.
 */
export function tlsDialProblem(err: { code?: string; message: string }): string | undefined {
  const code = err.code ?? '';
  if (UNTRUSTED.has(code)) return `${code}: the peer's certificate is not trusted here (${err.message}); trust its CA with tls.ca (--tls-ca) or NODE_EXTRA_CA_CERTS`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(err.message)) return `${code || 'EPROTO'}: the peer does not speak TLS; a cluster is all-TLS or not`;
  return undefined;
}

/** The `tls` option for the log: paths as given, PEM texts (a private key among them) as "(PEM text)". */
export function tlsForLog(o: TlsOption | undefined): Record<string, string | undefined> | undefined {
  if (!o) return undefined;
  const show = (v: string | undefined) => (v === undefined ? undefined : isPemText(v) ? '(PEM text)' : v);
  return { cert: show(o.cert), key: show(o.key), ca: show(o.ca) };
}
