/**
 * SDK benchmarks. Each function measures the SDK beside the bare baseline in the same run and
 * returns rows; the runner (run.ts) prints them and checks the goals.
 *
 *   benchPicks    ns per pick for every strategy at 10 … 10,000 servers, beside a bare
 *                 `array[i]` loop; each strategy in its own worker thread (a fresh JIT, so the
 *                 strategies measured earlier do not make the pick call site megamorphic, as they
 *                 would not in a real process, which uses one strategy).
 *   benchUdp      datagrams per second through `udp.send` ÷ through a bare dgram socket.
 *   benchConnect  `connect` p50/p99 ÷ bare `net.connect` p50/p99, interleaved.
 *
 * Everything is bounded in count and in time, on 127.0.0.1 only, and closes what it opens.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { Balancer } from '../../sdk/core/balancer/index.js';
import { ManualClock } from '../../sdk/core/clock.js';
import { createFeed } from '../../sdk/core/discovery/feed.js';
import { hashKey } from '../../sdk/core/hash.js';
import { resolveOptions, type JoinOptions } from '../../sdk/core/options.js';
import { STRATEGIES, STRATEGY_NAMES, type StrategyName } from '../../sdk/core/pickers/index.js';
import type { ServerRecord } from '../../sdk/core/protocol.js';
import { XorShiftRandom } from '../../sdk/core/random.js';
import { connectWithFailover } from '../../sdk/node/tcp.js';
import { UdpClient } from '../../sdk/node/udp.js';
import { LOOPBACK, startTcpServer } from '../support/servers.js';

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
};

/**
 * A balancer over `n` servers with load reports (so p2c and least-load compare real numbers), as
 * `join` builds it, on a manual clock (no timers run while measuring).
 */
export function benchBalancer(n: number, opts: Partial<JoinOptions> = {}, ports: { tcp?: number; udp?: number } = {}): Balancer {
  const rnd = new XorShiftRandom(7);
  const records: ServerRecord[] = Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    service: 'bench',
    host: LOOPBACK,
    tcpPort: ports.tcp ?? 10_000 + i,
    udpPort: ports.udp ?? 10_000 + i,
    weight: 50 + rnd.int(100),
    health: 'healthy',
    load: { connections: rnd.int(1000), sessions: 0, utilization: rnd.next(), seq: 1, ageMs: 0 },
  }));
  const b = new Balancer(resolveOptions({ service: 'bench', discovery: { servers: [] }, ...opts }), new ManualClock(), new XorShiftRandom(1));
  createFeed(records).start(b);
  b.markSeeded();
  return b;
}

// ------------------------------------------------------------------------------------- picks

export interface PickRow {
  strategy: string;
  servers: number;
  nsPerPick: number;
  /** The bare `array[i]` loop over the same servers, in the same worker, interleaved with the picks. */
  baselineNs: number;
}

export interface PickBenchOptions {
  sizes?: number[];
  strategies?: string[];
  /** Timed runs per measurement (median reported). */
  runs?: number;
  /** Each run lasts at least this long (and at most `maxIterations` picks). */
  runMs?: number;
}

/** Picks per batch between clock reads. */
const BATCH = 4096;

/** Run `loop` in batches for `ms` (JIT warm-up); returns the sink. */
function warm(loop: (k: number) => number, ms: number): number {
  let sink = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) sink += loop(BATCH);
  return sink;
}

/**
 * One timed run: whole batches for at least `runMs` (at most 50 M iterations); ns per iteration.
 * `loop(k)` runs k iterations and returns a value summed into a sink, so the work cannot be
 * optimized away.
 */
function timed(loop: (k: number) => number, runMs: number): { ns: number; sink: number } {
  let sink = 0;
  let iters = 0;
  const t0 = performance.now();
  let t1 = t0;
  while (t1 - t0 < runMs && iters < 50_000_000) {
    sink += loop(BATCH);
    iters += BATCH;
    t1 = performance.now();
  }
  return { ns: ((t1 - t0) * 1e6) / iters, sink };
}

/**
 * The picks of one strategy at each size, with the baseline measured the same way right before
 * each. Runs in whatever thread calls it (benchPicks runs it in a worker per strategy).
 *
 * Extra rows beside the strategies: "cluster.pick() (p2c)" is what `cluster.pick()` costs (pick +
 * counting the pick into the estimate), "keyed pick (p2c)" is `pick({ key })` with a string key
 * (hash + ring lookup).
 */
export function measurePicks(strategy: string, sizes: number[], runs: number, runMs: number): PickRow[] {
  const rows: PickRow[] = [];
  for (const n of sizes) {
    const real = strategy.endsWith('(p2c)') ? 'p2c' : (strategy as StrategyName);
    const b = benchBalancer(n, { strategy: real });
    // The baseline: the same server objects in an array, read in turn (wrapping with a compare, as
    // round-robin does, since n is not a power of two in general).
    const arr = b.list().slice();
    let idx = 0;
    const baseline = (k: number) => {
      let acc = 0;
      for (let i = 0; i < k; i++) {
        acc += arr[idx]!.index;
        idx = idx + 1 === n ? 0 : idx + 1;
      }
      return acc;
    };
    let loop: (k: number) => number;
    if (strategy === 'cluster.pick() (p2c)') {
      loop = (k) => {
        let acc = 0;
        for (let i = 0; i < k; i++) {
          const s = b.pick(-1)!;
          b.countPick(s);
          acc += s.index;
        }
        return acc;
      };
    } else if (strategy === 'keyed pick (p2c)') {
      const keys = Array.from({ length: 1024 }, (_, i) => `player-${i}`);
      loop = (k) => {
        let acc = 0;
        for (let i = 0; i < k; i++) acc += b.pick(hashKey(keys[i & 1023]!))!.index;
        return acc;
      };
    } else {
      loop = (k) => {
        let acc = 0;
        for (let i = 0; i < k; i++) acc += b.pick(-1)!.index;
        return acc;
      };
    }
    // Warm both up, then interleave: baseline, picks, baseline, picks… `runs` timed runs each.
    let sink = warm(baseline, 50) + warm(loop, 100);
    const base: number[] = [];
    const pick: number[] = [];
    for (let r = 0; r < runs; r++) {
      const x = timed(baseline, runMs);
      const y = timed(loop, runMs);
      base.push(x.ns);
      pick.push(y.ns);
      sink += x.sink + y.sink;
    }
    if (sink === -1) console.log(sink); // keep the sink alive
    rows.push({ strategy, servers: n, nsPerPick: round(median(pick), 1), baselineNs: round(median(base), 1) });
    b.close();
  }
  return rows;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export { STRATEGY_NAMES };
export const PICK_EXTRAS = ['cluster.pick() (p2c)', 'keyed pick (p2c)'];

/** nginx's smooth WRR loop, verbatim (the reference the fast picker must match). */
function naiveWrr(weights: readonly number[]): () => number {
  const cur = new Float64Array(weights.length);
  return () => {
    let best = 0;
    let total = 0;
    let bc = -Infinity;
    for (let i = 0; i < weights.length; i++) {
      const c = cur[i]! + weights[i]!;
      cur[i] = c;
      total += weights[i]!;
      if (c > bc) {
        bc = c;
        best = i;
      }
    }
    cur[best] = bc - total;
    return best;
  };
}

export interface WrrCheckRow {
  check: string;
  picks: number;
  mismatches: number;
  result: string;
}

/**
 * The smooth-WRR sequence check: weights 5,1,1 must give a a b a c a a, and the picker over the
 * bench's 1,000 servers (random weights 50..149) must match nginx's loop pick for pick.
 */
export function wrrSequenceCheck(picks = 20_000): WrrCheckRow[] {
  const rows: WrrCheckRow[] = [];
  const small = benchBalancer(3, { strategy: 'weighted-round-robin' });
  const w3 = [5, 1, 1];
  const three = small.list();
  for (let i = 0; i < 3; i++) three[i]!.weight = three[i]!.effWeight = w3[i]!;
  const p3 = STRATEGIES['weighted-round-robin'](three, { random: new XorShiftRandom(1) });
  const seq = Array.from({ length: 7 }, () => 'abc'[three.indexOf(p3.pick(-1)!)]).join(' ');
  rows.push({ check: 'weights 5,1,1 (want a a b a c a a)', picks: 7, mismatches: seq === 'a a b a c a a' ? 0 : 1, result: seq });
  small.close();
  const b = benchBalancer(1000, { strategy: 'weighted-round-robin' });
  const list = b.list();
  const p = STRATEGIES['weighted-round-robin'](list, { random: new XorShiftRandom(1) });
  const ref = naiveWrr(list.map((s) => s.effWeight));
  let bad = 0;
  for (let k = 0; k < picks; k++) if (list.indexOf(p.pick(-1)!) !== ref()) bad++;
  rows.push({ check: '1,000 servers, weights 50..149, vs nginx loop', picks, mismatches: bad, result: bad === 0 ? 'identical' : 'DIFFERS' });
  b.close();
  return rows;
}

/** ns/pick for every strategy at each size, each strategy in a fresh worker thread. */
export async function benchPicks(o: PickBenchOptions = {}): Promise<PickRow[]> {
  const sizes = o.sizes ?? [10, 100, 1000, 10_000];
  const strategies = o.strategies ?? [...STRATEGY_NAMES, ...PICK_EXTRAS];
  const runs = o.runs ?? 5;
  const runMs = o.runMs ?? 40;
  const rows: PickRow[] = [];
  for (const strategy of strategies) {
    const w = new Worker(new URL('./pick-worker.js', import.meta.url), { workerData: { strategy, sizes, runs, runMs } });
    const got = await new Promise<PickRow[]>((resolve, reject) => {
      const t = setTimeout(() => {
        void w.terminate();
        reject(new Error(`pick bench of ${strategy} took over 60 s`));
      }, 60_000);
      w.once('message', (m: PickRow[]) => {
        clearTimeout(t);
        resolve(m);
      });
      w.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    await w.terminate();
    rows.push(...got);
  }
  return rows;
}

// --------------------------------------------------------------------------------------- UDP

export interface UdpRow {
  datagrams: number;
  payloadBytes: number;
  rounds: number;
  /** Median datagrams per second over the rounds. */
  sdkPerSec: number;
  rawPerSec: number;
  /** sdk ÷ raw (goal ≥ 0.95). */
  ratio: number;
}

/** Send `count` datagrams as fast as the socket takes them; resolves with the elapsed ms. */
function sendAll(send: (cb?: (err: Error | null) => void) => void, count: number, batch = 256): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let sent = 0;
    const next = () => {
      const n = Math.min(batch, count - sent);
      for (let i = 0; i < n - 1; i++) send();
      sent += n;
      send((err) => {
        if (err) return reject(err);
        if (sent >= count) resolve(performance.now() - t0);
        else next();
      });
    };
    next();
  });
}

/**
 * `udp.send(buf)` (a p2c pick per datagram over 4 servers) against `socket.send(buf, port, host)`
 * to one of the same servers, same payload and count, alternating rounds; the median rate of each.
 * The receivers only count (no replies), so neither sender waits on the other side.
 */
export async function benchUdp(o: { datagrams?: number; rounds?: number; payloadBytes?: number } = {}): Promise<UdpRow> {
  const count = o.datagrams ?? 20_000;
  const rounds = o.rounds ?? 7;
  const payload = Buffer.alloc(o.payloadBytes ?? 64, 7);
  const sinks: dgram.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, LOOPBACK, () => r()));
    sinks.push(s);
  }
  const b = new Balancer(resolveOptions({ service: 'bench', discovery: { servers: [] } }), new ManualClock(), new XorShiftRandom(1));
  createFeed(sinks.map((s, i) => ({ id: `u${i}`, service: 'bench', host: LOOPBACK, udpPort: s.address().port, weight: 100, health: 'healthy' as const }))).start(b);
  const sdk = new UdpClient(b, { bind: { address: LOOPBACK } });
  const raw = dgram.createSocket('udp4');
  await new Promise<void>((r) => raw.bind(0, LOOPBACK, () => r()));
  await new Promise<void>((r) => (sdk.socket.address() ? r() : sdk.socket.once('listening', () => r())));
  const port = sinks[0]!.address().port;
  try {
    // warm up both paths
    await sendAll((cb) => void sdk.send(payload, undefined, cb), 2000);
    await sendAll((cb) => (cb ? raw.send(payload, port, LOOPBACK, cb) : raw.send(payload, port, LOOPBACK)), 2000);
    const sdkRates: number[] = [];
    const rawRates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const first = r % 2 === 0;
      for (const which of first ? ['sdk', 'raw'] : ['raw', 'sdk']) {
        const ms =
          which === 'sdk'
            ? await sendAll((cb) => void sdk.send(payload, undefined, cb), count)
            : await sendAll((cb) => (cb ? raw.send(payload, port, LOOPBACK, cb) : raw.send(payload, port, LOOPBACK)), count);
        (which === 'sdk' ? sdkRates : rawRates).push((count * 1000) / ms);
      }
    }
    const sdkPerSec = Math.round(median(sdkRates));
    const rawPerSec = Math.round(median(rawRates));
    return { datagrams: count, payloadBytes: payload.length, rounds, sdkPerSec, rawPerSec, ratio: round(sdkPerSec / rawPerSec, 3) };
  } finally {
    b.close();
    await sdk.close();
    await new Promise<void>((r) => raw.close(() => r()));
    await Promise.all(sinks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

// ----------------------------------------------------------------------------------- connect

export interface ConnectRow {
  connects: number;
  sdkP50Us: number;
  sdkP99Us: number;
  rawP50Us: number;
  rawP99Us: number;
  /** sdk ÷ raw (goal for p50 ≤ 1.05). */
  p50Ratio: number;
  p99Ratio: number;
}

function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: LOOPBACK, port });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * `connect()` (p2c over 4 listeners of one server process) against `net.connect` to the same
 * listeners, interleaved one by one (sdk, raw, raw, sdk, …) so both see the same machine state;
 * each socket is closed right after it connected. Latency from the call to the connected socket.
 */
export async function benchConnect(o: { connects?: number } = {}): Promise<ConnectRow> {
  const n = o.connects ?? 2000;
  const servers = await Promise.all([0, 1, 2, 3].map(() => startTcpServer()));
  const b = new Balancer(resolveOptions({ service: 'bench', discovery: { servers: [] } }), new ManualClock(), new XorShiftRandom(1));
  createFeed(servers.map((s, i) => ({ id: `t${i}`, service: 'bench', host: LOOPBACK, tcpPort: s.port, weight: 100, health: 'healthy' as const }))).start(b);
  const sdkUs: number[] = [];
  const rawUs: number[] = [];
  try {
    const one = async (which: 'sdk' | 'raw', i: number) => {
      const t0 = performance.now();
      const s = which === 'sdk' ? await connectWithFailover(b, -1, {}, 'bench') : await rawConnect(servers[i & 3]!.port);
      const us = (performance.now() - t0) * 1000;
      s.destroy();
      return us;
    };
    for (let i = 0; i < 1000; i++) await one(i % 2 ? 'sdk' : 'raw', i); // warm-up: both paths JIT-compiled
    for (let i = 0; i < n; i++) {
      // ABBA order so neither side always goes first
      const order: ('sdk' | 'raw')[] = i % 2 ? ['sdk', 'raw'] : ['raw', 'sdk'];
      for (const w of order) (w === 'sdk' ? sdkUs : rawUs).push(await one(w, i));
    }
    const r = (x: number) => round(x, 1);
    const row: ConnectRow = {
      connects: n,
      sdkP50Us: r(percentile(sdkUs, 0.5)),
      sdkP99Us: r(percentile(sdkUs, 0.99)),
      rawP50Us: r(percentile(rawUs, 0.5)),
      rawP99Us: r(percentile(rawUs, 0.99)),
      p50Ratio: 0,
      p99Ratio: 0,
    };
    row.p50Ratio = round(percentile(sdkUs, 0.5) / percentile(rawUs, 0.5), 3);
    row.p99Ratio = round(percentile(sdkUs, 0.99) / percentile(rawUs, 0.99), 3);
    return row;
  } finally {
    b.close();
    await Promise.all(servers.map((s) => s.close()));
  }
}
