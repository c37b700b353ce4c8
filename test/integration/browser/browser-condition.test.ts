/**
 * `import { join } from 'peerlb/sdk'` in a page: through the package's `exports` (package.json),
 * a bundler's `browser` condition picks the runtime-neutral build (dist/sdk/core/index.js), with
 * no Node built-in in it; without the condition (Node), the same specifier is the Node entry.
 * The package is reached as a user's bundler reaches it: a tiny entry file outside the repo that
 * imports 'peerlb/sdk', and a node_modules/peerlb link to the repo (esbuild's nodePaths). Needs
 * `npm run build` (dist/) first, as the other integration tests do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { build, type Plugin } from 'esbuild';
import { REPO, isForbidden } from './bundle.js';

let dir: string;
const repo = realpathSync(REPO).replace(/\/$/, '');

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-browser-'));
  mkdirSync(path.join(dir, 'modules'));
  symlinkSync(repo, path.join(dir, 'modules', 'peerlb'), 'dir');
  // What a page imports: join, the Cluster (with websocket()) and the errors it handles.
  // The same for TypeScript: the browser condition's types are the core's (no Node types needed).
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(repo, path.join(dir, 'node_modules', 'peerlb'), 'dir');
  writeFileSync(
    path.join(dir, 'page.ts'),
    [
      "import { join, type GameWebSocket, type WebSocketOptions } from 'peerlb/sdk';",
      '// @ts-expect-error the Node entry has ConnectOptions, the browser one does not',
      "import type { ConnectOptions } from 'peerlb/sdk';",
      "const cluster = await join({ service: 'game', discovery: { agents: ['wss://a.example:7946'] } });",
      "const opts: WebSocketOptions = { key: 'p1', protocols: ['game.v1'], timeoutMs: 2000, attempts: 3 };",
      'const ws: GameWebSocket = await cluster.websocket(opts);',
      'export { ws };',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'page.js'),
    "export { join, Cluster, AbortedError, AllAttemptsFailedError, NoServersError, UnsupportedError } from 'peerlb/sdk';\n",
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function bundle(platform: 'browser' | 'node') {
  const forbidden: string[] = [];
  const guard: Plugin = {
    name: 'forbid-node',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point' || args.path.startsWith('.') || args.path.startsWith('/') || !isForbidden(args.path)) return undefined;
        forbidden.push(`${args.importer.replace(repo, '')} → ${args.path}`);
        return { path: args.path, external: true };
      });
    },
  };
  const r = await build({
    absWorkingDir: dir,
    entryPoints: [path.join(dir, 'page.js')],
    nodePaths: [path.join(dir, 'modules')],
    bundle: true,
    platform,
    format: 'esm',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
    // On 'node' the Node entry's built-ins and packages are left out (we only look at what resolved).
    plugins: platform === 'browser' ? [guard] : [],
    packages: platform === 'node' ? undefined : 'bundle',
    external: platform === 'node' ? ['ws', 'multicast-dns', 'dns-packet', 'pino', 'commander', 'prom-client'] : [],
  });
  const inputs = Object.keys(r.metafile.inputs).map((i) => path.resolve(dir, i).replace(`${repo}/`, ''));
  const out = Object.values(r.metafile.outputs)[0]!;
  // What the output holds (bytes in it), after tree shaking: not merely what was read.
  const shipped = Object.entries(out.inputs).filter(([, v]) => v.bytesInOutput > 0).map(([i]) => path.resolve(dir, i).replace(`${repo}/`, ''));
  return { code: r.outputFiles[0]!.text, inputs, shipped, exports: out.exports, external: out.imports.filter((x) => x.external).map((x) => x.path), forbidden };
}

describe("peerlb/sdk under a bundler's browser condition", () => {
  it('esbuild --platform=browser resolves peerlb/sdk to the runtime-neutral build, with no Node built-in', async () => {
    const b = await bundle('browser');
    expect(b.forbidden).toEqual([]);
    expect(b.external).toEqual([]);
    expect(b.inputs).toContain('dist/sdk/core/index.js');
    expect(b.inputs).toContain('dist/sdk/core/websocket-connect.js');
    expect(b.inputs).not.toContain('dist/sdk/index.js');
    for (const i of b.inputs) {
      if (i.endsWith('page.js')) continue;
      expect(i.startsWith('dist/sdk/core/') || i.startsWith('node_modules/msgpackr/'), i).toBe(true);
    }
    // The watch speaks JSON text in the core (discovery/json-codec.ts): no msgpack codec ships.
    expect(b.shipped.filter((i) => i.includes('msgpack'))).toEqual([]);
    expect(b.exports.sort()).toEqual(['AbortedError', 'AllAttemptsFailedError', 'Cluster', 'NoServersError', 'UnsupportedError', 'join'].sort());
    expect(b.code).toMatch(/\bwebsocket\(opts = \{\}\)/);
    expect(/\brequire\(["'](node:|ws|events|crypto|net|dgram|dns)/.test(b.code)).toBe(false);
  }, 60_000);

  it("TypeScript with customConditions ['browser'] gets the runtime-neutral entry's types", () => {
    const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const run = (customConditions: string[]) => {
      const compilerOptions = { noEmit: true, module: 'esnext', target: 'es2022', moduleResolution: 'bundler', skipLibCheck: true, strict: true, types: [], lib: ['es2022', 'dom'], customConditions };
      writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['page.ts'] }));
      try {
        execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
        return '';
      } catch (e) {
        return String((e as { stdout?: string }).stdout);
      }
    };
    expect(run(['browser'])).toBe('');
    // Without it, the Node entry's types: the page's import of GameWebSocket does not resolve (so the check can fail).
    expect(run([])).toMatch(/GameWebSocket/);
  }, 60_000);

  it('without the browser condition (platform node) the same import is the Node entry', async () => {
    const b = await bundle('node');
    expect(b.inputs).toContain('dist/sdk/index.js');
    expect(b.inputs).toContain('dist/sdk/node/tcp.js');
  }, 60_000);
});
