/**
 * The runtime-neutral entry (sdk/core/index.ts) bundled for browsers with esbuild's JS API
 * (platform 'browser', ESM), as a web page would ship it. Imports of a Node built-in or of a
 * Node-only package are not resolved: the plugin records them (with the importer) and leaves them
 * external, so a test can list every one instead of stopping at esbuild's first error.
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';

export const REPO = fileURLToPath(new URL('../../..', import.meta.url));
export const CORE_ENTRY = 'sdk/core/index.ts';
/** Packages the core must not pull in (Node-only: sockets, mDNS). */
export const BANNED_PACKAGES = ['ws', 'multicast-dns', 'dns-packet'];

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

export interface CoreBundle {
  code: string;
  metafile: Metafile;
  /** `importer → specifier` of every Node built-in or banned package imported. */
  forbidden: string[];
}

/** A banned package or Node built-in, by import specifier (`ws/lib/x`, `node:fs`, `fs/promises`, `buffer`). */
export function isForbidden(spec: string): boolean {
  const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
  return BUILTINS.has(spec) || BUILTINS.has(pkg) || spec.startsWith('node:') || BANNED_PACKAGES.includes(pkg);
}

export async function bundleCore(): Promise<CoreBundle> {
  const forbidden: string[] = [];
  const guard: Plugin = {
    name: 'forbid-node',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point' || args.path.startsWith('.') || args.path.startsWith('/')) return undefined;
        if (!isForbidden(args.path)) return undefined;
        forbidden.push(`${args.importer.replace(REPO, '')} → ${args.path}`);
        return { path: args.path, external: true };
      });
    },
  };
  const r = await build({
    absWorkingDir: REPO,
    entryPoints: [CORE_ENTRY],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [guard],
  });
  return { code: r.outputFiles[0]!.text, metafile: r.metafile, forbidden };
}
