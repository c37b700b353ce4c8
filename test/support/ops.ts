/**
 * `peerlb agent` processes for the operations tests (test/integration/ops/): like support/agents.ts, but on a
 * loopback address of the test file's own, with the JSON log lines kept for inspection, and a way
 * to stop everything by PID whatever happened. mDNS is never switched on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLI, exited } from './agents.js';
import { onLines } from './lines.js';

export { CLI, until, exited } from './agents.js';

export interface OpsAgent {
  node: string;
  host: string;
  url: string;
  port: number;
  /** http://host:port of the agent (metrics, members, dashboard). */
  http: string;
  proc: ChildProcess;
  server: net.Server;
  tcpPort: number;
  /** Every JSON log line so far (pino, on stderr). */
  logs: Array<Record<string, unknown>>;
  /** Raw stderr text. */
  stderr: string[];
}

/** Listen on `host`, or fail after trying: a port chosen by the kernel. */
export async function tcpServerOn(host: string, port = 0): Promise<net.Server> {
  const s = net.createServer((c) => c.on('error', () => {}));
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => resolve());
  });
  return s;
}

/**
 * Start `peerlb agent --service game --node NODE --host HOST --tcp <a server of its own> --port 0
 * --gossip-profile local` (or, with `noDefaults`, none of these), plus `extra` flags (a function
 * gets the server's port), and wait (≤ 15 s) for its "agent started" line.
 */
export async function startCliAgent(
  all: OpsAgent[],
  node: string,
  host: string,
  opts: { join?: string[]; extra?: string[] | ((tcpPort: number) => string[]); env?: NodeJS.ProcessEnv; noDefaults?: boolean } = {},
): Promise<OpsAgent> {
  const server = await tcpServerOn(host);
  const tcpPort = (server.address() as net.AddressInfo).port;
  const base = opts.noDefaults ? [] : ['--service', 'game', '--node', node, '--host', host, '--tcp', String(tcpPort), '--port', '0', '--gossip-profile', 'local'];
  const args = [CLI, 'agent', ...base, ...(opts.join?.length ? ['--join', ...opts.join] : []), ...(typeof opts.extra === 'function' ? opts.extra(tcpPort) : (opts.extra ?? []))];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...cleanEnv(), ...opts.env } });
  const a: OpsAgent = { node, host, url: '', port: 0, http: '', proc, server, tcpPort, logs: [], stderr: [] };
  all.push(a); // stopped by stopCliAgents even if it never starts
  proc.stderr!.on('data', (d: Buffer) => a.stderr.push(d.toString()));
  onLines(proc.stderr!, (line) => {
    try {
      a.logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* not JSON */
    }
  });
  a.url = await new Promise<string>((resolve, reject) => {
    const done = (err: Error | undefined, url?: string) => {
      clearInterval(poll);
      clearTimeout(giveUp);
      proc.off('exit', onExit);
      if (err) reject(err);
      else resolve(url!);
    };
    const poll = setInterval(() => {
      const started = a.logs.find((l) => l.msg === 'agent started');
      if (started) done(undefined, String(started.url));
    }, 20);
    const giveUp = setTimeout(() => done(new Error(`agent ${node} did not start: ${a.stderr.join('')}`)), 15_000);
    const onExit = (code: number | null) => done(new Error(`agent ${node} exited with ${code}: ${a.stderr.join('')}`));
    proc.once('exit', onExit);
  });
  a.port = Number(new URL(a.url).port);
  a.http = `http://${host}:${a.port}`;
  return a;
}

/** This process's environment without PEERLB_* variables, so that only a test's own reach an agent. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PEERLB_')));
}

/** SIGKILL every agent still running (by PID) and close its server. */
export async function stopCliAgents(all: OpsAgent[]): Promise<void> {
  await Promise.all(
    all.splice(0).map(async (a) => {
      if (a.proc.exitCode === null && a.proc.signalCode === null) {
        a.proc.kill('SIGKILL');
        await exited(a.proc);
      }
      await new Promise<void>((r) => a.server.close(() => r()));
    }),
  );
}

export interface MemberRow {
  node: string;
  status: string;
  health: string;
  incarnation: number;
  weight: number;
  zone?: string;
  load: { connections: number; sessions: number; utilization: number } | null;
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return (await res.json()) as T;
}

export async function getText(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.text();
}

/** Run `peerlb …` to its end (SIGKILL by PID after `timeoutMs`, reported as code null), with a clean PEERLB_* environment plus `env`. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...cleanEnv(), ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A config-file writer into `dir`: `body` as JSON, or as is when it is a string; returns the path. */
export function configWriter(dir: string): (name: string, body: unknown) => string {
  return (name, body) => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
    return file;
  };
}
