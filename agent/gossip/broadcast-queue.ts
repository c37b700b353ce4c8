/**
 * A transmit-limited broadcast queue (memberlist queue.go TransmitLimitedQueue): each item is sent
 * a limited number of times, piggybacked on whatever frames go out; items sent the fewest times go
 * first, and the newest first among equals. A new item with the same key (a newer state of the same
 * member, a newer load of the same origin) replaces the old one and starts over.
 */

/**
 * memberlist util.go retransmitLimit: `mult × ceil(log10(n + 1))` sends per member that learns an
 * update: enough for an epidemic to reach every member with high probability. Pure.
 */
export function retransmitLimit(retransmitMult: number, n: number): number {
  const nodeScale = Math.ceil(Math.log10(n + 1));
  return Math.max(1, Math.round(retransmitMult * nodeScale));
}

/** Items one take() looks at and leaves (too large for what is left, or skipped) before it stops. */
export const MAX_MISSES = 256;

export interface QueueItem<T> {
  key: string;
  value: T;
  /** Encoded size in bytes, to fit a frame's budget. */
  size: number;
  transmits: number;
  /** Sends after which it is dropped; undefined: the queue's current default limit. */
  limit: number | undefined;
  /** Insertion order (newer is larger). */
  id: number;
  /** Called once when the item has been sent `limit` times (or replaced, with false). */
  onDone: ((sent: boolean) => void) | undefined;
  /** The group it belongs to (see deleteGroup), if any. */
  group: string | undefined;
  /** False once sent out for good, replaced or deleted (its slots in the buckets are garbage). */
  live: boolean;
  /** take() call that last took it (an item is taken at most once per frame). */
  takenIn: number;
}

/**
 * Items are kept in buckets by transmit count, each bucket in insertion order (newest last), so a
 * frame's take() visits only the items it takes (plus whatever it skips) instead of sorting the
 * whole queue: with 10,000 members joining at once (a push-pull) the queue holds 10,000 updates,
 * and every frame sent would otherwise sort them. Deleted items leave garbage slots, dropped
 * lazily (from a bucket's end as they surface, and by a rebuild when garbage outnumbers items).
 */
export class BroadcastQueue<T> {
  private readonly items = new Map<string, QueueItem<T>>();
  private readonly groups = new Map<string, Set<string>>();
  /** buckets[t]: items sent t times, by id ascending; may hold stale slots (dead, or moved on). */
  private buckets: QueueItem<T>[][] = [];
  private garbage = 0;
  private nextId = 0;
  private takes = 0;

  /** `defaultLimit`: the transmit limit of items queued without their own (read at send time, as N changes). */
  constructor(private readonly defaultLimit: () => number) {}

  get size(): number {
    return this.items.size;
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  get(key: string): T | undefined {
    return this.items.get(key)?.value;
  }

  /** Queue an item, replacing any with the same key. `group`: for deleteGroup. */
  push(key: string, value: T, size: number, opts: { limit?: number; onDone?: (sent: boolean) => void; group?: string } = {}): void {
    const old = this.items.get(key);
    if (old) this.drop(old, false);
    this.compactIfNeeded();
    const item: QueueItem<T> = { key, value, size, transmits: 0, limit: opts.limit, id: this.nextId++, onDone: opts.onDone, group: opts.group, live: true, takenIn: -1 };
    this.items.set(key, item);
    if (opts.group !== undefined) {
      let g = this.groups.get(opts.group);
      if (!g) this.groups.set(opts.group, (g = new Set()));
      g.add(key);
    }
    (this.buckets[0] ??= []).push(item);
  }

  delete(key: string): void {
    const old = this.items.get(key);
    if (old) this.drop(old, false);
  }

  /** Drop every item pushed with `group`. Costs the group's size, not the queue's. */
  deleteGroup(group: string): void {
    const g = this.groups.get(group);
    if (!g) return;
    for (const key of [...g]) this.delete(key);
  }

  /** Drop every item whose value matches (scans the queue). */
  deleteWhere(pred: (value: T) => boolean): void {
    for (const item of [...this.items.values()]) if (pred(item.value)) this.delete(item.key);
  }

  clear(): void {
    for (const key of [...this.items.keys()]) this.delete(key);
  }

  private drop(item: QueueItem<T>, sent: boolean): void {
    item.live = false;
    this.items.delete(item.key);
    if (item.group !== undefined) {
      const g = this.groups.get(item.group);
      g?.delete(item.key);
      if (g && g.size === 0) this.groups.delete(item.group);
    }
    this.garbage++;
    item.onDone?.(sent);
  }

  /** Rebuild the buckets from the live items (the map holds them in id order) when garbage outnumbers them. */
  private compactIfNeeded(): void {
    if (this.garbage <= 2 * this.items.size + 64) return;
    const buckets: QueueItem<T>[][] = [];
    for (const it of this.items.values()) (buckets[it.transmits] ??= []).push(it);
    this.buckets = buckets;
    this.garbage = 0;
  }

  /** Insert into bucket t, keeping it ordered by id. */
  private insert(t: number, item: QueueItem<T>): void {
    const b = (this.buckets[t] ??= []);
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (b[mid]!.id < item.id) lo = mid + 1;
      else hi = mid;
    }
    b.splice(lo, 0, item);
  }

  /**
   * Take items for one frame: fewest transmits first, newest first among equals, while they fit in
   * `budget` bytes (`overhead` counted per item). `skip(item)` leaves an item for another frame
   * (e.g. the receiver is known to have it) without counting a send. Each taken item counts one
   * send; items that reached their limit are dropped. Returns the values and the bytes used.
   */
  take(budget: number, overhead: number, skip?: (item: QueueItem<T>) => boolean): { values: T[]; bytes: number } {
    if (this.items.size === 0 || budget <= 0) return { values: [], bytes: 0 };
    const call = this.takes++;
    const values: T[] = [];
    const moved: QueueItem<T>[] = [];
    let used = 0;
    let misses = 0;
    const defaultLimit = this.defaultLimit();
    outer: for (let t = 0; t < this.buckets.length; t++) {
      const b = this.buckets[t];
      if (!b) continue;
      for (let i = b.length - 1; i >= 0; i--) {
        const item = b[i]!;
        if (!item.live || item.transmits !== t || item.takenIn === call) {
          // A stale slot; at the end of its bucket it can go now.
          if (i === b.length - 1 && item.takenIn !== call) {
            b.pop();
            this.garbage = Math.max(0, this.garbage - 1);
          }
          continue;
        }
        const cost = item.size + overhead;
        if (used + cost > budget) {
          // Smaller items further down may still fit; stop when nothing could, or after looking
          // at MAX_MISSES that did not (a frame must not cost a scan of 10,000 queued items).
          if (budget - used < overhead + 1 || ++misses > MAX_MISSES) break outer;
          continue;
        }
        if (skip?.(item)) {
          if (++misses > MAX_MISSES) break outer;
          continue;
        }
        used += cost;
        values.push(item.value);
        item.transmits++;
        item.takenIn = call;
        if (i === b.length - 1) b.pop();
        else this.garbage++;
        if (item.transmits >= (item.limit ?? defaultLimit)) this.drop(item, true);
        else moved.push(item);
      }
    }
    for (const item of moved) if (item.live) this.insert(item.transmits, item);
    this.compactIfNeeded();
    return { values, bytes: used };
  }
}
