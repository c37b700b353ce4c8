/**
 * Run the examples on their own, one process per role (the demo runs them all in one go):
 *
 *   node dist/examples/run.js game-server   --name g1 --port 7001 --agent-port 7946 [--join ws://…] [--mdns 127.0.0.1]
 *   node dist/examples/run.js bots          --players 20 --seconds 20 (--mdns 127.0.0.1 | --agents ws://…)
 *   node dist/examples/run.js stream-server --name s1 --port 7000 --agent-port 7947 [--join ws://…] [--mdns 127.0.0.1]
 *   node dist/examples/run.js streams       --streams 20 --seconds 20 (--mdns 127.0.0.1 | --agents ws://…)
 *
 * A server role starts the example server and its peerlb agent in this process (service `game` or
 * `stream`), prints one JSON line when ready and runs until SIGTERM/SIGINT (which drains first).
 * A client role joins the cluster, runs for --seconds and prints a JSON summary. Addresses default
 * to loopback (--host); --mdns names the interface to announce and browse on.
 */
import { parseArgs } from 'node:util';
import { startAgent } from '../agent/index.js';
import { join, type JoinOptions } from '../sdk/index.js';
import { runBots } from './udp-game/bot.js';
import { startGameServer } from './udp-game/server.js';
import { runStreams } from './tcp-stream/client.js';
import { startStreamServer } from './tcp-stream/server.js';

const ROLES = ['game-server', 'bots', 'stream-server', 'streams'] as const;
type Role = (typeof ROLES)[number];

function usage(why: string): never {
  process.stderr.write(`${why}\nusage: node dist/examples/run.js <${ROLES.join('|')}> [options] (see examples/README.md)\n`);
  process.exit(2);
}

const role = process.argv[2] as Role;
if (!ROLES.includes(role)) usage(role ? `unknown role "${role}"` : 'a role is required');
let values;
try {
  ({ values } = parseArgs({
    args: process.argv.slice(3),
    strict: true,
    options: {
      name: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'agent-port': { type: 'string', default: '0' },
      join: { type: 'string', multiple: true, default: [] },
      mdns: { type: 'string' },
      agents: { type: 'string', multiple: true, default: [] },
      players: { type: 'string', default: '20' },
      streams: { type: 'string', default: '20' },
      seconds: { type: 'string', default: '20' },
    },
  }));
} catch (err) {
  usage((err as Error).message);
}

function int(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) usage(`--${flag} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
}

const service = role === 'game-server' || role === 'bots' ? 'game' : 'stream';

if (role === 'game-server' || role === 'stream-server') {
  const name = values.name ?? usage('--name is required');
  const host = values.host;
  const port = int('port', values.port, 0, 65535);
  let report: (sessions: number) => void = () => {};
  const server =
    role === 'game-server'
      ? await startGameServer({ host, port, name, onSessions: (n) => report(n) })
      : await startStreamServer({ host, port, name });
  const agent = await startAgent({
    service,
    node: name,
    host,
    port: int('agent-port', values['agent-port'], 0, 65535),
    join: values.join,
    ...(role === 'game-server' ? { udpPort: server.port } : { tcpPort: server.port }),
    mdns: values.mdns ? { interface: values.mdns } : false,
  });
  report = (sessions) => agent.report({ sessions });
  process.stdout.write(JSON.stringify({ ready: name, service, port: server.port, agent: agent.url }) + '\n');
  const stop = async () => {
    await agent.drain();
    await agent.stop();
    await server.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
} else {
  if (!values.mdns && values.agents.length === 0) usage('--mdns <interface> or --agents <ws://…> is required');
  const discovery: JoinOptions['discovery'] = values.mdns ? { mdns: { interface: values.mdns } } : { agents: values.agents };
  const durationMs = int('seconds', values.seconds, 1, 86_400) * 1000;
  const cluster = await join({ service, discovery, waitForServersMs: 5000 });
  if (role === 'bots') {
    const r = await runBots({ cluster, players: int('players', values.players, 1, 100_000), durationMs });
    process.stdout.write(JSON.stringify({ sent: r.sent, replies: r.replies, byServer: Object.fromEntries(r.byServer) }) + '\n');
  } else {
    const r = await runStreams({ cluster, streams: int('streams', values.streams, 1, 100_000), durationMs });
    process.stdout.write(JSON.stringify({ opened: r.opened, failedConnects: r.failedConnects, bytes: r.bytes, byServer: Object.fromEntries(r.byServer) }) + '\n');
  }
  await cluster.close();
}
