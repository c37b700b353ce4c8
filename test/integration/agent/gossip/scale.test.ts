/**
 * Adding N members costs O(N log N) at most: one member learns 1,000 and then 10,000 members from
 * push-pull frames (as an honest agent joining a big cluster, or a healed partition, does), and
 * gossips for a simulated second with them queued; the work for 10,000 must be far less than the
 * 100× of a quadratic path (each new member scanning the broadcast queue, inserting into the
 * probe list, counting the live members). Judged by the ratio of two measurements on the same
 * machine, each the least of three runs, not by a time limit.
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame, type MemberState } from '../../../../agent/gossip/messages.js';
import { Sim, metaFor } from '../../../support/gossip-sim.js';

const FROM = { node: 'peer', addr: 'ws://10.200.0.1:7946' };

function frames(n: number): Buffer[] {
  const out: Buffer[] = [];
  let states: MemberState[] = [];
  for (let i = 0; i < n; i++) {
    const node = `m${i}`;
    states.push({ node, addr: `ws://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`, incarnation: 1, status: 'alive', meta: metaFor(node, i) });
    // A few thousand states a frame: well under the 1 MiB frame limit.
    if (states.length === 2000) {
      out.push(encodeFrame({ type: 'push-pull-resp', from: FROM, states }));
      states = [];
    }
  }
  if (states.length) out.push(encodeFrame({ type: 'push-pull-resp', from: FROM, states }));
  return out;
}

/** ms to take `n` members from push-pull frames, then gossip 1 s (simulated) with them queued. */
function addMembers(n: number, f: Buffer[]): { ms: number; members: number } {
  const sim = new Sim({ seed: 71 });
  const a = sim.add();
  let changes = 0;
  a.m.on('change', () => changes++);
  sim.run(50);
  const t0 = performance.now();
  for (const b of f) a.t.deliver(FROM.addr, b);
  sim.run(1000, { stepMs: 50 });
  const ms = performance.now() - t0;
  expect(changes).toBeGreaterThanOrEqual(n);
  const members = a.m.members().length;
  a.m.stop();
  return { ms, members };
}

describe('large clusters: adding members', () => {
  it('adding 10,000 members costs about 10× adding 1,000 (O(N log N)), not 100× (quadratic)', () => {
    const f1 = frames(1000);
    const f10 = frames(10_000);
    addMembers(1000, f1); // warm up the JIT
    const least = (n: number, f: Buffer[]) => Math.min(...[0, 1, 2].map(() => addMembers(n, f).ms));
    const t1 = least(1000, f1);
    const t10 = least(10_000, f10);
    const { members } = addMembers(10_000, f10);
    console.log(`[scale] 1,000 members: ${t1.toFixed(1)} ms, 10,000: ${t10.toFixed(1)} ms, ratio ${(t10 / t1).toFixed(1)}`);
    // maxMembers (LIMITS.maxServers, 10,000) counts this member: one of the 10,000 is refused.
    expect(members).toBe(10_000);
    // Linear is 10×, N log N ~13×; quadratic is 100×. 35× leaves room for a busy machine.
    expect(t10 / t1).toBeLessThan(35);
  }, 120_000);
});
