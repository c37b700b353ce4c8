/**
 * A client process for test/lan: joins the service through the SDK (mDNS on its host's address)
 * and, as asked, keeps TCP connects and UDP keyed sends going, and polls agents' /v1/members.
 * Everything it sees goes to stdout as JSON lines stamped with Date.now() (one machine, one clock),
 * so the test can compute detection and recovery times after the fact.
 *
 *   node dist/test/support/lan-client.js '<json config>'
 *
 * Lines: {ev:'ready'} · {ev:'view',t,servers:[{id,health}]} · {ev:'tcp',t,ok,server,ms,err}
 *        {ev:'udp',t,key,seq,server} · {ev:'members',t,agent,m:{node:"status/health"}|null} · {ev:'stats',…}
 * Bounded: stops after runMs (default 170 s) or on SIGTERM.
 */
import type net from 'node:net';
import { join, type Cluster } from '../../sdk/index.js';

interface Config {
  service: string;
  mdns: string;
  /** Agents whose /v1/members to poll (http://ip:port). */
  members?: string[];
  pollMs?: number;
  /** Start a TCP connect (HELLO → "OK name" → close) this often. */
  tcpEveryMs?: number;
  /** Send one "IN key seq" per key this often, keys k0..k(n-1), consistent-hash by key. */
  udpKeys?: number;
  udpEveryMs?: number;
  runMs?: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n');
const timers: NodeJS.Timeout[] = [];
const clusters: Cluster[] = [];
const stats = { tcpOk: 0, tcpFail: 0, udpSent: 0, udpRecv: 0 };

async function joinOne(strategy: 'p2c' | 'consistent-hash'): Promise<Cluster> {
  const c = await join({ service: cfg.service, discovery: { mdns: { interface: cfg.mdns } }, strategy, waitForServersMs: 5000, connectTimeoutMs: 1000 });
  clusters.push(c);
  return c;
}

const main = await joinOne('p2c');
let lastView = '';
const emitView = () => {
  const servers = main.servers().map((s) => ({ id: s.id, health: s.health })).sort((a, b) => a.id.localeCompare(b.id));
  const key = JSON.stringify(servers);
  if (key === lastView) return;
  lastView = key;
  out({ ev: 'view', servers });
};
main.on('change', emitView);
emitView();

function readLine(sock: net.Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('no reply')), timeoutMs);
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) {
        clearTimeout(t);
        resolve(buf.slice(0, i));
      }
    });
    sock.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    sock.once('close', () => {
      clearTimeout(t);
      reject(new Error('closed before reply'));
    });
  });
}

let inflight = 0;
let seqTcp = 0;
if (cfg.tcpEveryMs) {
  timers.push(
    setInterval(() => {
      if (inflight >= 50) return; // bounded
      inflight++;
      const t0 = Date.now();
      const id = seqTcp++;
      void (async () => {
        let sock: net.Socket | undefined;
        try {
          sock = await main.connect({ timeoutMs: 1000 });
          sock.write(`HELLO s${id}\n`);
          const line = await readLine(sock, 2000);
          stats.tcpOk++;
          out({ ev: 'tcp', t0, ok: true, server: line.split(' ')[1], ms: Date.now() - t0 });
        } catch (err) {
          stats.tcpFail++;
          out({ ev: 'tcp', t0, ok: false, err: (err as Error).message, ms: Date.now() - t0 });
        } finally {
          sock?.destroy();
          inflight--;
        }
      })();
    }, cfg.tcpEveryMs),
  );
}

if (cfg.udpKeys) {
  const ch = await joinOne('consistent-hash');
  const udp = ch.udp();
  const seqs = new Array<number>(cfg.udpKeys).fill(0);
  udp.on('message', (msg) => {
    const [kind, key, seq, , server] = msg.toString().split(' ');
    if (kind !== 'ST') return;
    stats.udpRecv++;
    out({ ev: 'udp', key, seq: Number(seq), server });
  });
  timers.push(
    setInterval(() => {
      for (let k = 0; k < seqs.length; k++) {
        const seq = ++seqs[k]!;
        if (udp.send(`IN k${k} ${seq}`, { key: `k${k}` })) stats.udpSent++;
      }
    }, cfg.udpEveryMs ?? 100),
  );
}

const lastMembers = new Map<string, string>();
if (cfg.members?.length) {
  timers.push(
    setInterval(() => {
      for (const url of cfg.members!) {
        void fetch(`${url}/v1/members`, { signal: AbortSignal.timeout(cfg.pollMs ?? 200) })
          .then((r) => r.json() as Promise<Array<{ node: string; status: string; health: string; incarnation: number }>>)
          .then((list) => {
            const m: Record<string, string> = {};
            for (const x of list) m[x.node] = `${x.status}/${x.health}/${x.incarnation}`;
            const key = JSON.stringify(m);
            if (lastMembers.get(url) === key) return;
            lastMembers.set(url, key);
            out({ ev: 'members', agent: url, m });
          })
          .catch(() => {
            if (lastMembers.get(url) === 'down') return;
            lastMembers.set(url, 'down');
            out({ ev: 'members', agent: url, m: null });
          });
      }
    }, cfg.pollMs ?? 200),
  );
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  for (const t of timers) clearInterval(t);
  out({ ev: 'stats', ...stats });
  await Promise.race([Promise.all(clusters.map((c) => c.close())), new Promise((r) => setTimeout(r, 1000))]);
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
setTimeout(() => void stop(), cfg.runMs ?? 170_000).unref();
out({ ev: 'ready' });
