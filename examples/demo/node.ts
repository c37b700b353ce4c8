/**
 * One demo node: a UDP game server, a TCP stream server and their peerlb agent in one process, so
 * `kill -9` of this process takes the servers and the agent down together. Run by demo.ts.
 *
 *   node dist/examples/demo/node.js <name> <udpPort> <tcpPort> <agentPort> [joinUrl...]
 *
 * PEERLB_DEMO_KEY (base64, from `peerlb keygen`): seal the gossip with it; without it the cluster is open.
 */
import { startAgent } from '../../agent/index.js';
import { startGameServer } from '../udp-game/server.js';
import { startStreamServer } from '../tcp-stream/server.js';

const [name, udp, tcp, agentPort, ...join] = process.argv.slice(2);
if (!name || !udp || !tcp || !agentPort) {
  process.stderr.write('usage: node.js <name> <udpPort> <tcpPort> <agentPort> [joinUrl...]\n');
  process.exit(2);
}

const host = '127.0.0.1';
// First line: the process is up and the agent is about to start (benchmarks time from here).
process.stdout.write(JSON.stringify({ starting: name }) + '\n');
let report: (n: number) => void = () => {};
const game = await startGameServer({ host, port: Number(udp), name, onSessions: (n) => report(n) });
const stream = await startStreamServer({ host, port: Number(tcp), name });
const agent = await startAgent({
  service: 'demo',
  node: name,
  host,
  udpPort: game.port,
  tcpPort: stream.port,
  port: Number(agentPort),
  join,
  mdns: { interface: '127.0.0.1' },
  capacity: 200,
  gossipProfile: 'local',
  logLevel: 'warn',
  ...(process.env.PEERLB_DEMO_KEY ? { keyring: [process.env.PEERLB_DEMO_KEY] } : {}),
});
report = (sessions) => agent.report({ sessions });
process.stdout.write(JSON.stringify({ ready: name, pid: process.pid, agent: agent.url }) + '\n');

const shutdown = async () => {
  await agent.drain();
  await agent.stop();
  await game.close();
  await stream.close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
// The demo started us: if it is gone (even by kill -9), so are we — no node outlives its demo.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void shutdown();
}, 500).unref();
