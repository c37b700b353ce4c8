/**
 * `npm run example:browser`: a browser game on loopback. Three nodes, each a WebSocket game server
 * (server.ts) and its `peerlb agent --ws <port> --health ws` (separate processes; the agents gossip,
 * the 2nd and 3rd join the 1st), and a static page (page/) served here, its script bundled for the
 * browser by esbuild from `peerlb/sdk`. Prints the page's URL; open it in a browser: each simulated
 * player lands on a server picked by the page. The agents take /v1/watch only from the page's origin
 * (--allow-origin). SIGINT/SIGTERM stops every process it started (by PID) and exits 0.
 *
 *   npm run example:browser            (builds first)
 *   node dist/examples/browser-game/run.js [--nodes 3] [--host 127.0.0.1]
 *
 * Lines on stdout: `{"pids":[…]}` once the children are started, then `{"url":"http://…/"}` once the
 * cluster is ready (every agent sees all servers healthy).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const PAGE = fileURLToPath(new URL('../../../examples/browser-game/page/', import.meta.url));
const SERVER = fileURLToPath(new URL('./server.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../agent/cli.js', import.meta.url));

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '3' }, host: { type: 'string', default: '127.0.0.1' } } });
const NODES = Number(values.nodes);
const HOST = values.host;
if (!Number.isInteger(NODES) || NODES < 1 || NODES > 16) {
  process.stderr.write('--nodes must be an integer in 1..16\n');
  process.exit(2);
}

const children: ChildProcess[] = [];
let stopping = false;

/** Start a child; resolve with the first stdout or stderr line that `ready` maps to a value (≤ 15 s). */
function start<T>(args: string[], ready: (line: string) => T | undefined): Promise<T> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  return new Promise<T>((resolve, reject) => {
    const giveUp = setTimeout(() => reject(new Error(`${args.join(' ')}: not ready after 15 s`)), 15_000);
    proc.once('exit', (code) => {
      if (!stopping) reject(new Error(`${args.join(' ')} exited with ${code}`));
    });
    for (const stream of [proc.stdout!, proc.stderr!]) {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          const v = ready(line);
          if (v !== undefined) {
            clearTimeout(giveUp);
            resolve(v);
          }
        }
        if (buf.length > 64 * 1024) buf = '';
      });
    }
  });
}

function json(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function stop(code: number): Promise<never> {
  stopping = true;
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const kill = setTimeout(() => c.kill('SIGKILL'), 5000);
          c.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
  process.exit(code);
}
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

try {
  // The page's bundle: `peerlb/sdk` resolved through the package's exports (a self-reference), browser condition.
  const bundle = await build({
    absWorkingDir: REPO,
    entryPoints: [`${PAGE}app.js`],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  const appJs = bundle.outputFiles[0]!.text;
  const indexHtml = readFileSync(`${PAGE}index.html`, 'utf8');
  let agents: string[] = [];
  const page = http.createServer((req, res) => {
    // The agents' URLs go into the page (a JSON script element), so the page needs no request for them.
    const html = indexHtml.replace('{"agents":[]}', JSON.stringify({ agents }).replace(/</g, '\\u003c'));
    const route: Record<string, [string, string]> = { '/': ['text/html', html], '/app.js': ['text/javascript', appJs] };
    const r = req.method === 'GET' ? route[(req.url ?? '/').split('?')[0]!] : undefined;
    if (!r) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': `${r[0]}; charset=utf-8`, 'cache-control': 'no-store' }).end(r[1]);
  });
  await new Promise<void>((resolve, reject) => {
    page.once('error', reject);
    page.listen(0, HOST, () => resolve());
  });
  const origin = `http://${HOST}:${(page.address() as net.AddressInfo).port}`;

  for (let i = 1; i <= NODES; i++) {
    const name = `game-${i}`;
    const port = await start([SERVER, '--name', name, '--host', HOST, '--port', '0'], (l) => json(l)?.port as number | undefined);
    const args = [CLI, 'agent', '--service', 'game', '--node', name, '--host', HOST, '--port', '0', '--ws', String(port), '--health', 'ws', '--gossip-profile', 'local', '--allow-origin', origin];
    if (agents.length) args.push('--join', agents[0]!);
    const url = await start(args, (l) => {
      const j = json(l);
      return j?.msg === 'agent started' ? String(j.url) : undefined;
    });
    agents = [...agents, url];
  }
  process.stdout.write(`${JSON.stringify({ pids: children.map((c) => c.pid) })}\n`);

  // Ready once every agent sees all servers alive and healthy (≤ 30 s).
  const deadline = Date.now() + 30_000;
  for (;;) {
    const views = await Promise.all(
      agents.map(async (a) => {
        const u = new URL('/v1/members', a.replace(/^ws/, 'http'));
        const rows = (await (await fetch(u, { signal: AbortSignal.timeout(2000) })).json()) as { status: string; health: string }[];
        return rows.filter((m) => m.status === 'alive' && m.health === 'healthy').length;
      }),
    ).catch(() => []);
    if (views.length === NODES && views.every((n) => n === NODES)) break;
    if (Date.now() > deadline) throw new Error(`the cluster is not ready after 30 s (healthy servers seen by each agent: ${views.join(', ')})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  process.stdout.write(`${JSON.stringify({ url: `${origin}/` })}\n`);
  process.stderr.write(`peerlb browser game: open ${origin}/ (Ctrl-C stops the ${children.length} processes)\n`);
} catch (err) {
  process.stderr.write(`example:browser: ${(err as Error).message}\n`);
  await stop(1);
}
