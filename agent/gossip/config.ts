/**
 * Gossip configuration: one typed interface, one default, profiles derived from it (memberlist's
 * `DefaultLANConfig` / `DefaultLocalConfig`, config.go). Every field says its default and, where
 * the value used at run time is derived from it, the formula.
 *
 * peerlb's goals at 100 agents with a load report from every agent every second:
 *   - a join is seen by every member within 1 s;
 *   - a crashed agent process (its sockets close, a hint) is dead everywhere within 1 s;
 *   - a silent host (no hint) is dead everywhere within 3 s, with no living member ever marked dead;
 *   - at most ~2 KB/s of gossip per agent.
 * memberlist's LAN profile detects a failure in ~5–10 s (1 s probes, SuspicionMult 4); we probe
 * five times as often and lean on Lifeguard's confirmations (suspicion.ts) to cut the suspicion
 * time when many members agree, which is exactly what happens when a process dies (every peer
 * gets a hint) and, with the confirmation probes of failure-detector.ts, when a host goes silent.
 *
 * Measured on the simulated network (test/bench/gossip.ts, N = 100, 1 Hz loads): join ~0.5 s,
 * crash ~0.7 s, silent ~1–1.7 s, ~1.85–1.95 KB/s per agent with 2-character node names. The byte
 * figure grows with the length of node names (the sender's name is in every frame, ~15 frames/s):
 * ~2.4 KB/s with 19-character names. Load entries dominate; see loadRetransmits.
 */
import { ConfigError } from '../../sdk/core/errors.js';

export interface GossipConfig {
  /**
   * Time between two probes of a random member (round robin over a shuffled list).
   * Default 200 ms (memberlist: 1 s). Scaled at run time by local health awareness:
   * `probeIntervalMs × (healthScore + 1)` (awareness.ts). It is also the deadline of one probe:
   * a direct ping, then indirect pings until the interval is up.
   */
  probeIntervalMs: number;
  /**
   * How long to wait for a direct ack before asking `indirectChecks` others to ping the member.
   * Should be about the 99th percentile of the RTT (memberlist). Default 100 ms (memberlist LAN:
   * 500 ms); a LAN RTT is < 1 ms, the rest is margin for a busy event loop. Must be < probeIntervalMs.
   */
  probeTimeoutMs: number;
  /** Members asked to ping a member that did not answer directly (SWIM's k). Default 3 (memberlist). */
  indirectChecks: number;
  /**
   * Membership updates (alive/suspect/dead/left) are sent by every member that learns them
   * `retransmitMult × ceil(log10(N + 1))` times (memberlist's retransmitLimit). Default 4
   * (memberlist LAN): 12 sends each at N = 100.
   */
  retransmitMult: number;
  /**
   * Minimum suspicion time: `suspicionMult × max(1, log10(N)) × probeIntervalMs` (memberlist's
   * suspicionTimeout). Default 1.25: 500 ms at N = 100, 250 ms at N ≤ 10 (memberlist LAN:
   * 4 × 2 × 1 s = 8 s). This is the time a member that many others cannot reach (a crashed
   * process: every peer got a hint and probed it) stays suspect: crash → probe fails (one probe
   * interval) → suspect → dead after the minimum, ~700–800 ms at N = 100, ~450 ms at N = 10.
   */
  suspicionMult: number;
  /**
   * Maximum suspicion time, with no confirmation: `suspicionMaxTimeoutMult × minimum` (Lifeguard
   * LHA-Suspicion; memberlist's default, 6). 3 s at N = 100, 1.5 s at N ≤ 10: a member suspected by
   * one unlucky probe has this long to hear of it and refute (it usually does within ~0.5 s).
   */
  suspicionMaxTimeoutMult: number;
  /**
   * Independent confirmations (other members that suspect it too) that bring the suspicion time
   * from the maximum down to the minimum, on a log scale (Lifeguard's K; memberlist uses
   * SuspicionMult − 2 = 2). Default 3. Set to 0 when there are fewer than k + 2 members.
   * A silent host is confirmed as the members that hear of the suspicion probe it themselves
   * (failure-detector.ts): dead everywhere in ~1–1.7 s at N = 100.
   */
  suspicionConfirmations: number;
  /** Local health awareness: the score is kept in [0, max − 1]; timeouts scale by score + 1. Default 8 (memberlist). */
  awarenessMaxMultiplier: number;
  /** Time between two gossip rounds (pending updates to `gossipNodes` random members). Default 200 ms (memberlist LAN). */
  gossipIntervalMs: number;
  /**
   * Members each gossip round sends to. Default 1 (memberlist: 3): every ping and ack also carries
   * updates (piggyback), so a member already sends ~3 frames per 200 ms; more gossip frames mostly
   * add frame headers to the byte budget.
   */
  gossipNodes: number;
  /** Most bytes of updates and load entries piggybacked on one frame. Default 1200 (memberlist: one UDP packet, 1400). */
  maxPiggybackBytes: number;
  /**
   * A load entry learned from a peer is passed on this many times, to random members (may be
   * fractional: the remainder is a probability). Default 1.8. Loads are superseded every second,
   * so they do not need the log(N) redundancy of membership updates: with each member passing an
   * entry on R times, an epidemic reaches the share c of members with c = 1 − e^(−R·c) (R = 1.8:
   * ~73 %, R = 2: ~80 %, R = 3: ~94 %), and each member receives R·c copies. Load is the largest
   * term of the byte budget, ≈ N · R·c · ~10 bytes per agent per second. Measured at N = 100
   * (test/bench/gossip.ts): R = 1.7 → 1.8 KB/s, 67 % of views hold a report < 1.5 s old;
   * R = 1.8 → 1.93 KB/s, 72 %; R = 2 → 2.2 KB/s, 78 %. 1.8 is the largest that fits 2 KB/s;
   * a member that misses a report gets the next one a second later. (A structured relay would
   * deliver each entry once, but without synchronized clocks its latency to the last member was
   * ~17 gossip rounds in a simulation of a hypercube relay; random gossip reaches most in ~5.)
   */
  loadRetransmits: number;
  /**
   * The origin sends its own load entry this many times. Default 4: with R = 1.8 an epidemic
   * started by one send dies out early with probability ~27 % (the extinction probability of a
   * Poisson(1.8) branching process, which equals the share it never reaches); four independent
   * starts make that 0.27⁴ ≈ 0.5 %.
   */
  loadOriginTransmits: number;
  /**
   * Most bytes of load entries a member piggybacks per second, all frames together (a token
   * bucket holding at most one second's worth). 0: no limit. Default 1500. Without it the load
   * term grows with the cluster (≈ N · R·c · ~10 bytes per agent per second: measured 5.2 KB/s per
   * agent at N = 300 against 2.1 KB/s at 100), since every member's 1 Hz report reaches every
   * view. With it an agent's gossip bytes stay flat in N and what gives is freshness: a view
   * refreshes a remote load about every N · ~10 / 1500 s (≤ 1 s below ~150 members, ~7 s at
   * 1,000), and push-pull brings every load at its own interval. Serf bounds its user-event
   * queue the same way (MaxQueueDepth): SWIM's own updates go first (dissemination.ts), so the
   * detection times do not depend on this.
   */
  loadBytesPerSec: number;
  /**
   * Time between full state exchanges with a random member (anti-entropy), scaled with the cluster
   * size as memberlist's pushPullScale: × (ceil(log2 N − log2 32) + 1) above 32 members, and
   * never less than 500 ms per member (pushPullInterval). Default 30 s (memberlist LAN): 90 s at
   * N = 100, about 150 B/s per agent.
   */
  pushPullIntervalMs: number;
  /** Retry joining through the seeds this often until one answers. Default 1 s. */
  joinRetryMs: number;
  /**
   * Every interval, ping one random dead member (with its death piggybacked): if it answers, it
   * refutes and the two exchange full state. This is how a healed partition merges back and how a
   * member wrongly declared dead learns it (memberlist's "gossip to the dead", Serf's reconnect).
   * Default 1 s.
   */
  reconnectIntervalMs: number;
  /** Forget a dead member after this long (it is still listed as dead until then). Default 5 min. */
  deadReapMs: number;
  /** Forget a member that left after this long. Default 60 s. */
  leftReapMs: number;
}

/**
 * What the defaults are chosen for: `agents` members, each publishing a load report every second.
 * Measured by test/bench/gossip.ts on the simulated network, asserted by test/unit/agent/gossip/cluster.test.ts.
 */
export const DESIGN_GOALS = Object.freeze({
  agents: 100,
  /** A new member is seen alive by every other member within this. */
  joinMs: 1000,
  /** A crashed process (its sockets closed) is dead everywhere within this. */
  crashDeadMs: 1000,
  /** A silent host is dead everywhere within this. */
  silentDeadMs: 3000,
  /** Gossip bytes sent per agent per second, steady state. */
  bytesPerAgentPerSec: 2000,
});

/** The default: the LAN profile. */
export const DEFAULT_GOSSIP_CONFIG: Readonly<GossipConfig> = Object.freeze({
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  indirectChecks: 3,
  retransmitMult: 4,
  suspicionMult: 1.25,
  suspicionMaxTimeoutMult: 6,
  suspicionConfirmations: 3,
  awarenessMaxMultiplier: 8,
  gossipIntervalMs: 200,
  gossipNodes: 1,
  maxPiggybackBytes: 1200,
  loadRetransmits: 1.8,
  loadOriginTransmits: 4,
  loadBytesPerSec: 1500,
  pushPullIntervalMs: 30_000,
  joinRetryMs: 1000,
  reconnectIntervalMs: 1000,
  deadReapMs: 5 * 60_000,
  leftReapMs: 60_000,
});

/** LAN: the default. */
export const LAN: Readonly<GossipConfig> = DEFAULT_GOSSIP_CONFIG;

/**
 * LOCAL: agents on one host (tests, the demo). Clusters are small and bytes are free, but the CPU
 * is shared with everything else, so timeouts get more margin for a busy event loop (as
 * memberlist's local profile keeps its probe interval) while anti-entropy and joins run faster.
 */
export const LOCAL: Readonly<GossipConfig> = Object.freeze({
  ...DEFAULT_GOSSIP_CONFIG,
  probeIntervalMs: 250,
  probeTimeoutMs: 150,
  suspicionMult: 2, // 500 ms minimum, 3 s maximum at N ≤ 10
  gossipIntervalMs: 100,
  pushPullIntervalMs: 5_000,
  joinRetryMs: 250,
  reconnectIntervalMs: 500,
});

export const GOSSIP_PROFILES: Readonly<Record<'lan' | 'local', Readonly<GossipConfig>>> = Object.freeze({ lan: LAN, local: LOCAL });

/** Members above which push-pull slows down (memberlist's pushPullScaleThreshold). */
export const PUSH_PULL_SCALE_THRESHOLD = 32;

/** memberlist util.go pushPullScale: the push-pull interval for a cluster of n members. Pure. */
export function pushPullScale(intervalMs: number, n: number): number {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return intervalMs;
  const multiplier = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return multiplier * intervalMs;
}

const POSITIVE_INT: (keyof GossipConfig)[] = ['probeIntervalMs', 'probeTimeoutMs', 'gossipIntervalMs', 'maxPiggybackBytes', 'joinRetryMs', 'reconnectIntervalMs', 'awarenessMaxMultiplier'];
const NON_NEGATIVE: (keyof GossipConfig)[] = [
  'indirectChecks',
  'retransmitMult',
  'suspicionMult',
  'suspicionMaxTimeoutMult',
  'suspicionConfirmations',
  'gossipNodes',
  'loadRetransmits',
  'loadOriginTransmits',
  'loadBytesPerSec',
  'pushPullIntervalMs',
  'deadReapMs',
  'leftReapMs',
];

/** Defaults under the given fields, validated: a ConfigError names the field that is wrong. */
export function resolveGossipConfig(partial: Partial<GossipConfig> = {}): GossipConfig {
  const c: GossipConfig = { ...DEFAULT_GOSSIP_CONFIG };
  for (const [k, v] of Object.entries(partial)) {
    if (v === undefined) continue;
    if (!(k in DEFAULT_GOSSIP_CONFIG)) throw new ConfigError(`gossip config: unknown field "${k}"`);
    (c as unknown as Record<string, unknown>)[k] = v;
  }
  for (const k of POSITIVE_INT) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new ConfigError(`gossip config: ${k} must be an integer > 0 (got ${String(c[k])})`);
  }
  for (const k of NON_NEGATIVE) {
    if (typeof c[k] !== 'number' || !Number.isFinite(c[k]) || c[k] < 0) throw new ConfigError(`gossip config: ${k} must be a number ≥ 0 (got ${String(c[k])})`);
  }
  for (const k of ['indirectChecks', 'gossipNodes', 'suspicionConfirmations'] as const) {
    if (!Number.isInteger(c[k])) throw new ConfigError(`gossip config: ${k} must be an integer (got ${c[k]})`);
  }
  if (c.probeTimeoutMs >= c.probeIntervalMs) throw new ConfigError(`gossip config: probeTimeoutMs (${c.probeTimeoutMs}) must be < probeIntervalMs (${c.probeIntervalMs})`);
  if (c.suspicionMaxTimeoutMult < 1) throw new ConfigError('gossip config: suspicionMaxTimeoutMult must be ≥ 1');
  if (c.maxPiggybackBytes < 64) throw new ConfigError('gossip config: maxPiggybackBytes must be ≥ 64');
  return c;
}

/**
 * Least push-pull interval per member. A push-pull sends the whole state (≈ 60–100 bytes per
 * member) both ways, so its cost per agent is ∝ N / interval: at 30 members LOCAL's 5 s made it
 * ~700 B/s of the byte budget (issue "Thirty real hosts"). With at least 500 ms per member the
 * cost stays ≤ ~300 B/s at any size; LOCAL keeps 5 s up to 10 members and LAN 30 s up to 60.
 */
export const PUSH_PULL_MIN_MS_PER_MEMBER = 500;

/** The push-pull interval used with n members: pushPullScale, at least 500 ms per member. Pure. */
export function pushPullInterval(intervalMs: number, n: number): number {
  return Math.max(pushPullScale(intervalMs, n), PUSH_PULL_MIN_MS_PER_MEMBER * n);
}
