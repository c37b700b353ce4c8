/**
 * agent.reload (what SIGHUP runs in `peerlb agent`) on live in-process agents:
 *
 * - a reload with an unchanged key file keeps what POST /v1/keyring did since (a rotation made
 *   through the admin endpoint is not undone by a `systemctl reload` to change the weight); a key
 *   file that changed wins;
 * - a reload that is refused (a zone mDNS cannot announce) changes nothing: the old weight and
 *   zone are still gossiped and announced; such a zone is refused at start too, naming `zone`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent, type AgentOptions } from '../../../agent/index.js';
import { keyIdHex } from '../../../agent/gossip/keyring.js';
import { join, type Cluster } from '../../../sdk/index.js';
import { sleep, until } from '../../support/until.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-reload-state-'));
const running: Agent[] = [];
const clusters: Cluster[] = [];
afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const newKey = () => randomBytes(32).toString('base64');
const id = (k: string) => keyIdHex(Buffer.from(k, 'base64'));

const base = (node: string, over: Partial<AgentOptions> = {}): AgentOptions => ({
  service: 'game',
  node,
  host: '127.0.0.1',
  port: 0,
  udpPort: 40_000,
  gossipProfile: 'local',
  loadIntervalMs: 100,
  ...over,
});

async function start(opts: AgentOptions): Promise<Agent> {
  const a = await startAgent(opts, { log: false });
  running.push(a);
  return a;
}

async function keyring(port: number, body?: unknown): Promise<{ status: number; json: { keys: string[]; primary: string } }> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/keyring`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as { keys: string[]; primary: string } };
}

describe('reload and the keyring', () => {
  it('an unchanged key file keeps the keyring as POST /v1/keyring left it; a changed one replaces it', async () => {
    const [k1, k2, k3] = [newKey(), newKey(), newKey()];
    const keyFile = path.join(dir, 'cluster.key');
    writeFileSync(keyFile, `${k1}\n`);
    const opts = base('kr1', { keyFile, weight: 100 });
    const a = await start(opts);
    expect(a.gossipStats().keys).toEqual([id(k1)]);

    // Rotation through the admin endpoint: install k2, make it primary.
    expect((await keyring(a.port, { op: 'install', key: k2 })).status).toBe(200);
    const used = await keyring(a.port, { op: 'use', key: k2 });
    expect(used).toMatchObject({ status: 200, json: { keys: [id(k2), id(k1)], primary: id(k2) } });

    // A reload for a new weight, the key file untouched: the rotation stays.
    const r1 = a.reload({ ...opts, weight: 250 });
    expect(r1.changed).toEqual(['weight']);
    expect(a.gossipStats().keys).toEqual([id(k2), id(k1)]);
    expect((await keyring(a.port)).json).toMatchObject({ keys: [id(k2), id(k1)], primary: id(k2) });
    expect(a.members().find((m) => m.node === 'kr1')!.weight).toBe(250);

    // The same keys rewritten (other spacing, a comment): still the same file content as keys.
    writeFileSync(keyFile, `# cluster key\n\n${k1}\n`);
    expect(a.reload({ ...opts, weight: 260 }).changed).toEqual(['weight']);
    expect(a.gossipStats().keys).toEqual([id(k2), id(k1)]);

    // The file changes: the file wins.
    writeFileSync(keyFile, `${k3}\n${k1}\n`);
    const incBefore = a.members().find((m) => m.node === 'kr1')!.incarnation;
    const r2 = a.reload({ ...opts, weight: 260 });
    expect(r2.changed).toEqual(['keyring']);
    expect(a.gossipStats().keys).toEqual([id(k3), id(k1)]);
    // A new keyring is nothing members see of us: no incarnation step (only weight/zone take one).
    expect(a.members().find((m) => m.node === 'kr1')!.incarnation).toBe(incBefore);
    // And reloading it again changes nothing.
    expect(a.reload({ ...opts, weight: 260 }).changed).toEqual([]);
    expect(a.gossipStats().keys).toEqual([id(k3), id(k1)]);
  });

  it('the keyring option (instead of a file) likewise: unchanged → admin changes kept, changed → replaced', async () => {
    const [k1, k2, k3] = [newKey(), newKey(), newKey()];
    const opts = base('kr2', { keyring: [k1] });
    const a = await start(opts);
    expect((await keyring(a.port, { op: 'install', key: k2 })).status).toBe(200);
    a.reload({ ...opts, weight: 300 });
    expect(a.gossipStats().keys).toEqual([id(k1), id(k2)]);
    a.reload({ ...opts, keyring: [k3] });
    expect(a.gossipStats().keys).toEqual([id(k3)]);
  });
});

describe('a refused reload changes nothing', () => {
  const IFACE = '127.0.0.1';
  const PORT = 20_000 + Math.floor(Math.random() * 30_000);
  const SVC = `r${Math.random().toString(36).slice(2, 7)}`;

  it('a zone mDNS cannot announce: refused, naming zone; the old weight and zone are still gossiped and announced', async () => {
    const a = await start(base('zr-a', { service: SVC, weight: 100, zone: 'z1', mdns: { interface: IFACE, port: PORT } }));
    const b = await start(base('zr-b', { service: SVC, join: [a.url] }));
    await until(() => b.members().some((m) => m.node === 'zr-a' && m.status === 'alive'), 5000, 'zr-a alive on zr-b');
    const cluster = await join({ service: SVC, discovery: { mdns: { interface: IFACE, port: PORT, subscribe: false } }, waitForServersMs: 5000 });
    clusters.push(cluster);
    await until(() => cluster.servers().some((s) => s.id === 'zr-a'), 5000, 'zr-a over mDNS');
    expect(cluster.servers().find((s) => s.id === 'zr-a')).toMatchObject({ weight: 100, zone: 'z1' });
    const incBefore = b.members().find((m) => m.node === 'zr-a')!.incarnation;

    // `zone=` + 251 bytes is 256 bytes: more than one TXT string holds (RFC 6763 §6.1).
    for (const zone of ['z'.repeat(251), 'é'.repeat(126)]) {
      let err: unknown;
      try {
        a.reload(base('zr-a', { service: SVC, weight: 300, zone, mdns: { interface: IFACE, port: PORT } }));
      } catch (e) {
        err = e;
      }
      expect(err, `reload with a ${Buffer.byteLength(zone)}-byte zone`).toMatchObject({ code: 'PEERLB_ERR_BAD_OPTION', message: expect.stringMatching(/zone/) });
    }
    await sleep(1000);
    // Nothing changed: not this agent's own view, not what zr-b has, not what mDNS says.
    expect(a.members().find((m) => m.node === 'zr-a')).toMatchObject({ weight: 100, zone: 'z1' });
    const onB = b.members().find((m) => m.node === 'zr-a')!;
    expect(onB).toMatchObject({ weight: 100, zone: 'z1', status: 'alive' });
    expect(onB.incarnation).toBe(incBefore);
    expect(cluster.servers().find((s) => s.id === 'zr-a')).toMatchObject({ weight: 100, zone: 'z1' });

    // The running configuration is intact: a good reload afterwards goes everywhere.
    const zone = 'z'.repeat(250);
    expect(a.reload(base('zr-a', { service: SVC, weight: 300, zone, mdns: { interface: IFACE, port: PORT } })).changed).toEqual(['weight', 'zone']);
    await until(() => b.members().find((m) => m.node === 'zr-a')?.weight === 300, 5000, 'weight 300 on zr-b');
    expect(b.members().find((m) => m.node === 'zr-a')!.zone).toBe(zone);
    await until(() => cluster.servers().find((s) => s.id === 'zr-a')?.weight === 300, 8000, 'weight 300 over mDNS');
    expect(cluster.servers().find((s) => s.id === 'zr-a')!.zone).toBe(zone);
  });

  it('such a zone is refused at start too, naming zone, with or without mDNS', async () => {
    for (const zone of ['z'.repeat(251), 'é'.repeat(126)]) {
      await expect(startAgent(base('zs', { zone }), { log: false }), `${Buffer.byteLength(zone)}-byte zone`).rejects.toMatchObject({
        code: 'PEERLB_ERR_BAD_OPTION',
        message: expect.stringMatching(/^option "zone" .*250 bytes/),
      });
    }
    const ok = await start(base('zs', { zone: 'é'.repeat(125) }));
    expect(ok.members()[0]!.zone).toBe('é'.repeat(125));
  });
});
