/**
 * What `npm pack` ships, and that it works in a fresh project: only the library, the CLI and their
 * types (dist/sdk, dist/agent: .js, .d.ts, and .js.map whose sources are inlined, so no map points
 * at a file that is not there), README, LICENSE, CHANGELOG, package.json — no compiled tests,
 * bench code or examples. The tarball is then installed into a new ESM project and imported from
 * JavaScript and from TypeScript (module NodeNext, "type": "module", as the README says).
 *
 * Install: `npm install --offline <tarball>` when the npm cache holds the dependencies; otherwise
 * (a machine with no network and a cold cache: CI runs in `unshare -n`) the tarball is unpacked
 * into the project's node_modules/peerlb, and its dependencies resolve from this repository's
 * node_modules (the project lies below it). Either way the shipped files alone must be enough.
 * Skipped only when npm itself is missing, and never on CI.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeAgentConfig, resolveAgentOptions } from '../../../agent/options.js';
import { ON_CI } from '../../support/ci.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const HAS_NPM = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;
const WORK = path.join(REPO, 'test-output', `pack-${process.pid}`);
const PKG = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { name: string; version: string; license: string; files: string[] };

if (!HAS_NPM) console.warn(ON_CI ? 'package test: npm not found — required on CI' : 'package test: npm not found — skipped');

afterAll(() => rmSync(WORK, { recursive: true, force: true }));

describe.skipIf(!HAS_NPM && !ON_CI)('npm pack', () => {
  let files: string[] = [];

  it('ships only dist/sdk, dist/agent, README, LICENSE, CHANGELOG, ARCHITECTURE, HTTP-API and package.json; every map carries its sources', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, timeout: 60_000, maxBuffer: 16 << 20 });
    const info = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
    files = info[0]!.files.map((f) => f.path).sort();
    const allowed = /^(dist\/(sdk|agent)\/.+\.(js|d\.ts|js\.map)|README\.md|LICENSE|CHANGELOG\.md|ARCHITECTURE\.md|HTTP-API\.md|package\.json)$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'ARCHITECTURE.md', 'HTTP-API.md', 'dist/sdk/index.js', 'dist/sdk/core/index.js', 'dist/sdk/index.d.ts', 'dist/agent/index.js', 'dist/agent/index.d.ts', 'dist/agent/cli.js'])
      expect(files, f).toContain(f);
    expect(files.some((f) => f.startsWith('dist/test/') || f.startsWith('dist/examples/'))).toBe(false);
    // Every .js has its .d.ts; every map's sources are inlined (sourcesContent), as many as it names.
    for (const js of files.filter((f) => f.endsWith('.js'))) expect(files, `${js} without types`).toContain(js.replace(/\.js$/, '.d.ts'));
    for (const map of files.filter((f) => f.endsWith('.map'))) {
      const m = JSON.parse(readFileSync(path.join(REPO, map), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      expect(m.sourcesContent?.length, map).toBe(m.sources.length);
      expect(m.sourcesContent!.every((c) => typeof c === 'string' && c.length > 0), map).toBe(true);
    }
    // A .js that names a map ships that map.
    for (const js of files.filter((f) => f.endsWith('.js'))) {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(path.join(REPO, js), 'utf8'))?.[1];
      if (url) expect(files, `${js} names ${url}`).toContain(path.posix.join(path.posix.dirname(js), url));
    }
    expect(readFileSync(path.join(REPO, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    expect(PKG.license).toBe('MIT');
  }, 90_000);

  it('installs into a fresh ESM project, where peerlb/sdk and peerlb/agent import (JS and TypeScript) and the CLI runs', async () => {
    mkdirSync(WORK, { recursive: true });
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', WORK, '--silent'], { cwd: REPO, timeout: 60_000 });
    const tgz = path.join(WORK, `${PKG.name}-${PKG.version}.tgz`);
    expect(existsSync(tgz)).toBe(true);
    const proj = path.join(WORK, 'app');
    mkdirSync(proj);
    writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    let how = 'npm install --offline';
    try {
      await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tgz], { cwd: proj, timeout: 90_000 });
    } catch (err) {
      // No cached dependencies and no network: unpack the tarball as npm would, dependencies from the repo's node_modules.
      how = `unpacked (npm install --offline failed: ${String((err as { stderr?: string }).stderr ?? err).split('\n').find((l) => /ENOTCACHED|error code/.test(l)) ?? 'see npm'})`;
      const dest = path.join(proj, 'node_modules', PKG.name);
      mkdirSync(dest, { recursive: true });
      await run('tar', ['-xzf', tgz, '-C', dest, '--strip-components', '1'], { timeout: 30_000 });
    }
    console.log(`package test: installed by ${how}`);
    writeFileSync(
      path.join(proj, 'main.js'),
      `import { join, BadOptionError } from 'peerlb/sdk';\nimport { startAgent, resolveAgentOptions } from 'peerlb/agent';\n` +
        `import { join as coreJoin, UnsupportedError } from 'peerlb/sdk/core';\n` +
        `const o = resolveAgentOptions({ service: 'game', udpPort: 7001 });\n` +
        `console.log(JSON.stringify({ join: typeof join, startAgent: typeof startAgent, bad: typeof BadOptionError, port: o.port, core: typeof coreJoin, unsupported: typeof UnsupportedError }));\n`,
    );
    const js = await run(process.execPath, ['main.js'], { cwd: proj, timeout: 30_000 });
    expect(JSON.parse(js.stdout)).toEqual({ join: 'function', startAgent: 'function', bad: 'function', port: 7946, core: 'function', unsupported: 'function' });
    // TypeScript, the way the README tells a new project to set it up.
    writeFileSync(path.join(proj, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, types: ['node'] }, include: ['main.ts'] }));
    writeFileSync(
      path.join(proj, 'main.ts'),
      `import { join, type Cluster } from 'peerlb/sdk';\nimport { startAgent, type AgentOptions } from 'peerlb/agent';\n` +
        `import { type Cluster as CoreCluster, STRATEGY_NAMES } from 'peerlb/sdk/core';\nexport const names: readonly string[] = STRATEGY_NAMES; export type C = CoreCluster;\n` +
        `const opts: AgentOptions = { service: 'game', udpPort: 7001 };\nexport async function f(): Promise<Cluster> { await startAgent(opts, { log: false }); return join({ service: 'game', discovery: { servers: ['127.0.0.1:7001'] } }); }\n`,
    );
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const ts = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: proj, timeout: 60_000 }).catch((e: { stdout: string }) => ({ stdout: e.stdout, failed: true }));
    expect(ts, ts.stdout).not.toHaveProperty('failed');
    const cli = await run(process.execPath, [path.join(proj, 'node_modules', PKG.name, 'dist', 'agent', 'cli.js'), '--version'], { cwd: proj, timeout: 30_000 });
    expect(cli.stdout.trim()).toBe(PKG.version);
  }, 180_000);
});

describe('the examples the repository keeps (not shipped)', () => {
  it('examples/peerlb.json is a config file the agent accepts, and examples/README.md documents run.js', () => {
    const o = resolveAgentOptions(mergeAgentConfig({ file: path.join(REPO, 'examples', 'peerlb.json') }));
    expect(o).toMatchObject({ service: 'game', udpPort: 7001, tcpPort: 7000, mdns: { interface: '127.0.0.1' }, health: { type: 'tcp' } });
    const readme = readFileSync(path.join(REPO, 'examples', 'README.md'), 'utf8');
    for (const role of ['game-server', 'stream-server', 'bots', 'streams']) expect(readme).toContain(role);
    // run.ts's usage line points at that README.
    expect(readFileSync(path.join(REPO, 'examples', 'run.ts'), 'utf8')).toContain('see examples/README.md');
  });
});
