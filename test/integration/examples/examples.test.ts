/**
 * The examples run on their own, one process per role, as examples/README.md shows: two game
 * servers (each with its agent, the second joining the first) and a bots process finding them
 * through a seed agent; the same for the streaming example. Loopback only, no mDNS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { onLines } from '../../support/lines.js';
import { until } from '../../support/until.js';

const run = fileURLToPath(new URL('../../../dist/examples/run.js', import.meta.url));
const started: ChildProcess[] = [];

function start(args: string[]): { proc: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [run, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  const lines: string[] = [];
  onLines(proc.stdout!, (l) => lines.push(l));
  proc.stderr!.resume();
  return { proc, lines, exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
}

async function ready(p: ReturnType<typeof start>): Promise<{ agent: string }> {
  const line = () => p.lines.find((x) => x.startsWith('{"ready"'));
  await until(() => line() !== undefined || p.proc.exitCode !== null, 15_000, 'the ready line', 50);
  const l = line();
  if (!l) throw new Error(`exited ${p.proc.exitCode}`);
  return JSON.parse(l) as { agent: string };
}

afterAll(async () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

it.each([
  ['game-server', 'bots', ['--players', '10']],
  ['stream-server', 'streams', ['--streams', '6']],
] as const)('%s ×2 and %s, each its own process, through a seed agent', async (serverRole, clientRole, extra) => {
  const a = start([serverRole, '--name', `${serverRole}-a`]);
  const { agent } = await ready(a);
  const b = start([serverRole, '--name', `${serverRole}-b`, '--join', agent]);
  await ready(b);
  const client = start([clientRole, '--agents', agent, '--seconds', '3', ...extra]);
  expect(await client.exited).toBe(0);
  const summary = JSON.parse(client.lines.at(-1)!) as { byServer: Record<string, number>; replies?: number; sent?: number; failedConnects?: number };
  expect(Object.keys(summary.byServer).sort()).toEqual([`${serverRole}-a`, `${serverRole}-b`]);
  if (clientRole === 'bots') expect(summary.replies).toBeGreaterThan(summary.sent! * 0.5);
  else expect(summary.failedConnects).toBe(0);
  // SIGTERM drains and exits 0.
  a.proc.kill('SIGTERM');
  b.proc.kill('SIGTERM');
  expect(await a.exited).toBe(0);
  expect(await b.exited).toBe(0);
}, 60_000);

it('a wrong role or flag is a usage error, exit 2', async () => {
  const p = start(['nope']);
  expect(await p.exited).toBe(2);
  const q = start(['bots', '--players', 'x', '--agents', 'ws://127.0.0.1:1']);
  expect(await q.exited).toBe(2);
});
