import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Four projects (`npm test` runs all four; `--project <name>` one of them):
 *  - unit: test/unit/**: no sockets, no processes, no sleeps.
 *    test/support/no-sockets.ts makes net/dgram/http/WebSocket/child_process throw, so a test that
 *    reaches the network fails instead of silently becoming an integration test.
 *  - integration: test/integration/**: real sockets and processes on loopback.
 *  - lan: test/lan/** on namespace LANs (they skip themselves without root / namespaces).
 *  - soak: test/soak/**, the long fuzz runs, bounded by count: `npm test` runs them at
 *    PEERLB_SOAK_SCALE=1, `npm run soak` at a larger scale (see test/soak/fuzz.test.ts).
 * All four share one pool of two forks (each file in a fork of its own, two at a time), as the
 * suite ran before the split: the processes under test keep a core (the machines have two), and a
 * long file of one project overlaps the others'. Measured on the 2-core box, inside unshare -n:
 * `npm test` 228 s wall this way, 243 s before the split; with the unit project first in threads
 * (sequence.groupOrder) and the rest after, 263 s (the unit group's tail was idle time).
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const shared = { testTimeout: 30_000, hookTimeout: 30_000 };
const forks = { pool: 'forks' as const };

export default defineConfig({
  root,
  test: {
    reporters: ['default'],
    // Worker counts are global in vitest 3 (not per project): every project's files share one
    // pool of two forks, so a long file of one project overlaps the others', as before the split.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      {
        root,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/support/no-sockets.ts'],
          ...forks,
          ...shared,
        },
      },
      { root, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], ...forks, ...shared } },
      { root, test: { name: 'lan', include: ['test/lan/**/*.test.ts'], ...forks, ...shared } },
      { root, test: { name: 'soak', include: ['test/soak/**/*.test.ts'], ...forks, ...shared } },
    ],
  },
});
