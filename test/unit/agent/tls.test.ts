/** The agent's TLS option and its rules (agent/tls.ts, issue 15), pure: no files, no sockets. */
import { describe, expect, it } from 'vitest';
import { resolveTls, seedSchemeProblem, tlsDialProblem, tlsForLog } from '../../../agent/tls.js';
import { resolveAgentOptions } from '../../../agent/options.js';
import { planReload } from '../../../agent/reload.js';

const base = { service: 'game', node: 'n1', tcpPort: 7000 } as const;
const tls = { cert: '/etc/peerlb/agent.crt', key: '/etc/peerlb/agent.key' };

describe('resolveTls', () => {
  it('takes cert and key (paths or PEM text), and an optional ca', () => {
    expect(resolveTls(undefined)).toBeUndefined();
    expect(resolveTls(tls)).toEqual({ ...tls, ca: undefined });
    expect(resolveTls({ ...tls, ca: '/ca.pem' })).toEqual({ ...tls, ca: '/ca.pem' });
    const pem = '-----BEGIN CERTIFICATE-----\n' + 'A'.repeat(8000) + '\n-----END CERTIFICATE-----\n';
    expect(resolveTls({ cert: pem, key: '/k' })!.cert).toBe(pem);
  });

  it('refuses half a pair, an unknown key, a wrong type, naming the option', () => {
    expect(() => resolveTls({ cert: '/c' })).toThrow(/option "tls.key" is required with tls.cert/);
    expect(() => resolveTls({ key: '/k' })).toThrow(/option "tls.cert" is required with tls.key/);
    expect(() => resolveTls({ ...tls, certs: '/x' })).toThrow(/tls.certs/);
    expect(() => resolveTls('/c')).toThrow(/option "tls" must be an object/);
    expect(() => resolveTls({ cert: 5, key: '/k' })).toThrow(/option "tls.cert" must be a non-empty string/);
    expect(() => resolveTls({ cert: '/'.repeat(5000), key: '/k' })).toThrow(/tls.cert/);
  });
});

describe('a cluster is all-TLS or not', () => {
  it('a seed of the other scheme is refused by the resolver, naming it and saying why', () => {
    expect(resolveAgentOptions({ ...base, tls, join: ['wss://10.0.0.4:7946'] }).join).toEqual(['wss://10.0.0.4:7946']);
    expect(resolveAgentOptions({ ...base, join: ['ws://10.0.0.4:7946'] }).join).toEqual(['ws://10.0.0.4:7946']);
    expect(() => resolveAgentOptions({ ...base, tls, join: ['ws://10.0.0.4:7946'] })).toThrow(/option "join\[0\]" is ws:\/\/10.0.0.4:7946, a plain ws:\/\/ seed, but this agent serves TLS.*all-TLS or not/);
    expect(() => resolveAgentOptions({ ...base, join: ['wss://10.0.0.4:7946'] })).toThrow(/option "join\[0\]" is wss:\/\/10.0.0.4:7946, a wss:\/\/ seed, but this agent does not serve TLS/);
    expect(seedSchemeProblem('wss://h:1', true)).toBeUndefined();
    expect(seedSchemeProblem('ws://h:1', false)).toBeUndefined();
  });

  it('a dial TLS error is put in words an operator can act on', () => {
    expect(tlsDialProblem({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' })).toMatch(/not trusted here.*--tls-ca/);
    expect(tlsDialProblem({ code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: "Hostname/IP does not match certificate's altnames" })).toMatch(/not trusted here/);
    expect(tlsDialProblem({ code: 'ERR_SSL_WRONG_VERSION_NUMBER', message: 'wrong version number' })).toMatch(/the peer does not speak TLS; a cluster is all-TLS or not/);
    expect(tlsDialProblem({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' })).toBeUndefined();
  });
});

describe('allowOrigin in the resolver', () => {
  it('normalizes and dedupes the list; refuses a bad entry naming it', () => {
    expect(resolveAgentOptions(base).allowOrigin).toBeUndefined();
    expect(resolveAgentOptions({ ...base, allowOrigin: ['https://Game.example:443', 'https://game.example', 'http://10.0.0.9:8080'] }).allowOrigin).toEqual(['https://game.example', 'http://10.0.0.9:8080']);
    expect(() => resolveAgentOptions({ ...base, allowOrigin: ['https://game.example/lobby'] })).toThrow(/option "allowOrigin\[0\]" must be an origin/);
    expect(() => resolveAgentOptions({ ...base, allowOrigin: [] })).toThrow(/option "allowOrigin" must be a list of 1\.\.256 origins/);
    expect(() => resolveAgentOptions({ ...base, allowOrigin: 'https://game.example' as unknown as string[] })).toThrow(/option "allowOrigin"/);
    expect(() => resolveAgentOptions({ ...base, allowOrigin: Array.from({ length: 257 }, (_, i) => `https://h${i}.example`) })).toThrow(/1\.\.256/);
  });
});

describe('reload', () => {
  const cur = resolveAgentOptions({ ...base, tls });
  it('allowOrigin applies live, the TLS files too while TLS stays on; TLS on or off takes a restart', () => {
    const next = resolveAgentOptions({ ...base, tls: { ...tls, ca: '/ca.pem' }, allowOrigin: ['https://game.example'] });
    const plan = planReload(cur, next, false);
    expect(plan.needsRestart).toEqual([]);
    expect(plan.opts).toMatchObject({ tls: { ca: '/ca.pem' }, allowOrigin: ['https://game.example'] });
    expect(planReload(cur, resolveAgentOptions(base), false)).toMatchObject({ needsRestart: ['tls'], opts: { tls: { cert: tls.cert } } });
    expect(planReload(resolveAgentOptions(base), cur, false)).toMatchObject({ needsRestart: ['tls'], opts: { tls: undefined } });
  });
});

describe('tlsForLog', () => {
  it('shows paths, never PEM text (a private key)', () => {
    expect(tlsForLog({ cert: '/c', key: '-----BEGIN PRIVATE KEY-----\nsecret', ca: undefined })).toEqual({ cert: '/c', key: '(PEM text)', ca: undefined });
  });
});
