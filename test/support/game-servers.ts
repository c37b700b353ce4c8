/**
 * WebSocket game servers as separate processes (test/support/ws-named-game-server.mjs), so that a
 * test can kill -9 one: each says its name to every socket and prints `open` per socket accepted,
 * counted here (`opens`). Stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited } from './agents.js';
import { onLines } from './lines.js';

const SCRIPT = fileURLToPath(new URL('./ws-named-game-server.mjs', import.meta.url));

export interface GameServer {
  name: string;
  port: number;
  proc: ChildProcess;
  /** Sockets the server accepted so far from browsers (their upgrade had an Origin). */
  opens: number;
  /** Other sockets it accepted (agents' health checks, Node clients). */
  others: number;
}

/** Start one on `host` (any free port, wss with `tls`), waiting (≤ 15 s) for its `listening` line. */
export async function startGameServer(all: GameServer[], name: string, host: string, tls?: { certFile: string; keyFile: string }): Promise<GameServer> {
  const proc = spawn(process.execPath, [SCRIPT, host, '0', name, ...(tls ? [tls.certFile, tls.keyFile] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const g: GameServer = { name, port: 0, proc, opens: 0, others: 0 };
  all.push(g);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  g.port = await new Promise<number>((resolve, reject) => {
    const giveUp = setTimeout(() => reject(new Error(`game server ${name} did not start: ${err}`)), 15_000);
    proc.once('exit', (code) => reject(new Error(`game server ${name} exited with ${code}: ${err}`)));
    onLines(proc.stdout!, (line) => {
      const m = /^listening (\d+)$/.exec(line);
      if (m) {
        clearTimeout(giveUp);
        resolve(Number(m[1]));
      } else if (line === 'open browser') g.opens++;
      else if (line === 'open other') g.others++;
    });
  });
  return g;
}

/** SIGKILL one (kill -9) and wait for it to be gone. */
export async function killGameServer(g: GameServer): Promise<void> {
  if (g.proc.exitCode === null && g.proc.signalCode === null) {
    g.proc.kill('SIGKILL');
    await exited(g.proc);
  }
}

export async function stopGameServers(all: GameServer[]): Promise<void> {
  await Promise.all(all.splice(0).map(killGameServer));
}
