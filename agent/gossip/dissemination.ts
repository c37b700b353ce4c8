/**
 * What rides on the frames membership.ts sends (memberlist's broadcast queue and GetBroadcasts):
 * SWIM state updates from a transmit-limited queue (broadcast-queue.ts), each sent
 * retransmitMult × log10(N) times, and after them whatever the piggyback delegate
 * (load-delegate.ts) gives within the bytes the frame has left. The updates go first: the state
 * machine's news must never wait behind application state.
 */
import { BroadcastQueue, retransmitLimit } from './broadcast-queue.js';
import type { PiggybackDelegate } from './load-delegate.js';
import { PIGGYBACK_ARRAY_OVERHEAD, updateSize, type Piggyback, type StateUpdate } from './messages.js';

export class Dissemination {
  private readonly updates: BroadcastQueue<StateUpdate>;

  constructor(
    retransmitMult: number,
    /** Alive and suspect members: the N of the retransmit limit. */
    liveCount: () => number,
    /** Bytes of piggyback per frame. */
    private readonly maxBytes: number,
    private readonly delegate: Pick<PiggybackDelegate, 'broadcasts'>,
  ) {
    this.updates = new BroadcastQueue<StateUpdate>(() => retransmitLimit(retransmitMult, liveCount()));
  }

  /** Updates queued. */
  get size(): number {
    return this.updates.size;
  }

  /** Queue an update for gossip. */
  broadcast(u: StateUpdate): void {
    if (u.kind === 'suspect') {
      // One entry per suspecter: Lifeguard needs k independent confirmations, and with one entry
      // per member (memberlist) a frame carries one of them at a time. We pass on at most k + 1
      // suspicions of a member (ours and the confirmations counted), so this stays small.
      this.updates.delete(u.node);
      this.updates.push(`${u.node}\u0000${u.from}`, u, updateSize(u), { group: u.node });
      return;
    }
    // Any other news of the member (alive, dead, left) supersedes everything queued about it.
    this.updates.deleteGroup(u.node);
    this.updates.push(u.node, u, updateSize(u), { group: u.node });
  }

  /** Our leave, sent its full count of times: then `onDone`. */
  leave(u: StateUpdate, onDone: () => void): void {
    this.updates.push(u.node, u, updateSize(u), { onDone, group: u.node });
  }

  /** Drop everything queued about `node` (it was reaped). */
  forget(node: string): void {
    this.updates.deleteGroup(node);
  }

  /**
   * Updates and delegate entries for one frame to `target`: `first` (always), then queued
   * updates, then what the delegate gives within the bytes left.
   */
  piggyback(target: string | undefined, first: StateUpdate[] = []): Piggyback | undefined {
    let budget = this.maxBytes - PIGGYBACK_ARRAY_OVERHEAD;
    for (const u of first) budget -= updateSize(u);
    const ups = this.updates.take(budget, 0);
    budget -= ups.bytes;
    const loads = this.delegate.broadcasts(target, budget);
    if (first.length === 0 && ups.values.length === 0 && loads.length === 0) return undefined;
    return { updates: [...first, ...ups.values], loads };
  }
}
