/**
 * Browser clients (issue 15), in headless Chromium on loopback (test/support/chromium.ts):
 *  (a) the page's cost: `join` + `pick` + `websocket` from `peerlb/sdk` bundled by esbuild for the
 *      browser (the package's `browser` condition), minified, gzipped (zlib, level 9), with what the
 *      bytes are (esbuild's metafile: minified bytes per input, grouped) and whether msgpackr ships
 *      (it should not: the core's watch speaks JSON text);
 *  (b) ns per `pick()` (p2c) at 1,000 servers (a static list: no socket) in the page, beside a bare
 *      array index in the same page, the same loop shape, interleaved runs;
 *  (c) page load (navigation start) → first open game socket: the example (examples/browser-game,
 *      3 game servers and agents as processes) loaded 20 times, each in a fresh page.
 *
 *   npm run build && node dist/test/bench/run.js browser      (or --only browser)
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { launchLoopbackChromium } from '../support/chromium.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/browser-game/run.js', import.meta.url));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
export function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!;
}

const PAGE_ENTRY = `import { join } from 'peerlb/sdk';
export async function play(agents, key) {
  const cluster = await join({ service: 'game', discovery: { agents }, strategy: 'p2c' });
  const server = cluster.pick();
  const ws = await cluster.websocket({ key });
  return { cluster, server, ws };
}`;

async function bundle(external: string[] = []): Promise<{ code: Uint8Array; metafile: Metafile }> {
  const r = await build({
    absWorkingDir: REPO,
    stdin: { contents: PAGE_ENTRY, resolveDir: REPO, loader: 'js', sourcefile: 'page.js' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
    external,
  });
  return { code: r.outputFiles[0]!.contents, metafile: r.metafile };
}

function group(input: string): string {
  if (input.startsWith('node_modules/')) return input.split('/')[1]!;
  const m = /^dist\/sdk\/core\/(?:(discovery|balancer|pickers)\/)?([^/]+)\.js$/.exec(input);
  if (!m) return input;
  return m[1] ? `sdk/core/${m[1]}/` : ['protocol', 'options', 'cluster', 'signing'].includes(m[2]!) ? `sdk/core/${m[2]}.js` : 'sdk/core (other)';
}

export interface BundleSize {
  minBytes: number;
  gzipBytes: number;
  breakdown: { part: string; minBytes: number; share: string }[];
}

export async function benchBundleSize(): Promise<BundleSize> {
  const full = await bundle();
  const inputs = Object.values(full.metafile.outputs)[0]!.inputs;
  const parts = new Map<string, number>();
  for (const [k, v] of Object.entries(inputs)) parts.set(group(k), (parts.get(group(k)) ?? 0) + v.bytesInOutput);
  const total = full.code.length;
  return {
    minBytes: total,
    gzipBytes: gzipSync(full.code, { level: 9 }).length,
    breakdown: [...parts]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([part, n]) => ({ part, minBytes: n, share: `${((100 * n) / total).toFixed(1)} %` })),
  };
}

export interface PicksInPage {
  servers: number;
  pickNs: number;
  pickNsP99: number;
  arrayNs: number;
  ratio: number;
  runs: number;
  picksPerRun: number;
}

/** (b) and (c) share one browser. */
export async function benchInChromium(o: { runs?: number; picksPerRun?: number; loads?: number } = {}): Promise<{ picks: PicksInPage; load: { loads: number; p50Ms: number; p99Ms: number; minMs: number; maxMs: number; bareP50Ms: number; bareP99Ms: number; phasesP50: Record<string, number> } }> {
  const runs = o.runs ?? 15;
  const picksPerRun = o.picksPerRun ?? 200_000;
  const loads = o.loads ?? 20;
  const b = await launchLoopbackChromium('127.0.0.1');
  let anchor: http.Server | undefined;
  const example = spawn(process.execPath, [EXAMPLE], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      const giveUp = setTimeout(() => reject(new Error(`the browser example printed no URL in 60 s: ${err}`)), 60_000);
      example.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      example.once('exit', (code) => reject(new Error(`the browser example exited with ${code}: ${err}`)));
      example.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"url":"([^"]+)"/.exec(out);
        if (m) {
          clearTimeout(giveUp);
          resolve(m[1]!);
        }
      });
    });

    // (b) picks: `join` from the same bundle shape (peerlb/sdk, browser), a static list of 1,000 servers (no socket).
    const page = await b.context.newPage();
    await page.goto(url, { timeout: 15_000 });
    const joinBundle = await build({
      absWorkingDir: REPO,
      stdin: { contents: "export { join } from 'peerlb/sdk';", resolveDir: REPO, loader: 'js', sourcefile: 'picks.js' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      minify: true,
      write: false,
      logLevel: 'silent',
    });
    const text = joinBundle.outputFiles[0]!.text;
    const SERVERS = 1000;
    const r = await page.evaluate(
      async ({ text, runs, picksPerRun, n }) => {
        const blob = URL.createObjectURL(new Blob([text], { type: 'text/javascript' }));
        const { join } = (await import(blob)) as { join: (o: unknown) => Promise<{ pick(): { id: string } | undefined; close(): Promise<void> }> };
        const servers = Array.from({ length: n }, (_, i) => `tcp://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7000`);
        const c = await join({ service: 'game', discovery: { servers }, strategy: 'p2c' });
        const arr = servers.map((_, i) => ({ id: String(i) }));
        let sink = 0;
        const pickRun = () => {
          const t0 = performance.now();
          for (let i = 0; i < picksPerRun; i++) sink += c.pick()!.id.length;
          return ((performance.now() - t0) * 1e6) / picksPerRun;
        };
        const arrayRun = () => {
          const t0 = performance.now();
          for (let i = 0; i < picksPerRun; i++) sink += arr[i % n]!.id.length;
          return ((performance.now() - t0) * 1e6) / picksPerRun;
        };
        pickRun();
        arrayRun(); // warm-up (JIT)
        const pick: number[] = [];
        const array: number[] = [];
        for (let k = 0; k < runs; k++) {
          pick.push(pickRun());
          array.push(arrayRun());
        }
        await c.close();
        return { pick, array, sink };
      },
      { text, runs, picksPerRun, n: SERVERS },
    );
    await page.close();
    const pickNs = median(r.pick);
    const arrayNs = median(r.array);

    // (c) page load → first open game socket, 20 fresh pages, each followed by the anchor: a bare
    // page (served through the same route machinery) whose inline script opens a WebSocket straight
    // to a game server's URL (what a page without peerlb does, knowing the URL already).
    const first = await b.context.newPage();
    await first.goto(url, { timeout: 15_000 });
    await first.waitForFunction(() => 'gameResult' in globalThis || 'gameError' in globalThis, undefined, { timeout: 30_000 });
    const wsUrl = await first.evaluate(() => (globalThis as unknown as { gameResult?: { players: { url: string }[] } }).gameResult?.players[0]?.url);
    await first.close();
    if (!wsUrl) throw new Error('the example page opened no game socket');
    // (Served by a server of its own on loopback: a page Playwright fulfils itself counts as public
    // address space, and Chromium's local network access checks then block its loopback WebSocket.)
    const bareHtml = `<!doctype html><title>anchor</title><script type="module">const ws = new WebSocket(${JSON.stringify(wsUrl)}); ws.onopen = () => { globalThis.firstSocketMs = performance.now(); ws.close(); };</script>`;
    anchor = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(bareHtml));
    await new Promise<void>((r) => anchor!.listen(0, '127.0.0.1', () => r()));
    const bareUrl = `http://127.0.0.1:${(anchor.address() as net.AddressInfo).port}/`;
    const firstSocket = async (u: string): Promise<{ ms: number; marks: Record<string, number> }> => {
      const p = await b.context.newPage();
      await p.goto(u, { timeout: 15_000 });
      await p.waitForFunction(() => 'firstSocketMs' in globalThis || 'gameError' in globalThis, undefined, { timeout: 30_000 });
      const ms = await p.evaluate(() => (globalThis as unknown as { firstSocketMs?: number }).firstSocketMs);
      if (ms === undefined) throw new Error(`${u}: the page opened no game socket: ${await p.evaluate(() => (globalThis as unknown as { gameError?: string }).gameError)}`);
      const marks = await p.evaluate(() => Object.fromEntries(performance.getEntriesByType('mark').map((e) => [e.name, e.startTime])));
      await p.close();
      return { ms, marks };
    };
    const times: number[] = [];
    const bare: number[] = [];
    /** When the page's marks came (game:script, game:joined), ms after navigation start. */
    const phases: Record<string, number[]> = {};
    for (let i = 0; i < loads; i++) {
      const r1 = await firstSocket(url);
      times.push(r1.ms);
      for (const k of Object.keys(r1.marks)) (phases[k] ??= []).push(r1.marks[k]!);
      bare.push((await firstSocket(bareUrl)).ms);
    }
    return {
      picks: { servers: SERVERS, pickNs, pickNsP99: p99(r.pick), arrayNs, ratio: pickNs / arrayNs, runs, picksPerRun },
      load: { loads, p50Ms: median(times), p99Ms: p99(times), minMs: Math.min(...times), maxMs: Math.max(...times), bareP50Ms: median(bare), bareP99Ms: p99(bare), phasesP50: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])) },
    };
  } finally {
    await b.browser.close().catch(() => {});
    await new Promise<void>((r) => (anchor ? anchor.close(() => r()) : r()));
    if (example.exitCode === null && example.signalCode === null) {
      const gone = new Promise((r) => example.once('exit', r));
      example.kill('SIGTERM');
      await gone;
    }
  }
}
