/**
 * The herding simulation of herding.test.ts: clients, each its own balancer fed by its own feed
 * on one ManualClock, open long-lived connections at a steady rate and hold them for a random
 * (exponential) lifetime; the servers are counters of open connections; load reports reach the
 * clients `staleMs` after they were taken. Pure virtual time: no sockets, no timers.
 */
import { ManualClock } from '../../sdk/core/clock.js';
import type { StrategyName } from '../../sdk/core/pickers/index.js';
import { XorShiftRandom } from '../../sdk/core/random.js';
import type { ServerState } from '../../sdk/core/server.js';
import { estimateLoad } from '../../sdk/core/timing.js';
import { rec, testBalancer, type TestBalancer } from './balancer-fixtures.js';

export interface SimOptions {
  strategy: StrategyName;
  /**
   * Instead of the SDK's picker, emulate the estimate model before the fix (the report plus this
   * client's own changes counted from the report's arrival, unscaled) with `strategy` (p2c or
   * least-load), on the same balancer state: the naive clients the test compares with.
   */
  ownCountModel?: boolean;
  clients?: number;
  servers?: number;
  /** New connections per client per second (a steady rate, each client at its own phase). */
  ratePerClient?: number | ((client: number) => number);
  /** Mean connection lifetime (exponential), s. */
  meanLifetimeS?: number;
  /** How old a report is when clients receive it, ms; they receive one every `reportEveryMs`. */
  staleMs?: number;
  reportEveryMs?: number;
  /** Every client receives the reports at the same instant (default), or each at its own phase. */
  staggered?: boolean;
  /** Does the report say how old it is (ageMs = staleMs, default), or arrive looking fresh (0)? */
  honestAge?: boolean;
  warmupS?: number;
  sampleS?: number;
  seed?: number;
}

export interface SimResult {
  strategy: string;
  /** max/mean open connections, once per simulated second after the warm-up. */
  ratios: number[];
  meanPerServer: number;
  opened: number;
  closed: number;
}

const STEP_MS = 10;

export function simulate(o: SimOptions): SimResult {
  const nClients = o.clients ?? 50;
  const nServers = o.servers ?? 20;
  const rateOf = typeof o.ratePerClient === 'function' ? o.ratePerClient : () => (o.ratePerClient as number | undefined) ?? 5;
  const lifetimeMs = (o.meanLifetimeS ?? 20) * 1000;
  const staleMs = o.staleMs ?? 1000;
  const reportEvery = o.reportEveryMs ?? 1000;
  const warmupMs = (o.warmupS ?? 60) * 1000;
  const endMs = warmupMs + (o.sampleS ?? 120) * 1000;
  const rnd = new XorShiftRandom(o.seed ?? 42);
  const clock = new ManualClock();
  const ids = Array.from({ length: nServers }, (_, i) => `s${i}`);

  // The servers: open connections now, and every step's counts for as long as reports lag.
  const open = new Array<number>(nServers).fill(0);
  const history: number[][] = []; // history[k] = counts at step (now − k)
  const keep = Math.ceil(staleMs / STEP_MS) + 1;
  const index = new Map(ids.map((id, i) => [id, i]));

  const clients: TestBalancer[] = [];
  for (let c = 0; c < nClients; c++) clients.push(testBalancer(ids.map((id) => rec(id)), { strategy: o.strategy, clock }, 1000 + c));
  const interval = clients.map((_, c) => 1000 / rateOf(c));
  const nextOpen = clients.map((_, c) => rnd.next() * interval[c]!);
  const phase = clients.map(() => (o.staggered ? Math.floor(rnd.next() * (reportEvery / STEP_MS)) * STEP_MS : 0));
  const seq = clients.map(() => 0);
  // Connections to close, bucketed by the step they close in.
  const closes = new Map<number, { c: number; s: ServerState }[]>();

  // The pre-fix model: each client's own units (active + counted) when each report arrived.
  const atArrival = clients.map(() => new Map<ServerState, number>());
  const ownCount = (c: number, s: ServerState) =>
    estimateLoad(s.reportedActive, s.active + s.counted - (atArrival[c]!.get(s) ?? 0), s.active, s.reportW) / s.effWeight;
  const pickOwnCount = (c: number): ServerState => {
    const list = clients[c]!.b.list();
    const n = list.length;
    if (o.strategy === 'p2c') {
      const i = rnd.int(n);
      let j = rnd.int(n - 1);
      if (j >= i) j++;
      return ownCount(c, list[j]!) < ownCount(c, list[i]!) ? list[j]! : list[i]!;
    }
    const start = rnd.int(n);
    let best = list[start]!;
    for (let k = 1; k < n; k++) {
      const x = list[(start + k) % n]!;
      if (ownCount(c, x) < ownCount(c, best)) best = x;
    }
    return best;
  };

  const ratios: number[] = [];
  let opened = 0;
  let closed = 0;
  let sum = 0;

  for (let t = 0; t <= endMs; t += STEP_MS) {
    if (t > 0) clock.advance(STEP_MS); // the balancers' ticks sample their own counts here
    history.unshift(open.slice()); // ...and the servers' counts at the same instant
    if (history.length > keep) history.pop();
    const due = closes.get(t);
    if (due) {
      closes.delete(t);
      for (const { c, s } of due) {
        clients[c]!.b.connectionClosed(s); // release()
        open[index.get(s.id)!]!--;
        closed++;
      }
    }
    // Reports: the servers' counts of `staleMs` ago.
    if (t >= staleMs)
      for (let c = 0; c < nClients; c++) {
        if ((t - phase[c]!) % reportEvery !== 0) continue;
        const snap = history[staleMs / STEP_MS]!;
        const cl = clients[c]!;
        seq[c]!++;
        for (let i = 0; i < nServers; i++)
          cl.feed.upsert(rec(ids[i]!, { load: { connections: snap[i]!, sessions: 0, utilization: 0, seq: seq[c]!, ageMs: o.honestAge === false ? 0 : staleMs } }));
        for (const s of cl.b.list()) atArrival[c]!.set(s, s.active + s.counted);
      }
    // Opens: each client at its steady rate; the pick counts as an open connection (acquire()).
    for (let c = 0; c < nClients; c++) {
      while (nextOpen[c]! <= t) {
        nextOpen[c]! += interval[c]!;
        const b = clients[c]!.b;
        const s = o.ownCountModel ? pickOwnCount(c) : b.pick(-1)!;
        b.connectionOpened(s);
        open[index.get(s.id)!]!++;
        opened++;
        const life = -Math.log(1 - rnd.next()) * lifetimeMs;
        const at = t + Math.max(STEP_MS, Math.round(life / STEP_MS) * STEP_MS);
        const list = closes.get(at);
        if (list) list.push({ c, s });
        else closes.set(at, [{ c, s }]);
      }
    }
    // Sample once per simulated second after the warm-up.
    if (t >= warmupMs && t % 1000 === 0) {
      const mean = open.reduce((a, b) => a + b, 0) / nServers;
      ratios.push(Math.max(...open) / mean);
      sum += mean;
    }
  }
  for (const c of clients) c.close();
  return { strategy: o.ownCountModel ? `${o.strategy}, own-count model` : o.strategy, ratios, meanPerServer: sum / ratios.length, opened, closed };
}

export const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

export function table(rows: SimResult[], title: string): string {
  const lines = [
    title,
    `  ${'strategy'.padEnd(30)}mean/server  max/mean p50    p99    max   opened  closed`,
    ...rows.map(
      (r) =>
        `  ${r.strategy.padEnd(30)}${r.meanPerServer.toFixed(0).padStart(11)}  ${quantile(r.ratios, 0.5).toFixed(3).padStart(12)}  ${quantile(r.ratios, 0.99).toFixed(3)}  ${Math.max(...r.ratios).toFixed(3)}  ${String(r.opened).padStart(7)} ${String(r.closed).padStart(7)}`,
    ),
  ];
  return lines.join('\n');
}
