/**
 * peerlb against a central proxy: the same clients send the same requests to the same N backend
 * servers on loopback, (a) picking a server themselves through the SDK (`join` with a static list,
 * default strategy p2c) and (b) through nginx's stream module as a central balancer (`least_conn`,
 * UDP and TCP). Measured in one run on one machine: request/reply rate, p50/p99 latency, and the
 * spread of requests over servers (max/mean of the per-server counts; 1 = perfectly even).
 *
 * Load generator (identical for both paths, only the address differs). Full load: closed loop, W worker
 * threads × C slots each; a slot has one request in flight and sends the next when the reply comes
 * (or after a 1 s timeout, counted as an error). One event loop could not keep nginx busy, hence the
 * workers. UDP: one socket per slot, request "<n>" → reply "<server> <n>". TCP: per request a new
 * connection — connect, "<n>\n" → "<server> <n>\n", close — because a per-connection balancer
 * decides once per connection, so this is what it is asked to do per request. Then both again at one
 * fixed offered rate, half of nginx's maximum, open loop: at full load a closed loop's latency is
 * mostly its own queue (Little's law: in-flight ÷ rate), so the latency a path adds is compared
 * at equal load.
 * Backends run in their own worker threads (two, N/2 servers each), the same for both paths.
 * nginx runs with `worker_processes 1` by default (PEERLB_BENCH_NGINX_WORKERS to change): on a
 * 2-core machine shared with the clients and backends, more workers mostly fight for the cores.
 *
 * nginx is started with its own prefix dir (config, pid, error log in a temp dir; no http block, so
 * no port 80) and stopped by PID at the end. Missing nginx → { skipped }.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

export interface NginxBenchRow {
  proto: 'udp' | 'tcp';
  /** Which round (1..rounds): every pair of runs is repeated, interleaved, and the ratios are medians. */
  round: number;
  path: 'sdk' | 'nginx';
  /** 'request/reply datagrams' or 'connect + request/reply + close'. */
  mode: string;
  /** 'max' (closed loop, as fast as replies come) or the fixed offered rate, requests/s. */
  load: string;
  requests: number;
  errors: number;
  /** Completed requests per second. */
  rps: number;
  p50Us: number;
  p99Us: number;
  /** max/mean of requests per backend server (1 = even). */
  spread: number;
}

export interface NginxBenchRatio {
  proto: 'udp' | 'tcp';
  /** Each ratio below is the median over this many rounds (each round: SDK then nginx, same load). */
  rounds: number;
  /** SDK / nginx: goal ≥ 1.5. */
  rps: number;
  /** SDK / nginx at full load (closed loop): latency there is mostly queueing, rps's inverse. */
  p50: number;
  p99: number;
  /** SDK / nginx at the same fixed offered load (half nginx's max): the latency each path adds. Goal p99 ≤ 0.7. */
  p50AtRate: number;
  p99AtRate: number;
}

export interface NginxBenchResult {
  skipped?: string;
  rows: NginxBenchRow[];
  ratios: NginxBenchRatio[];
  config: { servers: number; workers: number; concurrency: number; durationMs: number; nginxWorkers: number; rounds: number };
}

export interface NginxBenchOptions {
  /** Backend servers. Default 4. */
  servers?: number;
  /** Client worker threads. Default 2. */
  workers?: number;
  /** Requests in flight per worker. Default 32. */
  concurrency?: number;
  /** Measured time per case, ms (after a 300 ms warm-up). Default 3000. */
  durationMs?: number;
  /** Rounds of every SDK/nginx pair; the ratios are medians over them. Default 3. */
  rounds?: number;
}

type Proto = 'udp' | 'tcp';
interface ClientJob {
  kind: 'plb-nginx-bench-client';
  proto: Proto;
  path: 'sdk' | 'nginx';
  servers: Array<{ id: string; udpPort: number; tcpPort: number }>;
  nginx: { udpPort: number; tcpPort: number };
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Open loop: send at this fixed rate (requests/s, this worker) whatever the replies do. */
  rate?: number;
}
interface BackendJob {
  kind: 'plb-nginx-bench-backends';
  names: string[];
}

// ------------------------------------------------------------------ worker side

async function runBackends(job: BackendJob): Promise<void> {
  const counts = new Map<string, number>();
  const ports: Array<{ id: string; udpPort: number; tcpPort: number }> = [];
  const closers: Array<() => void> = [];
  for (const name of job.names) {
    counts.set(name, 0);
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, r) => {
      counts.set(name, counts.get(name)! + 1);
      udp.send(`${name} ${msg.toString()}`, r.port, r.address);
    });
    await new Promise<void>((res) => udp.bind(0, '127.0.0.1', () => res()));
    const tcp = net.createServer((c) => {
      c.setNoDelay(true);
      c.on('error', () => {});
      let buf = '';
      c.on('data', (d: Buffer) => {
        buf += d.toString();
        const i = buf.indexOf('\n');
        if (i < 0) return;
        counts.set(name, counts.get(name)! + 1);
        c.end(`${name} ${buf.slice(0, i)}\n`);
        buf = '';
      });
    });
    await new Promise<void>((res) => tcp.listen(0, '127.0.0.1', 1024, () => res()));
    ports.push({ id: name, udpPort: udp.address().port, tcpPort: (tcp.address() as net.AddressInfo).port });
    closers.push(() => {
      udp.close();
      tcp.close();
    });
  }
  parentPort!.postMessage({ ports });
  parentPort!.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'counts') {
      parentPort!.postMessage({ counts: Object.fromEntries(counts) });
      for (const k of counts.keys()) counts.set(k, 0);
    } else if (m.cmd === 'close') {
      for (const c of closers) c();
      parentPort!.close();
    }
  });
}

async function runClient(job: ClientJob): Promise<void> {
  const { join } = await import('../../sdk/index.js');
  const cluster =
    job.path === 'sdk'
      ? await join({ service: 'bench', discovery: { servers: job.servers.map((s) => ({ id: s.id, host: '127.0.0.1', udpPort: s.udpPort, tcpPort: s.tcpPort })) } })
      : undefined;
  const lat: number[] = [];
  let errors = 0;
  let measuring = false;
  let running = true;
  const start = Date.now();
  setTimeout(() => (measuring = true), job.warmupMs);
  const end = start + job.warmupMs + job.durationMs;
  let n = 0;

  const slotUdp = async () => {
    const udp = cluster?.udp();
    const sock = udp ? undefined : dgram.createSocket('udp4');
    let pending: ((ok: boolean) => void) | undefined;
    let expect = '';
    const onMsg = (msg: Buffer) => {
      const s = msg.toString();
      if (pending && s.endsWith(expect)) pending(true);
    };
    if (udp) udp.on('message', onMsg);
    else sock!.on('message', onMsg);
    while (running && Date.now() < end) {
      const id = String(n++);
      expect = ' ' + id;
      const t0 = process.hrtime.bigint();
      const ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 1000);
        pending = (v) => {
          clearTimeout(timer);
          resolve(v);
        };
        if (udp) udp.send(id);
        else sock!.send(id, job.nginx.udpPort, '127.0.0.1');
      });
      pending = undefined;
      if (!measuring) continue;
      if (ok) lat.push(Number(process.hrtime.bigint() - t0) / 1000);
      else errors++;
    }
    if (udp) await udp.close?.();
    else sock!.close();
  };

  /** One TCP request: connect (SDK pick or nginx), "<id>\n" → "<server> <id>\n", close. */
  const tcpOnce = async (id: string): Promise<boolean> => {
    let ok = false;
    let sock: net.Socket | undefined;
    try {
      sock = cluster
        ? await cluster.connect({ timeoutMs: 1000, socket: { noDelay: true } })
        : await new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({ host: '127.0.0.1', port: job.nginx.tcpPort, noDelay: true });
            s.once('connect', () => resolve(s));
            s.once('error', reject);
          });
      const s = sock;
      ok = await new Promise<boolean>((resolve) => {
        let buf = '';
        const timer = setTimeout(() => resolve(false), 1000);
        s.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\n')) {
            clearTimeout(timer);
            resolve(buf.endsWith(` ${id}\n`));
          }
        });
        s.on('error', () => resolve(false));
        s.write(id + '\n');
      });
    } catch {
      ok = false;
    }
    sock?.destroy();
    return ok;
  };

  const slotTcp = async () => {
    while (running && Date.now() < end) {
      const id = String(n++);
      const t0 = process.hrtime.bigint();
      const ok = await tcpOnce(id);
      if (!measuring) continue;
      if (ok) lat.push(Number(process.hrtime.bigint() - t0) / 1000);
      else errors++;
    }
  };

  /**
   * Open loop at a fixed rate: a 1 ms timer launches every request that is due, whether or not the
   * earlier ones were answered (so a slow path cannot slow its own load down). UDP uses one socket
   * and matches replies by id. Latency runs from the send to the reply.
   */
  const openLoop = async (rate: number) => {
    const udp = job.proto === 'udp' && cluster ? cluster.udp() : undefined;
    const raw = job.proto === 'udp' && !cluster ? dgram.createSocket('udp4') : undefined;
    const waiting = new Map<string, (ok: boolean) => void>();
    const onMsg = (msg: Buffer) => {
      const text = msg.toString();
      waiting.get(text.slice(text.lastIndexOf(' ') + 1))?.(true);
    };
    udp?.on('message', onMsg);
    raw?.on('message', onMsg);
    const udpOnce = (id: string) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => waiting.get(id)?.(false), 1000);
        waiting.set(id, (ok) => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(ok);
        });
        if (udp) udp.send(id);
        else raw!.send(id, job.nginx.udpPort, '127.0.0.1');
      });
    const total = Math.floor((rate * (job.warmupMs + job.durationMs)) / 1000);
    const warm = Math.floor((rate * job.warmupMs) / 1000);
    const inflight = new Set<Promise<void>>();
    const t0 = performance.now();
    let launched = 0;
    await new Promise<void>((done) => {
      const iv = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000));
        while (launched < due) {
          const k = launched++;
          const sent = performance.now();
          const p = (job.proto === 'udp' ? udpOnce(String(k)) : tcpOnce(String(k))).then((ok) => {
            if (k < warm) return;
            if (ok) lat.push((performance.now() - sent) * 1000);
            else errors++;
          });
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
        if (launched >= total) {
          clearInterval(iv);
          done();
        }
      }, 1);
    });
    await Promise.all(inflight);
    if (udp) await udp.close?.();
    raw?.close();
  };

  if (job.rate !== undefined) await openLoop(job.rate);
  else await Promise.all(Array.from({ length: job.concurrency }, () => (job.proto === 'udp' ? slotUdp() : slotTcp())));
  running = false;
  await cluster?.close();
  const arr = Float64Array.from(lat);
  parentPort!.postMessage({ lat: arr, errors }, [arr.buffer]);
}

if (!isMainThread && (workerData as { kind?: string } | null)?.kind === 'plb-nginx-bench-client') void runClient(workerData as ClientJob);
if (!isMainThread && (workerData as { kind?: string } | null)?.kind === 'plb-nginx-bench-backends') void runBackends(workerData as BackendJob);

// ------------------------------------------------------------------ main side

function nginxBinary(): string | undefined {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) if (existsSync(p)) return p;
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return 'nginx';
  } catch {
    return undefined;
  }
}

function freePort(type: 'tcp' | 'udp'): Promise<number> {
  return new Promise((resolve, reject) => {
    if (type === 'tcp') {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    } else {
      const s = dgram.createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    }
  });
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const self = new URL(import.meta.url);

function runWorker<T>(data: ClientJob | BackendJob, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(self, { workerData: data });
    const t = setTimeout(() => {
      void w.terminate();
      reject(new Error('bench worker timed out'));
    }, timeoutMs);
    w.once('message', (m: T) => {
      clearTimeout(t);
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

interface Backends {
  workers: Worker[];
  ports: Array<{ id: string; udpPort: number; tcpPort: number }>;
}

async function startBackends(n: number): Promise<Backends> {
  const groups = [0, 1].map((g) => Array.from({ length: n }, (_, i) => `s${i + 1}`).filter((_, i) => i % 2 === g)).filter((g) => g.length);
  const workers: Worker[] = [];
  const ports: Backends['ports'] = [];
  for (const names of groups) {
    const w = new Worker(self, { workerData: { kind: 'plb-nginx-bench-backends', names } satisfies BackendJob });
    workers.push(w);
    const m = await new Promise<{ ports: Backends['ports'] }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    ports.push(...m.ports);
  }
  return { workers, ports };
}

async function takeCounts(b: Backends): Promise<number[]> {
  const all: number[] = [];
  for (const w of b.workers) {
    const m = await new Promise<{ counts: Record<string, number> }>((resolve) => {
      w.once('message', resolve);
      w.postMessage({ cmd: 'counts' });
    });
    all.push(...Object.values(m.counts));
  }
  return all;
}

async function waitTcp(port: number, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export async function benchVsNginx(opts: NginxBenchOptions = {}): Promise<NginxBenchResult> {
  const servers = opts.servers ?? 4;
  const workers = opts.workers ?? 2;
  const concurrency = opts.concurrency ?? 32;
  const durationMs = opts.durationMs ?? 3000;
  const nginxWorkers = Number(process.env.PEERLB_BENCH_NGINX_WORKERS ?? 1);
  const rounds = opts.rounds ?? 3;
  const config = { servers, workers, concurrency, durationMs, nginxWorkers, rounds };
  const bin = nginxBinary();
  if (!bin) return { skipped: 'nginx not found: apt-get install nginx libnginx-mod-stream', rows: [], ratios: [], config };
  if (!existsSync(NGINX_STREAM_MODULE)) return { skipped: `nginx stream module not found at ${NGINX_STREAM_MODULE}: apt-get install libnginx-mod-stream`, rows: [], ratios: [], config };

  const dir = mkdtempSync(path.join(os.tmpdir(), 'plb-nginx-'));
  let nginx: ChildProcess | undefined;
  const backends = await startBackends(servers);
  try {
    const udpPort = await freePort('udp');
    const tcpPort = await freePort('tcp');
    const ups = (kind: 'udpPort' | 'tcpPort') => backends.ports.map((p) => `    server 127.0.0.1:${p[kind]};`).join('\n');
    writeFileSync(
      path.join(dir, 'nginx.conf'),
      `load_module ${NGINX_STREAM_MODULE};
worker_processes ${nginxWorkers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
stream {
  upstream plb_tcp {
    least_conn;
${ups('tcpPort')}
  }
  upstream plb_udp {
    least_conn;
${ups('udpPort')}
  }
  server { listen 127.0.0.1:${tcpPort} reuseport; proxy_pass plb_tcp; proxy_connect_timeout 1s; }
  # proxy_responses 1: a UDP "session" ends with its reply, so every request is balanced anew, as the SDK does per datagram.
  server { listen 127.0.0.1:${udpPort} udp reuseport; proxy_pass plb_udp; proxy_responses 1; proxy_timeout 2s; }
}
`,
    );
    nginx = spawn(bin, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let nginxErr = '';
    nginx.stderr!.on('data', (d: Buffer) => (nginxErr += d.toString()));
    await waitTcp(tcpPort, 5000).catch((err: Error) => {
      throw new Error(`${err.message}: ${nginxErr}${existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : ''}`);
    });

    const rows: NginxBenchRow[] = [];
    const run = async (proto: Proto, p: 'sdk' | 'nginx', round: number, rate?: number): Promise<NginxBenchRow> => {
      await takeCounts(backends); // reset
      const job: ClientJob = { kind: 'plb-nginx-bench-client', proto, path: p, servers: backends.ports, nginx: { udpPort, tcpPort }, concurrency, warmupMs: 300, durationMs, ...(rate ? { rate: rate / workers } : {}) };
      const t0 = Date.now();
      const results = await Promise.all(Array.from({ length: workers }, () => runWorker<{ lat: Float64Array; errors: number }>(job, durationMs + 15_000)));
      const wall = Math.min(durationMs, Date.now() - t0);
      const counts = await takeCounts(backends);
      const lat = new Float64Array(results.reduce((a, r) => a + r.lat.length, 0));
      let o = 0;
      for (const r of results) {
        lat.set(r.lat, o);
        o += r.lat.length;
      }
      lat.sort();
      const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
      const row: NginxBenchRow = {
        proto,
        round,
        path: p,
        mode: proto === 'udp' ? 'request/reply datagrams' : 'connect + request/reply + close',
        load: rate ? `${Math.round(rate)}/s` : 'max',
        requests: lat.length,
        errors: results.reduce((a, r) => a + r.errors, 0),
        rps: Math.round(lat.length / (wall / 1000)),
        p50Us: Math.round(percentile(lat, 0.5)),
        p99Us: Math.round(percentile(lat, 0.99)),
        spread: mean > 0 ? Number((Math.max(...counts) / mean).toFixed(2)) : NaN,
      };
      rows.push(row);
      return row;
    };
    // A run is a few seconds on a shared 2-core machine, where one scheduler hiccup moves a p99:
    // each pair is repeated `rounds` times, SDK and nginx back to back, and each ratio is the
    // median of the rounds' ratios.
    const median = (xs: number[]) => {
      const a = [...xs].sort((x, y) => x - y);
      return a.length % 2 ? a[a.length >> 1]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
    };
    const q = (xs: number[]) => Number(median(xs).toFixed(2));
    const ratios: NginxBenchRatio[] = [];
    for (const proto of ['udp', 'tcp'] as const) {
      // Full load (closed loop): the rates each can serve. Then both at the same fixed rate, half
      // of nginx's maximum (median over the rounds), where latency is what each path adds rather
      // than queueing.
      const full: Array<[NginxBenchRow, NginxBenchRow]> = [];
      for (let i = 1; i <= rounds; i++) full.push([await run(proto, 'sdk', i), await run(proto, 'nginx', i)]);
      const rate = Math.max(100, Math.round(median(full.map(([, n]) => n.rps)) / 2));
      const fixed: Array<[NginxBenchRow, NginxBenchRow]> = [];
      for (let i = 1; i <= rounds; i++) fixed.push([await run(proto, 'sdk', i, rate), await run(proto, 'nginx', i, rate)]);
      ratios.push({
        proto,
        rounds,
        rps: q(full.map(([s, n]) => s.rps / n.rps)),
        p50: q(full.map(([s, n]) => s.p50Us / n.p50Us)),
        p99: q(full.map(([s, n]) => s.p99Us / n.p99Us)),
        p50AtRate: q(fixed.map(([s, n]) => s.p50Us / n.p50Us)),
        p99AtRate: q(fixed.map(([s, n]) => s.p99Us / n.p99Us)),
      });
    }
    return { rows, ratios, config };
  } finally {
    if (nginx && nginx.exitCode === null && nginx.signalCode === null && nginx.pid) {
      const exited = new Promise((r) => nginx!.once('exit', r));
      process.kill(nginx.pid, 'SIGQUIT'); // graceful; the master ends its workers
      const t = setTimeout(() => {
        try {
          process.kill(nginx!.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 3000);
      await exited;
      clearTimeout(t);
    }
    for (const w of backends.workers) {
      w.postMessage({ cmd: 'close' });
      await w.terminate();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
