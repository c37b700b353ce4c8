/**
 * What the pieces of membership.ts (member-updates.ts, failure-detector.ts) share: the node's
 * settings, the member table, the counters, and the façade's ways to send and to piggyback.
 * membership.ts builds one and hands it to each piece.
 */
import type { Clock, TimerHandle } from '../../sdk/core/clock.js';
import type { Random } from '../../sdk/core/random.js';
import type { GossipConfig } from './config.js';
import type { Member, GossipLogger, MembershipStats } from './membership-types.js';
import type { MemberTable, Rec } from './member-table.js';
import type { GossipFrame, Piggyback, Sender, StateUpdate } from './messages.js';
import type { Via } from './transport.js';

/** The counters of MembershipStats that membership keeps itself (not derived, not the load delegate's). */
export type Counter = Exclude<keyof MembershipStats, 'awareness' | 'probeTimeoutMs' | 'queuedUpdates' | 'queuedLoads' | 'alive' | 'suspect' | 'dead' | 'left' | 'loadsApplied' | 'loadsStale' | 'loadsUnknown'>;

/** The frame being handled: who sent it, and the socket to answer on. */
export interface InFrame {
  from: string;
  node: string;
  addr: string;
  via: Via | undefined;
}

export interface GossipHost {
  readonly node: string;
  readonly config: Readonly<GossipConfig>;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: GossipLogger;
  readonly counters: Record<Counter, number>;
  readonly table: MemberTable;
  readonly stopped: boolean;
  readonly leaving: boolean;
  readonly joined: boolean;
  /** Send a frame: a reply on the socket of the frame being handled when it goes back there, else a dial. */
  send(to: string, frame: GossipFrame): void;
  /** Send a frame as if handling a frame with `ctx` (undefined: a dial, never a reply). */
  sendIn(ctx: InFrame | undefined, to: string, frame: GossipFrame): void;
  /** The frame being handled, if any. */
  inFrame(): InFrame | undefined;
  sender(): Sender;
  /** A one-shot timer on the clock that never keeps the process alive. */
  after(fn: () => void, ms: number): TimerHandle;
  /** Queued updates and loads for one frame to `target`, after `first`. */
  piggyback(target: string | undefined, first?: StateUpdate[]): Piggyback | undefined;
  /** Queue an update for gossip. */
  broadcast(u: StateUpdate): void;
  /** Full state exchange with `addr` (push-pull). */
  pushPull(addr: string, join: boolean): void;
  /** A member's status changed (log and 'change'). */
  statusChanged(r: Rec, prev: Member['status']): void;
  /** Emit 'change' for a member whose address or meta changed. */
  changed(r: Rec, prev: Member['status'] | undefined): void;
  emitRtt(info: { node: string; ms: number; phase: 'direct' | 'indirect' }): void;
  emitConflict(info: { node: string; addr: string }): void;
  /** Stop without a goodbye. */
  stop(): void;
}

/** Every counter at 0. */
export function newCounters(): Record<Counter, number> {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    decodeErrors: 0,
    misdirectedPings: 0,
    probes: 0,
    hintProbes: 0,
    confirmProbes: 0,
    indirectProbes: 0,
    probesFailed: 0,
    acks: 0,
    nacks: 0,
    hints: 0,
    suspicions: 0,
    confirmations: 0,
    refutations: 0,
    deathsDeclared: 0,
    pushPulls: 0,
    joinAttempts: 0,
    reconnectPings: 0,
    membersRefused: 0,
    implausibleIncarnations: 0,
    addrConflicts: 0,
    idConflicts: 0,
    dialsRefused: 0,
    replies: 0,
  };
}
