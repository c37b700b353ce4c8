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
  path: 'mdns' | 'agents';
  /** Process spawn → the SDK can pick the new server (includes Node start-up). */
  startToPickMs: number;
  /** The node's "ready" line (agent listening, announced) → the SDK can pick it. */
  readyToPickMs: number;
  /** kill -9 of the node → the SDK no longer picks it. */
  killToGoneMs: number;
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
  readyAt: number;
}

async function startNode(name: string, joinUrl?: string): Promise<Proc> {
  const [udp, tcp, agent] = [await freePort(), await freePort(), await freePort()];
  const spawnedAt = performance.now();
  const proc = spawn(process.execPath, [NODE, name, String(udp), String(tcp), String(agent), ...(joinUrl ? [joinUrl] : [])], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} did not start`)), 15_000);
    proc.stdout!.once('data', (d: Buffer) => {
      clearTimeout(t);
      resolve((JSON.parse(d.toString().split('\n')[0]!) as { agent: string }).agent);
    });
    proc.once('exit', () => reject(new Error(`${name} exited`)));
  });
  return { name, proc, url, spawnedAt, readyAt: performance.now() };
}

function kill(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    p.proc.once('exit', () => r());
    p.proc.kill('SIGKILL');
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
    for (const path of ['mdns', 'agents'] as const) {
      const cluster = await join({
        service: 'demo',
        discovery: path === 'mdns' ? { mdns: { interface: '127.0.0.1' } } : { agents: [base[1]!.url] },
        waitForServersMs: 5000,
      });
      try {
        await when(cluster, () => cluster.servers().length >= 3, 10_000);
        for (let r = 0; r < rounds; r++) {
          const name = `x${path[0]}${r}`;
          const p = await startNode(name, base[0]!.url);
          const seen = await when(cluster, () => pickable(cluster, name), 15_000);
          const killedAt = performance.now();
          await kill(p);
          const gone = await when(cluster, () => !pickable(cluster, name), 15_000);
          rows.push({ path, startToPickMs: seen - p.spawnedAt, readyToPickMs: Math.max(0, seen - p.readyAt), killToGoneMs: gone - killedAt });
          // Let the cluster forget it before the next round.
          await new Promise((res) => setTimeout(res, 300));
        }
      } finally {
        await cluster.close();
      }
    }
  } finally {
    await Promise.all(base.map(kill));
  }
  return rows;
}
