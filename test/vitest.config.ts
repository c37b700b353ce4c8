import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Four projects (`npm test` runs all four; `--project <name>` one of them):
 *  - unit: test/unit/**, and test/architecture.test.ts: no sockets, no processes, no sleeps.
 *    test/support/no-sockets.ts makes net/dgram/http/WebSocket/child_process throw, so a test that
 *    reaches the network fails instead of silently becoming an integration test. Threads, in
 *    parallel: these are CPU-only.
 *  - integration: test/integration/**: real sockets and processes on loopback. Files in separate
 *    forks, two at a time, leaving a core for the processes under test (the machines have two).
 *  - lan: test/lan/** on namespace LANs (they skip themselves without root / namespaces).
 *  - soak: test/soak/**, the long fuzz runs, bounded by count: `npm test` runs them at
 *    PEERLB_SOAK_SCALE=1, `npm run soak` at a larger scale (see test/soak/fuzz.test.ts).
 * Two groups run one after the other (sequence.groupOrder): the unit threads first, then the
 * integration, lan and soak files together in two forks, as before the split, so the processes
 * under test keep their core and a long lan or soak file overlaps the integration files.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const shared = { testTimeout: 30_000, hookTimeout: 30_000 };
const forks = { pool: 'forks' as const };

export default defineConfig({
  root,
  test: {
    reporters: ['default'],
    // Worker counts are global in vitest 3 (not per project): two at a time, whichever the pool.
    poolOptions: { forks: { maxForks: 2, minForks: 1 }, threads: { maxThreads: 2, minThreads: 1 } },
    projects: [
      {
        root,
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['test/unit/**/*.test.ts', 'test/architecture.test.ts'],
          setupFiles: ['test/support/no-sockets.ts'],
          pool: 'threads',
          ...shared,
        },
      },
      { root, test: { name: 'integration', sequence: { groupOrder: 1 }, include: ['test/integration/**/*.test.ts'], ...forks, ...shared } },
      { root, test: { name: 'lan', sequence: { groupOrder: 1 }, include: ['test/lan/**/*.test.ts'], ...forks, ...shared } },
      { root, test: { name: 'soak', sequence: { groupOrder: 1 }, include: ['test/soak/**/*.test.ts'], ...forks, ...shared } },
    ],
  },
});
