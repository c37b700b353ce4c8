/**
 * Browser game clients end to end (issue 15): `peerlb/sdk` bundled by esbuild for the browser
 * (platform 'browser': the package's `browser` export condition, resolved through the package's
 * own exports by a self-reference, as a page's bundler would) runs in headless Chromium
 * (playwright-core, the system's Chromium) from pages served on loopback, against 4 real
 * `peerlb agent` processes, each with a WebSocket game server of its own (a separate process, so it
 * can be kill -9'd; it tells each socket its name and counts the sockets it accepts), and a fifth
 * agent over TLS with --allow-origin:
 *  1. 400 sockets opened by `cluster.websocket()` (p2c) spread over the 4 servers with max/mean ≤ 1.15,
 *     counted at the servers; a key always lands on the same server;
 *  2. a verifying page (WebCrypto Ed25519) never opens a socket to the server whose agent is unsigned;
 *  3. kill -9 of a game server whose agent stays up: every later open succeeds (failover within
 *     attempts) and the server is out of the page's picks once its agent's health check sees it;
 *  4. kill -9 of the agent the page watches: the page is subscribed through another agent (learned
 *     from the view) within 2 s and its view stays live (a load change at another agent reaches it);
 *  5. over wss (the agent's certificate is the test's; Chromium started with
 *     --ignore-certificate-errors): a page on an origin not in --allow-origin gets no view, one on a
 *     listed origin gets the view and its game socket.
 * The browser may only reach 127.0.0.0/8 (as core.browser.test.ts). Without Chromium the test is
 * skipped with the reason, except on CI, where it fails.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { loopbackChromiumArgs } from '../../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownLoopback } from '../../support/net.js';
import { startCliAgent, stopCliAgents, type OpsAgent } from '../../support/ops.js';
import { killGameServer, startGameServer, stopGameServers, type GameServer } from '../../support/game-servers.js';
import { makeTestCert, type TestCert } from '../../support/tls.js';
import { until } from '../../support/until.js';
import { ON_CI } from '../../support/ci.js';
import { publicKeyBase64 } from '../../../sdk/node/signing.js';
import { REPO, isForbidden } from './bundle.js';

type Core = typeof import('../../../sdk/core/index.js');
type Cl = InstanceType<Core['Cluster']>;
/** What the pages have: the bundle as `peerlb`, and the test's helpers (the page script below). */
interface PageGlobals {
  peerlb: Core;
  c: Cl;
  /** Watch sockets the page opened: url, when it opened, closed, and got its first frame (performance.now()). */
  watch: { url: string; openAt?: number; closeAt?: number; firstAt?: number }[];
  /** Open n sockets through `c` (at most `batch` at a time), each kept until its server said its name; then closed. */
  openMany(c: Cl, n: number, o: { batch: number; key?: (i: number) => string; attempts?: number }): Promise<{ names: string[]; errors: string[] }>;
  /** A WebSocket class that records the page's watch sockets in `watch`. */
  Recording: typeof WebSocket;
}

const CANDIDATES = [process.env.PEERLB_CHROMIUM, '/usr/bin/chromium', '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'].filter(
  (p): p is string => Boolean(p),
);
const CHROMIUM = CANDIDATES.find((p) => existsSync(p));
if (!CHROMIUM) console.warn(`game browser test: no Chromium found (looked at ${CANDIDATES.join(', ')})${ON_CI ? ' — required on CI' : ' — skipped'}`);
if (!CHROMIUM && ON_CI) {
  describe('browser game clients (CI)', () => {
    it('needs Chromium on CI', () => {
      throw new Error(`no Chromium found on CI (looked at ${CANDIDATES.join(', ')}); .ci/run installs it with apt`);
    });
  });
}

/** The page's own script (after the bundle's import): helpers the test calls through page.evaluate. */
const PAGE_SCRIPT = `
globalThis.watch = [];
globalThis.Recording = class extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    if (!String(url).includes('/v1/watch')) return;
    const r = { url: String(url) };
    globalThis.watch.push(r);
    this.addEventListener('open', () => (r.openAt = performance.now()));
    this.addEventListener('message', () => (r.firstAt ??= performance.now()));
    this.addEventListener('close', () => (r.closeAt = performance.now()));
  }
};
globalThis.openMany = async (c, n, o) => {
  const names = [], errors = [];
  for (let i = 0; i < n; i += o.batch) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + o.batch); j++) {
      batch.push((async () => {
        try {
          const ws = await c.websocket({ key: o.key ? o.key(j) : undefined, attempts: o.attempts, timeoutMs: 15000 });
          const name = await new Promise((resolve) => {
            const t = setTimeout(() => resolve('no-hello'), 15000);
            ws.addEventListener('message', (ev) => { clearTimeout(t); resolve(String(ev.data).replace(/^server /, '')); }, { once: true });
            ws.addEventListener('close', () => { clearTimeout(t); resolve('closed'); }, { once: true });
          });
          names[j] = name;
          return ws;
        } catch (e) {
          errors.push(String(e && e.message || e));
          names[j] = 'error';
        }
      })());
    }
    const sockets = (await Promise.all(batch)).filter(Boolean);
    await Promise.all(sockets.map((ws) => new Promise((resolve) => {
      if (ws.readyState === 3) return resolve();
      ws.addEventListener('close', resolve, { once: true });
      ws.close();
    })));
  }
  return { names, errors };
};
`;

describe.skipIf(!CHROMIUM)('browser game clients: peerlb/sdk bundled for the browser, 4 agents, 4 WebSocket game servers, in headless Chromium', () => {
  let H = '127.0.0.1';
  const agents: OpsAgent[] = [];
  const games: GameServer[] = [];
  const servers: http.Server[] = [];
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  let listed = '';
  let unlisted = '';
  let dir = '';
  let cert: TestCert | undefined;
  let tlsAgent: OpsAgent;
  const keys = generateKeyPairSync('ed25519');
  const blocked: string[] = [];
  const pageErrors: string[] = [];
  /** Node → the page's agent/game names: a..d, g1..g4. */
  const A = (n: string) => agents.find((a) => a.node === n)!;
  const G = (n: string) => games.find((g) => g.name === n)!;
  /** Sockets from browsers each game server accepted so far (the servers' own counts). */
  const pageOpens = () => Object.fromEntries(games.map((g) => [g.name, g.opens]));

  beforeAll(async () => {
    H = await ownLoopback('127.0.0.41');
    dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-game-browser-'));
    const keyFile = path.join(dir, 'signing.pem');
    writeFileSync(keyFile, keys.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    cert = makeTestCert('peerlb-a');

    // The bundle, from the package entry as a page's bundler resolves it.
    const forbidden: string[] = [];
    const r = await build({
      absWorkingDir: REPO,
      stdin: { contents: "export * from 'peerlb/sdk';", resolveDir: REPO, loader: 'js', sourcefile: 'page-entry.js' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [
        {
          name: 'forbid-node',
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) => {
              if (args.path.startsWith('.') || args.path.startsWith('/') || !isForbidden(args.path)) return undefined;
              forbidden.push(`${args.importer} → ${args.path}`);
              return { path: args.path, external: true };
            });
          },
        },
      ],
    });
    expect(forbidden).toEqual([]);
    // The browser condition's entry, not the Node one.
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs).toContain('dist/sdk/core/index.js');
    expect(inputs.filter((i) => i.startsWith('dist/sdk/node/') || i === 'dist/sdk/index.js')).toEqual([]);
    const code = r.outputFiles[0]!.text;

    const games4 = await Promise.all(['g1', 'g2', 'g3', 'g4'].map((n) => startGameServer(games, n, H)));
    const gTls = await startGameServer(games, 'g5', H, cert);
    const wsFlags = (g: GameServer) => ['--ws', String(g.port), '--health', 'ws', '--health-interval', '200', '--health-fall', '2'];
    const a = await startCliAgent(agents, 'a', H, { extra: [...wsFlags(games4[0]!), '--signing-key-file', keyFile] });
    await Promise.all([
      startCliAgent(agents, 'b', H, { join: [a.url], extra: [...wsFlags(games4[1]!), '--signing-key-file', keyFile] }),
      startCliAgent(agents, 'c', H, { join: [a.url], extra: [...wsFlags(games4[2]!), '--signing-key-file', keyFile] }),
      // Unsigned: a verifying page must never open a socket to its server.
      startCliAgent(agents, 'd', H, { join: [a.url], extra: wsFlags(games4[3]!) }),
    ]);

    // Two origins serving the same page; the TLS agent lists only the first.
    const serve = async () => {
      const s = http.createServer((req, res) => {
        if (req.url === '/') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(`<!doctype html><title>peerlb game</title><script type="module">import * as m from "/peerlb.js"; ${PAGE_SCRIPT}; globalThis.peerlb = m;</script><p>game</p>`);
        } else if (req.url === '/peerlb.js') {
          res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
          res.end(code);
        } else {
          res.writeHead(404);
          res.end();
        }
      });
      servers.push(s);
      await new Promise<void>((resolve) => s.listen(0, H, () => resolve()));
      return `http://${H}:${(s.address() as net.AddressInfo).port}`;
    };
    listed = await serve();
    unlisted = await serve();
    tlsAgent = await startCliAgent(agents, 'e', H, {
      extra: ['--service', 'tlsgame', '--ws', String(gTls.port), '--ws-tls', '--health', 'ws', '--health-interval', '200', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile, '--allow-origin', listed],
      noDefaults: false,
    });

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: loopbackChromiumArgs(H, ['--ignore-certificate-errors']),
    });
    context = await browser.newContext({ serviceWorkers: 'block' });
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname.startsWith('127.')) return route.continue();
      blocked.push(url.href);
      return route.abort('blockedbyclient');
    });
    page = await openPage(listed);

    // The 4 agents see each other, and their servers are healthy (each has its ws health check).
    await until(async () => (await watchOf(page, A('a').url, {})).length === 4, 30_000, 'the page sees 4 healthy servers');
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stopCliAgents(agents);
    await stopGameServers(games);
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    if (dir) rmSync(dir, { recursive: true, force: true });
    cert?.remove();
  }, 30_000);

  async function openPage(origin: string): Promise<Page> {
    const p = await context.newPage();
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    expect((await p.goto(`${origin}/`, { timeout: 15_000 }))?.status()).toBe(200);
    await p.waitForFunction(() => (globalThis as unknown as Partial<PageGlobals>).peerlb !== undefined, undefined, { timeout: 15_000 });
    return p;
  }

  /** A throwaway cluster in `p` (joined, read, closed): the healthy servers' ids, sorted. */
  async function watchOf(p: Page, agent: string, extra: Record<string, unknown>): Promise<string[]> {
    return p.evaluate(
      async ({ agent, extra }) => {
        const m = (globalThis as unknown as PageGlobals).peerlb;
        const c = await m.join({ service: 'game', discovery: { agents: [agent] }, waitForServersMs: 5000, ...extra });
        const ids = c
          .servers()
          .filter((s) => s.health === 'healthy')
          .map((s) => s.id)
          .sort();
        await c.close();
        return ids;
      },
      { agent, extra },
    );
  }

  /** Sockets from the page at each game server since `before`. */
  const delta = (before: Record<string, number>) => Object.fromEntries(Object.entries(pageOpens()).map(([k, v]) => [k, v - (before[k] ?? 0)]));

  it('400 sockets by cluster.websocket() (p2c) spread over the 4 servers, max/mean ≤ 1.15 counted at the servers; a key always lands on the same server', async () => {
    await page.evaluate(async (agent) => {
      const w = globalThis as unknown as PageGlobals;
      w.c = await w.peerlb.join({ service: 'game', strategy: 'p2c', discovery: { agents: [agent] }, waitForServersMs: 10_000 }, { WebSocket: w.Recording as never });
    }, A('a').url);
    const before = pageOpens();
    const r = await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      return w.openMany(w.c, 400, { batch: 200 });
    });
    expect(r.errors).toEqual([]);
    const byName: Record<string, number> = {};
    for (const n of r.names) byName[n] = (byName[n] ?? 0) + 1;
    expect(Object.keys(byName).sort()).toEqual(['g1', 'g2', 'g3', 'g4']);
    // Counted at the servers: the sockets each accepted from the page, as many as said its name.
    const at = delta(before);
    expect(at).toEqual({ ...byName, g5: 0 });
    const counts = Object.values(at).slice(0, 4);
    const mean = 400 / 4;
    console.log(`game browser: 400 p2c sockets, per server (at the servers) ${JSON.stringify(at)}, max/mean ${(Math.max(...counts) / mean).toFixed(3)}`);
    expect(Math.max(...counts) / mean).toBeLessThanOrEqual(1.15);

    // Affinity: 20 keys × 5 opens each, one server per key.
    const aff = await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      return w.openMany(w.c, 100, { batch: 100, key: (i) => `player-${i % 20}` });
    });
    expect(aff.errors).toEqual([]);
    const perKey = new Map<string, Set<string>>();
    aff.names.forEach((n, i) => {
      const k = `player-${i % 20}`;
      perKey.set(k, (perKey.get(k) ?? new Set()).add(n));
    });
    expect(perKey.size).toBe(20);
    for (const [k, s] of perKey) expect([...s], k).toHaveLength(1);
    expect([...perKey.values()].every((s) => /^g[1-4]$/.test([...s][0]!))).toBe(true);
    // The keys are not all on one server.
    expect(new Set([...perKey.values()].map((s) => [...s][0])).size).toBeGreaterThan(1);
  }, 120_000);

  it('a verifying page (WebCrypto Ed25519) never opens a socket to the server whose agent is unsigned', async () => {
    const before = pageOpens();
    const r = await page.evaluate(
      async ({ agent, publicKey }) => {
        const w = globalThis as unknown as PageGlobals;
        const rejected: string[] = [];
        const c = await w.peerlb.join({ service: 'game', discovery: { agents: [agent] }, verify: { publicKey }, onRejected: (e) => rejected.push(`${e.server}:${e.reason}`), waitForServersMs: 10_000 });
        const ids = c
          .servers()
          .map((s) => s.id)
          .sort();
        const opened = await w.openMany(c, 60, { batch: 60 });
        await c.close();
        return { ids, rejected, ...opened };
      },
      { agent: A('a').url, publicKey: publicKeyBase64(keys.publicKey) },
    );
    expect(r.ids).toEqual(['a', 'b', 'c']);
    expect(r.rejected).toContain('d:unsigned');
    expect(r.errors).toEqual([]);
    expect(r.names.filter((n) => n === 'g4')).toEqual([]);
    expect(new Set(r.names)).toEqual(new Set(['g1', 'g2', 'g3']));
    // At the servers: g4 accepted no socket from the page; g1..g3 the 60.
    const at = delta(before);
    expect(at.g4).toBe(0);
    expect(at.g1! + at.g2! + at.g3!).toBe(60);
  }, 60_000);

  it('kill -9 of a game server while its agent stays up: every later open succeeds, and the server is out of the picks once its health check sees it', async () => {
    await killGameServer(G('g3'));
    // At once, before its agent has noticed: failover within attempts.
    const r = await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      return w.openMany(w.c, 40, { batch: 10, attempts: 4 });
    });
    expect(r.errors).toEqual([]);
    expect(r.names.filter((n) => !/^g[124]$/.test(n))).toEqual([]);
    // The agent's check (200 ms, fall 2) marks it unhealthy; the page's view says so and no pick goes to it.
    await until(
      () => page.evaluate(() => (globalThis as unknown as PageGlobals).c.servers().find((s) => s.id === 'c')?.health !== 'healthy'),
      15_000,
      'server c unhealthy in the page',
    );
    const picks = await page.evaluate(() => {
      const c = (globalThis as unknown as PageGlobals).c;
      const ids = new Set<string>();
      for (let i = 0; i < 200; i++) ids.add(c.pick()?.id ?? 'none');
      return [...ids].sort();
    });
    expect(picks).toEqual(['a', 'b', 'd']);
    const again = await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      return w.openMany(w.c, 30, { batch: 10 });
    });
    expect(again.errors).toEqual([]);
    expect(new Set(again.names)).toEqual(new Set(['g1', 'g2', 'g4']));
  }, 60_000);

  it('kill -9 of the agent the page watches: the page is subscribed through another agent (learned from the view) within 2 s, and its view stays live', async () => {
    const a = A('a');
    const watchA = await page.evaluate((url) => (globalThis as unknown as PageGlobals).watch.filter((w) => w.url.startsWith(url) && w.closeAt === undefined).length, a.url);
    expect(watchA).toBe(1); // the page's cluster watches a (its only seed)
    a.proc.kill('SIGKILL');
    await until(() => a.proc.exitCode !== null || a.proc.signalCode !== null, 10_000, 'agent a gone');
    const sw = await until(
      () =>
        page.evaluate((url) => {
          const ws = (globalThis as unknown as PageGlobals).watch;
          const closed = ws.find((w) => w.url.startsWith(url) && w.closeAt !== undefined);
          return closed !== undefined && ws.some((w) => !w.url.startsWith(url) && w.firstAt !== undefined && w.firstAt > closed.closeAt!);
        }, a.url),
      15_000,
      'a watch socket to another agent with a frame after a’s closed',
    ).then(() =>
      page.evaluate((url) => {
        const ws = (globalThis as unknown as PageGlobals).watch;
        const closed = ws.find((w) => w.url.startsWith(url) && w.closeAt !== undefined)!;
        const next = ws.find((w) => !w.url.startsWith(url) && w.firstAt !== undefined && w.firstAt > closed.closeAt!)!;
        return { url: next.url, ms: next.firstAt! - closed.closeAt! };
      }, a.url),
    );
    console.log(`game browser: watch failover to ${sw.url} in ${sw.ms.toFixed(0)} ms`);
    expect(['b', 'c', 'd'].map((n) => `${A(n).url}/v1/watch?format=json`)).toContain(sw.url);
    expect(sw.ms).toBeLessThan(2000);
    // Complete and live: b, c and d are in the view, and a load change at b reaches the page.
    const ids = await page.evaluate(() => (globalThis as unknown as PageGlobals).c.servers().map((s) => s.id));
    for (const n of ['b', 'c', 'd']) expect(ids).toContain(n);
    const put = await fetch(`${A('b').http}/v1/load`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ utilization: 0.375, sessions: 7 }) });
    expect(put.status).toBe(204);
    await until(
      () => page.evaluate(() => (globalThis as unknown as PageGlobals).c.servers().find((s) => s.id === 'b')?.load?.sessions === 7),
      15_000,
      'b’s load change in the page',
    );
    // And the page's game sockets still open (g1 still runs: only its agent died).
    const r = await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      return w.openMany(w.c, 20, { batch: 10, attempts: 4 });
    });
    expect(r.errors).toEqual([]);
    await page.evaluate(() => (globalThis as unknown as PageGlobals).c.close());
  }, 60_000);

  it('over wss: a page on an origin not in --allow-origin gets no view; one on a listed origin gets the view and a wss game socket', async () => {
    expect(tlsAgent.url).toMatch(/^wss:\/\//);
    const refusedBefore = await refusedOrigin(tlsAgent, cert!);
    const join = (p: Page) =>
      p.evaluate(async (agent) => {
        const w = globalThis as unknown as PageGlobals;
        const c = await w.peerlb.join({ service: 'tlsgame', discovery: { agents: [agent] }, waitForServersMs: 4000 });
        const ids = c.servers().map((s) => `${s.id} ${s.wsUrl}`);
        const opened = ids.length > 0 ? await w.openMany(c, 3, { batch: 3 }) : undefined;
        await c.close();
        return { ids, names: opened?.names, errors: opened?.errors };
      }, tlsAgent.url);
    const other = await openPage(unlisted);
    expect((await join(other)).ids).toEqual([]);
    expect(await refusedOrigin(tlsAgent, cert!)).toBeGreaterThan(refusedBefore);
    const served = await join(page);
    expect(served).toEqual({ ids: [`e wss://${H}:${G('g5').port}/`], names: ['g5', 'g5', 'g5'], errors: [] });
    expect(pageErrors).toEqual([]);
    expect(blocked).toEqual([]);
  }, 60_000);
});

/** peerlb_refused_total{endpoint="watch",reason="origin"} of an agent over https, trusting the test's certificate. */
async function refusedOrigin(a: OpsAgent, cert: TestCert): Promise<number> {
  const body = await new Promise<string>((resolve, reject) => {
    https
      // The certificate names 127.0.0.1: checked by chain, and by that name.
      .get(`https://${a.host}:${a.port}/metrics`, { ca: cert.cert, servername: 'localhost', checkServerIdentity: (_h, c) => tls.checkServerIdentity('127.0.0.1', c), timeout: 5000 }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (b += d));
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
  const m = /peerlb_refused_total\{endpoint="watch",reason="origin"[^}]*\} (\d+)/.exec(body);
  return m ? Number(m[1]) : 0;
}
