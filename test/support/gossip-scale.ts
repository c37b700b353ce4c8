/**
 * Helpers for the scale and hostile-peer tests: made-up members, and an SDK client in a process
 * of its own that says how long it took to see a view.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MemberState } from '../../agent/gossip/messages.js';
import { meta } from './security.js';

/** `n` made-up members with host-name-like ids (~40 bytes), at loopback addresses where nothing listens. */
export function fakeStates(n: number, service = 'game'): MemberState[] {
  const out: MemberState[] = [];
  for (let i = 0; i < n; i++) {
    const node = `host-${String(i).padStart(5, '0')}.rack-${i % 40}.dc1.example.internal`;
    out.push({ node, addr: `ws://127.${10 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}:9`, incarnation: 1, status: 'alive', meta: meta(node, { service, host: '127.0.0.1' }) });
  }
  return out;
}

/**
 * ms from join() to a view of at least `want` servers, measured by an SDK client in a child
 * process (node startup not counted); it gives up after 10 s.
 */
export async function sdkClientView(agentUrl: string, want: number): Promise<number> {
  const sdk = pathToFileURL(resolve('dist/sdk/index.js')).href; // the built SDK (tests run from the repository root, after npm run build)
  const script = `
    const { join } = await import(${JSON.stringify(sdk)});
    const t0 = Date.now();
    const c = await join({ service: 'game', discovery: { agents: [${JSON.stringify(agentUrl)}] }, waitForServersMs: 10000 });
    while (c.servers().length < ${want} && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 10));
    process.stdout.write(JSON.stringify({ ms: Date.now() - t0, servers: c.servers().length }) + '\\n');
    process.exit(0);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const res = JSON.parse(out.trim() || '{}') as { ms?: number; servers?: number };
  if (code !== 0 || res.servers === undefined || res.servers < want) throw new Error(`SDK client: exit ${code}, ${out.trim()}`);
  return res.ms!;
}

