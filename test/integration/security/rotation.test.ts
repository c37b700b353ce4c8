/**
 * Key rotation with no downtime, under continuous gossip: install the new key everywhere, make it
 * primary everywhere, remove the old one everywhere. Five live agents, load reports flowing all
 * along; every agent is sampled every 100 ms and must keep all five alive, every load seq it holds
 * must keep advancing, and not one frame may fail authentication on any agent.
 *
 *  - in-process agents rotated through the loopback admin endpoint (POST /v1/keyring);
 *  - `peerlb agent` processes rotated by rewriting their key file and sending SIGHUP.
 * Afterwards an agent holding only the old key cannot join.
 */
import { request as httpRequest } from 'node:http';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../../agent/index.js';
import { keyIdHex } from '../../../agent/gossip/keyring.js';
import { startCliAgent, stopCliAgents, getJson, type OpsAgent, type MemberRow } from '../../support/ops.js';
import { agent, alive, known, until, sleep, newKey, post, droppedByReason } from '../../support/security.js';

const NODES = ['a1', 'a2', 'a3', 'a4', 'a5'];
const id = (k: string) => keyIdHex(Buffer.from(k, 'base64'));

const running: Agent[] = [];
const cli: OpsAgent[] = [];
const dir = mkdtempSync(pathJoin(tmpdir(), 'peerlb-rot-'));
afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
  await stopCliAgents(cli);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type View = Map<string, { status: string; seq: number | undefined }>;

/**
 * Sample views (observer → node → status and load seq) every 100 ms while `during` runs; fail on
 * the first sample where an observer lacks an alive member, or a seq went backwards. Returns how
 * many samples were taken and, per observer and node, the seqs seen (first, last) and the longest
 * time without the seq advancing.
 */
async function sampled(view: () => Promise<Map<string, View>>, during: () => Promise<void>) {
  const first = new Map<string, number>();
  const last = new Map<string, { seq: number; at: number }>();
  let longestStall = 0;
  let samples = 0;
  const problems: string[] = [];
  let done = false;
  const loop = (async () => {
    const end = Date.now() + 60_000;
    while (!done && Date.now() < end) {
      const t = Date.now();
      const all = await view();
      samples++;
      for (const [obs, v] of all) {
        for (const n of NODES) {
          const m = v.get(n);
          if (m?.status !== 'alive') problems.push(`${obs} has ${n} as ${m?.status ?? 'unknown'} at sample ${samples}`);
          if (n === obs || m?.seq === undefined) continue;
          const k = `${obs}:${n}`;
          if (!first.has(k)) first.set(k, m.seq);
          const l = last.get(k);
          if (l && m.seq < l.seq) problems.push(`${obs}'s seq of ${n} went back ${l.seq} → ${m.seq}`);
          if (!l || m.seq > l.seq) {
            if (l) longestStall = Math.max(longestStall, t - l.at);
            last.set(k, { seq: m.seq, at: t });
          } else longestStall = Math.max(longestStall, t - l.at);
        }
      }
      await sleep(100);
    }
  })();
  try {
    await during();
  } finally {
    done = true;
    await loop;
  }
  return { samples, first, last, longestStall, problems };
}

function checkSampling(r: Awaited<ReturnType<typeof sampled>>, minSamples: number) {
  expect(r.problems.slice(0, 5)).toEqual([]);
  expect(r.samples).toBeGreaterThanOrEqual(minSamples);
  // Every observer holds a load of every other node, and it advanced a lot during the rotation.
  expect(r.last.size).toBe(NODES.length * (NODES.length - 1));
  for (const [k, l] of r.last) expect(l.seq - r.first.get(k)!, k).toBeGreaterThanOrEqual(10);
  // No gap in the flow: reports go out every 100 ms, so a stall of seconds would mean lost gossip.
  // (Generous: a busy 2-core machine can hold an event loop for a second; the sealer's auth and
  // unsealed counters, checked by the callers, are the outcome that says no frame was refused.)
  expect(r.longestStall).toBeLessThan(5000);
}

describe('key rotation under continuous gossip', () => {
  it('5 in-process agents, through the admin endpoint: install → use → remove; no member and no load update lost', async () => {
    const k1 = newKey();
    const k2 = newKey();
    const seed = await agent('a1', { keyring: [k1] });
    running.push(seed);
    for (const n of NODES.slice(1)) running.push(await agent(n, { keyring: [k1], join: [seed.url] }));
    await until(() => running.every((a) => alive(a).length === 5), 10_000, 'five agents alive everywhere');
    let sessions = 0;
    const reporter = setInterval(() => running.forEach((a, i) => a.report({ sessions: (sessions++ % 50) + i })), 50);
    try {
      await sleep(500);
      const view = async () => new Map(running.map((a) => [a.node, new Map(a.members().map((m) => [m.node, { status: m.status, seq: m.load?.seq }]))] as const));
      const keyring = async (a: Agent, op: string, key: string) => {
        const r = await post(a.port, '/v1/keyring', { op, key });
        expect(r.status, `${op} on ${a.node}: ${JSON.stringify(r.json)}`).toBe(200);
        return r.json as { keys: string[]; primary: string };
      };
      const r = await sampled(view, async () => {
        await sleep(1000);
        for (const a of running) expect(await keyring(a, 'install', k2)).toEqual({ keys: [id(k1), id(k2)], primary: id(k1) });
        await sleep(1500);
        for (const a of running) {
          expect(await keyring(a, 'use', k2)).toEqual({ keys: [id(k2), id(k1)], primary: id(k2) });
          await sleep(150); // mixed: some agents seal with k2, others still with k1
        }
        await sleep(1500);
        for (const a of running) expect(await keyring(a, 'remove', k1)).toEqual({ keys: [id(k2)], primary: id(k2) });
        await sleep(2000);
      });
      console.log(`rotation (admin endpoint): ${r.samples} samples of 5 views, longest load stall ${r.longestStall} ms`);
      checkSampling(r, 10);
      for (const a of running) {
        const s = a.gossipStats();
        expect(s.keys, a.node).toEqual([id(k2)]);
        expect(s.sealer!.auth, a.node).toBe(0);
        expect(s.transport.dropped.unsealed, a.node).toBe(0);
        expect(s.sealer!.sealed, a.node).toBeGreaterThan(100);
      }
      // The old key no longer gets anyone in.
      const old = await agent('old', { keyring: [k1], join: [seed.url] });
      running.push(old);
      await sleep(1500);
      expect(known(seed)).toEqual(NODES);
      expect(seed.gossipStats().sealer!.auth).toBeGreaterThan(0);
    } finally {
      clearInterval(reporter);
    }
  });

  it('the admin endpoint refuses what it must: not JSON, a foreign Host header, removing the primary, using a key not installed, a bad key; an open agent answers 409', async () => {
    const k1 = newKey();
    const a = await agent('adm', { keyring: [k1] });
    running.push(a);
    const res = await fetch(`http://127.0.0.1:${a.port}/v1/keyring`);
    expect(await res.json()).toEqual({ keys: [id(k1)], primary: id(k1) });
    expect((await post(a.port, '/v1/keyring', { op: 'install', key: newKey() }, { 'content-type': 'text/plain' })).status).toBe(415);
    // DNS rebinding: a page of evil.example resolving to 127.0.0.1 (fetch cannot set Host: node:http).
    const rebound = await new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ op: 'install', key: newKey() });
      const q = httpRequest({ host: '127.0.0.1', port: a.port, path: '/v1/keyring', method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (r) => {
        r.resume();
        resolve(r.statusCode!);
      });
      q.on('error', reject);
      q.end(body);
    });
    expect(rebound).toBe(403);
    const rm = await post(a.port, '/v1/keyring', { op: 'remove', key: k1 });
    expect(rm.status).toBe(400);
    expect(rm.json.message).toMatch(/primary/);
    const use = await post(a.port, '/v1/keyring', { op: 'use', key: newKey() });
    expect(use.status).toBe(400);
    expect(use.json.message).toMatch(/not installed/);
    const bad = await post(a.port, '/v1/keyring', { op: 'install', key: 'c2hvcnQ=' });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/32 bytes/);
    expect(a.gossipStats().keys).toEqual([id(k1)]);
    const open = await agent('adm-open');
    running.push(open);
    expect((await post(open.port, '/v1/keyring', { op: 'install', key: newKey() })).status).toBe(409);
  });

  it('5 `peerlb agent` processes, by rewriting the key file and SIGHUP: no member and no load update lost', async () => {
    const k1 = newKey();
    const k2 = newKey();
    const files = NODES.map((n) => pathJoin(dir, `${n}.key`));
    const write = (keys: string[]) => files.forEach((f) => writeFileSync(f, keys.join('\n') + '\n'));
    write([k1]);
    const hosts = NODES.map((_, i) => `127.0.0.${60 + i}`);
    const extra = (i: number) => ['--key-file', files[i]!, '--load-interval', '100', '--log-level', 'info'];
    const first = await startCliAgent(cli, NODES[0]!, hosts[0]!, { extra: extra(0) });
    await Promise.all(NODES.slice(1).map((n, i) => startCliAgent(cli, n, hosts[i + 1]!, { join: [first.url], extra: extra(i + 1) })));
    const agents = NODES.map((n) => cli.find((a) => a.node === n)!);
    const view = async () => {
      const rows = await Promise.all(agents.map((a) => getJson<Array<MemberRow & { load: { seq?: number } | null }>>(`${a.http}/v1/members`)));
      return new Map(agents.map((a, i) => [a.node, new Map(rows[i]!.map((m) => [m.node, { status: m.status, seq: m.load?.seq }]))] as const));
    };
    await until(async () => [...(await view()).values()].every((v) => [...v.values()].filter((m) => m.status === 'alive').length === 5), 15_000, 'five CLI agents alive everywhere');
    let n = 0;
    const put = () =>
      Promise.all(
        agents.map((a, i) =>
          fetch(`${a.http}/v1/load`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sessions: (n++ % 40) + i }) }).then((r) => r.arrayBuffer()),
        ),
      ).catch(() => {});
    const reporter = setInterval(() => void put(), 100);
    const reloaded = (a: OpsAgent, count: number) => a.logs.filter((l) => l.msg === 'keyring reloaded (primary first)').length >= count;
    const hup = async (keys: string[], count: number) => {
      write(keys);
      for (const a of agents) a.proc.kill('SIGHUP');
      await until(() => agents.every((a) => reloaded(a, count)), 5000, `reload ${count} on every agent`);
    };
    try {
      await sleep(800);
      const r = await sampled(view, async () => {
        await sleep(1000);
        await hup([k1, k2], 1);
        await sleep(1500);
        await hup([k2, k1], 2);
        await sleep(1500);
        await hup([k2], 3);
        await sleep(2000);
      });
      console.log(`rotation (SIGHUP, 5 processes): ${r.samples} samples of 5 views, longest load stall ${r.longestStall} ms`);
      checkSampling(r, 10);
      for (const a of agents) {
        expect(a.proc.exitCode, a.node).toBeNull();
        const last = a.logs.filter((l) => l.msg === 'keyring reloaded (primary first)').at(-1)!;
        expect(last.keys, a.node).toEqual([id(k2)]);
        const d = await droppedByReason(a.port, a.host);
        expect(d.auth ?? 0, `${a.node} auth drops`).toBe(0);
      }
      // A reload with a bad file is refused and the running keyring kept.
      writeFileSync(files[0]!, 'not a key\n');
      agents[0]!.proc.kill('SIGHUP');
      await until(() => agents[0]!.logs.some((l) => l.msg === 'reload refused; keeping the running configuration'), 5000, 'the refusal');
      const refused = agents[0]!.logs.find((l) => l.msg === 'reload refused; keeping the running configuration')!;
      expect(String(refused.err)).toMatch(new RegExp(`key file ${files[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*base64`));
      await sleep(500);
      const v = await view();
      for (const [obs, m] of v) expect([...m.values()].filter((x) => x.status === 'alive').length, obs).toBe(5);
    } finally {
      clearInterval(reporter);
    }
  }, 60_000);
});
