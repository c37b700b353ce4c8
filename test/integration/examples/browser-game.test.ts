/**
 * `npm run example:browser` (examples/browser-game/run.js) as a user runs it: a process that starts
 * 3 game servers and their agents and prints the page's URL; the page, loaded in headless Chromium
 * (locked to loopback, test/support/chromium.ts), joins the cluster, opens a game socket per
 * simulated player and shows which server each landed on. SIGINT stops the launcher and every
 * process it started (checked by PID).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_CANDIDATES, launchLoopbackChromium, type LockedBrowser } from '../../support/chromium.js';
import { ON_CI } from '../../support/ci.js';
import { onLines } from '../../support/lines.js';
import { until } from '../../support/until.js';

const RUN = fileURLToPath(new URL('../../../dist/examples/browser-game/run.js', import.meta.url));
if (!CHROMIUM) console.warn(`browser game example test: no Chromium found (looked at ${CHROMIUM_CANDIDATES.join(', ')})${ON_CI ? ' — required on CI' : ' — skipped'}`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!CHROMIUM && !ON_CI)('examples/browser-game: npm run example:browser', () => {
  let proc: ChildProcess | undefined;
  let pids: number[] = [];
  let b: LockedBrowser | undefined;

  afterAll(async () => {
    await b?.browser.close().catch(() => {});
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }, 30_000);

  it('prints the page URL; the page in Chromium puts every player on one of the 3 servers; SIGINT leaves no child behind', async () => {
    proc = spawn(process.execPath, [RUN], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    onLines(proc.stdout!, (l) => lines.push(l));
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => proc!.once('exit', (code) => r(code)));
    const field = <T>(k: string): T | undefined => lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((j) => k in j)?.[k] as T | undefined;
    await until(() => field('url') !== undefined || proc!.exitCode !== null, 60_000, `the page URL (stderr: ${stderr})`, 50);
    const url = field<string>('url');
    expect(url, stderr).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    pids = field<number[]>('pids')!;
    expect(pids).toHaveLength(6); // 3 game servers, 3 agents
    expect(pids.every(alive)).toBe(true);

    b = await launchLoopbackChromium('127.0.0.1');
    const page = await b.context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    expect((await page.goto(url!, { timeout: 15_000 }))?.status()).toBe(200);
    await page.waitForFunction(() => 'gameResult' in globalThis || 'gameError' in globalThis, undefined, { timeout: 30_000 });
    const r = await page.evaluate(() => {
      const g = globalThis as unknown as { gameResult?: { players: { player: string; server: string; url: string }[]; servers: string[] }; gameError?: string };
      return { gameResult: g.gameResult, gameError: g.gameError };
    });
    expect(r.gameError).toBeUndefined();
    const { players, servers } = r.gameResult!;
    expect(servers.sort()).toEqual(['game-1', 'game-2', 'game-3']);
    expect(players.map((p) => p.player)).toEqual(Array.from({ length: 8 }, (_, i) => `player-${i + 1}`));
    for (const p of players) expect(servers).toContain(p.server);
    // 8 players over 3 servers: more than one server gets players.
    expect(new Set(players.map((p) => p.server)).size).toBeGreaterThan(1);
    // What the page drew: a row per player, naming its server.
    const rows = await page.locator('#players tr').allTextContents();
    expect(rows).toHaveLength(8);
    players.forEach((p, i) => expect(rows[i]).toContain(p.server));
    expect(pageErrors).toEqual([]);
    expect(b.blocked).toEqual([]);

    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    await until(() => !pids.some(alive), 10_000, 'the children gone', 50);
    expect(pids.filter(alive)).toEqual([]);
  }, 120_000);
});
