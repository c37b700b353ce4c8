/**
 * Gossip with real agent processes on loopback (issue 3): `peerlb agent` from the CLI, one process
 * per agent, a cluster of `size` agents. Per round:
 *   - join: a new agent process is started with one seed; from its "agent started" log line until
 *     every other agent's /v1/members lists it alive;
 *   - crash: kill -9 of that process; from the kill until every other agent's /v1/members says
 *     it is dead.
 * Each agent's /v1/members is read over HTTP every 5 ms (an HTTP GET, not the CLI, so the polling
 * adds little). Both gossip profiles are measured: `lan` (the default) and `local` (one host).
 */
import http from 'node:http';
import { spawnAgent, stopAll, type AgentProc } from '../support/agents.js';

export interface ProcessGossipRow {
  profile: 'lan' | 'local';
  agents: number;
  round: number;
  /** "agent started" logged by the new agent → alive in every other member's view. */
  joinMs: number;
  /** kill -9 → dead in every other member's view. */
  crashMs: number;
}

interface Member {
  node: string;
  status: string;
}

function members(port: number): Promise<Member[]> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v1/members', timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as Member[]);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Resolves with performance.now() when every agent in `watchers` sees `node` with `status`. */
async function seenByAll(watchers: AgentProc[], node: string, status: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  const pending = new Set(watchers);
  while (performance.now() < deadline) {
    await Promise.all(
      [...pending].map(async (w) => {
        try {
          const ms = await members(w.port);
          if (ms.some((m) => m.node === node && m.status === status)) pending.delete(w);
        } catch {
          /* a busy agent: ask again */
        }
      }),
    );
    if (pending.size === 0) return performance.now();
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${node} not ${status} at ${[...pending].map((w) => w.node).join(', ')} after ${timeoutMs} ms`);
}

export async function benchProcessGossip(o: { size?: number; rounds?: number; profiles?: ('lan' | 'local')[] } = {}): Promise<ProcessGossipRow[]> {
  const size = o.size ?? 5;
  const rounds = o.rounds ?? 3;
  const rows: ProcessGossipRow[] = [];
  for (const profile of o.profiles ?? (['lan', 'local'] as const)) {
    const extra = ['--gossip-profile', profile, '--log-level', 'info'];
    const base: AgentProc[] = [];
    const all: AgentProc[] = [];
    try {
      base.push(await spawnAgent(`b${profile[0]}0`, { extra }));
      for (let i = 1; i < size - 1; i++) base.push(await spawnAgent(`b${profile[0]}${i}`, { join: [base[0]!.url], extra }));
      all.push(...base);
      for (const b of base) await seenByAll(base, b.node, 'alive', 10_000);
      for (let r = 0; r < rounds; r++) {
        const node = `x${profile[0]}${r}`;
        const p = await spawnAgent(node, { join: [base[r % base.length]!.url], extra });
        all.push(p);
        const started = performance.now();
        const joined = await seenByAll(base, node, 'alive', 10_000);
        await new Promise((res) => setTimeout(res, 500)); // settle: the newcomer has everyone
        const killed = performance.now();
        p.proc.kill('SIGKILL');
        const dead = await seenByAll(base, node, 'dead', 15_000);
        rows.push({ profile, agents: size, round: r + 1, joinMs: Math.round(joined - started), crashMs: Math.round(dead - killed) });
      }
    } finally {
      await stopAll(all);
    }
  }
  return rows;
}
