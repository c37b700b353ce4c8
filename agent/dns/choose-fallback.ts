/**
 * A stand-in for agent/choose.ts (chooseServers, issue 16's HTTP part) until it is merged: a
 * weighted random order without replacement, each server's weight scaled down by its reported
 * utilization, so a loaded server comes first less often.
 */
import type { Random } from '../../sdk/core/random.js';
import type { ServerRecord } from '../../sdk/core/protocol.js';

export function chooseByLoad(records: readonly ServerRecord[], n: number, random: () => number): ServerRecord[] {
  const pool = records.map((r) => ({ r, w: r.weight * Math.max(0.05, 1 - Math.min(1, r.load?.utilization ?? 0)) }));
  const out: ServerRecord[] = [];
  while (out.length < n && pool.length) {
    let total = 0;
    for (const p of pool) total += p.w;
    let x = random() * total;
    let i = 0;
    for (; i < pool.length - 1; i++) {
      x -= pool[i]!.w;
      if (x < 0) break;
    }
    out.push(pool[i]!.r);
    pool.splice(i, 1);
  }
  return out;
}

export type { Random };
