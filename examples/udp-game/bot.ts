/**
 * Game bots: each bot is a player that sends inputs through the peerlb SDK with its player id as
 * the key, so all of a player's datagrams go to one server (its session lives there) and move
 * only if that server goes away. Replies come straight from the server.
 */
import type { Cluster } from '../../sdk/index.js';

export interface BotsOptions {
  cluster: Cluster;
  players: number;
  /** Inputs per second per player. Default 10. */
  rate?: number;
  /** Stop after this long. */
  durationMs: number;
  prefix?: string;
}

export interface BotsResult {
  sent: number;
  replies: number;
  unrouted: number;
  /** Replies by server id. */
  byServer: Map<string, number>;
  /** Servers each player was answered by, in order of first reply. */
  playerServers: Map<string, string[]>;
}

export async function runBots(o: BotsOptions): Promise<BotsResult> {
  const udp = o.cluster.udp();
  const res: BotsResult = { sent: 0, replies: 0, unrouted: 0, byServer: new Map(), playerServers: new Map() };
  udp.on('message', (msg, server) => {
    const parts = msg.toString().split(' ');
    if (parts[0] !== 'ST' || !server) return;
    res.replies++;
    res.byServer.set(server.id, (res.byServer.get(server.id) ?? 0) + 1);
    const list = res.playerServers.get(parts[1]!) ?? [];
    if (list.at(-1) !== server.id) list.push(server.id);
    res.playerServers.set(parts[1]!, list);
  });
  const players = Array.from({ length: o.players }, (_, i) => `${o.prefix ?? 'p'}${i}`);
  let seq = 0;
  const interval = 1000 / (o.rate ?? 10);
  const end = Date.now() + o.durationMs;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (Date.now() >= end) {
        clearInterval(timer);
        resolve();
        return;
      }
      seq++;
      for (const p of players) {
        if (udp.send(`IN ${p} ${seq}`, { key: p })) res.sent++;
        else res.unrouted++;
      }
    }, interval);
  });
  for (const p of players) udp.send(`BYE ${p}`, { key: p });
  await new Promise((r) => setTimeout(r, 100));
  await udp.close();
  return res;
}
