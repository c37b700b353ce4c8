/**
 * The public API of `peerlb/sdk` and `peerlb/agent` loses nothing (issue 14: additions only).
 * The snapshots beside this file were written from the API before the house move (commit 6f142d5,
 * built in a worktree of its own) by test/support/write-api-snapshots.ts:
 *  - <entry>-exports.txt: the export names of the built entry (dist/<entry>/index.js) and their kind;
 *  - <entry>-surface.txt: one line per member of every exported symbol, read from
 *    dist/<entry>/index.d.ts with the TypeScript compiler API (test/support/api-surface.ts says
 *    what a line holds; no file paths, no parameter names).
 * A line of a snapshot missing from the current build fails the test (a changed signature shows as
 * a missing old line and a new one); new lines are printed and allowed. Needs `npm run build`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { declarationSurface, ENTRIES, runtimeExports } from '../../support/api-surface.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const snapshot = (name: string) => readFileSync(new URL(`./${name}.txt`, import.meta.url), 'utf8').split('\n').filter((l) => l !== '');

function compare(what: string, before: string[], now: string[]): string[] {
  const has = new Set(now);
  const had = new Set(before);
  const added = now.filter((l) => !had.has(l));
  if (added.length) console.log(`${what}: ${added.length} additions\n  ${added.join('\n  ')}`);
  return before.filter((l) => !has.has(l));
}

describe.each(ENTRIES)('peerlb/%s', (entry) => {
  it('exports every name it exported before the move, of the same kind', async () => {
    const before = snapshot(`${entry}-exports`);
    expect(before.length).toBeGreaterThan(5);
    const missing = compare(`peerlb/${entry} exports`, before, await runtimeExports(ROOT, entry));
    expect(missing, `missing from dist/${entry}/index.js:\n${missing.join('\n')}`).toEqual([]);
  });

  it('declares every member it declared before the move, with the same type', () => {
    const before = snapshot(`${entry}-surface`);
    expect(before.length).toBeGreaterThan(50);
    const missing = compare(`peerlb/${entry} declarations`, before, declarationSurface(ROOT, entry));
    expect(missing, `missing from dist/${entry}/index.d.ts (or changed):\n${missing.join('\n')}`).toEqual([]);
  }, 60_000);
});

describe('the comparison', () => {
  it('fails on a lost line and allows an added one', () => {
    expect(compare('made-up', ['a', 'b'], ['a', 'b', 'c'])).toEqual([]);
    expect(compare('made-up', ['a', 'b'], ['a', 'c'])).toEqual(['b']);
  });
});
