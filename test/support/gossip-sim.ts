/**
 * A simulated cluster for the gossip tests and benchmark: N Memberships on one MemoryNetwork, one
 * ManualClock, one seeded Random. Time only moves in `run()`, in small steps, with an optional check
 * after each step. Loads (1 Hz per agent, a random walk) can be switched on.
 */
import { ManualClock, every } from '../../sdk/core/clock.js';
import { XorShiftRandom } from '../../sdk/core/random.js';
import { MemoryNetwork, type MemoryTransport } from '../../agent/gossip/memory-transport.js';
import { Membership, type Member, type MemberMeta, type MemberStatus } from '../../agent/gossip/membership.js';
import type { GossipConfig } from '../../agent/gossip/config.js';

export interface SimOptions {
  seed?: number;
  config?: Partial<GossipConfig>;
  delayMs?: number;
  jitterMs?: number;
  lossRate?: number;
}

export interface SimNode {
  name: string;
  index: number;
  addr: string;
  m: Membership;
  t: MemoryTransport;
  /** False once crashed, silenced or stopped: its own view no longer counts. */
  up: boolean;
  stopLoads?: () => void;
}

export function nodeName(i: number): string {
  return `n${i}`;
}

/** A realistic LAN address (its length matters for the byte figures). */
export function nodeAddr(i: number): string {
  return `ws://10.0.${i >> 8}.${i & 255}:7946`;
}

export function metaFor(name: string, i: number): MemberMeta {
  return { id: name, service: 'game', host: `10.0.${i >> 8}.${i & 255}`, udpPort: 7001, tcpPort: 7000, weight: 100, health: 'healthy' };
}

export class Sim {
  readonly clock = new ManualClock(0);
  readonly random: XorShiftRandom;
  readonly net: MemoryNetwork;
  readonly nodes = new Map<string, SimNode>();
  private index = 0;
  private readonly seed: number;

  constructor(readonly opts: SimOptions = {}) {
    this.seed = opts.seed ?? 1;
    this.random = new XorShiftRandom(this.seed);
    this.net = new MemoryNetwork({
      clock: this.clock,
      random: new XorShiftRandom(this.seed * 7919 + 1),
      delayMs: opts.delayMs ?? 0.5,
      jitterMs: opts.jitterMs ?? 0.5,
      lossRate: opts.lossRate ?? 0,
    });
  }

  /** Create and start a member; `name` defaults to the next n<i>. Seeds default to the first member. */
  add(opts: { name?: string; index?: number; seeds?: string[]; config?: Partial<GossipConfig> } = {}): SimNode {
    const i = opts.index ?? this.index++;
    const name = opts.name ?? nodeName(i);
    const addr = nodeAddr(i);
    const t = this.net.transport(addr);
    const m = new Membership({
      node: name,
      meta: metaFor(name, i),
      transport: t,
      clock: this.clock,
      random: new XorShiftRandom(this.seed * 1_000_003 + i * 31 + this.nodes.size),
      config: { ...this.opts.config, ...opts.config },
    });
    const n: SimNode = { name, index: i, addr, m, t, up: true };
    this.nodes.set(name, n);
    const first = [...this.nodes.values()][0]!;
    m.start(opts.seeds ?? (first === n ? [] : [first.addr]));
    return n;
  }

  /**
   * Restart a crashed or stopped member under the same name: a new Membership (incarnation 1, as a
   * fresh process), at the same address or at the address of `index`, joining through the first member.
   */
  restart(n: SimNode, opts: { index?: number; seeds?: string[] } = {}): SimNode {
    const first = [...this.nodes.values()].find((x) => x.up && x !== n);
    n.m.stop();
    n.stopLoads?.();
    this.net.unsilence(n.addr);
    if (!this.net.isCrashed(n.addr)) void n.t.close();
    this.nodes.delete(n.name);
    const seeds = opts.seeds ?? (first ? [first.addr] : []);
    const again = this.add({ name: n.name, index: opts.index ?? n.index, seeds });
    return again;
  }

  /** Start `count` members, one every `staggerMs`, each joining through the first. */
  addMany(count: number, staggerMs = 0): SimNode[] {
    const out: SimNode[] = [];
    for (let i = 0; i < count; i++) {
      out.push(this.add());
      if (staggerMs > 0) this.clock.advance(staggerMs);
    }
    return out;
  }

  /** Every member calls setLoad once a second (random phase), with a random walk of load. */
  startLoads(n: SimNode): void {
    const r = new XorShiftRandom(this.random.int(1 << 30));
    let conns = r.int(200);
    let seq = 0;
    const tick = () => {
      conns = Math.max(0, conns + r.int(21) - 10);
      n.m.setLoad({ connections: conns, sessions: conns, utilization: Math.min(1, conns / 400), seq: ++seq });
    };
    const phase = r.int(1000);
    const h = this.clock.setTimeout(() => {
      tick();
      n.stopLoads = every(this.clock, 1000, tick);
    }, phase);
    n.stopLoads = () => this.clock.clearTimeout(h);
  }

  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** What `viewer` thinks of `node` (undefined: it does not know it). */
  statusIn(viewer: SimNode, node: string): MemberStatus | undefined {
    return viewer.m.statusOf(node);
  }

  /** Do all live members (but `except`) see `node` with `status`? */
  allSee(node: string, status: MemberStatus, except?: string): boolean {
    for (const v of this.live()) {
      if (v.name === node || v.name === except) continue;
      if (this.statusIn(v, node) !== status) return false;
    }
    return true;
  }

  /** Does every live member see every other live member alive? */
  converged(): boolean {
    const live = this.live();
    for (const v of live) {
      for (const n of live) {
        if (n === v) continue;
        if (this.statusIn(v, n.name) !== 'alive') return false;
      }
    }
    return true;
  }

  /** Crash a process: its sockets close (peers get a hint) and it stops. */
  crash(n: SimNode): void {
    n.up = false;
    n.stopLoads?.();
    n.m.stop();
    this.net.crash(n.addr);
  }

  /** A host goes silent: no hint, frames vanish; its agent stops. */
  silence(n: SimNode): void {
    n.up = false;
    n.stopLoads?.();
    n.m.stop();
    this.net.silence(n.addr);
  }

  /**
   * Advance `ms` in steps of `stepMs`, calling `check` after each step; stops early when `until`
   * returns true. Returns the simulated time spent.
   */
  run(ms: number, o: { stepMs?: number; check?: () => void; until?: () => boolean } = {}): number {
    const step = o.stepMs ?? 10;
    const t0 = this.clock.now();
    const steps = Math.ceil(ms / step);
    for (let i = 0; i < steps; i++) {
      if (o.until?.()) break;
      this.clock.advance(step);
      o.check?.();
    }
    return this.clock.now() - t0;
  }

  /**
   * Watch every live member's 'change' events: `onDeath(viewer, member)` is called whenever a
   * member is marked dead by someone (to catch a false death at the moment it happens).
   */
  watchDeaths(onDeath: (viewer: SimNode, member: Member) => void): void {
    for (const v of this.nodes.values()) {
      v.m.on('change', (m) => {
        if (m.status === 'dead' && v.up) onDeath(v, m);
      });
    }
  }
}
