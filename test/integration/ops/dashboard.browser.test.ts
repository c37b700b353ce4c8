/**
 * The dashboard in a real browser: headless Chromium (playwright-core, the system's Chromium —
 * nothing is downloaded or installed at run time) opens `/` of one agent of a live 3-agent CLI
 * cluster, sees all three members, sees one turn dead in the page after `kill -9`, and leaves a
 * screenshot in test-output/dashboard.png (its absolute path is printed).
 *
 * Chromium: $PEERLB_CHROMIUM, else the usual system paths. Without one the test is skipped with the
 * reason, except on CI (CI=true), where it fails. The browser may only reach 127.0.0.0/8: no proxy,
 * no background networking, every host name unresolvable, and any request elsewhere aborted and
 * counted as a failure.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loopbackChromiumArgs } from '../../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownLoopback } from '../../support/net.js';
import { exited, startCliAgent, stopCliAgents, until, getJson, type MemberRow, type OpsAgent } from '../../support/ops.js';
import { ON_CI } from '../../support/ci.js';

const CANDIDATES = [process.env.PEERLB_CHROMIUM, '/usr/bin/chromium', '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'].filter(
  (p): p is string => Boolean(p),
);
const CHROMIUM = CANDIDATES.find((p) => existsSync(p));
const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const SHOT = path.join(REPO, 'test-output', 'dashboard.png');

if (!CHROMIUM) {
  const why = `dashboard browser test: no Chromium found (looked at ${CANDIDATES.join(', ')}; set PEERLB_CHROMIUM or apt-get install chromium)`;
  console.warn(ON_CI ? `${why} — required on CI` : `${why} — skipped`);
}

if (!CHROMIUM && ON_CI) {
  describe('dashboard in Chromium (CI)', () => {
    it('needs Chromium on CI', () => {
      throw new Error(`no Chromium found on CI (looked at ${CANDIDATES.join(', ')}); .ci/run installs it with apt`);
    });
  });
}

describe.skipIf(!CHROMIUM)('dashboard in headless Chromium, live 3-agent cluster', () => {
  let H = '127.0.0.1';
  const procs: OpsAgent[] = [];
  let browser: Browser | undefined;
  let page: Page;
  /** Every URL the page asked for (HTTP and WebSocket), and those refused for leaving loopback. */
  const requested: string[] = [];
  const blocked: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    H = await ownLoopback('127.0.0.33');
    const a = await startCliAgent(procs, 'dash-a', H, { extra: ['--health-interval', '200', '--zone', 'rack1'] });
    await startCliAgent(procs, 'dash-b', H, { join: [a.url], extra: ['--health-interval', '200', '--zone', 'rack1'] });
    await startCliAgent(procs, 'dash-c', H, { join: [a.url], extra: ['--health-interval', '200', '--zone', 'rack2'] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: loopbackChromiumArgs(H),
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, serviceWorkers: 'block' });
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname.startsWith('127.')) return route.continue();
      blocked.push(url.href);
      return route.abort('blockedbyclient');
    });
    page = await context.newPage();
    page.on('request', (r) => requested.push(r.url()));
    page.on('websocket', (ws) => requested.push(ws.url()));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  }, 60_000);

  afterAll(async () => {
    // The browser first, whatever happened (its sockets would keep retrying the agents).
    await browser?.close().catch(() => {});
    await stopCliAgents(procs);
  }, 30_000);

  const row = (node: string) => page.locator(`#rows tr[data-node="${node}"]`);

  it('shows all three members alive, then one dead after kill -9, and saves a screenshot', async () => {
    const [a, b, c] = procs as [OpsAgent, OpsAgent, OpsAgent];
    await until(async () => (await getJson<MemberRow[]>(`${a.http}/v1/members`)).filter((m) => m.status === 'alive').length === 3, 10_000, 'three alive members on dash-a');

    const res = await page.goto(`${a.http}/`, { timeout: 10_000 });
    expect(res?.status()).toBe(200);
    expect(await page.title()).toBe('peerlb');

    // Both live feeds connect, and the table fills from them.
    await page.locator('#conn-watch.up').waitFor({ timeout: 10_000 });
    await page.locator('#conn-events.up').waitFor({ timeout: 10_000 });
    for (const n of ['dash-a', 'dash-b', 'dash-c']) {
      await page.locator(`#rows tr[data-node="${n}"][data-status="alive"]`).waitFor({ timeout: 10_000 });
    }
    await page.locator('#rows tr[data-node="dash-c"] td.healthy').waitFor({ timeout: 10_000 });
    expect(await page.locator('#rows tr').count()).toBe(3);
    expect(await row('dash-a').locator('td').nth(1).textContent()).toBe(`${H}:${a.tcpPort}`);
    expect(await row('dash-c').locator('td').nth(4).textContent()).toBe('rack2');
    expect(await page.locator('#sub').textContent()).toBe('3 members, 3 alive, 3 servers clients can pick');
    expect(await page.locator('#zones tr[data-zone="rack1"] td').nth(1).textContent()).toBe('2');

    // Each bar says what it is. No server reports and none has a capacity: every bar is its host's
    // CPU and says so — dash-a's own, and dash-b's and dash-c's too (their agents gossip the source
    // with the figure).
    for (const n of ['dash-a', 'dash-b', 'dash-c']) {
      await row(n).locator('td.load[data-src="cpu"]').waitFor({ timeout: 10_000 });
      expect(await row(n).locator('td.load .src').textContent()).toBe('host CPU');
      expect(await row(n).locator('td.load .bar.cpu').count()).toBe(1);
    }
    // Once a server reports, its bar is the reported figure: this agent's, and another agent's.
    for (const [n, agent] of [['dash-a', a], ['dash-b', b]] as const) {
      const put = await fetch(`${agent.http}/v1/load`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ utilization: 0.25, sessions: 3 }) });
      expect(put.status).toBe(204);
      await row(n).locator('td.load[data-src="reported"]').waitFor({ timeout: 10_000 });
      expect(await row(n).locator('td.load .src').textContent()).toBe('reported');
      expect(await row(n).locator('td.load .bar.cpu').count()).toBe(0);
    }
    expect(await row('dash-c').locator('td.load').getAttribute('data-src')).toBe('cpu');

    // kill -9 one agent: the page must show it dead, with no reload.
    c.proc.kill('SIGKILL');
    await exited(c.proc);
    await page.locator('#rows tr[data-node="dash-c"][data-status="dead"]').waitFor({ timeout: 15_000 });
    expect(await row('dash-c').locator('td').nth(2).textContent()).toBe('dead');
    expect(await row('dash-c').locator('td.dead').count()).toBe(1);
    // Its server's last reported health is stale, not shown as healthy.
    await until(async () => (await row('dash-c').locator('td').nth(3).textContent()) === '-', 5000, 'no health shown for the dead member');
    expect(await row('dash-a').locator('td').nth(3).textContent()).toBe('healthy');
    expect(await page.locator('#rows tr[data-status="alive"]').count()).toBe(2);
    await until(async () => (await page.locator('#sub').textContent()) === '3 members, 2 alive, 2 servers clients can pick', 5000, 'summary line after the kill');
    await page.locator('#ev [data-kind="dead"]', { hasText: 'dash-c' }).first().waitFor({ timeout: 5000 });

    mkdirSync(path.dirname(SHOT), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
    expect(existsSync(SHOT)).toBe(true);
    console.log(`dashboard screenshot: ${SHOT}`);

    expect(pageErrors).toEqual([]);
    expect(blocked).toEqual([]);
    expect(requested.length).toBeGreaterThanOrEqual(3); // the page and its two WebSockets at least
    for (const u of requested) expect(new URL(u).hostname, u).toBe(H);
  });
});
