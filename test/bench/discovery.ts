/**
 * Discovery timings (issue 4), with real processes on loopback: how long from starting a node
 * (server + agent, examples/demo/node.js) until an SDK picks its server, and from kill -9 of that
 * node until the SDK no longer picks it — through mDNS (with the default watch subscription) and
 * through a seed agent's subscription alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { join, type Cluster } from '../../sdk/index.js';

const NODE = fileURLToPath(new URL('../../examples/demo/node.js', import.meta.url));

export interface DiscoveryRow {
  /** mdns: mDNS + watch subscription (the default); mdns-only: no subscription; agents: a seed agent's watch. */
  path: 'mdns' | 'mdns-only' | 'agents';
  /** Process spawn → the SDK can pick the new server (includes Node's own start-up). */
  spawnToPickMs: number;
  /** startAgent() called in the new process → the SDK can pick its server. */
  startToPickMs: number;
  /** kill -9 of the node (SIGTERM for mdns-only: see `stop`) → the SDK no longer picks it. */
  killToGoneMs: number;
  /**
   * How the node was stopped. An mDNS-only view learns of a stop only from the goodbye, which a
   * killed process never sends (its records would live out their TTL), so that path is measured
   * with SIGTERM → drain → goodbye.
   */
  stop: 'SIGKILL' | 'SIGTERM';
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

interface Proc {
  name: string;
  proc: ChildProcess;
  url: string;
  spawnedAt: number;
  startingAt: number;
}

async function startNode(name: string, joinUrl?: string): Promise<Proc> {
  const [udp, tcp, agent] = [await freePort(), await freePort(), await freePort()];
  const spawnedAt = performance.now();
  const proc = spawn(process.execPath, [NODE, name, String(udp), String(tcp), String(agent), ...(joinUrl ? [joinUrl] : [])], { stdio: ['ignore', 'pipe', 'ignore'] });
  let startingAt = 0;
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} did not start`)), 15_000);
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, i)) as { starting?: string; agent?: string };
        buf = buf.slice(i + 1);
        if (line.starting) startingAt = performance.now();
        if (line.agent) {
          clearTimeout(t);
          resolve(line.agent);
        }
      }
    });
    proc.once('exit', () => reject(new Error(`${name} exited`)));
  });
  return { name, proc, url, spawnedAt, startingAt };
}

function kill(p: Proc, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    p.proc.once('exit', () => r());
    p.proc.kill(signal);
  });
}

/** Resolves at the first moment `cond` holds, checked on every view change and every 2 ms. */
function when(cluster: Cluster, cond: () => boolean, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!cond()) return;
      clearInterval(iv);
      clearTimeout(to);
      cluster.off('change', check);
      resolve(performance.now());
    };
    const iv = setInterval(check, 2);
    const to = setTimeout(() => {
      clearInterval(iv);
      cluster.off('change', check);
      reject(new Error('timed out'));
    }, timeoutMs);
    cluster.on('change', check);
    check();
  });
}

const pickable = (c: Cluster, id: string) => c.servers().some((s) => s.id === id && s.health === 'healthy' && !s.local.ejected);

export async function benchDiscovery(rounds = 3): Promise<DiscoveryRow[]> {
  const base = [await startNode('b1')];
  base.push(await startNode('b2', base[0]!.url), await startNode('b3', base[0]!.url));
  const rows: DiscoveryRow[] = [];
  try {
    for (const path of ['mdns', 'mdns-only', 'agents'] as const) {
      const cluster = await join({
        service: 'demo',
        discovery: path === 'agents' ? { agents: [base[1]!.url] } : { mdns: { interface: '127.0.0.1', subscribe: path === 'mdns' } },
        waitForServersMs: 5000,
      });
      try {
        await when(cluster, () => cluster.servers().length >= 3, 10_000);
        for (let r = 0; r < rounds; r++) {
          const name = `x${path.replace('-', '')}${r}`;
          const started = startNode(name, base[0]!.url);
          // Watch from the moment of spawn: the server may be picked before the node says it is ready.
          const seenP = when(cluster, () => pickable(cluster, name), 15_000);
          const p = await started;
          const seen = await seenP;
          const stop = path === 'mdns-only' ? 'SIGTERM' : 'SIGKILL';
          const killedAt = performance.now();
          const goneP = when(cluster, () => !pickable(cluster, name), 15_000);
          await kill(p, stop);
          const gone = await goneP;
          rows.push({ path, spawnToPickMs: seen - p.spawnedAt, startToPickMs: seen - p.startingAt, killToGoneMs: gone - killedAt, stop });
          // Let the cluster forget it before the next round.
          await new Promise((res) => setTimeout(res, 300));
        }
      } finally {
        await cluster.close();
      }
    }
  } finally {
    await Promise.all(base.map((b) => kill(b)));
  }
  return rows;
}
