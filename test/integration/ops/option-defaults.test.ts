/**
 * Defaults that had drifted between the places an option is read (issue 14): each checked through
 * the real CLI (dist/agent/cli.js, flags, PEERLB_* variables and a config file), whose agent logs
 * the configuration it resolved and the health check it really runs, and through startAgent's
 * own path (resolveAgentOptions).
 *
 *  1. `--health-interval 200` got a 500 ms health timeout, where the checker documents (and uses,
 *     when built directly) half the interval.
 *  2. A `ttl` check silently dropped `--health-interval`, `--health-rise` and `--health-fall`
 *     (accepted by every path, then left at the checker's own defaults).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveAgentOptions } from '../../../agent/options.js';
import { ownLoopback } from '../../support/net.js';
import { configWriter, startCliAgent, stopCliAgents, type OpsAgent } from '../../support/ops.js';

const H = await ownLoopback('127.0.0.36');
const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-defaults-'));
const procs: OpsAgent[] = [];
const writeConfig = configWriter(dir);

afterAll(async () => {
  await stopCliAgents(procs);
  rmSync(dir, { recursive: true, force: true });
}, 20_000);

function healthOf(a: OpsAgent): Record<string, unknown> | undefined {
  const cfg = a.logs.find((l) => l.msg === 'configuration')?.config as { health?: Record<string, unknown> } | undefined;
  return cfg?.health;
}

describe('the health timeout defaults to half the interval, on every path', () => {
  it('flag: `peerlb agent --health-interval 200` probes with a 100 ms timeout', async () => {
    const a = await startCliAgent(procs, 'dflt-flag', H, { extra: ['--health-interval', '200'] });
    expect(healthOf(a)).toMatchObject({ type: 'tcp', intervalMs: 200, timeoutMs: 100 });
    // What the checker really runs with, as the agent reports it with its first verdict.
    const first = a.logs.find((l) => l.msg === 'server health (first check)');
    expect(first?.check).toMatchObject({ type: 'tcp', intervalMs: 200, timeoutMs: 100, rise: 2, fall: 3 });
  });

  it('environment: PEERLB_HEALTH_INTERVAL=200 probes with a 100 ms timeout', async () => {
    const a = await startCliAgent(procs, 'dflt-env', H, { env: { PEERLB_HEALTH_INTERVAL: '200' } });
    expect(healthOf(a)).toMatchObject({ type: 'tcp', intervalMs: 200, timeoutMs: 100 });
  });

  it('config file: health.intervalMs 200 probes with a 100 ms timeout', async () => {
    const file = writeConfig('interval.json', { health: { intervalMs: 200 } });
    const a = await startCliAgent(procs, 'dflt-file', H, { extra: ['--config', file] });
    expect(healthOf(a)).toMatchObject({ type: 'tcp', intervalMs: 200, timeoutMs: 100 });
  });

  it('startAgent options, and an explicit timeout still wins', () => {
    expect(resolveAgentOptions({ service: 'game', tcpPort: 7000, health: { type: 'tcp', intervalMs: 200 } }).health).toMatchObject({ intervalMs: 200, timeoutMs: 100 });
    expect(resolveAgentOptions({ service: 'game', tcpPort: 7000 }).health).toMatchObject({ intervalMs: 1000, timeoutMs: 500 });
    expect(resolveAgentOptions({ service: 'game', tcpPort: 7000, health: { type: 'tcp', intervalMs: 200, timeoutMs: 700 } }).health).toMatchObject({ timeoutMs: 700 });
    expect(resolveAgentOptions({ service: 'game', tcpPort: 7000, health: { type: 'tcp', intervalMs: 11 } }).health).toMatchObject({ timeoutMs: 5 });
  });
});

describe('a ttl check keeps the interval, rise and fall it was given', () => {
  it('flags: --health ttl --health-interval 200 --health-rise 3 --health-fall 2', async () => {
    const a = await startCliAgent(procs, 'dflt-ttl', H, { extra: ['--health', 'ttl', '--health-ttl', '5000', '--health-interval', '200', '--health-rise', '3', '--health-fall', '2'] });
    expect(healthOf(a)).toMatchObject({ type: 'ttl', ttlMs: 5000, intervalMs: 200, rise: 3, fall: 2 });
    const first = a.logs.find((l) => l.msg === 'server health (first check)');
    expect(first?.check).toMatchObject({ type: 'ttl', ttlMs: 5000, intervalMs: 200, rise: 3, fall: 2 });
  });

  it('startAgent options; without them the ttl defaults (1000 ms, rise 1, fall 1) stay', () => {
    expect(resolveAgentOptions({ service: 'game', udpPort: 7001, health: { type: 'ttl', ttlMs: 3000, intervalMs: 250, rise: 2, fall: 4 } }).health).toEqual({
      type: 'ttl',
      ttlMs: 3000,
      intervalMs: 250,
      rise: 2,
      fall: 4,
    });
    expect(resolveAgentOptions({ service: 'game', udpPort: 7001, health: { type: 'ttl', ttlMs: 3000 } }).health).toEqual({ type: 'ttl', ttlMs: 3000, intervalMs: 1000, rise: 1, fall: 1 });
  });
});
