/**
 * A self-signed certificate for the TLS tests, made in the test with `openssl` (the system's: it
 * is there wherever Node is built or packaged; a test that needs it fails with a clear message
 * when it is not, rather than skipping). The certificate names 127.0.0.1, ::1 and localhost, so
 * agents on loopback verify each other by name as well as by chain; it is its own CA (pass it as
 * --tls-ca, or as `ca` to a client).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  dir: string;
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** Remove the directory. */
  remove(): void;
}

/** Make a key and a self-signed certificate (EC P-256, one day) in a new temporary directory. */
export function makeTestCert(cn = 'peerlb-test'): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'peerlb-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${cn}`,
        '-addext', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
        '-addext', 'basicConstraints=critical,CA:TRUE',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('the TLS tests make their certificate with `openssl`, which is not installed (apt-get install openssl)');
    throw new Error(`openssl could not make a test certificate: ${e.stderr?.toString() ?? e.message}`);
  }
  return {
    dir,
    certFile,
    keyFile,
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
