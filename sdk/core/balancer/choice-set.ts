/**
 * The choice set: which servers picks go to. Pure functions of the servers' current state and the
 * options (no clock, no I/O, nothing written), so they are table-tested on their own
 * (test/unit/sdk/core/balancer/choice-set.test.ts); the balancer calls them on every rebuild and
 * publishes a picker over the result (see publication.ts).
 *
 *   eligible  = healthy and not ejected
 *   panic     = some servers, and fewer than panicThreshold × all of them eligible (or none):
 *               picks then go to every server not draining (to all of them if every one drains),
 *               as Envoy's panic threshold, because a few eligible servers taking everything
 *               would fall over too
 *   zone      = outside panic, with a zone set: only the local zone's eligible servers while
 *               `preferLocalZone` says so (zone spill-over otherwise)
 */
import type { Health } from '../protocol.js';

/** What the choice set reads of a server (ServerState has it all; tests pass plain objects). */
export interface ChoiceServer {
  readonly health: Health;
  readonly ejected: boolean;
  readonly zone: string | undefined;
  readonly udpPort: number | undefined;
  /** Estimated load (active units), see ServerState.estimate. */
  readonly estimate: number;
  /** Weight after slow start. */
  readonly effWeight: number;
  readonly report: { readonly utilization: number } | undefined;
  /** How much the report still counts, 0..1. */
  readonly reportW: number;
}

export interface ZoneAffinity {
  /** Spill when fewer than this share of the local zone's servers is eligible. */
  minHealthyShare: number;
  /** Spill when the local zone's load per weight exceeds this × the other zones'. */
  maxLoadRatio: number;
  /** Spill when the local zone's mean reported utilization reaches this. */
  maxUtilization: number;
}

export interface ChoiceOptions {
  /** 0..1: below this share of eligible servers, panic. */
  panicThreshold: number;
  /** This client's zone, if any. */
  zone: string | undefined;
  zoneAffinity: ZoneAffinity;
}

export interface ChoiceSet<S> {
  /** The servers picks go to (may be empty only when `all` is). */
  candidates: S[];
  panic: boolean;
  /** Zone preference is on and the local zone takes all picks. */
  zoneLocal: boolean;
}

export const isEligible = (s: ChoiceServer): boolean => s.health === 'healthy' && !s.ejected;

/**
 * The choice set of `all`. `zoneLocal` is the previous decision: the zone rule has hysteresis (see
 * `preferLocalZone`), so the same servers may give a different answer depending on it.
 */
export function choiceSet<S extends ChoiceServer>(all: readonly S[], o: ChoiceOptions, zoneLocal: boolean): ChoiceSet<S> {
  const eligible = all.filter(isEligible);
  const panic = all.length > 0 && (eligible.length === 0 || eligible.length < o.panicThreshold * all.length);
  let set = eligible;
  if (panic) {
    const notDraining = all.filter((s) => s.health !== 'draining');
    set = notDraining.length > 0 ? notDraining : all.slice();
  }
  const local = !panic && o.zone !== undefined && preferLocalZone(all, o.zone, o.zoneAffinity, zoneLocal);
  return { candidates: local ? set.filter((s) => s.zone === o.zone) : set, panic, zoneLocal: local };
}

/**
 * Should picks stay in the local zone? Yes while enough local servers are eligible and the local
 * zone is not overloaded compared with the others. Once spilled (`zoneLocal` false), come back
 * only when the load ratio falls below 80 % of the threshold (and utilization below 90 % of its
 * cap), so the decision does not flap every tick.
 */
export function preferLocalZone(all: readonly ChoiceServer[], zone: string, za: ZoneAffinity, zoneLocal: boolean): boolean {
  let localAll = 0;
  let local = 0;
  let localLoad = 0;
  let localW = 0;
  let localUtil = 0;
  let localUtilN = 0;
  let otherLoad = 0;
  let otherW = 0;
  let others = 0;
  for (const s of all) {
    const ok = isEligible(s);
    if (s.zone === zone) {
      localAll++;
      if (!ok) continue;
      local++;
      localLoad += s.estimate + 1;
      localW += s.effWeight;
      if (s.report && s.reportW > 0) {
        localUtil += s.report.utilization;
        localUtilN++;
      }
    } else if (ok) {
      others++;
      otherLoad += s.estimate + 1;
      otherW += s.effWeight;
    }
  }
  if (local === 0) return false;
  if (others === 0) return true;
  if (local / localAll < za.minHealthyShare) return false;
  const slack = zoneLocal ? 1 : 0.8;
  if (localUtilN > 0 && localUtil / localUtilN >= za.maxUtilization * (zoneLocal ? 1 : 0.9)) return false;
  return localLoad / localW <= za.maxLoadRatio * slack * (otherLoad / otherW);
}

/**
 * The choice set for datagrams: the candidates with a UDP port (the candidates themselves, the
 * same array, when all have one: the usual case). If none has one (the local zone's servers are
 * TCP-only, say), the UDP servers outside the choice set, as TCP failover does: eligible ones (of
 * any zone) first, then any not draining. Empty when no server has a UDP port.
 */
export function udpChoiceSet<S extends ChoiceServer>(candidates: S[], all: readonly S[]): S[] {
  if (candidates.every((s) => s.udpPort !== undefined)) return candidates;
  const withUdp = candidates.filter((s) => s.udpPort !== undefined);
  if (withUdp.length > 0) return withUdp;
  const eligible = all.filter((s) => s.udpPort !== undefined && isEligible(s));
  return eligible.length > 0 ? eligible : all.filter((s) => s.udpPort !== undefined && s.health !== 'draining');
}

/** The choice set for WebSocket opens: as udpChoiceSet, over the servers with a WebSocket endpoint. */
export function wsChoiceSet<S extends ChoiceServer & { readonly wsUrl?: string | undefined }>(candidates: S[], all: readonly S[]): S[] {
  if (candidates.every((s) => s.wsUrl !== undefined)) return candidates;
  const withWs = candidates.filter((s) => s.wsUrl !== undefined);
  if (withWs.length > 0) return withWs;
  const eligible = all.filter((s) => s.wsUrl !== undefined && isEligible(s));
  return eligible.length > 0 ? eligible : all.filter((s) => s.wsUrl !== undefined && s.health !== 'draining');
}
