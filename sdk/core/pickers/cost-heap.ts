import { CHANGE_RING, type ChangeJournal, type ServerState } from '../server.js';
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
  /** heap[k] = index into `list` at heap position k; hk / hs its key and stamp, in heap order (one cache line per sift step). */
  readonly heap: Int32Array;
  private readonly hk: Float64Array;
  private readonly hs: Float64Array;
  /** pos[i] = heap position of list[i]. */
  readonly pos: Int32Array;
  private readonly indexOf = new Map<ServerState, number>();
  private clock = 0;
  private seen: number;
  private readonly journal: ChangeJournal;

  constructor(
    servers: readonly ServerState[],
    random: Random,
    private readonly cost: (s: ServerState) => number,
  ) {
    this.list = servers.slice();
    const n = (this.n = this.list.length);
    this.heap = new Int32Array(n);
    this.pos = new Int32Array(n);
    this.hk = new Float64Array(n);
    this.hs = new Float64Array(n);
    const start = n > 0 ? random.int(n) : 0;
    for (let i = 0; i < n; i++) {
      this.indexOf.set(this.list[i]!, i);
      this.heap[i] = i;
      this.pos[i] = i;
      // list[start] oldest, then start+1, …: the scans' rotating start.
      this.hs[i] = ((i - start + n) % n) - n;
    }
    this.journal = this.list[0]!.journal;
    this.seen = this.journal.seq;
    this.rebuild();
  }

  /** The key list[i] is filed under. */
  keyOf(i: number): number {
    return this.hk[this.pos[i]!]!;
  }

  /** Recompute every key and heapify: O(n). */
  rebuild(): void {
    const { n, heap, hk, list } = this;
    for (let k = 0; k < n; k++) hk[k] = this.cost(list[heap[k]!]!);
    for (let k = (n >> 1) - 1; k >= 0; k--) this.down(k);
  }

  /** Apply the journal's changes since the last sync. */
  sync(): void {
    const j = this.journal;
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
      const at = this.pos[i]!;
      if (k === this.hk[at]) continue;
      this.hk[at] = k;
      this.up(at);
      this.down(this.pos[i]!);
    }
    this.seen = to;
  }

  /** The cheapest server (oldest stamp among equals), restamped as the newest. */
  take(): ServerState {
    this.sync();
    const top = this.heap[0]!;
    this.hs[0] = this.clock++;
    this.down(0);
    return this.list[top]!;
  }

  private up(k: number): void {
    const { heap, pos, hk, hs } = this;
    const x = heap[k]!;
    const xk = hk[k]!;
    const xs = hs[k]!;
    while (k > 0) {
      const p = (k - 1) >> 1;
      const pk = hk[p]!;
      if (!(xk < pk || (xk === pk && xs < hs[p]!))) break;
      const y = heap[p]!;
      heap[k] = y;
      hk[k] = pk;
      hs[k] = hs[p]!;
      pos[y] = k;
      k = p;
    }
    heap[k] = x;
    hk[k] = xk;
    hs[k] = xs;
    pos[x] = k;
  }

  private down(k: number): void {
    const { heap, pos, hk, hs, n } = this;
    const x = heap[k]!;
    const xk = hk[k]!;
    const xs = hs[k]!;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= n) break;
      let ck = hk[c]!;
      if (c + 1 < n) {
        const dk = hk[c + 1]!;
        if (dk < ck || (dk === ck && hs[c + 1]! < hs[c]!)) {
          c++;
          ck = dk;
        }
      }
      const cs = hs[c]!;
      if (!(ck < xk || (ck === xk && cs < xs))) break;
      const y = heap[c]!;
      heap[k] = y;
      hk[k] = ck;
      hs[k] = cs;
      pos[y] = k;
      k = c;
    }
    heap[k] = x;
    hk[k] = xk;
    hs[k] = xs;
    pos[x] = k;
  }

  /** Test hook: throws unless every parent is no greater than its children and pos inverts heap. */
  check(): void {
    const { hk, hs } = this;
    for (let k = 0; k < this.n; k++) {
      if (this.pos[this.heap[k]!] !== k) throw new Error(`pos/heap mismatch at ${k}`);
      if (hk[k] !== this.cost(this.list[this.heap[k]!]!) && this.seen === this.journal.seq) throw new Error(`stale key at ${k}`);
      const p = (k - 1) >> 1;
      if (k > 0 && (hk[k]! < hk[p]! || (hk[k] === hk[p] && hs[k]! < hs[p]!))) throw new Error(`heap order broken at ${k}`);
    }
  }
}
