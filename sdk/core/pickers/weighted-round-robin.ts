import { EMPTY_PICKER, type PickerFactory } from './picker.js';
import { CHANGE_RING, type ChangeJournal, type ServerState } from '../server.js';

/**
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every pick adds each server's
 * weight to its current value, takes the largest (the first on ties), and subtracts the total from
 * it. For weights 5,1,1 this gives a a b a c a a: heavy servers are spread out instead of served
 * in bursts. Reads `effWeight` (slow start) through the change journal (server.ts).
 *
 * The same sequence in less than O(n) per pick: after t picks since a base, server i's current
 * value is c0[i] + t·w[i], where c0[i] is its value at the base minus the total for each time it
 * was taken. Servers of the same weight are parallel lines, so their order never changes between
 * picks except for the one taken: within a weight group the largest is the one with the largest
 * c0 (the lowest index among equals), kept on a per-group heap. A pick compares the G group tops
 * (G = distinct weights) and re-sifts one group: O(G + log n), the same comparisons the scan makes
 * between the same exact integers, so the same choice. Non-integer weights (a slow-start ramp)
 * would round differently, so while any weight is not an integer the picker runs the scan itself.
 * A weight change carries the current values over (as the scan does; nginx resets on reload).
 *
 * The current values are this picker's own, never a field of the shared ServerState: the balancer
 * runs several pickers over the same servers at once (the TCP one and the UDP one of a mixed
 * view), and a shared value would let each skew the other.
 */
export const weightedRoundRobin: PickerFactory = (servers) => {
  if (servers.length === 0) return EMPTY_PICKER;
  return new SmoothWrr(servers);
};

/** Re-base (fold t into c0) before t·w could leave the exact integers. */
const REBASE_AT = 2 ** 20;
/** Up to this many distinct weights, a pick compares the group tops in a plain loop. */
const TOURNAMENT_MIN = 8;

export class SmoothWrr {
  readonly list: readonly ServerState[];
  readonly n: number;
  /** The weights the state below was built with. */
  readonly w: Float64Array;
  /** Scan mode: the current values. Group mode: c0 (value at the base, minus taken totals). */
  readonly cur: Float64Array;
  /** Group mode: per-group heaps laid end to end in `heap`; pos[i] = i's place there. */
  private readonly heap: Int32Array;
  private readonly pos: Int32Array;
  private readonly group: Int32Array;
  private gOff = new Int32Array(0);
  private gLen = new Int32Array(0);
  private gW = new Float64Array(0);
  /** Each group's top (list index) and its c0, side by side so a pick reads G contiguous slots. */
  private gTop = new Int32Array(0);
  private gC = new Float64Array(0);
  /**
   * Over more than TOURNAMENT_MIN groups, the group tops play a kinetic tournament (Basch, Guibas
   * and Hershberger's kinetic data structures): each node keeps the winner of its two children and
   * the pick at which the loser, rising faster, overtakes it. A pick replays only the nodes whose
   * certificates expired and the path of the group it took: O(log G) per event.
   */
  private P = 0;
  private win = new Int32Array(0);
  private exp = new Float64Array(0);
  private mexp = new Float64Array(0);
  private groups = 0;
  private total = 0;
  private t = 0;
  /** True: scan mode (non-integer weights). */
  scanning = false;
  private readonly indexOf = new Map<ServerState, number>();
  private seen: number;
  private readonly journal: ChangeJournal;

  constructor(servers: readonly ServerState[]) {
    this.list = servers.slice();
    const n = (this.n = this.list.length);
    this.w = new Float64Array(n);
    this.cur = new Float64Array(n);
    this.heap = new Int32Array(n);
    this.pos = new Int32Array(n);
    this.group = new Int32Array(n);
    for (let i = 0; i < n; i++) this.indexOf.set(this.list[i]!, i);
    this.journal = this.list[0]!.journal;
    this.seen = this.journal.seq;
    this.setup();
  }

  /** Turn the state into current values (t = 0), so the weights can change under it. */
  private materialize(): void {
    if (this.scanning) return;
    for (let i = 0; i < this.n; i++) this.cur[i] = this.cur[i]! + this.t * this.w[i]!;
    this.t = 0;
    for (let g = 0; g < this.groups; g++) this.gC[g] = this.cur[this.gTop[g]!]!;
    if (this.P > 0) this.buildTournament();
  }

  /** Take the live weights and build the groups (or fall back to the scan). cur holds current values. */
  private setup(): void {
    const { n, list, w } = this;
    let integral = true;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const x = list[i]!.effWeight;
      w[i] = x;
      total += x;
      if (!Number.isInteger(x) || x < 0) integral = false;
    }
    this.total = total;
    this.t = 0;
    this.scanning = !integral || !Number.isSafeInteger(total * REBASE_AT * 4);
    if (this.scanning) return;
    // Groups by weight, in order of first appearance.
    const ids = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      let g = ids.get(w[i]!);
      if (g === undefined) ids.set(w[i]!, (g = ids.size));
      this.group[i] = g;
    }
    const G = (this.groups = ids.size);
    this.gOff = new Int32Array(G);
    this.gLen = new Int32Array(G);
    this.gW = new Float64Array(G);
    this.gTop = new Int32Array(G);
    this.gC = new Float64Array(G);
    for (const [weight, g] of ids) this.gW[g] = weight;
    for (let i = 0; i < n; i++) this.gLen[this.group[i]!]!++;
    for (let g = 1; g < G; g++) this.gOff[g] = this.gOff[g - 1]! + this.gLen[g - 1]!;
    const fill = new Int32Array(G);
    for (let i = 0; i < n; i++) {
      const g = this.group[i]!;
      const k = this.gOff[g]! + fill[g]!++;
      this.heap[k] = i;
      this.pos[i] = k;
    }
    for (let g = 0; g < G; g++) {
      for (let k = (this.gLen[g]! >> 1) - 1; k >= 0; k--) this.down(g, k);
      this.top(g);
    }
    this.P = 0;
    if (G > TOURNAMENT_MIN) {
      let P = 1;
      while (P < G) P *= 2;
      this.P = P;
      this.win = new Int32Array(2 * P);
      this.exp = new Float64Array(2 * P);
      this.mexp = new Float64Array(2 * P);
      this.buildTournament();
    }
  }

  private buildTournament(): void {
    const { P, win, exp, mexp } = this;
    for (let g = 0; g < P; g++) {
      win[P + g] = g < this.groups ? g : -1;
      exp[P + g] = mexp[P + g] = Infinity;
    }
    for (let k = P - 1; k >= 1; k--) this.play(k, this.t);
  }

  /** Does group a's top beat group b's at pick t (larger value, then lower index)? */
  private beats(a: number, b: number, t: number): boolean {
    if (b < 0) return true;
    if (a < 0) return false;
    const va = this.gC[a]! + t * this.gW[a]!;
    const vb = this.gC[b]! + t * this.gW[b]!;
    return va > vb || (va === vb && this.gTop[a]! < this.gTop[b]!);
  }

  /** Replay node k at pick t from its children's winners; set its certificate. */
  private play(k: number, t: number): void {
    const { win, exp, mexp, gC, gW, gTop } = this;
    const l = 2 * k;
    const a = win[l]!;
    const b = win[l + 1]!;
    let w: number;
    let lo: number;
    // beats(a, b, t), written out: this runs log G times per pick.
    if (b < 0) {
      w = a;
      lo = b;
    } else if (a < 0) {
      w = b;
      lo = a;
    } else {
      const va = gC[a]! + t * gW[a]!;
      const vb = gC[b]! + t * gW[b]!;
      if (va > vb || (va === vb && gTop[a]! < gTop[b]!)) {
        w = a;
        lo = b;
      } else {
        w = b;
        lo = a;
      }
    }
    win[k] = w;
    let e = Infinity;
    if (lo >= 0 && w >= 0) {
      const s = gW[lo]! - gW[w]!;
      if (s > 0) {
        // lo beats w at pick x when x·s > d, or x·s = d and lo's top has the lower index: exact integers.
        const d = gC[w]! - gC[lo]!;
        let q = Math.floor(d / s);
        while (q * s > d) q--;
        while ((q + 1) * s <= d) q++;
        e = q * s === d && gTop[lo]! < gTop[w]! ? q : q + 1;
      }
    }
    exp[k] = e;
    const ml = mexp[l]!;
    const mr = mexp[l + 1]!;
    const m = ml < mr ? ml : mr;
    mexp[k] = e < m ? e : m;
  }

  /** Replay every node whose certificate (or a descendant's) expired by pick t. */
  private fix(k: number, t: number): void {
    if (this.mexp[k]! > t || k >= this.P) return;
    this.fix(2 * k, t);
    this.fix(2 * k + 1, t);
    this.play(k, t);
  }

  private top(g: number): void {
    const i = this.heap[this.gOff[g]!]!;
    this.gTop[g] = i;
    this.gC[g] = this.cur[i]!;
  }

  /** Does list[a] go before list[b] in its group (larger c0, then lower index)? */
  private before(a: number, b: number): boolean {
    const ca = this.cur[a]!;
    const cb = this.cur[b]!;
    return ca > cb || (ca === cb && a < b);
  }

  /** Sift heap slot `k` (relative to the group's offset) down. */
  private down(g: number, k: number): void {
    const { heap, pos } = this;
    const off = this.gOff[g]!;
    const len = this.gLen[g]!;
    const x = heap[off + k]!;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= len) break;
      if (c + 1 < len && this.before(heap[off + c + 1]!, heap[off + c]!)) c++;
      const y = heap[off + c]!;
      if (!this.before(y, x)) break;
      heap[off + k] = y;
      pos[y] = off + k;
      k = c;
    }
    heap[off + k] = x;
    pos[x] = off + k;
  }

  /** Weights changed since the last pick? Then carry the current values over to the new ones. */
  private sync(): void {
    const j = this.journal;
    const to = j.seq;
    if (to === this.seen) return;
    let changed = to - this.seen > CHANGE_RING;
    if (!changed) {
      const ring = j.ring;
      for (let q = this.seen; q < to; q++) {
        const i = this.indexOf.get(ring[q & (CHANGE_RING - 1)]!);
        if (i !== undefined && this.list[i]!.effWeight !== this.w[i]) {
          changed = true;
          break;
        }
      }
    }
    this.seen = to;
    if (!changed) return;
    this.materialize();
    this.setup();
  }

  pick(): ServerState | undefined {
    this.sync();
    if (this.scanning) return this.scan();
    if (this.t >= REBASE_AT) this.materialize();
    const t1 = ++this.t;
    const { gTop, gC, gW, cur } = this;
    if (this.P > 0) {
      this.fix(1, t1);
      const g = this.win[1]!;
      const i = gTop[g]!;
      cur[i] = cur[i]! - this.total;
      this.down(g, this.pos[i]! - this.gOff[g]!);
      this.top(g);
      for (let k = (this.P + g) >> 1; k >= 1; k >>= 1) this.play(k, t1);
      return this.list[i];
    }
    const G = this.groups;
    let bestV = gC[0]! + t1 * gW[0]!;
    let best = gTop[0]!;
    let bestG = 0;
    for (let g = 1; g < G; g++) {
      const v = gC[g]! + t1 * gW[g]!;
      if (v > bestV || (v === bestV && gTop[g]! < best)) {
        bestV = v;
        best = gTop[g]!;
        bestG = g;
      }
    }
    cur[best] = cur[best]! - this.total;
    this.down(bestG, this.pos[best]! - this.gOff[bestG]!);
    this.top(bestG);
    return this.list[best];
  }

  /** The scan itself (nginx's loop), reading weights live. */
  private scan(): ServerState | undefined {
    const { list, n, cur } = this;
    let best = 0;
    let total = 0;
    let bestCurrent = -Infinity;
    for (let i = 0; i < n; i++) {
      const w = list[i]!.effWeight;
      const c = cur[i]! + w;
      cur[i] = c;
      total += w;
      if (c > bestCurrent) {
        bestCurrent = c;
        best = i;
      }
    }
    cur[best] = bestCurrent - total;
    return list[best];
  }
}
