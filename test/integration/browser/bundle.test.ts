/**
 * sdk/core (peerlb/sdk/core) bundles for a browser: esbuild, platform 'browser', ESM, and nothing
 * of Node in it — no built-in (node:* or bare), no `Buffer`, no ws, multicast-dns or dns-packet,
 * whether imported by the core or by a package it uses.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, bundleCore, isForbidden } from './bundle.js';

describe('the runtime-neutral entry bundles for browsers', () => {
  it('the guard knows what is forbidden (so the check below can fail)', () => {
    for (const s of ['node:events', 'events', 'fs/promises', 'node:dns/promises', 'buffer', 'ws', 'ws/lib/sender.js', 'multicast-dns', 'dns-packet']) expect(isForbidden(s), s).toBe(true);
    for (const s of ['msgpackr', 'vitest', './x.js']) expect(isForbidden(s), s).toBe(false);
  });

  it('esbuild --platform=browser: no Node built-in, ws, multicast-dns or dns-packet among the inputs or imports', async () => {
    const b = await bundleCore();
    expect(b.forbidden).toEqual([]);
    const inputs = Object.keys(b.metafile.inputs);
    // The whole core is in it, and only the core and the packages it uses.
    expect(inputs).toContain('sdk/core/index.ts');
    expect(inputs).toContain('sdk/core/cluster.ts');
    expect(inputs).toContain('sdk/core/discovery/agents.ts');
    for (const i of inputs) {
      expect(i.startsWith('sdk/core/') || i.startsWith('node_modules/'), i).toBe(true);
      expect(/node_modules\/(ws|multicast-dns|dns-packet)\//.test(i), i).toBe(false);
      for (const imp of b.metafile.inputs[i]!.imports) expect(isForbidden(imp.path) && imp.external !== false, `${i} imports ${imp.path}`).toBe(false);
    }
    const out = Object.values(b.metafile.outputs)[0]!;
    expect(out.imports.filter((x) => x.external)).toEqual([]);
    // The core's own code uses no `Buffer` value (msgpackr uses one only where `typeof Buffer` says
    // there is one; protocol.ts's PackedBytes names the global in a type, which is erased).
    for (const i of inputs.filter((x) => x.startsWith('sdk/core/'))) {
      const code = readFileSync(path.join(REPO, i), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').replace(/'[^'\n]*'|`[^`]*`/g, "''");
      expect(/\bBuffer\s*[.([]|\bnew\s+Buffer\b|\bBuffer\s*\)/.test(code), `${i} uses Buffer`).toBe(false);
    }
    expect(/\brequire\(["'](node:|ws|events|crypto|net|dgram|dns)/.test(b.code)).toBe(false);
    expect(b.code).toContain('webCryptoVerifier');
  }, 60_000);
});
