/**
 * Picker publication (grpc-js's balancer / picker split): every rebuild publishes a new choice set
 * and a picker of the cluster's strategy over it; picks read the published one. The pickers that
 * only some picks need are built on their first pick after a publication: the hash ring for keyed
 * picks under another strategy, and the datagram pickers of a view where some candidates have no
 * UDP port. Each picker keeps its own scratch, so these run side by side over the same servers.
 */
import type { ServerState } from '../server.js';
import { STRATEGIES, type Picker, type PickerContext, type StrategyName } from '../pickers/index.js';
import { EMPTY_PICKER } from '../pickers/picker.js';
import { consistentHash } from '../pickers/consistent-hash.js';
import { udpChoiceSet, wsChoiceSet } from './choice-set.js';

export class Publication {
  /** The published choice set. */
  candidates: ServerState[] = [];
  /** Every server (the view's list when published): failover and datagram fallbacks look there. */
  all: ServerState[] = [];
  /** Bumped on every publication; lets the UDP wrapper know its address map is stale. */
  version = 0;
  private picker: Picker = EMPTY_PICKER;
  private affinity: Picker | undefined;
  /** The choice set for datagrams (servers with a UDP port) and its pickers; built on the first UDP pick after a publication. */
  private udpSet: ServerState[] | undefined;
  private udpPicker: Picker | undefined;
  private udpAffinity: Picker | undefined;
  /** The same for WebSocket opens (servers with a wsUrl); built on the first `websocket()` after a publication. */
  private wsSet: ServerState[] | undefined;
  private wsPicker: Picker | undefined;
  private wsAffinity: Picker | undefined;
  private readonly keyedByStrategy: boolean;

  constructor(
    private readonly strategy: StrategyName,
    private readonly ctx: PickerContext,
  ) {
    this.keyedByStrategy = strategy === 'consistent-hash';
  }

  publish(candidates: ServerState[], all: ServerState[]): void {
    this.candidates = candidates;
    this.all = all;
    this.picker = STRATEGIES[this.strategy](candidates, this.ctx);
    this.affinity = undefined;
    this.udpSet = this.udpPicker = this.udpAffinity = undefined;
    this.wsSet = this.wsPicker = this.wsAffinity = undefined;
    this.version++;
  }

  /** A server for this pick (`hash` a key hash, or -1), or undefined when the set is empty. No allocation. */
  pick(hash: number): ServerState | undefined {
    if (hash >= 0 && !this.keyedByStrategy) {
      if (!this.affinity) this.affinity = consistentHash(this.candidates, this.ctx);
      return this.affinity.pick(hash);
    }
    return this.picker.pick(hash);
  }

  /** As `pick`, among servers with a UDP port (see Balancer.pickUdp). */
  pickUdp(hash: number): ServerState | undefined {
    const set = (this.udpSet ??= udpChoiceSet(this.candidates, this.all));
    if (set === this.candidates) return this.pick(hash);
    if (hash >= 0 && !this.keyedByStrategy) return (this.udpAffinity ??= consistentHash(set, this.ctx)).pick(hash);
    return (this.udpPicker ??= STRATEGIES[this.strategy](set, this.ctx)).pick(hash);
  }

  /** As `pick`, among servers with a WebSocket endpoint (see Balancer.pickWs). */
  pickWs(hash: number): ServerState | undefined {
    const set = (this.wsSet ??= wsChoiceSet(this.candidates, this.all));
    if (set === this.candidates) return this.pick(hash);
    if (hash >= 0 && !this.keyedByStrategy) return (this.wsAffinity ??= consistentHash(set, this.ctx)).pick(hash);
    return (this.wsPicker ??= STRATEGIES[this.strategy](set, this.ctx)).pick(hash);
  }

  /**
   * A pick that avoids servers already `tried`: ask the picker a few times (a keyed pick once, the
   * key's server), then take the least loaded untried candidate, then any untried non-draining server.
   */
  pickExcluding(hash: number, tried: ReadonlySet<ServerState>): ServerState | undefined {
    for (let i = 0; i < 4; i++) {
      const s = this.pick(i === 0 ? hash : -1);
      if (s && !tried.has(s)) return s;
    }
    let best: ServerState | undefined;
    for (const pool of [this.candidates, this.all]) {
      for (const s of pool) {
        if (tried.has(s) || s.health === 'draining') continue;
        if (!best || s.expected * best.effWeight < best.expected * s.effWeight) best = s;
      }
      if (best) return best;
    }
    return undefined;
  }
}
