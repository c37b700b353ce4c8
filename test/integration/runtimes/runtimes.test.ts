/**
 * `peerlb/sdk/core` under Deno and Bun (the runtimes' npm packages, devDependencies `deno` and
 * `bun`, which ship their binaries): a script (test/support/runtime-smoke.mjs) run by each imports
 * dist/sdk/core/index.js, joins a live `peerlb agent` process through /v1/watch over the runtime's
 * own WebSocket, picks the agent's server, and reports the load change the test makes (PUT /v1/load).
 * Deno runs with the permissions it needs and no more: read, net to 127.0.0.1, and the one
 * environment variable msgpackr's Node entry reads (Deno resolves npm packages with the `node`
 * condition). Loopback only. A runtime whose binary is not installed fails (not skipped): both are
 * devDependencies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onLines } from '../../support/lines.js';
import { startCliAgent, stopCliAgents, type OpsAgent } from '../../support/ops.js';
import { until } from '../../support/until.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../support/runtime-smoke.mjs', import.meta.url));
const CORE = pathToFileURL(`${REPO}dist/sdk/core/index.js`).href;
const RUNTIMES = {
  deno: { bin: `${REPO}node_modules/.bin/deno`, args: ['run', '--allow-read', '--allow-net=127.0.0.1', '--allow-env=MSGPACKR_NATIVE_ACCELERATION_DISABLED', SCRIPT] },
  bun: { bin: `${REPO}node_modules/.bin/bun`, args: [SCRIPT] },
};

describe('peerlb/sdk/core in Deno and Bun, against a live agent', () => {
  const agents: OpsAgent[] = [];
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    await startCliAgent(agents, 'rt-a', '127.0.0.1', { extra: ['--health', 'none'] });
  }, 30_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await stopCliAgents(agents);
  });

  it.each(Object.keys(RUNTIMES) as (keyof typeof RUNTIMES)[])('%s: joins through /v1/watch, picks the agent’s server, sees a load change', async (name) => {
    const rt = RUNTIMES[name];
    expect(existsSync(rt.bin), `${rt.bin} (npm install: it is a devDependency)`).toBe(true);
    const a = agents[0]!;
    const proc = spawn(rt.bin, [...rt.args, CORE, a.url], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } });
    procs.push(proc);
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    onLines(proc.stdout!, (l) => {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        stderr += `stdout: ${l}\n`;
      }
    });
    await until(() => lines.some((l) => 'picked' in l) || proc.exitCode !== null, 30_000, `${name}: the pick (stderr: ${stderr})`, 50);
    expect(lines.find((l) => 'picked' in l), stderr).toEqual({ picked: { id: 'rt-a', host: '127.0.0.1', tcpPort: a.tcpPort }, runtime: name });

    const load = { utilization: name === 'deno' ? 0.25 : 0.375, sessions: name === 'deno' ? 3 : 5 };
    const put = await fetch(`${a.http}/v1/load`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(load) });
    expect(put.status).toBe(204);
    await until(() => lines.some((l) => JSON.stringify(l) === JSON.stringify({ load })) || proc.exitCode !== null, 15_000, `${name}: the load change (stderr: ${stderr})`, 50);
    expect(lines).toContainEqual({ load });
    proc.kill('SIGKILL');
  }, 60_000);
});
