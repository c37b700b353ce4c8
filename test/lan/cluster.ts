/**
 * A peerlb cluster on the namespace LAN of netns.ts: on every server host an example server process
 * (dist/test/support/lan-server.js) and, in a separate process, `peerlb agent --udp --tcp` pointing
 * at it; on client hosts, dist/test/support/lan-client.js. Processes speak JSON lines; this module
 * turns them into events and waits on them (every wait bounded).
 */
import { fileURLToPath } from 'node:url';
import type { Host, Lan, Proc } from './netns.js';
import { sleep, until } from '../support/until.js';

const dist = (p: string) => fileURLToPath(new URL(`../../dist/${p}`, import.meta.url));
export const CLI = dist('agent/cli.js');
export const SERVER = dist('test/support/lan-server.js');
export const CLIENT = dist('test/support/lan-client.js');

export const SERVICE = 'game';
export const UDP_PORT = 7001;
export const TCP_PORT = 7000;
export const AGENT_PORT = 7946;

/**
 * Gossip profile of the LAN suite. `local` (probe timeout 150 ms, suspicion ≥ 500 ms, ≤ 3 s at
 * N ≤ 10): under 20 % loss per link direction, gossip runs over TCP (WebSocket), where a lost
 * segment costs a retransmission timeout (≥ 200 ms on Linux) — longer than `lan`'s 100 ms probe
 * timeout and comparable to its 250 ms minimum suspicion, so `lan` raises far more suspicions that
 * must be refuted in time. `local` also fits two shared cores running ~10 node processes (its
 * stated purpose). Override with PEERLB_LAN_PROFILE=lan to measure the other.
 */
export const PROFILE = (process.env.PEERLB_LAN_PROFILE === 'lan' ? 'lan' : 'local') as 'lan' | 'local';

/** Agent health check: 250 ms interval, fall 2 → an unhealthy server is seen within ~0.5–0.75 s. */
const HEALTH = ['--health-interval', '250', '--health-timeout', '200', '--health-rise', '2', '--health-fall', '2'];

export interface ServerHost {
  host: Host;
  node: string;
  url: string;
  server?: Proc;
  agent?: Proc;
}

export function agentUrl(h: Host): string {
  return `http://${h.ip}:${AGENT_PORT}`;
}

/** Resolve when a line satisfies `pred` (bounded), else reject with the process's last stderr. */
export async function waitLine(p: Proc, pred: (line: string) => boolean, timeoutMs: number, what: string, stream: 'out' | 'err' = 'out'): Promise<string> {
  const t0 = Date.now();
  let seen = 0;
  while (Date.now() - t0 < timeoutMs) {
    const lines = stream === 'out' ? p.lines : p.errLines;
    for (; seen < lines.length; seen++) if (pred(lines[seen]!)) return lines[seen]!;
    if (p.child.exitCode !== null || p.child.signalCode !== null) break;
    await sleep(25);
  }
  throw new Error(`${p.name}: ${what} not seen in ${Date.now() - t0} ms (exit ${p.child.exitCode ?? p.child.signalCode}); stderr: ${p.errLines.slice(-8).join('\n')}`);
}

export { sleep, until };

export async function startServer(lan: Lan, sh: ServerHost): Promise<Proc> {
  const p = lan.spawn(sh.host, `server ${sh.node}`, [process.execPath, SERVER, sh.node, sh.host.ip, String(UDP_PORT), String(TCP_PORT)]);
  await waitLine(p, (l) => l.includes('"ready"'), 15_000, 'server ready');
  sh.server = p;
  return p;
}

export async function startAgent(lan: Lan, sh: ServerHost, seed: Host | undefined, extra: string[] = []): Promise<Proc> {
  const args = [
    process.execPath, CLI, 'agent', '--service', SERVICE, '--node', sh.node, '--host', sh.host.ip,
    '--udp', String(UDP_PORT), '--tcp', String(TCP_PORT), '--port', String(AGENT_PORT),
    '--mdns-interface', sh.host.ip, '--gossip-profile', PROFILE, '--drain-timeout', '5000', '--log-level', 'info',
    ...HEALTH, ...(seed && seed !== sh.host ? ['--join', `ws://${seed.ip}:${AGENT_PORT}`] : []), ...extra,
  ];
  const p = lan.spawn(sh.host, `agent ${sh.node}`, args);
  await waitLine(p, (l) => l.includes('agent started'), 15_000, 'agent started', 'err');
  sh.agent = p;
  return p;
}

export interface ClientConfig {
  members?: string[];
  pollMs?: number;
  tcpEveryMs?: number;
  udpKeys?: number;
  udpEveryMs?: number;
  runMs?: number;
}

export async function startClient(lan: Lan, host: Host, name: string, cfg: ClientConfig): Promise<Client> {
  const p = lan.spawn(host, name, [process.execPath, CLIENT, JSON.stringify({ service: SERVICE, mdns: host.ip, runMs: 170_000, ...cfg })]);
  await waitLine(p, (l) => l.includes('"ready"'), 20_000, 'client ready');
  return new Client(p);
}

export type ViewEv = { ev: 'view'; t: number; servers: Array<{ id: string; health: string }> };
export type TcpEv = { ev: 'tcp'; t: number; t0: number; ok: boolean; server?: string; ms: number; err?: string };
export type UdpEv = { ev: 'udp'; t: number; key: string; seq: number; server: string };
export type MembersEv = { ev: 'members'; t: number; agent: string; m: Record<string, string> | null };
type Ev = ViewEv | TcpEv | UdpEv | MembersEv | { ev: 'ready' | 'stats'; t: number };

/** A client process's events, parsed as they arrive. */
export class Client {
  private parsed = 0;
  readonly all: Ev[] = [];
  constructor(readonly proc: Proc) {}

  events(): Ev[] {
    const lines = this.proc.lines;
    for (; this.parsed < lines.length; this.parsed++) {
      try {
        this.all.push(JSON.parse(lines[this.parsed]!) as Ev);
      } catch {
        /* not ours */
      }
    }
    return this.all;
  }

  of<K extends Ev['ev']>(ev: K, since = 0): Array<Extract<Ev, { ev: K }>> {
    return this.events().filter((e) => e.ev === ev && e.t >= since) as Array<Extract<Ev, { ev: K }>>;
  }

  /** The latest view (servers and their health). */
  view(): ViewEv['servers'] {
    return this.of('view').at(-1)?.servers ?? [];
  }

  /** First time ≥ since at which the view satisfied pred (the view current at `since` counts). */
  viewAt(pred: (v: ViewEv['servers']) => boolean, since: number): number | undefined {
    const views = this.of('view');
    const before = views.filter((v) => v.t < since).at(-1);
    if (before && pred(before.servers)) return since;
    return views.find((v) => v.t >= since && pred(v.servers))?.t;
  }

  /** Latest members table as one agent's /v1/members reports it. */
  members(agent: string): Record<string, string> | null | undefined {
    return this.of('members').filter((e) => e.agent === agent).at(-1)?.m;
  }
}

export const healthyIds = (v: ViewEv['servers']) => v.filter((s) => s.health === 'healthy').map((s) => s.id);
export const isHealthy = (id: string) => (v: ViewEv['servers']) => healthyIds(v).includes(id);
export const notHealthy = (id: string) => (v: ViewEv['servers']) => !healthyIds(v).includes(id);
