/**
 * The public types of membership.ts (moved out of it to keep that file in bounds): members as
 * the agent sees them, the options, the events and the counters.
 */
import type { Clock } from '../../sdk/core/clock.js';
import type { Random } from '../../sdk/core/random.js';
import type { LoadReport } from '../../sdk/core/protocol.js';
import type { GossipConfig } from './config.js';
import type { MemberMeta, MemberStatus } from './messages.js';
import type { Transport } from './transport.js';

export interface Member {
  node: string;
  addr: string;
  status: MemberStatus;
  incarnation: number;
  meta: MemberMeta;
  load?: LoadReport;
  /** Clock ms when the status last changed. */
  statusSince: number;
  /** Clock ms of the last news of this member (state or load). */
  updatedAt: number;
}

export type LogFn = (obj: Record<string, unknown>, msg?: string) => void;
export interface GossipLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

export interface MembershipOptions {
  node: string;
  meta: MemberMeta;
  transport: Transport;
  clock?: Clock;
  random?: Random;
  config?: Partial<GossipConfig>;
  log?: GossipLogger;
  /** Largest frame accepted. Default LIMITS.maxFrameBytes. */
  maxFrameBytes?: number;
  /** Most members remembered (this node included); news of more is refused and counted. Default LIMITS.maxServers. */
  maxMembers?: number;
  /**
   * Sign this node's own meta (with its address) at an incarnation: called whenever the
   * incarnation changes; the signature travels with the meta (messages.ts). Other members' metas
   * keep the signature their own node made, unchanged. Without it this node's meta goes unsigned.
   */
  signMeta?: (meta: MemberMeta, addr: string, incarnation: number) => string;
}

export type MembershipEvents = {
  /** A member joined (previous undefined), changed status, address or meta. Also for this node. */
  change: [member: Member, previous: MemberStatus | undefined];
  /** A newer load report of another member arrived. */
  load: [member: Member];
  /** A dead or left member was forgotten. */
  reap: [member: Member];
  /**
   * A probe was answered: round-trip time on the injected clock, from the first ping to the ack.
   * `phase` is 'indirect' when the ack came after the probe had gone to helpers (it may then have
   * taken the relayed path). For /metrics.
   */
  rtt: [info: { node: string; ms: number; phase: 'direct' | 'indirect' }];
  /**
   * Another live agent at `addr` uses this node's id, and this one gave the id up (see guard.ts
   * keepsName): it stopped (no goodbye; the other keeps the name).
   */
  conflict: [info: { node: string; addr: string }];
};

export interface MembershipStats {
  framesIn: number;
  framesOut: number;
  bytesOut: number;
  decodeErrors: number;
  misdirectedPings: number;
  probes: number;
  hintProbes: number;
  /** Probes of a member someone else suspects, to confirm or refute it ourselves. */
  confirmProbes: number;
  indirectProbes: number;
  probesFailed: number;
  acks: number;
  nacks: number;
  hints: number;
  suspicions: number;
  confirmations: number;
  refutations: number;
  deathsDeclared: number;
  pushPulls: number;
  joinAttempts: number;
  reconnectPings: number;
  loadsApplied: number;
  loadsStale: number;
  loadsUnknown: number;
  /** New members not added because maxMembers (default LIMITS.maxServers) are known already. */
  membersRefused: number;
  /** News from a third party putting a member's incarnation implausibly far ahead (guard.ts), not applied. */
  implausibleIncarnations: number;
  /** Alive updates that would have moved a member to another address, refused (guard.ts). */
  addrConflicts: number;
  /** Alive news of this node's own id at another address: another agent uses it. */
  idConflicts: number;
  /** Frames not sent: a dial to an unconfirmed address over the budget (guard.ts DialBudget). */
  dialsRefused: number;
  /** Frames sent back on the socket the question came in on. */
  replies: number;
  awareness: number;
  /** The probe timeout in use: the configured one, or more when round trips are slow (rtt.ts). */
  probeTimeoutMs: number;
  queuedUpdates: number;
  queuedLoads: number;
  alive: number;
  suspect: number;
  dead: number;
  left: number;
}
