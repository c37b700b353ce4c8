/**
 * peerlb/sdk/core in a real browser: the entry bundled by esbuild (bundle.ts, platform 'browser')
 * is loaded into headless Chromium (playwright-core, the system's Chromium: nothing is downloaded)
 * from a page served on loopback; the page joins a live `peerlb agent` process through /v1/watch
 * over the browser's own WebSocket (ping frames for the heartbeat), `pick()` returns the agent's
 * server, a `change` event comes after the agent's load changes (PUT /v1/load), signatures are
 * checked with the browser's WebCrypto (the agent signs with --signing-key-file), and what needs
 * Node (connect, udp, mDNS) is an UnsupportedError naming it.
 *
 * Chromium: $PEERLB_CHROMIUM, else the usual system paths. Without one the test is skipped with the
 * reason, except on CI (CI=true), where it fails (as test/integration/ops/dashboard.browser.test.ts). The
 * browser may only reach 127.0.0.0/8: no proxy, every host name unresolvable, any request
 * elsewhere aborted and counted as a failure.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loopbackChromiumArgs } from '../../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownLoopback } from '../../support/net.js';
import { startCliAgent, stopCliAgents, type OpsAgent } from '../../support/ops.js';
import { ON_CI } from '../../support/ci.js';
import { publicKeyBase64 } from '../../../sdk/node/signing.js';
import { bundleCore } from './bundle.js';

/** What the page has: the bundle's exports as `globalThis.peerlb` (set by the page's module script), and the test's own state. */
type Core = typeof import('../../../sdk/core/index.js');
type PageGlobals = { peerlb: Core; c: InstanceType<Core['Cluster']>; changes: { id: string; utilization: number | undefined; sessions: number | undefined }[][] };

const CANDIDATES = [process.env.PEERLB_CHROMIUM, '/usr/bin/chromium', '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'].filter(
  (p): p is string => Boolean(p),
);
const CHROMIUM = CANDIDATES.find((p) => existsSync(p));

if (!CHROMIUM) {
  const why = `core browser test: no Chromium found (looked at ${CANDIDATES.join(', ')}; set PEERLB_CHROMIUM or apt-get install chromium)`;
  console.warn(ON_CI ? `${why} — required on CI` : `${why} — skipped`);
}

if (!CHROMIUM && ON_CI) {
  describe('peerlb/sdk/core in Chromium (CI)', () => {
    it('needs Chromium on CI', () => {
      throw new Error(`no Chromium found on CI (looked at ${CANDIDATES.join(', ')}); .ci/run installs it with apt`);
    });
  });
}

describe.skipIf(!CHROMIUM)('peerlb/sdk/core bundled, in headless Chromium, watching a live agent', () => {
  let H = '127.0.0.1';
  const procs: OpsAgent[] = [];
  let browser: Browser | undefined;
  let server: http.Server | undefined;
  let page: Page;
  let origin = '';
  let dir = '';
  const keys = generateKeyPairSync('ed25519');
  const wrong = generateKeyPairSync('ed25519');
  const requested: string[] = [];
  const blocked: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    H = await ownLoopback('127.0.0.37');
    dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-core-browser-'));
    const keyFile = path.join(dir, 'signing.pem');
    writeFileSync(keyFile, keys.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    await startCliAgent(procs, 'br-a', H, { extra: ['--health-interval', '200', '--signing-key-file', keyFile] });

    const bundle = await bundleCore();
    expect(bundle.forbidden).toEqual([]);
    server = http.createServer((req, res) => {
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><title>peerlb core</title><script type="module">import * as m from "/peerlb-core.js"; globalThis.peerlb = m;</script><p>peerlb/sdk/core</p>');
      } else if (req.url === '/peerlb-core.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
        res.end(bundle.code);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server!.listen(0, H, () => resolve()));
    origin = `http://${H}:${(server.address() as net.AddressInfo).port}`;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: loopbackChromiumArgs(H),
    });
    const context = await browser.newContext({ serviceWorkers: 'block' });
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
  }, 90_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stopCliAgents(procs);
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('joins through /v1/watch, picks the agent’s server, sees a change after a load change, verifies with WebCrypto', async () => {
    const a = procs[0]!;
    expect((await page.goto(`${origin}/`, { timeout: 10_000 }))?.status()).toBe(200);
    await page.waitForFunction(() => (globalThis as unknown as Partial<PageGlobals>).peerlb !== undefined, undefined, { timeout: 10_000 });
    expect(await page.evaluate(() => typeof WebSocket)).toBe('function');

    const picked = await page.evaluate(async (agent) => {
      const w = globalThis as unknown as PageGlobals;
      const c = await w.peerlb.join({ service: 'game', discovery: { agents: [agent] }, waitForServersMs: 10_000 });
      w.c = c;
      w.changes = [];
      c.on('change', (view) => w.changes.push(view.map((s) => ({ id: s.id, utilization: s.load?.utilization, sessions: s.load?.sessions }))));
      const s = c.pick();
      return s ? { id: s.id, host: s.host, tcpPort: s.tcpPort } : undefined;
    }, a.url);
    expect(picked).toEqual({ id: 'br-a', host: H, tcpPort: a.tcpPort });

    const put = await fetch(`${a.http}/v1/load`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ utilization: 0.25, sessions: 3 }) });
    expect(put.status).toBe(204);
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).changes.some((v) => v.some((s) => s.id === 'br-a' && s.utilization === 0.25 && s.sessions === 3)),
      undefined,
      { timeout: 15_000 },
    );

    // Signatures checked by the browser's WebCrypto: the cluster's key lets the server in, another keeps it out.
    const signed = await page.evaluate(
      async ({ agent, right, other }) => {
        const m = (globalThis as unknown as PageGlobals).peerlb;
        const ok = await m.join({ service: 'game', discovery: { agents: [agent] }, verify: { publicKey: right }, waitForServersMs: 10_000 });
        const rejected: string[] = [];
        const bad = await m.join({ service: 'game', discovery: { agents: [agent] }, verify: { publicKey: other }, onRejected: (e) => rejected.push(`${e.server}:${e.reason}`), waitForServersMs: 10_000 });
        const out = { ok: ok.pick()?.id, bad: bad.pick()?.id, rejected };
        await ok.close();
        await bad.close();
        return out;
      },
      { agent: a.url, right: publicKeyBase64(keys.publicKey), other: publicKeyBase64(wrong.publicKey) },
    );
    expect(signed).toEqual({ ok: 'br-a', bad: undefined, rejected: ['br-a:bad-signature'] });

    // What needs Node says so, with its code and the option's name.
    const unsupported = await page.evaluate(async () => {
      const m = (globalThis as unknown as PageGlobals).peerlb;
      const c = (globalThis as unknown as PageGlobals).c;
      const codes: string[] = [];
      await c.connect().catch((e: { code: string; option: string }) => codes.push(`${e.code} ${e.option}`));
      try {
        c.udp();
      } catch (e) {
        codes.push(`${(e as { code: string }).code} ${(e as { option: string }).option}`);
      }
      await m.join({ service: 'game', discovery: { mdns: { interface: '127.0.0.1' } } }).catch((e: { code: string; option: string }) => codes.push(`${e.code} ${e.option}`));
      await m.join({ service: 'game', discovery: { servers: ['game.example:7000'] } }).catch((e: { code: string; option: string }) => codes.push(`${e.code} ${e.option}`));
      await c.close();
      return codes;
    });
    expect(unsupported).toEqual(['PEERLB_ERR_UNSUPPORTED connect', 'PEERLB_ERR_UNSUPPORTED udp', 'PEERLB_ERR_UNSUPPORTED discovery.mdns', 'PEERLB_ERR_UNSUPPORTED discovery.servers[0]']);

    expect(pageErrors).toEqual([]);
    expect(blocked).toEqual([]);
    expect(requested.some((u) => u.startsWith(`ws://${H}:${a.port}/v1/watch`))).toBe(true);
    for (const u of requested) expect(new URL(u).hostname, u).toBe(H);
  }, 60_000);
});
