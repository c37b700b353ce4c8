/**
 * All time in peerlb goes through a Clock, so timing logic can be tested by advancing a manual
 * clock instead of sleeping (ARCHITECTURE.md, practice 3). `now()` is monotonic milliseconds; it is not
 * wall time and is never sent on the wire.
 */
export interface TimerHandle {
  /** Do not keep the process alive for this timer (no-op on the manual clock). */
  unref?(): unknown;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => {
    if (h !== undefined) clearTimeout(h as ReturnType<typeof setTimeout>);
  },
};

/** A repeating timer on any clock; returns a function that stops it. Unref'd on the system clock. */
export function every(clock: Clock, ms: number, fn: () => void): () => void {
  let handle: TimerHandle | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    handle = clock.setTimeout(tick, ms);
    handle.unref?.();
    fn();
  };
  handle = clock.setTimeout(tick, ms);
  handle.unref?.();
  return () => {
    stopped = true;
    clock.clearTimeout(handle);
  };
}

interface ManualTimer extends TimerHandle {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock for tests: time moves only when `advance` is called; timers fire in order. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) (handle as ManualTimer).cancelled = true;
  }

  /** Number of timers still pending. */
  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Move time forward by `ms`, firing every timer due on the way, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      let nextIdx = -1;
      for (let i = 0; i < this.timers.length; i++) {
        const tm = this.timers[i]!;
        if (tm.cancelled || tm.at > end) continue;
        if (!next || tm.at < next.at || (tm.at === next.at && tm.seq < next.seq)) {
          next = tm;
          nextIdx = i;
        }
      }
      if (!next) break;
      this.timers.splice(nextIdx, 1);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.timers = this.timers.filter((t) => !t.cancelled);
    this.t = end;
  }
}
