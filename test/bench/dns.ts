/**
 * DNS bench (issue 16): queries/s measured by dnsperf against one agent's DNS interface (its view:
 * three servers, --dns-answers 3), beside a minimal dns-packet responder answering the same names
 * from a fixed list, in the same run, rounds interleaved. Goals: agent ÷ responder ≥ 0.8, and
 * ≥ 20,000 queries/s. Runnable alone: `npm run build && node dist/test/bench/dns.js`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnDnsAgent, stopDnsAgents, dig, digSection, type DnsAgent } from '../support/dns.js';
import { until } from '../support/until.js';

const run = promisify(execFile);

export interface DnsBenchRow {
  target: 'agent' | 'dns-packet responder';
  round: number;
  qps: number;
  lost: number;
  avgLatencyMs: number;
}

export interface DnsBenchResult {
  rows: DnsBenchRow[];
  medianAgentQps: number;
  medianResponderQps: number;
  ratio: number;
  skipped?: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

async function dnsperf(port: number, file: string, seconds: number): Promise<{ qps: number; lost: number; avgLatencyMs: number }> {
  const { stdout } = await run('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-c', '4', '-q', '200', '-t', '2'], { timeout: (seconds + 20) * 1000 });
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
  return { qps: num(/Queries per second:\s+([\d.]+)/), lost: num(/Queries lost:\s+(\d+)/), avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000 };
}

async function startResponder(): Promise<{ proc: ChildProcess; port: number }> {
  const file = fileURLToPath(new URL('./dns-responder.js', import.meta.url));
  const proc = spawn(process.execPath, [file, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('responder did not start')), 10_000);
    proc.stdout!.on('data', (d: Buffer) => {
      const m = /port (\d+)/.exec(d.toString());
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
  });
  return { proc, port };
}

export async function benchDns(opts: { rounds?: number; seconds?: number } = {}): Promise<DnsBenchResult> {
  const rounds = opts.rounds ?? 3;
  const seconds = opts.seconds ?? 5;
  try {
    await run('dnsperf', ['-h'], { timeout: 5000 }).catch((e: { code?: string }) => {
      if (e.code === 'ENOENT') throw e;
    });
  } catch {
    return { rows: [], medianAgentQps: NaN, medianResponderQps: NaN, ratio: NaN, skipped: 'dnsperf not installed (apt-get install dnsperf)' };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerlb-dnsbench-'));
  const queries = path.join(dir, 'queries.txt');
  fs.writeFileSync(queries, 'game.peerlb A\n_game._tcp.peerlb SRV\ngame.peerlb A\ngame.peerlb A\n');
  const agents: DnsAgent[] = [];
  let responder: { proc: ChildProcess; port: number } | undefined;
  try {
    // The rate limit up: dnsperf is one source at full speed.
    const a = await spawnDnsAgent('bench-dns-1', { host: '127.0.1.1', dnsPort: 0, dnsBind: '127.0.0.1', extra: ['--dns-rate', '100000000', '--dns-burst', '100000000'] });
    agents.push(a);
    for (const [node, host] of [['bench-dns-2', '127.0.1.2'], ['bench-dns-3', '127.0.1.3']] as const) agents.push(await spawnDnsAgent(node, { host, join: [a.url] }));
    await until(async () => digSection(await dig(a.dnsPort!, ['game.peerlb', 'A']), 'ANSWER').length === 3, 20_000, 'three servers in the agent\'s answer');
    responder = await startResponder();
    const rows: DnsBenchRow[] = [];
    for (let r = 1; r <= rounds; r++) {
      rows.push({ target: 'agent', round: r, ...(await dnsperf(a.dnsPort!, queries, seconds)) });
      rows.push({ target: 'dns-packet responder', round: r, ...(await dnsperf(responder.port, queries, seconds)) });
    }
    const medianAgentQps = median(rows.filter((x) => x.target === 'agent').map((x) => x.qps));
    const medianResponderQps = median(rows.filter((x) => x.target !== 'agent').map((x) => x.qps));
    return { rows, medianAgentQps, medianResponderQps, ratio: medianAgentQps / medianResponderQps };
  } finally {
    responder?.proc.kill('SIGKILL');
    await stopDnsAgents(agents);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const r = await benchDns(process.argv.includes('--quick') ? { rounds: 1, seconds: 2 } : {});
  if (r.skipped) console.log(`dns bench skipped: ${r.skipped}`);
  else {
    console.table(r.rows);
    console.log(`agent ${Math.round(r.medianAgentQps)} q/s (goal ≥ 20000), responder ${Math.round(r.medianResponderQps)} q/s, ratio ${r.ratio.toFixed(2)} (goal ≥ 0.8)`);
  }
}
