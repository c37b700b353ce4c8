/**
 * What is left of a reaped member: its name, the incarnation it died or left at, and when. A member
 * that missed the death or the leave (a partition, a lossy stretch) still has the old member alive
 * at an incarnation ≤ that one, and its push-pull would bring the gone member back to life in
 * every view that had already forgotten it — memberlist's known pitfall (its aliveNode adds any
 * unknown node). Serf keeps its own tombstones for this (24 h); so do we, bounded in count and
 * time. A fresh process under the same name is told of its tombstone and incarnates above it.
 */
import type { MemberStatus } from './messages.js';

export interface Tombstone {
  status: Extract<MemberStatus, 'dead' | 'left'>;
  incarnation: number;
  /** Clock ms it was reaped. */
  at: number;
  /** Clock ms we last told someone (rate limit). */
  toldAt: number;
}

export class Tombstones {
  private readonly map = new Map<string, Tombstone>();

  constructor(
    /** How long a tombstone is kept after the reap. */
    private readonly keepMs: number,
    /** Most tombstones kept (the oldest go first). */
    private readonly max: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  add(node: string, status: Tombstone['status'], incarnation: number, now: number): void {
    this.map.delete(node);
    if (this.max <= 0) return;
    while (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(node, { status, incarnation, at: now, toldAt: -Infinity });
  }

  /** The tombstone of `node` still in force at `now`. */
  get(node: string, now: number): Tombstone | undefined {
    const t = this.map.get(node);
    if (t && now - t.at > this.keepMs) {
      this.map.delete(node);
      return undefined;
    }
    return t;
  }

  /** The member is known again (alive above its tombstone): forget it. */
  delete(node: string): void {
    this.map.delete(node);
  }

  /** Drop what has expired (called now and then; get() also expires lazily). */
  sweep(now: number): void {
    for (const [node, t] of this.map) if (now - t.at > this.keepMs) this.map.delete(node);
  }
}
