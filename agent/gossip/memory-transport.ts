/**
 * An in-memory network for tests and simulations (memberlist mock_transport.go, with faults):
 * every transport lives in one process, frames are delivered on the injected clock after a delay,
 * and the network can lose frames, partition addresses, crash a process (its sockets close: peers
 * get a hint) or silence a host (frames vanish, no hint). Deterministic with a ManualClock and a
 * seeded Random.
 */
import { systemClock, type Clock, type TimerHandle } from '../../sdk/core/clock.js';
import { XorShiftRandom, type Random } from '../../sdk/core/random.js';
import type { Transport, Via } from './transport.js';

export interface MemoryNetworkOptions {
  clock?: Clock;
  random?: Random;
  /** Share of frames lost, 0..1. Default 0. */
  lossRate?: number;
  /** One-way delay of every frame, ms. Default 0 (delivered on the next clock turn). */
  delayMs?: number;
  /** Extra delay, uniform in [0, jitterMs). Default 0. Jitter reorders frames, as UDP would. */
  jitterMs?: number;
}

export interface AddrCounters {
  sentFrames: number;
  sentBytes: number;
  receivedFrames: number;
  receivedBytes: number;
  /** Frames from or to this address that the network dropped (loss, partition, crash, silence). */
  droppedFrames: number;
}

type Delivery =
  | { kind: 'frame'; at: number; seq: number; from: string; to: string; frame: Uint8Array; target: MemoryTransport }
  | { kind: 'hint'; at: number; seq: number; to: MemoryTransport; about: string };

/** A binary min-heap of deliveries by (at, seq). */
class DeliveryHeap {
  private readonly a: Delivery[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Delivery | undefined {
    return this.a[0];
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i]!;
    const y = this.a[j]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
  push(d: Delivery): void {
    const a = this.a;
    a.push(d);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Delivery | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(l, m)) m = l;
        if (r < a.length && this.less(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

export class MemoryNetwork {
  readonly clock: Clock;
  readonly random: Random;
  lossRate: number;
  delayMs: number;
  jitterMs: number;
  private readonly nodes = new Map<string, MemoryTransport>();
  private readonly crashed = new Set<string>();
  private readonly silenced = new Set<string>();
  /** addr → partition group index; addresses in different groups cannot reach each other. */
  private groups = new Map<string, number>();
  /** Pairs that have exchanged a frame: an open "socket" whose close a crash would signal. */
  private readonly links = new Map<string, Set<string>>();
  private readonly counters = new Map<string, AddrCounters>();
  private readonly heap = new DeliveryHeap();
  private seq = 0;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;

  constructor(opts: MemoryNetworkOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? new XorShiftRandom(1);
    this.lossRate = opts.lossRate ?? 0;
    this.delayMs = opts.delayMs ?? 0;
    this.jitterMs = opts.jitterMs ?? 0;
  }

  /**
   * The transport at `addr`. A crashed or closed one is replaced (the process restarted at the
   * same address); an open one cannot be taken twice.
   */
  transport(addr: string): MemoryTransport {
    const old = this.nodes.get(addr);
    if (old && !old.closed && !this.crashed.has(addr)) throw new Error(`memory network: ${addr} is already in use`);
    this.crashed.delete(addr);
    const t = new MemoryTransport(this, addr);
    this.nodes.set(addr, t);
    return t;
  }

  /** Set the loss rate, 0..1. */
  setLoss(rate: number): void {
    this.lossRate = rate;
  }

  /** Split the network: addresses in different groups cannot reach each other; unlisted ones reach everyone. */
  partition(...groups: string[][]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((a) => this.groups.set(a, i)));
  }

  /** Undo partition(). */
  heal(): void {
    this.groups = new Map();
  }

  /**
   * The process at `addr` crashed: its frames are dropped from now on, and every peer it had a
   * connection with gets onPeerClosed (as when the OS closes a killed process's sockets). Later
   * sends to it also give the sender a hint (connection refused).
   */
  crash(addr: string): void {
    this.crashed.add(addr);
    this.closeLinks(addr);
  }

  /** The host at `addr` went silent (power off, cable cut): frames vanish, nobody gets a hint. */
  silence(addr: string): void {
    this.silenced.add(addr);
  }

  /** Undo silence(). */
  unsilence(addr: string): void {
    this.silenced.delete(addr);
  }

  isCrashed(addr: string): boolean {
    return this.crashed.has(addr);
  }

  /** Byte and frame counters of one address (zeros if it never sent or received). */
  countersOf(addr: string): AddrCounters {
    return { ...this.counter(addr) };
  }

  /** Reset every counter (e.g. after a warm-up). */
  resetCounters(): void {
    this.counters.clear();
  }

  /** Deliveries not yet made. */
  get inFlight(): number {
    return this.heap.size;
  }

  private counter(addr: string): AddrCounters {
    let c = this.counters.get(addr);
    if (!c) {
      c = { sentFrames: 0, sentBytes: 0, receivedFrames: 0, receivedBytes: 0, droppedFrames: 0 };
      this.counters.set(addr, c);
    }
    return c;
  }

  private reachable(from: string, to: string): boolean {
    const a = this.groups.get(from);
    const b = this.groups.get(to);
    return a === undefined || b === undefined || a === b;
  }

  private down(addr: string): boolean {
    const t = this.nodes.get(addr);
    return !t || t.closed || this.crashed.has(addr);
  }

  /** @internal */
  send(from: MemoryTransport, to: string, frame: Uint8Array): void {
    const c = this.counter(from.addr);
    c.sentFrames++;
    c.sentBytes += frame.length;
    if (from.closed || this.crashed.has(from.addr) || this.silenced.has(from.addr)) {
      c.droppedFrames++;
      return;
    }
    if (this.silenced.has(to) || !this.reachable(from.addr, to)) {
      c.droppedFrames++;
      return;
    }
    if (this.down(to)) {
      // Connection refused: the sender's socket reports it at once.
      c.droppedFrames++;
      this.schedule({ kind: 'hint', at: this.clock.now() + this.delayMs, seq: this.seq++, to: from, about: to });
      return;
    }
    if (this.lossRate > 0 && this.random.next() < this.lossRate) {
      c.droppedFrames++;
      return;
    }
    const delay = this.delayMs + (this.jitterMs > 0 ? this.random.next() * this.jitterMs : 0);
    // Copy: the sender may reuse its buffer, and a receiver must not see the sender's memory.
    this.schedule({ kind: 'frame', at: this.clock.now() + delay, seq: this.seq++, from: from.addr, to, frame: Uint8Array.from(frame), target: this.nodes.get(to)! });
  }

  /** @internal a transport closed gracefully: its sockets close too. */
  closed(t: MemoryTransport): void {
    if (this.nodes.get(t.addr) === t) this.closeLinks(t.addr);
  }

  private closeLinks(addr: string): void {
    const peers = this.links.get(addr);
    this.links.delete(addr);
    if (!peers) return;
    for (const p of peers) {
      this.links.get(p)?.delete(addr);
      const t = this.nodes.get(p);
      if (t && !this.down(p)) this.schedule({ kind: 'hint', at: this.clock.now() + this.delayMs, seq: this.seq++, to: t, about: addr });
    }
  }

  private link(a: string, b: string): void {
    let s = this.links.get(a);
    if (!s) this.links.set(a, (s = new Set()));
    s.add(b);
    let r = this.links.get(b);
    if (!r) this.links.set(b, (r = new Set()));
    r.add(a);
  }

  private schedule(d: Delivery): void {
    this.heap.push(d);
    this.arm();
  }

  private arm(): void {
    const next = this.heap.peek();
    if (!next) return;
    if (next.at >= this.timerAt) return;
    this.clock.clearTimeout(this.timer);
    this.timerAt = next.at;
    this.timer = this.clock.setTimeout(() => this.flush(), Math.max(0, next.at - this.clock.now()));
  }

  private flush(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    // Deliver what is due now; frames sent while delivering are scheduled, not delivered in this
    // loop (bounded: at most what was queued when the flush began).
    let budget = this.heap.size;
    while (budget-- > 0) {
      const d = this.heap.peek();
      if (!d || d.at > now) break;
      this.heap.pop();
      if (d.kind === 'hint') {
        if (!d.to.closed && !this.crashed.has(d.to.addr) && this.nodes.get(d.to.addr) === d.to) d.to.deliverHint(d.about);
        continue;
      }
      const dropped =
        d.target.closed ||
        this.nodes.get(d.to) !== d.target ||
        this.crashed.has(d.to) ||
        this.silenced.has(d.to) ||
        this.crashed.has(d.from) ||
        !this.reachable(d.from, d.to);
      if (dropped) {
        this.counter(d.from).droppedFrames++;
        continue;
      }
      const c = this.counter(d.to);
      c.receivedFrames++;
      c.receivedBytes += d.frame.length;
      this.link(d.from, d.to);
      d.target.deliver(d.from, d.frame);
    }
    this.arm();
  }
}

export class MemoryTransport implements Transport {
  closed = false;
  private frameHandlers: ((from: string, frame: Uint8Array, via?: Via) => void)[] = [];
  private closeHandlers: ((addr: string) => void)[] = [];

  /** @internal use MemoryNetwork.transport */
  constructor(
    private readonly net: MemoryNetwork,
    readonly addr: string,
  ) {}

  send(to: string, frame: Uint8Array): void {
    this.net.send(this, to, frame);
  }

  onFrame(h: (from: string, frame: Uint8Array, via?: Via) => void): void {
    this.frameHandlers.push(h);
  }

  onPeerClosed(h: (addr: string) => void): void {
    this.closeHandlers.push(h);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.net.closed(this);
    this.closed = true;
  }

  /** @internal */
  deliver(from: string, frame: Uint8Array): void {
    // In memory an address cannot be claimed falsely: a reply goes to the sender, as a send would.
    const via: Via = { reply: (f) => this.send(from, f), dialed: true };
    for (const h of this.frameHandlers) h(from, frame, via);
  }

  /** @internal */
  deliverHint(about: string): void {
    for (const h of this.closeHandlers) h(about);
  }
}
