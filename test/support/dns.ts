/**
 * DNS test helpers: agent processes with their own loopback address and a TCP server on it that
 * counts accepted connections (so a test can tell which server a client reached), `dig`, and a
 * raw UDP query. Everything started here is ended by PID in stopDnsAgents().
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { CLI, stopAll } from './agents.js';
import { onLines } from './lines.js';

const run = promisify(execFile);

export interface DnsAgent {
  node: string;
  host: string;
  url: string;
  port: number;
  /** The DNS port, when started with dnsPort. */
  dnsPort: number | undefined;
  proc: ChildProcess;
  server: net.Server;
  tcpPort: number;
  /** Connections the server accepted. */
  accepted: () => number;
  stderr: string[];
}

/** A TCP server on host:port (0: any) counting connections; each is held until the client closes. */
async function countingServer(host: string, port: number): Promise<{ server: net.Server; accepted: () => number }> {
  let n = 0;
  const server = net.createServer((c) => {
    n++;
    c.on('error', () => {});
    c.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, accepted: () => n };
}

/** `peerlb agent` for a server at `host` (a 127/8 address), with DNS when dnsPort is given. */
export async function spawnDnsAgent(
  node: string,
  o: { host: string; join?: string[]; dnsPort?: number; dnsBind?: string; tcpPort?: number; service?: string; extra?: string[] },
): Promise<DnsAgent> {
  const { server, accepted } = await countingServer(o.host, o.tcpPort ?? 0);
  const tcpPort = (server.address() as net.AddressInfo).port;
  const args = [
    CLI, 'agent', '--service', o.service ?? 'game', '--node', node, '--host', o.host, '--tcp', String(tcpPort),
    '--port', '0', '--gossip-profile', 'local', '--log-level', 'info', '--health-interval', '200',
    ...(o.join?.length ? ['--join', ...o.join] : []),
    ...(o.dnsPort !== undefined ? ['--dns-port', String(o.dnsPort)] : []),
    ...(o.dnsBind !== undefined ? ['--dns-bind', o.dnsBind] : []),
    ...(o.extra ?? []),
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  const started = await new Promise<{ url: string; dnsPort?: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent ${node} did not start: ${stderr.join('')}`)), 20_000);
    proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
    onLines(proc.stderr!, (line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; url?: string; dnsPort?: number };
        if (j.msg === 'agent started' && j.url) {
          clearTimeout(timer);
          resolve({ url: j.url, dnsPort: j.dnsPort });
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
  return { node, host: o.host, url: started.url, port: Number(new URL(started.url).port), dnsPort: started.dnsPort, proc, server, tcpPort, accepted, stderr };
}

/** End every agent started here by PID (SIGKILL), and close its server: agents.ts's stopAll. */
export const stopDnsAgents: (agents: DnsAgent[]) => Promise<void> = stopAll;

/** Run dig against 127.0.0.1:port (or `server`); its full output. */
export async function dig(port: number, args: string[], server = '127.0.0.1'): Promise<string> {
  const { stdout } = await run('dig', [`@${server}`, '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 15_000 });
  return stdout;
}

/** The records of one section of dig's output ('ANSWER', 'AUTHORITY', 'ADDITIONAL'), as [name, ttl, class, type, ...data]. */
export function digSection(out: string, section: string): string[][] {
  const m = new RegExp(`;; ${section} SECTION:\\n([\\s\\S]*?)(\\n\\n|$)`).exec(out);
  if (!m) return [];
  return m[1]!.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/));
}

/** dig's header: status and flags. */
export function digHeader(out: string): { status: string; flags: string[] } {
  const status = /status: (\w+)/.exec(out)?.[1] ?? '';
  const flags = (/;; flags: ([a-z ]*);/.exec(out)?.[1] ?? '').trim().split(/\s+/);
  return { status, flags };
}

export async function hasDig(): Promise<boolean> {
  try {
    await run('dig', ['-v'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}
