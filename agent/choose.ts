/**
 * The agent's choice of servers for clients that cannot link the SDK: `GET /v1/pick`, and the DNS
 * answers that put a load-aware order on the addresses. It is the SDK's own choice, built from the
 * SDK's parts rather than written again:
 *
 *   - each record becomes a ServerState whose report goes through the SDK's LoadEstimate (so a
 *     report's weight fades with its age exactly as in a client: full for one report interval,
 *     gone at three), and whose estimate is ServerState.refreshEstimate's;
 *   - eligible servers only: healthy, not draining, not in `exclude` (servers the caller knows to
 *     be ejected or failing); the SDK's choiceSet then applies its zone preference (with spill
 *     over, and its defaults) when `zone` is given. There is no panic mode here: an agent never
 *     sends a client to an unhealthy server; with none eligible the answer is empty;
 *   - the first server is the SDK's p2c pick over that set (two distinct servers at random, the
 *     lower expected load per unit of weight wins), the second p2c over the rest, and so on, so a
 *     client that takes the first address of the list spreads as p2c clients do, and one that tries
 *     them in order fails over in a load-aware order;
 *   - with `key`, the SDK's consistent-hash ring (ketama points of each server's id and weight):
 *     the key's owner first (bounded-load, as the SDK's, when `hashBalanceFactor` > 1), then the
 *     next distinct owners clockwise — the servers the key would move to if the first left.
 *
 * Pure: no clock read (pass `now` — only the reports' own `ageMs` matter, so it defaults to 0), no
 * I/O; all randomness from `random` (seeded in tests).
 */
import { LoadEstimate } from '../sdk/core/balancer/load-estimate.js';
import { choiceSet, isEligible } from '../sdk/core/balancer/choice-set.js';
import { p2c } from '../sdk/core/pickers/p2c.js';
import { buildRing, consistentHash, ringIndex } from '../sdk/core/pickers/consistent-hash.js';
import { hashKey } from '../sdk/core/hash.js';
import { DEFAULTS } from '../sdk/core/options.js';
import type { Random } from '../sdk/core/random.js';
import type { ServerRecord } from '../sdk/core/protocol.js';
import { ServerState } from '../sdk/core/server.js';

export interface ChooseOptions {
  random: Random;
  /** A consistent-hash choice for this key (the same key → the same servers while they stay). */
  key?: string | undefined;
  /** Prefer this zone's servers, with the SDK's spill-over rule (sdk/core/balancer/choice-set.ts). */
  zone?: string | undefined;
  /** Ids of servers not to choose (ejected, known failing), besides the unhealthy and draining. */
  exclude?: ReadonlySet<string> | undefined;
  /** consistent-hash with `key`: the bounded-load factor (> 1), as the SDK's `hashBalanceFactor`. */
  hashBalanceFactor?: number | undefined;
  /** Report interval and expiry (the SDK's defaults: 1000 ms, 3 intervals). */
  reportIntervalMs?: number | undefined;
  reportExpireIntervals?: number | undefined;
}

/** The records as the SDK's balancer would hold them (report taken, estimate refreshed). */
export function serverStates(records: readonly ServerRecord[], o: Pick<ChooseOptions, 'reportIntervalMs' | 'reportExpireIntervals'> = {}): ServerState[] {
  const load = new LoadEstimate({
    reportIntervalMs: o.reportIntervalMs ?? DEFAULTS.reportIntervalMs,
    reportExpireIntervals: o.reportExpireIntervals ?? DEFAULTS.reportExpireIntervals,
    ewmaDecayMs: DEFAULTS.ewmaDecayMs,
  });
  const now = 0;
  return records.map((rec, i) => {
    const s = new ServerState(rec);
    s.index = i;
    if (rec.load) load.report(s, rec.load, now);
    s.refreshEstimate();
    return s;
  });
}

/**
 * Up to `n` of `records`' eligible servers, in the order a client should try them (see the file
 * comment). Returns the records themselves (not copies). Empty when none is eligible or n < 1.
 */
export function chooseServers(records: readonly ServerRecord[], n: number, opts: ChooseOptions): ServerRecord[] {
  if (!(n >= 1) || records.length === 0) return [];
  const all = serverStates(records, opts);
  const exclude = opts.exclude;
  const eligible = all.filter((s) => isEligible(s) && !(exclude !== undefined && exclude.has(s.id)));
  if (eligible.length === 0) return [];
  // panicThreshold 0: never panic (all of `eligible` is eligible); only the zone rule applies.
  const set = choiceSet(eligible, { panicThreshold: 0, zone: opts.zone, zoneAffinity: DEFAULTS.zoneAffinity }, true).candidates;
  const order = opts.key === undefined ? p2cOrder(set, n, opts.random) : hashOrder(set, n, opts);
  // Past the preferred zone (spill order): the other eligible servers, by p2c, when more are asked for.
  if (order.length < n && set.length < eligible.length) {
    const rest = eligible.filter((s) => !set.includes(s));
    order.push(...(opts.key === undefined ? p2cOrder(rest, n - order.length, opts.random) : hashOrder(rest, n - order.length, opts)));
  }
  return order.map((s) => records[s.index]!);
}

/** p2c picks without replacement: each position is the SDK's p2c over the servers left. */
function p2cOrder(set: readonly ServerState[], n: number, random: Random): ServerState[] {
  const left = set.slice();
  const out: ServerState[] = [];
  while (out.length < n && left.length > 0) {
    const s = p2c(left, { random }).pick(-1)!;
    out.push(s);
    left.splice(left.indexOf(s), 1);
  }
  return out;
}

/** The key's owner on the SDK's ring (bounded-load when asked), then the next distinct owners clockwise. */
function hashOrder(set: readonly ServerState[], n: number, o: ChooseOptions): ServerState[] {
  const h = hashKey(o.key!);
  const first = consistentHash(set, { random: o.random, hashBalanceFactor: o.hashBalanceFactor }).pick(h)!;
  const out = [first];
  if (n === 1 || set.length === 1) return out;
  const { points, owners } = buildRing(set);
  const at = ringIndex(points, h);
  for (let step = 0; step < points.length && out.length < n && out.length < set.length; step++) {
    const s = set[owners[(at + step) % points.length]!]!;
    if (!out.includes(s)) out.push(s);
  }
  return out;
}
