/**
 * Real agent processes for tests: `peerlb agent` from the built CLI (dist/), on loopback, with a
 * small TCP server beside each as "its server". Everything started here is ended by PID in stop().
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { onLines } from './lines.js';

const run = promisify(execFile);
// From the sources (vitest) the built CLI is ../../dist/agent/cli.js; from dist/test/helpers (the bench), ../../agent/cli.js.
export const CLI = fileURLToPath(new URL(import.meta.url.includes('/dist/test/') ? '../../agent/cli.js' : '../../dist/agent/cli.js', import.meta.url));

export interface AgentProc {
  node: string;
  url: string;
  port: number;
  proc: ChildProcess;
  server: net.Server;
  tcpPort: number;
  stderr: string[];
  args: string[];
}

export async function tcpServer(port = 0): Promise<net.Server> {
  const s = net.createServer((c) => c.on('error', () => {}));
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve());
  });
  return s;
}

/**
 * Start `peerlb agent` and wait for its "agent started" log line (JSON on stderr), at most
 * `startTimeoutMs` (default 15 s; suites that start many at once on a busy 2-core box give more).
 */
export async function spawnAgent(node: string, opts: { join?: string[]; port?: number; tcpPort?: number; extra?: string[]; env?: NodeJS.ProcessEnv; service?: string; startTimeoutMs?: number } = {}): Promise<AgentProc> {
  const server = await tcpServer(opts.tcpPort ?? 0);
  const tcpPort = (server.address() as net.AddressInfo).port;
  const args = [
    CLI, 'agent', '--service', opts.service ?? 'game', '--node', node, '--host', '127.0.0.1', '--tcp', String(tcpPort),
    '--port', String(opts.port ?? 0), '--gossip-profile', 'local', '--log-level', 'info',
    ...(opts.join?.length ? ['--join', ...opts.join] : []),
    ...(opts.extra ?? []),
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  const stderr: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent ${node} did not start: ${stderr.join('')}`)), opts.startTimeoutMs ?? 15_000);
    proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
    onLines(proc.stderr!, (line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; url?: string };
        if (j.msg === 'agent started' && j.url) {
          clearTimeout(timer);
          resolve(j.url);
        }
      } catch {
        /* not JSON */
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent ${node} exited with ${code}: ${stderr.join('')}`));
    });
  });
  return { node, url, port: Number(new URL(url).port), proc, server, tcpPort, stderr, args };
}

export interface MemberJson {
  node: string;
  host: string;
  port: number;
  status: string;
  health: string;
  incarnation: number;
  load: unknown;
  ageMs: number;
}

/** `peerlb members --agent URL --json`, through the real CLI. */
export async function membersOf(url: string): Promise<MemberJson[]> {
  const { stdout } = await run(process.execPath, [CLI, 'members', '--agent', url, '--json'], { timeout: 10_000 });
  return JSON.parse(stdout) as MemberJson[];
}

export { until } from './until.js';

export function exited(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
}

/** End every process started here, by PID, and close their servers. */
export async function stopAll(agents: Pick<AgentProc, 'proc' | 'server'>[]): Promise<void> {
  await Promise.all(
    agents.map(async (a) => {
      if (a.proc.exitCode === null && a.proc.signalCode === null) {
        a.proc.kill('SIGKILL');
        await exited(a.proc);
      }
      await new Promise<void>((r) => a.server.close(() => r()));
    }),
  );
}
