/** `peerlb keygen`: a cluster key, or an Ed25519 signing key and its public key. */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { fail } from './common.js';

/** Register `peerlb keygen` on `program`. */
export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('print a new 256-bit cluster key (base64; a keyring file of one key) for --key-file')
    .option('--signing', 'print a new Ed25519 signing key (PEM) for --signing-key-file instead; its public key goes to stderr')
    .option('--public <file>', 'print the public key (base64) of the signing key in <file>, for join({ verify: { publicKey } })')
    .action(async (o: { signing?: boolean; public?: string }) => {
      const { generateKeyPairSync } = await import('node:crypto');
      const { loadPrivateKeyFile, publicKeyBase64 } = await import('../../sdk/node/signing.js');
      if (o.public !== undefined) {
        try {
          process.stdout.write(publicKeyBase64(loadPrivateKeyFile(o.public)) + '\n');
        } catch (err) {
          fail(err);
        }
        return;
      }
      if (o.signing) {
        const { privateKey } = generateKeyPairSync('ed25519');
        process.stdout.write(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
        process.stderr.write(`public key: ${publicKeyBase64(privateKey)}\n`);
        return;
      }
      process.stdout.write(randomBytes(32).toString('base64') + '\n');
    });
}
