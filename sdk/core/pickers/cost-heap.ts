import { CHANGE_RING, changeJournal, type ServerState } from '../server.js';
import type { Random } from '../random.js';

/**
 * An indexed binary min-heap of servers by a cost (least-connections: active / effWeight;
 * least-load: expected / effWeight), kept current through the change journal (server.ts): a pick
 * re-sifts only the servers that changed since the last one, then takes the root. O(log n) per
 * pick and per change, no allocation.
 *
 * Ties rotate as the scans they replace did: each server carries a stamp, the root is the cheapest
 * with the oldest stamp, and a pick restamps it as newest. The first stamps start at a random
 * server, so equal servers are taken in turn from a random place (clients don't move in step).
 *
 * Costs are compared as quotients (a / w), where the scans cross-multiplied; they agree except
 * between costs within a rounding error of each other. A weight of 0 costs +Infinity (last).
 */
export class CostHeap {
  readonly list: readonly ServerState[];
  readonly n: number;
  /** heap[k] = index into `list` at heap position k. */
  readonly heap: Int32Array;
  /** pos[i] = heap position of list[i]. */
  readonly pos: Int32Array;
  readonly key: Float64Array;
  readonly stamp: Float64Array;
  private readonly indexOf = new Map<ServerState, number>();
  private clock = 0;
  private seen: number;

  constructor(
    servers: readonly ServerState[],
    random: Random,
    private readonly cost: (s: ServerState) => number,
  ) {
    this.list = servers.slice();
    const n = (this.n = this.list.length);
    this.heap = new Int32Array(n);
    this.pos = new Int32Array(n);
    this.key = new Float64Array(n);
    this.stamp = new Float64Array(n);
    const start = n > 0 ? random.int(n) : 0;
    for (let i = 0; i < n; i++) {
      this.indexOf.set(this.list[i]!, i);
      // list[start] oldest, then start+1, …: the scans' rotating start.
      this.stamp[i] = ((i - start + n) % n) - n;
    }
    this.seen = changeJournal.seq;
    this.rebuild();
  }

  /** Recompute every key and heapify: O(n). */
  rebuild(): void {
    const { n, heap, pos, key, list } = this;
    for (let i = 0; i < n; i++) {
      key[i] = this.cost(list[i]!);
      heap[i] = i;
      pos[i] = i;
    }
    for (let k = (n >> 1) - 1; k >= 0; k--) this.down(k);
  }

  /** Apply the journal's changes since the last sync. */
  sync(): void {
    const j = changeJournal;
    const to = j.seq;
    if (to === this.seen) return;
    if (to - this.seen > CHANGE_RING) {
      this.seen = to;
      this.rebuild();
      return;
    }
    const ring = j.ring;
    for (let q = this.seen; q < to; q++) {
      const s = ring[q & (CHANGE_RING - 1)]!;
      const i = this.indexOf.get(s);
      if (i === undefined) continue;
      const k = this.cost(s);
      if (k === this.key[i]) continue;
      this.key[i] = k;
      this.up(this.pos[i]!);
      this.down(this.pos[i]!);
    }
    this.seen = to;
  }

  /** The cheapest server (oldest stamp among equals), restamped as the newest. */
  take(): ServerState {
    this.sync();
    const top = this.heap[0]!;
    this.stamp[top] = this.clock++;
    this.down(0);
    return this.list[top]!;
  }

  private less(a: number, b: number): boolean {
    const ka = this.key[a]!;
    const kb = this.key[b]!;
    return ka < kb || (ka === kb && this.stamp[a]! < this.stamp[b]!);
  }

  private up(k: number): void {
    const { heap, pos } = this;
    const x = heap[k]!;
    while (k > 0) {
      const p = (k - 1) >> 1;
      const y = heap[p]!;
      if (!this.less(x, y)) break;
      heap[k] = y;
      pos[y] = k;
      k = p;
    }
    heap[k] = x;
    pos[x] = k;
  }

  private down(k: number): void {
    const { heap, pos, n } = this;
    const x = heap[k]!;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(heap[c + 1]!, heap[c]!)) c++;
      const y = heap[c]!;
      if (!this.less(y, x)) break;
      heap[k] = y;
      pos[y] = k;
      k = c;
    }
    heap[k] = x;
    pos[x] = k;
  }

  /** Test hook: throws unless every parent is no greater than its children and pos inverts heap. */
  check(): void {
    for (let k = 0; k < this.n; k++) {
      if (this.pos[this.heap[k]!] !== k) throw new Error(`pos/heap mismatch at ${k}`);
      const p = (k - 1) >> 1;
      if (k > 0 && this.less(this.heap[k]!, this.heap[p]!)) throw new Error(`heap order broken at ${k}`);
    }
  }
}
