/**
 * The layers (issue 14), judged on every import of every .ts file under sdk/ and agent/, parsed
 * with the TypeScript compiler API (test/support/imports.ts):
 *  - sdk/core is runtime-neutral: it imports no Node built-in (node:* or a bare 'net', 'dgram'…,
 *    value, type-only or dynamic), does not use the global `Buffer`, imports no ws,
 *    multicast-dns or dns-packet, and nothing outside sdk/core (but msgpackr, see below);
 *  - nothing under sdk/ imports agent/;
 *  - there is no cycle of value imports among sdk/ and agent/ files (type-only imports are erased
 *    at build time and dynamic import() runs after loading, so neither counts).
 * Each failure lists file:line, the import and the rule. The rules are tried first on a small
 * made-up tree that breaks each of them once, so a rule that could not fail would show.
 */
import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cyclePath, cycles, isNodeBuiltin, scanFile, type FileScan, type ImportEdge } from '../support/imports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Tree {
  files: Map<string, string>;
}

function readTree(): Tree {
  // Listed with fs (the unit project opens no sockets and starts no processes, so no `git ls-files`).
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSyncSafe(dir)) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (/\.(m|c)?ts$/.test(e.name) && !e.name.endsWith('.d.ts')) files.set(rel, readFileSync(`${ROOT}${rel}`, 'utf8'));
    }
  };
  walk('sdk');
  walk('agent');
  return { files };
}

function readdirSyncSafe(dir: string): Dirent[] {
  return readdirSync(`${ROOT}${dir}`, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
}

const FORBIDDEN_IN_CORE = /^(ws|multicast-dns|dns-packet)(\/|$)/;
/**
 * Packages sdk/core may import: pure JavaScript that runs in every runtime. msgpackr encodes the
 * gossip and watch frames (its browser build has no Node built-in; the esbuild --platform=browser
 * bundle test is what proves it). Anything else from outside sdk/core is a finding.
 */
const RUNTIME_NEUTRAL_PACKAGES = new Set(['msgpackr']);

interface Judged {
  builtins: string[];
  buffer: string[];
  outside: string[];
  agentFromSdk: string[];
  cycles: string[];
}

function judge(tree: Tree): Judged {
  const scans = new Map<string, FileScan>();
  for (const [file, text] of tree.files) scans.set(file, scanFile(file, text, (f) => tree.files.has(f)));
  const where = (e: ImportEdge) => `${e.from}:${e.line} ${e.kind === 'value' ? 'imports' : e.kind === 'type' ? 'imports (type-only)' : 'imports (dynamic import())'} '${e.spec}'`;
  const out: Judged = { builtins: [], buffer: [], outside: [], agentFromSdk: [], cycles: [] };
  const graph = new Map<string, Set<string>>();
  for (const [file, scan] of scans) {
    const inCore = file.startsWith('sdk/core/');
    graph.set(file, new Set());
    for (const e of scan.imports) {
      if (inCore && isNodeBuiltin(e.spec)) out.builtins.push(`${where(e)}: sdk/core imports no Node built-in`);
      else if (inCore && FORBIDDEN_IN_CORE.test(e.spec)) out.outside.push(`${where(e)}: sdk/core imports no ws, multicast-dns or dns-packet`);
      else if (inCore && (e.to === undefined ? !RUNTIME_NEUTRAL_PACKAGES.has(e.spec) : !e.to.startsWith('sdk/core/'))) out.outside.push(`${where(e)}${e.to ? ` (${e.to})` : ''}: sdk/core imports nothing outside sdk/core`);
      if (file.startsWith('sdk/') && e.to?.startsWith('agent/')) out.agentFromSdk.push(`${where(e)} (${e.to}): sdk/ never imports agent/`);
      if (e.kind === 'value' && e.to && tree.files.has(e.to)) graph.get(file)!.add(e.to);
    }
    if (inCore) for (const line of scan.bufferLines) out.buffer.push(`${file}:${line} uses Buffer: sdk/core uses no Buffer (Uint8Array, TextEncoder)`);
  }
  for (const c of cycles(graph)) {
    const p = cyclePath(graph, c);
    const steps = p.slice(0, -1).map((f, i) => {
      const e = scans.get(f)!.imports.find((x) => x.kind === 'value' && x.to === p[i + 1])!;
      return `${f}:${e.line} → ${p[i + 1]}`;
    });
    out.cycles.push(`value-import cycle of ${c.length} files (${c.join(', ')}): ${steps.join('; ')}: no value-import cycle`);
  }
  return out;
}

const report = (lines: string[]) => (lines.length ? `\n${lines.join('\n')}\n` : '');

describe('the rules fire on a made-up tree that breaks each once', () => {
  const bad: Tree = {
    files: new Map([
      ['sdk/core/a.ts', "import net from 'node:net';\nimport type { Socket } from 'dgram';\nimport { WebSocket } from 'ws';\nimport { b } from './b.js';\nexport const a = Buffer.from('x');\nexport type { X } from '../node/x.js';\n"],
      ['sdk/core/b.ts', "import { a } from './a.js';\nexport const b = () => a;\nconst later = () => import('node:crypto');\n"],
      ['sdk/core/c.ts', "import type { a } from './a.js';\nexport const c = (x: Uint8Array): { Buffer: number } => ({ Buffer: x.length });\n"],
      ['sdk/node/x.ts', "import { c } from '../core/c.js';\nimport { agentThing } from '../../agent/y.js';\nexport type X = number;\n"],
      ['agent/y.ts', "import { c } from '../sdk/core/c.js';\nexport const agentThing = c;\n"],
      ['sdk/core/d.ts', "function f(Buffer: unknown) { return Buffer; }\nexport const d = globalThis.Buffer.from('x');\nexport const e = require('node:net');\nexport { f };\n"],
    ]),
  };
  const j = judge(bad);
  it('each rule names its file:line', () => {
    expect(j.builtins).toEqual([
      "sdk/core/a.ts:1 imports 'node:net': sdk/core imports no Node built-in",
      "sdk/core/a.ts:2 imports (type-only) 'dgram': sdk/core imports no Node built-in",
      "sdk/core/b.ts:3 imports (dynamic import()) 'node:crypto': sdk/core imports no Node built-in",
      "sdk/core/d.ts:3 imports 'node:net': sdk/core imports no Node built-in",
    ]);
    // A parameter named Buffer hides nothing; globalThis.Buffer is the global.
    expect(j.buffer).toEqual([
      'sdk/core/a.ts:5 uses Buffer: sdk/core uses no Buffer (Uint8Array, TextEncoder)',
      'sdk/core/d.ts:1 uses Buffer: sdk/core uses no Buffer (Uint8Array, TextEncoder)',
      'sdk/core/d.ts:1 uses Buffer: sdk/core uses no Buffer (Uint8Array, TextEncoder)',
      'sdk/core/d.ts:2 uses Buffer: sdk/core uses no Buffer (Uint8Array, TextEncoder)',
    ]);
    expect(j.outside).toEqual([
      "sdk/core/a.ts:3 imports 'ws': sdk/core imports no ws, multicast-dns or dns-packet",
      "sdk/core/a.ts:6 imports (type-only) '../node/x.js' (sdk/node/x.ts): sdk/core imports nothing outside sdk/core",
    ]);
    expect(j.agentFromSdk).toEqual(["sdk/node/x.ts:2 imports '../../agent/y.js' (agent/y.ts): sdk/ never imports agent/"]);
    // a ⇄ b is a value cycle; c → a is type-only and a's re-export of x is type-only: no cycle through them.
    expect(j.cycles).toEqual(['value-import cycle of 2 files (sdk/core/a.ts, sdk/core/b.ts): sdk/core/a.ts:4 → sdk/core/b.ts; sdk/core/b.ts:1 → sdk/core/a.ts: no value-import cycle']);
  });
});

describe('the layers of sdk/ and agent/', () => {
  const tree = readTree();
  const j = judge(tree);
  it('reads the whole tree', () => {
    expect(tree.files.size).toBeGreaterThan(50);
    expect([...tree.files.keys()].filter((f) => f.startsWith('sdk/core/')).length).toBeGreaterThan(10);
  });
  it('sdk/core imports no Node built-in (node:* or bare)', () => {
    expect(j.builtins, report(j.builtins)).toEqual([]);
  });
  it('sdk/core uses no global Buffer', () => {
    expect(j.buffer, report(j.buffer)).toEqual([]);
  });
  it('sdk/core imports no ws, multicast-dns, dns-packet, nor anything outside sdk/core', () => {
    expect(j.outside, report(j.outside)).toEqual([]);
  });
  it('nothing under sdk/ imports agent/', () => {
    expect(j.agentFromSdk, report(j.agentFromSdk)).toEqual([]);
  });
  it('no value-import cycle among sdk/ and agent/ files', () => {
    expect(j.cycles, report(j.cycles)).toEqual([]);
  });
});
