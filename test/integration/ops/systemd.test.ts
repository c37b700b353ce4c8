/**
 * examples/systemd: the unit's ExecStart is a valid `peerlb agent` command line (checked against
 * the option table, then run for real with the README's config adapted to loopback), stopping it
 * with the unit's KillSignal drains — `draining` is published while a client connection is open and
 * the agent exits 0 once it closes — within TimeoutStopSec, which exceeds the default drain
 * timeout; the ordering makes the agent stop before its server, without a cycle.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_OPTION_SPECS, mergeAgentConfig, resolveAgentOptions } from '../../../agent/options.js';
import { ownLoopback } from '../../support/net.js';
import { exited, getJson, startCliAgent, stopCliAgents, until, type MemberRow, type OpsAgent } from '../../support/ops.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const UNIT = readFileSync(path.join(REPO, 'examples/systemd/peerlb-agent@.service'), 'utf8');
const README = readFileSync(path.join(REPO, 'examples/systemd/README.md'), 'utf8');
const H = await ownLoopback('127.0.0.36');
const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-systemd-'));
const procs: OpsAgent[] = [];

afterAll(async () => {
  await stopCliAgents(procs);
  rmSync(dir, { recursive: true, force: true });
}, 20_000);

/** systemd unit file → section → key → values (in order; a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      section = new Map();
      out.set(sec[1]!, section);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`not a unit line: ${line}`);
    section.set(kv[1]!, [...(section.get(kv[1]!) ?? []), kv[2]!]);
  }
  return out;
}

const unit = parseUnit(UNIT);
const get = (sec: string, key: string) => unit.get(sec)?.get(key) ?? [];
const words = (sec: string, key: string) => get(sec, key).flatMap((v) => v.split(/\s+/).filter(Boolean));

/** Seconds from a systemd time span ("60", "90s", "2min", "1min 30s"). */
function seconds(span: string): number {
  let total = 0;
  for (const part of span.trim().split(/\s+/)) {
    const m = /^(\d+)(ms|s|sec|min|m)?$/.exec(part);
    if (!m) throw new Error(`time span ${span}`);
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 'min' || m[2] === 'm' ? n * 60 : n;
  }
  return total;
}

describe('examples/systemd/peerlb-agent@.service', () => {
  const exec = get('Service', 'ExecStart');

  it('ExecStart runs `peerlb agent` (the package bin) with options of the option table only', () => {
    expect(exec).toHaveLength(1);
    const argv = exec[0]!.split(/\s+/);
    expect(argv.slice(0, 3)).toEqual(['/usr/bin/env', 'peerlb', 'agent']);
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin.peerlb).toBe('./dist/agent/cli.js');
    const known = new Set(['config', ...AGENT_OPTION_SPECS.map((s) => s.flag)]);
    const flags = argv.slice(3).filter((t) => t.startsWith('-'));
    expect(flags.length).toBeGreaterThan(0);
    for (const f of flags) expect(known.has(f.replace(/^--/, '')), `${f} is an option of peerlb agent`).toBe(true);
  });

  it('drains on stop: SIGTERM, and a stop timeout longer than the default drain timeout', () => {
    expect(get('Service', 'KillSignal')).toEqual(['SIGTERM']);
    expect(get('Service', 'ExecStop')).toEqual([]); // the signal itself drains; no second stop path
    const drainDefaultMs = AGENT_OPTION_SPECS.find((s) => s.path === 'drainTimeoutMs')!.default as number;
    expect(seconds(get('Service', 'TimeoutStopSec')[0]!) * 1000).toBeGreaterThan(drainDefaultMs + 5000);
    expect(get('Service', 'ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
  });

  it('starts after its server and so stops before it, with no ordering cycle', () => {
    expect(words('Unit', 'After')).toContain('%i.service');
    expect(words('Unit', 'Before')).not.toContain('%i.service');
    expect(words('Unit', 'PartOf')).toEqual(['%i.service']);
  });

  it("the README's example config is valid agent configuration", () => {
    const m = /`(\{"service":[^`]+\})`/.exec(README.replace(/\n\s*/g, ' '));
    expect(m, 'a JSON example in the README').not.toBeNull();
    const file = path.join(dir, 'readme.json');
    writeFileSync(file, m![1]!);
    const o = resolveAgentOptions(mergeAgentConfig({ file }));
    expect(o.service).toBe('game');
    expect(o.join.length).toBeGreaterThan(0);
  });

  it('run as the unit runs it, the agent drains on the unit’s KillSignal and exits 0 when the last connection closes', async () => {
    const argv = exec[0]!.split(/\s+/).slice(3);
    const cfg = path.join(dir, 'game.json');
    const holder: { client?: net.Socket } = {};
    const a = await startCliAgent(procs, 'sd-a', H, {
      noDefaults: true,
      extra: (tcp) => {
        writeFileSync(cfg, JSON.stringify({ service: 'game', node: 'sd-a', host: H, tcpPort: tcp, port: 0, gossipProfile: 'local', health: { intervalMs: 200 } }));
        return argv.map((t) => t.replace('/etc/peerlb/%i.json', cfg));
      },
    });
    expect(a.proc.spawnargs.slice(2)).toEqual(['agent', '--config', cfg]);
    await until(async () => (await getJson<{ health: string }>(`${a.http}/v1/health`)).health === 'healthy', 10_000, 'healthy');
    // A client connection to the server: the drain has to wait for it.
    holder.client = net.connect({ host: H, port: a.tcpPort });
    holder.client.on('error', () => {});
    await new Promise<void>((r) => holder.client!.once('connect', () => r()));

    const signal = get('Service', 'KillSignal')[0] as NodeJS.Signals;
    const t0 = Date.now();
    a.proc.kill(signal);
    await until(async () => (await getJson<MemberRow[]>(`${a.http}/v1/members`)).find((x) => x.node === 'sd-a')?.health === 'draining', 5000, 'draining published');
    await new Promise((r) => setTimeout(r, 600));
    expect(a.proc.exitCode, 'still waiting for the open connection').toBeNull();
    holder.client.destroy();
    const code = await Promise.race([exited(a.proc), new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(seconds(get('Service', 'TimeoutStopSec')[0]!) * 1000);
    const msgs = a.logs.map((l) => l.msg);
    expect(msgs).toContain('draining before exit');
    expect(a.logs.find((l) => l.msg === 'drain finished')).toMatchObject({ drained: true });
    expect(msgs.indexOf('drain finished')).toBeLessThan(msgs.indexOf('agent stopped'));
  });
});
