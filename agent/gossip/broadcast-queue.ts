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
}

export class BroadcastQueue<T> {
  private readonly items = new Map<string, QueueItem<T>>();
  private nextId = 0;

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

  /** Queue an item, replacing any with the same key. */
  push(key: string, value: T, size: number, opts: { limit?: number; onDone?: (sent: boolean) => void } = {}): void {
    const old = this.items.get(key);
    if (old) {
      this.items.delete(key);
      old.onDone?.(false);
    }
    this.items.set(key, { key, value, size, transmits: 0, limit: opts.limit, id: this.nextId++, onDone: opts.onDone });
  }

  delete(key: string): void {
    const old = this.items.get(key);
    if (!old) return;
    this.items.delete(key);
    old.onDone?.(false);
  }

  /** Drop every item whose value matches. */
  deleteWhere(pred: (value: T) => boolean): void {
    for (const item of [...this.items.values()]) if (pred(item.value)) this.delete(item.key);
  }

  clear(): void {
    for (const key of [...this.items.keys()]) this.delete(key);
  }

  /**
   * Take items for one frame: fewest transmits first, newest first among equals, while they fit in
   * `budget` bytes (`overhead` counted per item). `skip(item)` leaves an item for another frame
   * (e.g. the receiver is known to have it) without counting a send. Each taken item counts one
   * send; items that reached their limit are dropped. Returns the values and the bytes used.
   */
  take(budget: number, overhead: number, skip?: (item: QueueItem<T>) => boolean): { values: T[]; bytes: number } {
    if (this.items.size === 0 || budget <= 0) return { values: [], bytes: 0 };
    const sorted = [...this.items.values()].sort((a, b) => a.transmits - b.transmits || b.id - a.id);
    const values: T[] = [];
    let used = 0;
    const defaultLimit = this.defaultLimit();
    for (const item of sorted) {
      const cost = item.size + overhead;
      if (used + cost > budget) {
        // Smaller items further down may still fit; stop only when nothing could.
        if (budget - used < overhead + 1) break;
        continue;
      }
      if (skip?.(item)) continue;
      used += cost;
      values.push(item.value);
      item.transmits++;
      if (item.transmits >= (item.limit ?? defaultLimit)) {
        this.items.delete(item.key);
        item.onDone?.(true);
      }
    }
    return { values, bytes: used };
  }
}
