import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, type CpuInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CpuSampler, cpuTimesFromOs, parseProcStat, readCpuTimes, utilizationBetween, type CpuTimes } from '../../../../agent/load/cpu.js';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { DecodeError } from '../../../../sdk/core/errors.js';

const STAT = `cpu  100 20 30 800 50 5 5 10 40 0
cpu0 50 10 15 400 25 2 3 5 20 0
cpu1 50 10 15 400 25 3 2 5 20 0
intr 12345 0 0
ctxt 999
btime 1700000000
`;

describe('parseProcStat', () => {
  it('counts idle and iowait as idle, steal as busy, and leaves guest out (already in user)', () => {
    // total = 100+20+30+800+50+5+5+10 = 1020; busy = 1020 - 800 - 50 = 170
    expect(parseProcStat(STAT)).toEqual({ busy: 170, total: 1020, source: 'proc' });
  });

  it('accepts the 4-column lines of old kernels', () => {
    expect(parseProcStat('cpu  1 2 3 4\n')).toEqual({ busy: 6, total: 10, source: 'proc' });
  });

  it.each([
    ['', /no aggregate/],
    ['cpu0 1 2 3 4\n', /no aggregate/],
    ['cpu  1 2 3\n', /at least 4/],
    ['cpu  1 2 x 4\n', /field 3/],
  ])('rejects %j', (text, msg) => {
    expect(() => parseProcStat(text)).toThrow(DecodeError);
    expect(() => parseProcStat(text)).toThrow(msg);
  });
});

describe('utilizationBetween', () => {
  const t = (busy: number, total: number, source: CpuTimes['source'] = 'proc'): CpuTimes => ({ busy, total, source });
  it.each([
    [undefined, t(10, 100), undefined, 'first sample'],
    [t(10, 100), t(60, 200), 0.5, 'half busy'],
    [t(10, 100), t(10, 200), 0, 'idle'],
    [t(10, 100), t(110, 200), 1, 'fully busy'],
    [t(10, 100), t(10, 100), undefined, 'no time passed'],
    [t(10, 100), t(5, 150), undefined, 'busy went backwards (CPU offlined)'],
    [t(10, 100), t(60, 200, 'os'), undefined, 'different sources'],
  ] as [CpuTimes | undefined, CpuTimes, number | undefined, string][])('%j → %j → %s (%s)', (a, b, want) => {
    expect(utilizationBetween(a, b)).toBe(want);
  });
});

describe('cpuTimesFromOs', () => {
  it('sums the os.cpus() times', () => {
    const cpu = (user: number, idle: number): CpuInfo => ({ model: 'x', speed: 1, times: { user, nice: 0, sys: 10, idle, irq: 0 } });
    expect(cpuTimesFromOs([cpu(20, 70), cpu(30, 60)])).toEqual({ busy: 70, total: 200, source: 'os' });
    expect(cpuTimesFromOs([])).toEqual({ busy: 0, total: 0, source: 'os' });
  });
});

describe('readCpuTimes', () => {
  it('reads /proc/stat from procRoot, and falls back to os.cpus() when it is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peerlb-stat-'));
    try {
      await writeFile(join(dir, 'stat'), STAT);
      expect(await readCpuTimes({ procRoot: dir })).toEqual({ busy: 170, total: 1020, source: 'proc' });
      const fallback = await readCpuTimes({ procRoot: join(dir, 'nope') });
      expect(fallback.source).toBe('os');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads the real host', async () => {
    const a = await readCpuTimes();
    expect(a.total).toBeGreaterThan(0);
    expect(a.busy).toBeGreaterThanOrEqual(0);
  });
});

describe('CpuSampler', () => {
  function scripted(samples: (CpuTimes | Error)[]) {
    let i = 0;
    return () => {
      const s = samples[Math.min(i++, samples.length - 1)]!;
      if (s instanceof Error) throw s;
      return s;
    };
  }

  it('samples on the clock and reports the last interval', async () => {
    const clock = new ManualClock();
    const sampler = new CpuSampler({
      clock,
      intervalMs: 1000,
      read: scripted([
        { busy: 0, total: 0, source: 'proc' },
        { busy: 25, total: 100, source: 'proc' },
        { busy: 125, total: 200, source: 'proc' },
      ]),
    });
    sampler.start();
    await sampler.sample(); // the baseline read started by start()
    expect(sampler.utilization).toBeUndefined();
    clock.advance(1000);
    await sampler.sample(); // joins the in-flight read
    expect(sampler.utilization).toBe(0.25);
    clock.advance(1000);
    await sampler.sample();
    expect(sampler.utilization).toBe(1);
    sampler.stop();
    expect(clock.pending()).toBe(0);
  });

  it('keeps the last figure when a read fails, and never throws', async () => {
    const clock = new ManualClock();
    const sampler = new CpuSampler({
      clock,
      read: scripted([{ busy: 0, total: 0, source: 'proc' }, { busy: 50, total: 100, source: 'proc' }, new Error('EIO'), { busy: 50, total: 200, source: 'proc' }]),
    });
    await sampler.sample();
    await sampler.sample();
    expect(sampler.utilization).toBe(0.5);
    await sampler.sample();
    expect(sampler.utilization).toBe(0.5);
    expect(sampler.lastError?.message).toBe('EIO');
    await sampler.sample();
    expect(sampler.utilization).toBe(0);
    expect(sampler.lastError).toBeUndefined();
  });

  it('rejects a bad interval', () => {
    expect(() => new CpuSampler({ intervalMs: 0 })).toThrow(/cpu.intervalMs/);
  });
});
