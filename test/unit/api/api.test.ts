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

/**
 * A line that only gained members of a string-literal union (a new error code in `ErrorCode`)
 * widened the type: an addition, not a loss.
 */
export function widened(before: string, now: string): boolean {
  const had = new Set(before.match(/'[^']*'/g) ?? []);
  const gained = (now.match(/'[^']*'/g) ?? []).filter((lit) => !had.has(lit));
  if (gained.length === 0) return false;
  let cut = now;
  for (const lit of new Set(gained)) cut = cut.split(` | ${lit}`).join('');
  return cut === before;
}

/**
 * Lines reviewed by hand (reviewed.txt: the old line, then a line starting with "→" saying why the
 * change is not a loss). Each must still be missing, so the list cannot go stale.
 */
const reviewed = (() => {
  const lines = readFileSync(new URL('./reviewed.txt', import.meta.url), 'utf8').split('\n');
  const out = new Map<string, string>();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === '' || l.startsWith('#') || l.startsWith('→')) continue;
    const why = lines[i + 1]?.startsWith('→') ? lines[i + 1]!.slice(1).trim() : '';
    if (!why) throw new Error(`reviewed.txt line ${i + 1}: an old line needs a "→ why" line after it`);
    out.set(l, why);
  }
  return out;
})();

function compare(what: string, before: string[], now: string[]): string[] {
  const has = new Set(now);
  const had = new Set(before);
  const added = now.filter((l) => !had.has(l));
  if (added.length) console.log(`${what}: ${added.length} additions (first: ${added.slice(0, 3).map((l) => (l.length > 120 ? `${l.slice(0, 120)}…` : l)).join(' | ')})`);
  return before.filter((l) => !has.has(l) && !now.some((n) => widened(l, n)) && !reviewed.has(l));
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
  it('allows a string-literal union that only gained members, and nothing else', () => {
    expect(widened("x code: 'A' | 'B'", "x code: 'A' | 'B' | 'C'")).toBe(true);
    expect(widened("x code: 'A' | 'B'", "x code: 'A' | 'C'")).toBe(false);
    expect(widened("x code: 'A' | 'B'", "x code: 'A' | 'B' | 'C' | number")).toBe(false);
  });
  it('every reviewed line is one the build no longer declares (the list cannot go stale)', () => {
    const all = ENTRIES.flatMap((e) => declarationSurface(ROOT, e));
    const stale = [...reviewed.keys()].filter((l) => all.includes(l));
    expect(stale).toEqual([]);
    expect(reviewed.size).toBeGreaterThan(0);
  }, 60_000);
});
