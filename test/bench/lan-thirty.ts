/**
 * Thirty real hosts (issue "Thirty real hosts"): a namespace LAN (test/lan/netns.ts) with one
 * `peerlb agent --udp` per host, every agent joining through the first, and an observer host
 * (lan-observer.ts) holding every agent's `/v1/events` feed. After the cluster formed and settled,
 * a steady-state window measures bytes sent, CPU and RSS per agent and the event-loop delay; then
 * `cycles` times: start a new agent on a spare host → alive in every view; `kill -9` it → dead in
 * every view; start another → alive everywhere; SIGTERM it → left in every view. Times are from
 * the action to each observer's own feed event (the agent's `at`; one machine, one clock).
 *
 * Also judged over the whole run, from the feeds:
 *   falseDeaths   a member that never stopped (or a spare before it was stopped) marked dead or left by
 *                 some view, from the end of the settle after forming (earlier ones: formationFalseDeaths)
 *   revivals      a member seen alive by a view after that view had it dead/left at an incarnation ≥
 *                 the alive one, or more than GONE_GRACE_MS after its process was gone (a
 *                 refutation it sent just before may still be on its way for a moment)
 *   suspicions    suspect events of members that never stopped; unrefuted: those still not alive
 *                 in that view at the end
 *
 * Used by test/lan/thirty.test.ts (asserts) and by `npm run bench` (prints). Root only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lan, cleanLeftovers, type Host, type Proc } from '../lan/netns.js';
import { sleep, until } from '../support/until.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
// From the sources (vitest) the built files are under ../../dist; from dist/test/bench, beside us.
const built = import.meta.url.includes('/dist/test/');
const CLI = here(built ? '../../agent/cli.js' : '../../dist/agent/cli.js');
const OBSERVER = here(built ? './lan-observer.js' : '../../dist/test/bench/lan-observer.js');
const PORT = 7946;
const UDP = 7001;
/** Namespace prefix of this harness: never the same names as test/lan/faults.test.ts's plbl-. */
export const THIRTY_PREFIX = 'plb30-';
const GONE_GRACE_MS = 10_000;

export interface ThirtyOptions {
  profile: 'lan' | 'local';
  agents?: number;
  cycles?: number;
  /** Steady-state window for bytes, CPU, RSS. Default 30 s. */
  steadyMs?: number;
  /** Give up on one join/death/leave reaching every view after this. Default 60 s. */
  eventTimeoutMs?: number;
  /** Quiet time after each event, before the next. Default 3 s. */
  settleMs?: number;
  log?: (s: string) => void;
  /** Write every agent's stderr (JSON log lines, the last 5000) to this directory at the end. */
  dumpDir?: string;
}

export interface EventResult {
  /** Views it reached within eventTimeoutMs (of `agents`). */
  seen: number;
  /** Action → slowest view that saw it (ms); undefined when some view never did. */
  slowestMs: number | undefined;
  medianMs: number | undefined;
}

export interface CycleResult {
  cycle: number;
  join: EventResult;
  dead: EventResult;
  rejoin: EventResult;
  left: EventResult;
}

export interface ThirtyResult {
  profile: 'lan' | 'local';
  agents: number;
  formMs: number;
  cycles: CycleResult[];
  /** After the cluster formed and settled (10 s), to the end. */
  falseDeaths: string[];
  /** While the 30 agents were starting and settling (reported, not judged). */
  formationFalseDeaths: string[];
  revivals: string[];
  suspicions: number;
  unrefuted: string[];
  bytesPerAgentPerSec: number;
  cpuPctPerAgent: number;
  rssMbPerAgent: number;
  loopP99Ms: number;
  loopMaxMs: number;
  runMs: number;
}

type M = { ev: 'm'; t: number; a: number; n: string; s: string; i: number };
type E = { ev: 'e'; t: number; a: number; k: string; n: string };
type X = { ev: 'x'; t: number; a: number; bytesOut?: number; p99?: number; max?: number; probeTimeout?: number; awareness?: number };


function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/** utime + stime of a process, in clock ticks (100 per second on Linux). */
function cpuTicks(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return NaN;
  }
}

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

class Feeds {
  private parsed = 0;
  readonly ms: M[] = [];
  readonly es: E[] = [];
  readonly xs: X[] = [];
  /** Current state per view and member: status, incarnation. */
  readonly state: Array<Map<string, { s: string; i: number }>>;
  constructor(
    private readonly proc: Proc,
    views: number,
  ) {
    this.state = Array.from({ length: views }, () => new Map());
  }
  poll(): void {
    const lines = this.proc.lines;
    for (; this.parsed < lines.length; this.parsed++) {
      let o: M | E | X | { ev: 'ready' };
      try {
        o = JSON.parse(lines[this.parsed]!) as typeof o;
      } catch {
        continue;
      }
      if (o.ev === 'm') {
        this.ms.push(o);
        this.state[o.a]!.set(o.n, { s: o.s, i: o.i });
      } else if (o.ev === 'e') this.es.push(o);
      else if (o.ev === 'x') this.xs.push(o);
    }
  }
  ready(): boolean {
    return this.proc.lines.some((l) => l.includes('"ready"'));
  }
  /** Views where `node` has status `s` now. */
  count(node: string, s: RegExp): number {
    this.poll();
    return this.state.filter((v) => s.test(v.get(node)?.s ?? 'absent')).length;
  }
  /**
   * Per view, the first feed event ≥ since about `node` of one of `kinds` (the agent's own time),
   * or else the first state change to one of `statuses` (the observer's time: a feed that was
   * reconnecting missed the event but not the state).
   */
  firstEvent(node: string, kinds: string[], since: number, statuses: string[] = []): Array<number | undefined> {
    this.poll();
    return this.state.map(
      (_, a) =>
        this.es.find((e) => e.a === a && e.n === node && e.t >= since && kinds.includes(e.k))?.t ??
        this.ms.find((m) => m.a === a && m.n === node && m.t >= since && statuses.includes(m.s))?.t,
    );
  }
}

export async function runThirty(o: ThirtyOptions): Promise<ThirtyResult> {
  const N = o.agents ?? 30;
  const cycles = o.cycles ?? 3;
  const steadyMs = o.steadyMs ?? 30_000;
  const timeoutMs = o.eventTimeoutMs ?? 60_000;
  const settleMs = o.settleMs ?? 3000;
  const log = o.log ?? (() => {});
  const began = Date.now();
  cleanLeftovers(THIRTY_PREFIX);
  const lan = new Lan(THIRTY_PREFIX);
  const started: Proc[] = [];
  try {
    await lan.create(N + 2 * cycles + 1, { staticArp: true });
    const hosts = lan.hosts;
    const obsHost = hosts[N + 2 * cycles]!;
    const seed = hosts[0]!;
    const url = (h: Host) => `http://${h.ip}:${PORT}`;

    const start = async (h: Host, node: string): Promise<{ p: Proc; startedAt: number }> => {
      const args = [
        process.execPath, CLI, 'agent', '--service', 'game', '--node', node, '--host', h.ip, '--udp', String(UDP),
        '--port', String(PORT), '--mdns-interface', h.ip, '--gossip-profile', o.profile, '--log-level', 'info',
        ...(h === seed ? [] : ['--join', `ws://${seed.ip}:${PORT}`]),
      ];
      const p = lan.spawn(h, `agent ${node}`, args);
      started.push(p);
      const t0 = Date.now();
      while (Date.now() - t0 < 30_000) {
        if (p.errLines.some((l) => l.includes('"agent started"'))) {
          const time = Number((JSON.parse(p.errLines.find((l) => l.includes('"agent started"'))!) as { time?: number }).time);
          return { p, startedAt: Number.isFinite(time) ? time : Date.now() };
        }
        if (p.child.exitCode !== null) break;
        await sleep(25);
      }
      throw new Error(`agent ${node} did not start: ${p.errLines.slice(-5).join('\n')}`);
    };

    // The cluster: the seed, then the others two at a time (each start is a node boot on 2 cores).
    const base: Proc[] = [];
    const names = hosts.slice(0, N).map((h) => `h${h.index}`);
    base.push((await start(seed, names[0]!)).p);
    for (let i = 1; i < N; i += 2) {
      const batch = hosts.slice(i, Math.min(N, i + 2));
      base.push(...(await Promise.all(batch.map((h) => start(h, `h${h.index}`)))).map((x) => x.p));
    }
    const obs = lan.spawn(obsHost, 'observer', [process.execPath, OBSERVER, JSON.stringify({ agents: hosts.slice(0, N).map(url), metricsEveryMs: 5000, runMs: 30 * 60_000 })]);
    const feeds = new Feeds(obs, N);
    // Whether `check` came to hold within `ms` (the bench reports a miss rather than throwing).
    const waitFor = (check: () => boolean, ms: number): Promise<boolean> => until(check, ms, 'the bench condition', 50).then(() => true, () => check());
    if (!(await waitFor(() => feeds.ready(), 30_000))) throw new Error(`observer did not connect to every feed: ${obs.errLines.slice(-5).join('\n')}`);
    const formed = await waitFor(() => names.every((n) => feeds.count(n, /^alive$/) === N), 120_000);
    const formMs = Date.now() - began;
    log(`[thirty ${o.profile}] ${N} agents ${formed ? 'formed' : 'did NOT form'} (${formMs} ms since start)`);
    if (!formed) {
      const missing = names.map((n) => `${n}:${feeds.count(n, /^alive$/)}`).filter((x) => !x.endsWith(`:${N}`));
      throw new Error(`cluster did not form: views with each member alive: ${missing.join(' ')}`);
    }
    await sleep(10_000);
    // From here on nothing is starting: false deaths before this (30 node processes booting on a
    // shared 2-core machine can stall one longer than a suspicion lasts) are reported apart.
    const settledAt = Date.now();

    // Steady state.
    feeds.poll();
    const x0 = feeds.xs.length;
    const ticks0 = base.map((p) => cpuTicks(p.pid));
    const w0 = Date.now();
    await sleep(steadyMs);
    const ticks1 = base.map((p) => cpuTicks(p.pid));
    const w1 = Date.now();
    feeds.poll();
    const win = feeds.xs.slice(x0);
    const rates: number[] = [];
    for (let a = 0; a < N; a++) {
      const xs = win.filter((x) => x.a === a && x.bytesOut !== undefined);
      if (xs.length >= 2) rates.push(((xs.at(-1)!.bytesOut! - xs[0]!.bytesOut!) * 1000) / (xs.at(-1)!.t - xs[0]!.t));
    }
    const bytesPerAgentPerSec = Math.round(rates.reduce((s, r) => s + r, 0) / Math.max(1, rates.length));
    const cpuPctPerAgent = Math.round((ticks1.reduce((s, t, i) => s + (t - ticks0[i]!), 0) / N / ((w1 - w0) / 1000)) * 10) / 10;
    const rssMbPerAgent = Math.round(base.reduce((s, p) => s + rssKb(p.pid), 0) / N / 102.4) / 10;
    const loopP99Ms = Math.round((median(win.map((x) => x.p99 ?? 0)) ?? 0) * 10000) / 10;
    const loopMaxMs = Math.round(Math.max(0, ...win.map((x) => x.max ?? 0)) * 10000) / 10;
    const probeTimeoutMs = Math.round((median(win.map((x) => x.probeTimeout ?? 0)) ?? 0) * 1000);
    const awareness = Math.max(0, ...win.map((x) => x.awareness ?? 0));
    log(`[thirty ${o.profile}] steady: ${bytesPerAgentPerSec} B/s per agent, ${cpuPctPerAgent}% CPU, ${rssMbPerAgent} MB RSS, loop delay p99 ${loopP99Ms} ms (median of scrapes), max ${loopMaxMs} ms; probe timeout ${probeTimeoutMs} ms (median), local health score ≤ ${awareness}`);

    const gone = new Map<string, number>(); // members whose process is gone, since when
    const stopping = new Map<string, number>(); // when the kill or SIGTERM was sent
    const measure = async (node: string, status: RegExp, kinds: string[], t0: number, join = false): Promise<EventResult> => {
      const statuses = ['alive', 'dead', 'left'].filter((x) => status.test(x));
      await waitFor(() => feeds.count(node, status) === N, timeoutMs);
      // A join counts from its "agent started" line, or from the first view that heard of it when
      // that came first (its gossip starts before the line is logged).
      if (join) t0 = Math.min(t0, ...feeds.firstEvent(node, kinds, t0 - 30_000).filter((t): t is number => t !== undefined));
      // Each view's own first event, within the limit.
      const ts = feeds.firstEvent(node, kinds, t0 - 1000, statuses).map((t) => (t === undefined || t - t0 > timeoutMs ? undefined : Math.max(0, t - t0)));
      const got = ts.filter((t): t is number => t !== undefined);
      return { seen: got.length, slowestMs: got.length === N ? Math.max(...got) : undefined, medianMs: median(got) };
    };
    const results: CycleResult[] = [];
    for (let c = 0; c < cycles; c++) {
      const j = `j${c + 1}`;
      const s1 = await start(hosts[N + 2 * c]!, j);
      const join = await measure(j, /^alive$/, ['join', 'alive'], s1.startedAt, true);
      await sleep(settleMs);
      const tk = Date.now();
      stopping.set(j, tk);
      await lan.kill(s1.p, 'SIGKILL');
      gone.set(j, Date.now());
      const dead = await measure(j, /^(dead|absent)$/, ['dead'], tk);
      await sleep(settleMs);
      const l = `l${c + 1}`;
      const s2 = await start(hosts[N + 2 * c + 1]!, l);
      const rejoin = await measure(l, /^alive$/, ['join', 'alive'], s2.startedAt, true);
      await sleep(settleMs);
      const tl = Date.now();
      stopping.set(l, tl);
      await lan.kill(s2.p, 'SIGTERM', 15_000);
      gone.set(l, Date.now());
      const left = await measure(l, /^(left|absent)$/, ['leave'], tl);
      await sleep(settleMs);
      const r: CycleResult = { cycle: c + 1, join, dead, rejoin, left };
      results.push(r);
      const f = (e: EventResult) => `${e.seen}/${N} slowest ${e.slowestMs ?? '—'} median ${e.medianMs ?? '—'}`;
      log(`[thirty ${o.profile}] cycle ${c + 1}: join ${f(join)} · kill -9 ${f(dead)} · join ${f(rejoin)} · leave ${f(left)}`);
    }
    await sleep(settleMs);
    feeds.poll();

    // Judged over the whole run.
    const falseDeaths: string[] = [];
    const formationFalseDeaths: string[] = [];
    const revivals: string[] = [];
    const unrefuted: string[] = [];
    let suspicions = 0;
    const live = new Set(names);
    for (const e of feeds.es) if (live.has(e.n) && e.k === 'suspect') suspicions++;
    const worst = new Map<string, { s: string; i: number; t: number }>(); // view/node → last dead or left
    for (const m of feeds.ms) {
      const key = `${m.a}/${m.n}`;
      // A member that never stopped, or a spare before it was stopped, marked dead or left.
      if ((live.has(m.n) || m.t < (stopping.get(m.n) ?? -Infinity)) && (m.s === 'dead' || m.s === 'left'))
        (m.t < settledAt ? formationFalseDeaths : falseDeaths).push(`view h${m.a + 1}: ${m.n} ${m.s} at incarnation ${m.i} (t+${m.t - began} ms)`);
      if (m.s === 'dead' || m.s === 'left') worst.set(key, { s: m.s, i: Math.max(m.i, worst.get(key)?.i ?? 0), t: m.t });
      else if (m.s === 'alive' || m.s === 'suspect') {
        const w = worst.get(key);
        if (w && (m.i <= w.i || m.t > (gone.get(m.n) ?? Infinity) + GONE_GRACE_MS)) revivals.push(`view h${m.a + 1}: ${m.n} ${m.s} at incarnation ${m.i} after ${w.s} at ${w.i} (${m.t - w.t} ms later)`);
      }
    }
    for (let a = 0; a < N; a++) for (const n of names) if (feeds.state[a]!.get(n)?.s !== 'alive') unrefuted.push(`view h${a + 1}: ${n} ${feeds.state[a]!.get(n)?.s ?? 'absent'}`);
    return { profile: o.profile, agents: N, formMs, cycles: results, falseDeaths, formationFalseDeaths, revivals, suspicions, unrefuted, bytesPerAgentPerSec, cpuPctPerAgent, rssMbPerAgent, loopP99Ms, loopMaxMs, runMs: Date.now() - began };
  } finally {
    await lan.destroy();
    if (o.dumpDir) for (const p of started) writeFileSync(join(o.dumpDir, `${p.name.replace(/\W+/g, '_')}.log`), p.errLines.join('\n'));
  }
}
