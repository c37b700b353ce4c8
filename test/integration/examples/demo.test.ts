/**
 * `npm run demo`, shortened to 12 s (PEERLB_DEMO_SECONDS): the built demo runs as a new user runs
 * it — five node processes on loopback found over mDNS, bots and streams balanced across them, one
 * node killed with SIGKILL and started again — exits 0 by itself, and leaves no process behind.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const demo = fileURLToPath(new URL('../../../dist/examples/demo/demo.js', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('runs a 5-node cluster with failover and recovery, ends by itself, leaves no process', async () => {
  const child = spawn(process.execPath, [demo], { env: { ...process.env, PEERLB_DEMO_SECONDS: '12' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code, `stdout:\n${out}\nstderr:\n${err}`).toBe(0);

  const pids = /started 5 nodes \(pids ([\d ]+)\)/.exec(out)?.[1]?.split(' ').map(Number) ?? [];
  expect(pids).toHaveLength(5);
  expect(out).toMatch(/kill -9 n3 \(server and agent, pid \d+\)/);
  expect(out).toMatch(/restarting n3 on the same ports/);
  // Every node served UDP and TCP, and no TCP stream failed to connect despite the kill -9.
  const done = /done: UDP (\d+) inputs sent, (\d+) states received from (\d+) servers; TCP (\d+) streams opened on (\d+) servers, (\d+) failed connects/.exec(out);
  expect(done, out).not.toBeNull();
  const [, sent, replies, udpServers, opened, tcpServers, failed] = done!.map(Number);
  expect(udpServers).toBe(5);
  expect(tcpServers).toBe(5);
  expect(replies).toBeGreaterThan(sent! * 0.9);
  expect(opened).toBeGreaterThan(20);
  expect(failed).toBe(0);
  // A process table: the five nodes the demo started (and the restarted one) are gone.
  const restarted = [...out.matchAll(/n3 is back \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  expect(restarted).toHaveLength(1);
  for (const pid of [...pids, ...restarted]) expect(alive(pid), `pid ${pid} still running`).toBe(false);
  // The demo seals its gossip: no agent warned that its cluster is open.
  expect(err).not.toMatch(/cluster is open/);
}, 60_000);
