/**
 * What an agent says when joining goes wrong, through real `peerlb agent` processes: a seed that
 * never answers (a warning naming the seed and the error, repeated with backoff), and agents whose
 * keys differ or one of which has none (both sides warn that frames fail to authenticate, naming
 * the peer address, once per peer per 30 s rather than once per frame).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ownLoopback } from '../../support/net.js';
import { startCliAgent, stopCliAgents, tcpServerOn, until, type OpsAgent } from '../../support/ops.js';
import { sleep } from '../../support/until.js';

const H = await ownLoopback('127.0.0.38');
const procs: OpsAgent[] = [];
const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-join-'));
afterAll(async () => {
  await stopCliAgents(procs);
  rmSync(dir, { recursive: true, force: true });
}, 20_000);

function keyFile(name: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, randomBytes(32).toString('base64') + '\n');
  return f;
}

const AUTH = /^gossip frames fail to authenticate/;

describe('join warnings', () => {
  it('a seed that never answers: a warning naming the seed and the error, repeated with backoff', async () => {
    const s = await tcpServerOn(H);
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const seed = `ws://${H}:${port}`;
    const a = await startCliAgent(procs, 'jw-a', H, { join: [seed] }); // --gossip-profile local: a join attempt every 250 ms
    const lines = () => a.logs.filter((l) => l.msg === 'cannot reach join seed; retrying');
    await until(() => lines().some((l) => (l.failures as number) >= 8), 20_000, 'the warning after 8 failures');
    const ls = lines();
    for (const l of ls) expect(l).toMatchObject({ level: 40, seed, error: 'ECONNREFUSED' });
    // Backoff: at failures 1, 2, 4, 8 … — never one line per attempt.
    const n = ls.map((l) => l.failures as number);
    expect(n.slice(0, 4)).toEqual([1, 2, 4, 8]);
    for (const f of n) expect(f & (f - 1)).toBe(0);
  }, 40_000);

  it('agents with different keys: both warn, naming the other, rate-limited', async () => {
    const a = await startCliAgent(procs, 'jw-k1', H, { extra: ['--key-file', keyFile('k1.key')] });
    const b = await startCliAgent(procs, 'jw-k2', H, { join: [a.url], extra: ['--key-file', keyFile('k2.key')] });
    await until(() => a.logs.some((l) => AUTH.test(String(l.msg))) && b.logs.some((l) => AUTH.test(String(l.msg))), 15_000, 'both sides warn');
    await sleep(3000); // b keeps trying to join, every 250 ms
    const fromA = a.logs.filter((l) => AUTH.test(String(l.msg)));
    const fromB = b.logs.filter((l) => AUTH.test(String(l.msg)));
    // a: frames from b fail here, naming b's address; b: its frames are rejected by a, naming a's.
    expect(fromA[0]).toMatchObject({ level: 40, peer: b.url, side: 'theirs rejected here' });
    expect(fromB[0]).toMatchObject({ level: 40, peer: a.url, side: 'ours rejected by the peer' });
    // Rate-limited: one line per peer and side within 30 s, however many frames failed.
    expect(fromA.filter((l) => l.peer === b.url)).toHaveLength(1);
    expect(fromB.filter((l) => l.peer === a.url)).toHaveLength(1);
  }, 40_000);

  it('an agent without a key joining a keyed one: both warn, naming the other', async () => {
    const a = await startCliAgent(procs, 'jw-kx', H, { extra: ['--key-file', keyFile('kx.key')] });
    const b = await startCliAgent(procs, 'jw-open', H, { join: [a.url] });
    await until(() => a.logs.some((l) => AUTH.test(String(l.msg))) && b.logs.some((l) => AUTH.test(String(l.msg))), 15_000, 'both sides warn');
    expect(a.logs.find((l) => AUTH.test(String(l.msg)))).toMatchObject({ peer: b.url, side: 'theirs rejected here' });
    expect(b.logs.find((l) => AUTH.test(String(l.msg)))).toMatchObject({ peer: a.url, side: 'ours rejected by the peer' });
  }, 40_000);
});
