/**
 * SIGHUP on a live 3-agent CLI cluster: the config file's new weight and zone reach the other
 * agents, a raw `/v1/watch?format=json` subscriber and an SDK client, while no member ever drops
 * out and the process keeps its PID. Options that need a restart are named, not applied; a bad file
 * is refused and the running configuration kept. (Keyring reload: test/security.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { join, type Cluster } from '../../../sdk/index.js';
import { ownLoopback } from '../../support/net.js';
import { getJson, startCliAgent, stopCliAgents, until, type MemberRow, type OpsAgent } from '../../support/ops.js';

const H = await ownLoopback('127.0.0.32');
const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-reload-'));
const procs: OpsAgent[] = [];
const files = new Map<string, string>();
let a: OpsAgent, b: OpsAgent, c: OpsAgent;
let cluster: Cluster | undefined;
let watch: WebSocket | undefined;
/** Every server record the JSON watch subscriber on agent c received, in order. */
const watched: Array<{ t: string; id?: string; weight?: number; zone?: string }> = [];

function writeConfig(node: string, body: Record<string, unknown>): string {
  const file = files.get(node) ?? path.join(dir, `${node}.json`);
  files.set(node, file);
  writeFileSync(file, JSON.stringify(body));
  return file;
}

const NODES = ['hup-a', 'hup-b', 'hup-c'];

beforeAll(async () => {
  for (const n of NODES) writeConfig(n, { weight: 100, zone: 'z1', health: { intervalMs: 200 } });
  a = await startCliAgent(procs, 'hup-a', H, { extra: ['--config', files.get('hup-a')!] });
  b = await startCliAgent(procs, 'hup-b', H, { join: [a.url], extra: ['--config', files.get('hup-b')!] });
  c = await startCliAgent(procs, 'hup-c', H, { join: [a.url], extra: ['--config', files.get('hup-c')!] });
  await until(
    async () => {
      for (const x of [a, b, c]) {
        const ms = await getJson<MemberRow[]>(`${x.http}/v1/members`);
        if (ms.filter((m) => m.status === 'alive' && m.health === 'healthy').length !== 3) return false;
      }
      return true;
    },
    15_000,
    'three alive, healthy members seen by every agent',
  );
  cluster = await join({ service: 'game', discovery: { agents: [a.url] } });
  await until(() => cluster!.servers().length === 3, 10_000, 'the SDK client sees 3 servers');
  watch = new WebSocket(`ws://${H}:${c.port}/v1/watch?format=json`);
  watch.on('message', (d) => {
    const f = JSON.parse(String(d)) as { t: string; servers?: Array<{ id: string; weight: number; zone?: string }>; server?: { id: string; weight: number; zone?: string }; id?: string };
    if (f.t === 'snapshot') for (const s of f.servers!) watched.push({ t: 'snapshot', id: s.id, weight: s.weight, zone: s.zone });
    else if (f.t === 'upsert') watched.push({ t: 'upsert', id: f.server!.id, weight: f.server!.weight, zone: f.server!.zone });
    else watched.push({ t: f.t, id: f.id });
  });
  await new Promise<void>((resolve, reject) => {
    watch!.once('open', () => {
      watch!.send(JSON.stringify({ t: 'hello', v: 1 }));
      resolve();
    });
    watch!.once('error', reject);
  });
  await until(() => watched.filter((w) => w.t === 'snapshot').length === 3, 5000, 'the JSON watch snapshot');
}, 60_000);

afterAll(async () => {
  watch?.terminate();
  await cluster?.close();
  await stopCliAgents(procs);
  rmSync(dir, { recursive: true, force: true });
}, 20_000);

const selfOf = async (x: OpsAgent, node: string) => (await getJson<MemberRow[]>(`${x.http}/v1/members`)).find((m) => m.node === node);

describe('SIGHUP reload on a live 3-agent cluster', () => {
  it('publishes the new weight and zone to the other agents, a watch subscriber and an SDK client, with no member dropping out', async () => {
    const before = (await selfOf(a, 'hup-b'))!;
    expect(before).toMatchObject({ weight: 100, zone: 'z1', status: 'alive' });
    const pid = b.proc.pid;
    const changes: Array<Array<{ id: string; weight: number; zone?: string }>> = [];
    cluster!.on('change', (v) => changes.push(v.map((s) => ({ id: s.id, weight: s.weight, zone: s.zone }))));

    // Sample membership on a and c, and the SDK's view, all through the reload.
    const samples: Array<{ at: string; alive: number; sdk: number }> = [];
    let sampling = true;
    const sampler = (async () => {
      for (let i = 0; sampling && i < 400; i++) {
        for (const x of [a, c]) {
          const ms = await getJson<MemberRow[]>(`${x.http}/v1/members`);
          samples.push({ at: x.node, alive: ms.filter((m) => m.status === 'alive').length, sdk: cluster!.servers().length });
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    const logsBefore = b.logs.length;
    writeConfig('hup-b', { weight: 250, zone: 'z2', health: { intervalMs: 200 } });
    process.kill(pid!, 'SIGHUP');
    try {
      await until(
        async () => {
          const [onA, onC] = [await selfOf(a, 'hup-b'), await selfOf(c, 'hup-b')];
          const sdk = cluster!.servers().find((s) => s.id === 'hup-b');
          return onA?.weight === 250 && onA.zone === 'z2' && onC?.weight === 250 && onC.zone === 'z2' && sdk?.weight === 250 && sdk.zone === 'z2';
        },
        10_000,
        'weight 250 / zone z2 of hup-b on hup-a, hup-c and in the SDK view',
      );
      await new Promise((r) => setTimeout(r, 1000)); // and a further second of samples
    } finally {
      sampling = false;
      await sampler;
    }

    expect(samples.length).toBeGreaterThan(10);
    expect(samples.filter((s) => s.alive !== 3), 'a member left the alive set during the reload').toEqual([]);
    expect(samples.filter((s) => s.sdk !== 3), 'the SDK lost a server during the reload').toEqual([]);
    for (const v of changes) expect(v.map((s) => s.id).sort()).toEqual(NODES);
    expect(changes.some((v) => v.find((s) => s.id === 'hup-b')?.weight === 250)).toBe(true);

    // The same process, still running; a higher incarnation carries the new meta.
    expect(b.proc.pid).toBe(pid);
    expect(b.proc.exitCode).toBeNull();
    const after = (await selfOf(a, 'hup-b'))!;
    expect(after.status).toBe('alive');
    expect(after.incarnation).toBeGreaterThan(before.incarnation);
    // The other agents' own settings are untouched.
    expect(await selfOf(c, 'hup-a')).toMatchObject({ weight: 100, zone: 'z1' });
    expect(await selfOf(a, 'hup-c')).toMatchObject({ weight: 100, zone: 'z1' });

    // The JSON watch subscriber on c got an upsert with the new values, and no removal of hup-b.
    await until(() => watched.some((w) => w.t === 'upsert' && w.id === 'hup-b' && w.weight === 250 && w.zone === 'z2'), 5000, 'upsert of hup-b on the watch');
    expect(watched.filter((w) => w.t === 'remove')).toEqual([]);

    const reloaded = b.logs.slice(logsBefore).find((l) => l.msg === 'configuration reloaded');
    expect(reloaded).toMatchObject({ changed: ['weight', 'zone'], weight: 250, zone: 'z2', level: 30 });
  });

  it('names options that need a restart and does not apply them', async () => {
    const logsBefore = b.logs.length;
    writeConfig('hup-b', { weight: 250, zone: 'z2', health: { intervalMs: 200 }, loadIntervalMs: 5000 });
    process.kill(b.proc.pid!, 'SIGHUP');
    await until(() => b.logs.slice(logsBefore).some((l) => l.msg === 'configuration reloaded'), 5000, 'reload log line');
    const warn = b.logs.slice(logsBefore).find((l) => l.msg === 'configuration changes that take a restart were not applied');
    expect(warn).toMatchObject({ level: 40, needsRestart: ['loadIntervalMs'] });
    expect(b.logs.slice(logsBefore).find((l) => l.msg === 'configuration reloaded')).toMatchObject({ changed: [] });
  });

  it('refuses a bad file and keeps running with the configuration it has', async () => {
    const logsBefore = b.logs.length;
    const inc = (await selfOf(a, 'hup-b'))!.incarnation;
    writeConfig('hup-b', { weight: 0, zone: 'z3' });
    process.kill(b.proc.pid!, 'SIGHUP');
    await until(() => b.logs.slice(logsBefore).some((l) => l.msg === 'reload refused; keeping the running configuration'), 5000, 'refusal log line');
    const refused = b.logs.slice(logsBefore).find((l) => l.msg === 'reload refused; keeping the running configuration')!;
    expect(refused.level).toBe(50);
    expect(String(refused.err)).toMatch(/weight/);
    // Not JSON at all: refused too.
    writeFileSync(files.get('hup-b')!, '{ "weight": ');
    process.kill(b.proc.pid!, 'SIGHUP');
    await until(() => b.logs.slice(logsBefore).filter((l) => l.msg === 'reload refused; keeping the running configuration').length === 2, 5000, 'second refusal');
    await new Promise((r) => setTimeout(r, 300));
    expect(b.proc.exitCode).toBeNull();
    expect(await selfOf(a, 'hup-b')).toMatchObject({ weight: 250, zone: 'z2', status: 'alive', incarnation: inc });
    expect(b.logs.slice(logsBefore).some((l) => l.msg === 'configuration reloaded')).toBe(false);
  });
});
