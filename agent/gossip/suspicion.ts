/**
 * Lifeguard's suspicion timer (LHA-Suspicion; Dadgar, Phillips, Currey, "Lifeguard: Local Health
 * Awareness for More Accurate Failure Detection", 2018, §IV-B), as memberlist's suspicion.go:
 * a suspect member is declared dead after a timeout that starts at `max` and shrinks towards `min`,
 * on a log scale, as independent confirmations (other members that suspect it too) arrive. One
 * unlucky probe waits the long time, which gives a live member time to refute; a member that many
 * others cannot reach goes quickly.
 */
import type { Clock, TimerHandle } from '../../sdk/core/clock.js';

/**
 * memberlist util.go suspicionTimeout: `mult × max(1, log10(n)) × interval`, so the time scales with
 * how long gossip needs to reach everyone. Pure.
 */
export function suspicionTimeout(suspicionMult: number, n: number, intervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(suspicionMult * nodeScale * intervalMs);
}

/**
 * memberlist suspicion.go remainingSuspicionTime: the time still to wait, given `n` confirmations
 * out of the `k` that bring the timeout to `min`, after `elapsed` ms. The timeout is
 * `max − (max − min) · log(n + 1) / log(k + 1)`, floored to the ms and never below `min`. The
 * result may be ≤ 0: fire at once. Pure.
 */
export function remainingSuspicionTime(n: number, k: number, elapsedMs: number, minMs: number, maxMs: number): number {
  const frac = k > 0 ? Math.log(n + 1) / Math.log(k + 1) : 1;
  const raw = maxMs - frac * (maxMs - minMs);
  const timeout = Math.max(minMs, Math.floor(raw));
  return timeout - elapsedMs;
}

export interface SuspicionOptions {
  /** Who raised the suspicion: not counted as a confirmation (our own suspicion may come back to us). */
  from: string;
  k: number;
  minMs: number;
  maxMs: number;
  clock: Clock;
  onTimeout: (confirmations: number) => void;
}

/** One running suspicion of one member. */
export class Suspicion {
  private n = 0;
  private readonly confirmed = new Set<string>();
  private readonly start: number;
  private timer: TimerHandle | undefined;
  private done = false;

  constructor(private readonly o: SuspicionOptions) {
    this.confirmed.add(o.from);
    this.start = o.clock.now();
    // With k = 0 no confirmation is expected: the timeout is min at once (memberlist).
    const first = o.k > 0 ? o.maxMs : o.minMs;
    this.timer = o.clock.setTimeout(() => this.fire(), first);
    this.timer.unref?.();
  }

  get confirmations(): number {
    return this.n;
  }

  /**
   * Another member suspects it too. Returns true when this was new (the caller re-gossips it),
   * false for a repeat or once k confirmations have been counted.
   */
  confirm(from: string): boolean {
    if (this.done || this.n >= this.o.k || this.confirmed.has(from)) return false;
    this.confirmed.add(from);
    this.n++;
    const remaining = remainingSuspicionTime(this.n, this.o.k, this.o.clock.now() - this.start, this.o.minMs, this.o.maxMs);
    this.o.clock.clearTimeout(this.timer);
    this.timer = this.o.clock.setTimeout(() => this.fire(), Math.max(0, remaining));
    this.timer.unref?.();
    return true;
  }

  cancel(): void {
    this.done = true;
    this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    if (this.done) return;
    this.done = true;
    this.timer = undefined;
    this.o.onTimeout(this.n);
  }
}
