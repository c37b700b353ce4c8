/**
 * Host CPU utilization, from the deltas of /proc/stat's aggregate `cpu` line between two samples
 * (the way top(1) and vmstat(8) compute it), or from os.cpus() where /proc/stat is unreadable.
 *
 * It is the utilization of last resort (see tracker.ts): used only when the server reports none
 * and no capacity is configured. It is the host's, not the server process's: on a host shared
 * with other work it overstates the server's load, which errs on the safe side for balancing.
 */
import { readFile } from 'node:fs/promises';
import { cpus as osCpus, type CpuInfo } from 'node:os';
import { systemClock, type Clock, type TimerHandle } from '../../sdk/core/clock.js';
import { BadOptionError, DecodeError } from '../../sdk/core/errors.js';

/** Cumulative CPU time since boot, in the source's unit (USER_HZ ticks for proc, ms for os). */
export interface CpuTimes {
  busy: number;
  total: number;
  /** Where it came from; samples of different sources are never compared (different units). */
  source: 'proc' | 'os';
}

/**
 * Parse the aggregate `cpu` line of /proc/stat (Documentation/filesystems/proc.rst §1.7):
 *
 *     cpu  user nice system idle iowait irq softirq steal guest guest_nice
 *
 * idle and iowait are idle time; everything else up to steal is busy. steal (time a hypervisor
 * gave our vCPU to someone else) counts as busy because the server could not use it either, as in
 * procps. guest and guest_nice are already included in user and nice (kernel/sched/cputime.c,
 * `account_guest_time`), so adding them would count that time twice. Kernels before 2.6.11 print
 * fewer columns; missing ones count as 0. Throws DecodeError when there is no usable cpu line.
 */
export function parseProcStat(text: string): CpuTimes {
  if (typeof text !== 'string') throw new DecodeError('/proc/stat text must be a string');
  const line = /^cpu\s+([^\n]*)$/m.exec(text);
  if (!line) throw new DecodeError('/proc/stat has no aggregate "cpu" line');
  const fields = line[1]!.trim().split(/\s+/);
  if (fields.length < 4) throw new DecodeError(`/proc/stat "cpu" line has ${fields.length} fields, expected at least 4`);
  const v: number[] = [];
  for (let i = 0; i < 8; i++) {
    const f = fields[i];
    if (f === undefined) {
      v.push(0);
      continue;
    }
    if (!/^\d+$/.test(f)) throw new DecodeError(`/proc/stat "cpu" field ${i + 1} is not a number: ${JSON.stringify(f)}`);
    v.push(Number(f));
  }
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v as [number, number, number, number, number, number, number, number];
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busy: total - idle - iowait, total, source: 'proc' };
}

/** The same figure from os.cpus() (milliseconds, summed over all CPUs; libuv has no iowait). */
export function cpuTimesFromOs(list: readonly CpuInfo[] = osCpus()): CpuTimes {
  let busy = 0;
  let total = 0;
  for (const c of list) {
    const t = c.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total, source: 'os' };
}

/** Utilization 0..1 between two samples, or undefined when they cannot be compared. */
export function utilizationBetween(prev: CpuTimes | undefined, next: CpuTimes): number | undefined {
  if (!prev || prev.source !== next.source) return undefined;
  const dt = next.total - prev.total;
  const db = next.busy - prev.busy;
  // No time passed (two reads within one tick), or counters went backwards (a CPU went offline
  // and its counters left the sum): no figure rather than a wrong one.
  if (!(dt > 0) || db < 0) return undefined;
  const u = db / dt;
  return u > 1 ? 1 : u;
}

/** Read /proc/stat; on any failure (not Linux, no procfs, odd text) fall back to os.cpus(). */
export async function readCpuTimes(opts: { procRoot?: string } = {}): Promise<CpuTimes> {
  try {
    return parseProcStat(await readFile(`${opts.procRoot ?? '/proc'}/stat`, 'latin1'));
  } catch {
    return cpuTimesFromOs();
  }
}

export interface CpuSamplerOptions {
  /** Default: the system clock. */
  clock?: Clock;
  /** Time between samples, ms. Default 1000: one figure per load publish interval (tracker.ts). */
  intervalMs?: number;
  /** Where procfs is mounted. Default `/proc`. */
  procRoot?: string;
  /** Replaces the reading of /proc/stat (tests). */
  read?: () => CpuTimes | Promise<CpuTimes>;
}

/**
 * Samples host CPU every `intervalMs` on the given clock; `utilization` is the figure over the last
 * interval (undefined until two samples exist). Read failures keep the last figure and are kept
 * in `lastError`; they never throw out of the timer.
 */
export class CpuSampler {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly read: () => CpuTimes | Promise<CpuTimes>;
  private prev: CpuTimes | undefined;
  private value: number | undefined;
  private timer: TimerHandle | undefined;
  private running = false;
  private inFlight: Promise<number | undefined> | undefined;
  lastError: Error | undefined;

  constructor(opts: CpuSamplerOptions = {}) {
    const intervalMs = opts.intervalMs ?? 1000;
    if (!Number.isFinite(intervalMs) || intervalMs < 10)
      throw new BadOptionError('cpu.intervalMs', `must be a number ≥ 10, got ${JSON.stringify(opts.intervalMs)}`);
    this.clock = opts.clock ?? systemClock;
    this.intervalMs = intervalMs;
    const procRoot = opts.procRoot;
    this.read = opts.read ?? (() => readCpuTimes(procRoot === undefined ? {} : { procRoot }));
  }

  /** Host CPU utilization 0..1 over the last interval, or undefined while unknown. */
  get utilization(): number | undefined {
    return this.value;
  }

  /** Take a baseline sample now and then one every interval. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.sample();
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      if (!this.running) return;
      this.arm();
      void this.sample();
    }, this.intervalMs);
    this.timer.unref?.();
  }

  /** Take one sample now; resolves to the updated utilization. Concurrent calls share one read. */
  sample(): Promise<number | undefined> {
    if (this.inFlight) return this.inFlight;
    const run = async (): Promise<number | undefined> => {
      try {
        const next = await this.read();
        const u = utilizationBetween(this.prev, next);
        this.prev = next;
        if (u !== undefined) this.value = u;
        this.lastError = undefined;
      } catch (err) {
        this.lastError = err instanceof Error ? err : new Error(String(err));
      }
      return this.value;
    };
    const p = run().finally(() => {
      this.inFlight = undefined;
    });
    this.inFlight = p;
    return p;
  }
}
