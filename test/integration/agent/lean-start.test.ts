/**
 * Issue 18, a lean agent: modules only some agents need are not loaded at start. A real
 * `peerlb agent` process is started with a preload script that, once the agent logs
 * "agent started", prints which of the watched packages sit in the CommonJS module cache
 * (where Node also records CommonJS packages imported from ES modules).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../../support/agents.js';
import { until } from '../../support/until.js';

const PRELOAD = `
const Module = require('node:module');
const write = process.stderr.write.bind(process.stderr);
let done = false;
process.stderr.write = function (chunk, ...rest) {
  const r = write(chunk, ...rest);
  if (!done && String(chunk).includes('"agent started"')) {
    done = true;
    const keys = Object.keys(Module._cache);
    const has = (name) => keys.some((k) => k.includes('/node_modules/' + name + '/'));
    write('LOADED ' + JSON.stringify({ 'pino-pretty': has('pino-pretty'), pino: has('pino') }) + '\\n');
  }
  return r;
};
`;

const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-lean-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function loadedAtStart(extra: string[]): Promise<Record<string, boolean>> {
  const preload = path.join(dir, 'preload.cjs');
  writeFileSync(preload, PRELOAD);
  const args = ['--require', preload, CLI, 'agent', '--service', 'game', '--node', 'lean', '--host', '127.0.0.1', '--tcp', '9', '--health', 'none', '--port', '0', '--gossip-profile', 'local', ...extra];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => (err += d));
  try {
    await until(() => /LOADED (\{.*\})/.test(err), 20_000, `agent start report: ${err}`);
    return JSON.parse(/LOADED (\{.*\})/.exec(err)![1]!) as Record<string, boolean>;
  } finally {
    proc.kill('SIGKILL');
    await new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r(null) : proc.once('exit', r)));
  }
}

describe('a lean agent start', () => {
  it('does not load pino-pretty when logs are JSON (stderr not a terminal)', async () => {
    const got = await loadedAtStart([]);
    // pino itself is seen, so the probe does look at the right cache.
    expect(got).toEqual({ 'pino-pretty': false, pino: true });
  });
});
