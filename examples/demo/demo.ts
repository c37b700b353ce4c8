/**
 * `npm run demo`: a local peerlb cluster on loopback.
 *
 * Five nodes (game server + stream server + agent each, as separate processes) announce themselves
 * over mDNS on 127.0.0.1 and gossip. In this process, game bots (UDP, keyed by player id) and a
 * streaming client (TCP) find them with zero configuration and balance across them. A live table
 * shows each server's sessions, connections, load, health and picks per second. Mid-run one node
 * is killed with SIGKILL and started again: watch failover and recovery. Stops by itself after
 * about a minute (or on Ctrl-C) and leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from '../../sdk/index.js';
import { generateKey } from '../../agent/gossip/keyring.js';
import { runBots } from '../udp-game/bot.js';
import { runStreams } from '../tcp-stream/client.js';

const DURATION_MS = Number(process.env.PEERLB_DEMO_SECONDS ?? 60) * 1000;
const NODES = 5;
const KILL_AT = DURATION_MS * 0.3;
const RESTART_AT = DURATION_MS * 0.55;
const nodeScript = fileURLToPath(new URL('./node.js', import.meta.url));
const tty = process.stdout.isTTY;

/** A free loopback port, found by binding port 0 (TCP and UDP use the same number). */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const dgram = await import('node:dgram');
    const ok = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port found on 127.0.0.1');
}

interface Node {
  name: string;
  udp: number;
  tcp: number;
  agent: number;
  proc?: ChildProcess;
}

const nodes: Node[] = [];
for (let i = 1; i <= NODES; i++) nodes.push({ name: `n${i}`, udp: await freePort(), tcp: await freePort(), agent: await freePort() });
const seed = `ws://127.0.0.1:${nodes[0]!.agent}`;
// The demo's agents seal their gossip (AES-256-GCM) with a key made for this run, as a real
// cluster would with `peerlb keygen` and --key-file.
const demoKey = generateKey();

function startNode(n: Node): Promise<void> {
  const args = [nodeScript, n.name, String(n.udp), String(n.tcp), String(n.agent)];
  if (n !== nodes[0]) args.push(seed);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PEERLB_DEMO_KEY: demoKey } });
  n.proc = proc;
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${n.name} did not start`)), 10_000);
    proc.stdout!.once('data', () => {
      clearTimeout(t);
      resolve();
    });
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${n.name} exited with ${code}`));
    });
  });
}

const events: string[] = [];
const log = (s: string) => {
  events.push(`${new Date().toISOString().slice(11, 19)} ${s}`);
  if (events.length > 8) events.shift();
  if (!tty) process.stdout.write(s + '\n');
};

let stopping = false;
async function cleanup(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(
    nodes.map(
      (n) =>
        new Promise<void>((resolve) => {
          const p = n.proc;
          if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
          const force = setTimeout(() => p.kill('SIGKILL'), 5000);
          p.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
}
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.on(sig, () => {
    log(`${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping`);
    void cleanup().then(() => process.exit(code));
  });
}
// Whatever goes wrong below (a node that does not start, no server found), the nodes go too.
process.on('uncaughtException', (err) => {
  console.error(`demo failed: ${err.message}`);
  void cleanup().then(() => process.exit(1));
});
process.on('unhandledRejection', (err) => {
  console.error(`demo failed: ${(err as Error)?.message ?? err}`);
  void cleanup().then(() => process.exit(1));
});

console.log(`peerlb demo: ${NODES} nodes on 127.0.0.1, mDNS on the loopback interface, gossip sealed with a fresh key, ${DURATION_MS / 1000}s`);
await Promise.all(nodes.map(startNode));
log(`started ${NODES} nodes (pids ${nodes.map((n) => n.proc?.pid).join(' ')}); dashboard: http://127.0.0.1:${nodes[0]!.agent}/`);

const cluster = await join({ service: 'demo', discovery: { mdns: { interface: '127.0.0.1' } }, strategy: 'p2c', waitForServersMs: 5000 });
cluster.on('eject', (s) => log(`client ejected ${s.id} after connect failures`));
cluster.on('recover', (s) => log(`client takes ${s.id} back`));
const start = Date.now();

const bots = runBots({ cluster, players: 60, rate: 10, durationMs: DURATION_MS });
const streams = runStreams({ cluster, streams: 40, durationMs: DURATION_MS, maxStreamMs: 8000 });

const victim = nodes[2]!;
const killTimer = setTimeout(() => {
  log(`kill -9 ${victim.name} (server and agent, pid ${victim.proc?.pid})`);
  victim.proc?.kill('SIGKILL');
}, KILL_AT);
const restartTimer = setTimeout(() => {
  log(`restarting ${victim.name} on the same ports`);
  startNode(victim).then(
    () => log(`${victim.name} is back (pid ${victim.proc?.pid})`),
    (e: Error) => log(`restart failed: ${e.message}`),
  );
}, RESTART_AT);

let lastPicks = new Map<string, number>();
const render = () => {
  const view = cluster.servers().sort((a, b) => a.id.localeCompare(b.id));
  const stats = new Map(cluster.stats().map((s) => [s.id, s]));
  const rows = view.map((s) => {
    const st = stats.get(s.id);
    const picks = st?.picks ?? 0;
    const rate = picks - (lastPicks.get(s.id) ?? picks);
    const util = s.load?.utilization ?? 0;
    const bar = '█'.repeat(Math.round(util * 20)).padEnd(20, '·');
    return `${s.id.padEnd(4)} ${String(s.load?.sessions ?? '-').padStart(8)} ${String(s.load?.connections ?? '-').padStart(8)}  ${bar} ${util.toFixed(2)}  ${s.health.padEnd(9)} ${String(rate).padStart(7)}${s.local.ejected ? '  ejected' : ''}`;
  });
  lastPicks = new Map([...stats].map(([id, s]) => [id, s.picks]));
  const head = `server  sessions  conns    load                        health    picks/s`;
  const t = ((Date.now() - start) / 1000).toFixed(0);
  const out = [`peerlb demo — t=${t}s of ${DURATION_MS / 1000}s — ${view.length} servers seen by the client`, head, ...rows, '', ...events].join('\n');
  if (tty) process.stdout.write('\x1b[2J\x1b[H' + out + '\n');
  else if (Number(t) % 5 === 0) process.stdout.write(out.split('\n').slice(0, rows.length + 2).join('\n') + '\n');
};
const table = setInterval(render, 1000);

const [b, s] = await Promise.all([bots, streams]);
clearInterval(table);
clearTimeout(killTimer);
clearTimeout(restartTimer);
render();
await cluster.close();
await cleanup();
console.log(
  `\ndone: UDP ${b.sent} inputs sent, ${b.replies} states received from ${b.byServer.size} servers; ` +
    `TCP ${s.opened} streams opened on ${s.byServer.size} servers, ${s.failedConnects} failed connects, ${(s.bytes / 1e6).toFixed(1)} MB read`,
);
process.exit(0);
