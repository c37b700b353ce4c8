/**
 * Self-signed certificates for the TLS tests, committed under test/support/certs/ (its README says
 * how they were made) so that `npm test` needs nothing but Node. Each names 127.0.0.1, ::1 and
 * localhost, so agents on loopback verify each other by name as well as by chain; each is its own
 * CA (pass it as --tls-ca, or as `ca` to a client).
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Beside this file in the source tree; from dist/test/support/, the same folder in the repository.
const CERTS = [new URL('./certs/', import.meta.url), new URL('../../../test/support/certs/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((d) => existsSync(d)) ?? fileURLToPath(new URL('./certs/', import.meta.url));

export interface TestCert {
  dir: string;
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** Remove the directory. */
  remove(): void;
}

/** A key and its self-signed certificate (one of the committed ones, by name), copied into a new temporary directory. */
export function makeTestCert(cn = 'peerlb-test'): TestCert {
  const from = (ext: string) => join(CERTS, `${cn}.${ext}.pem`);
  if (!existsSync(from('cert'))) throw new Error(`no test certificate named ${cn} in ${CERTS} (see its README to make one)`);
  const dir = mkdtempSync(join(tmpdir(), 'peerlb-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  copyFileSync(from('cert'), certFile);
  copyFileSync(from('key'), keyFile);
  return {
    dir,
    certFile,
    keyFile,
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
