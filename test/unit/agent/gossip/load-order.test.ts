/**
 * A member's load seq never goes back in anyone's view, also across its own incarnation steps
 * (a meta change, a refutation): its alive update says where its load seq stood (loadSeq), and
 * reports from before that, still in flight on a reordering network, are old news. A restarted
 * process, whose seq starts again at 1, is still heard at once.
 */
import { describe, expect, it } from 'vitest';
import { every } from '../../../../sdk/core/clock.js';
import { decodeFrame, encodeFrame } from '../../../../agent/gossip/messages.js';
import { metaFor, Sim } from '../../../support/gossip-sim.js';

describe('load order across incarnations', () => {
  it('the alive update carries loadSeq on the wire (and a frame without it still decodes)', () => {
    const meta = metaFor('n1', 1);
    const f = (loadSeq?: number) =>
      decodeFrame(encodeFrame({ type: 'gossip', from: { node: 'n1', addr: 'ws://127.0.0.1:1' }, piggyback: { updates: [{ kind: 'alive', node: 'n1', incarnation: 3, addr: 'ws://127.0.0.1:1', meta, ...(loadSeq === undefined ? {} : { loadSeq }) }], loads: [] } }));
    const u = (x: ReturnType<typeof f>) => (x.type === 'gossip' ? x.piggyback!.updates[0] : undefined);
    expect(u(f(4711))).toMatchObject({ kind: 'alive', incarnation: 3, loadSeq: 4711 });
    expect(u(f())).not.toHaveProperty('loadSeq');
  });

  it('on a reordering network, with a meta change every second, no member ever sees a seq go back', () => {
    // One-way 1–61 ms: frames overtake each other all the time; loads every 50 ms.
    const sim = new Sim({ seed: 21, delayMs: 1, jitterMs: 60 });
    const nodes = sim.addMany(6, 20);
    sim.run(20_000, { stepMs: 20, until: () => sim.converged() });
    expect(sim.converged()).toBe(true);
    const a = nodes[0]!;
    let seq = 0;
    const stopLoads = every(sim.clock, 50, () => a.m.setLoad({ connections: seq % 50, sessions: 0, utilization: 0, seq: ++seq }));
    let weight = 100;
    const stopMeta = every(sim.clock, 1000, () => a.m.setMeta({ ...a.m.self().meta, weight: ++weight }));
    const back: string[] = [];
    const last = new Map<string, number>();
    for (const v of nodes.slice(1)) {
      v.m.on('load', (m: { node: string; load?: { seq: number } }) => {
        if (m.node !== a.name || !m.load) return;
        const prev = last.get(v.name);
        if (prev !== undefined && m.load.seq < prev) back.push(`${v.name}: ${prev} → ${m.load.seq} at ${sim.clock.now()}`);
        last.set(v.name, m.load.seq);
      });
    }
    sim.run(20_000, { stepMs: 10 });
    stopLoads();
    stopMeta();
    const incarnation = a.m.self().incarnation;
    console.log(`[load order] ${seq} reports, incarnation ${incarnation}, seqs seen last: ${[...last.values()].join(' ')}; went back: ${back.length}`);
    expect(incarnation).toBeGreaterThanOrEqual(15);
    expect(last.size).toBe(5);
    for (const s of last.values()) expect(s).toBeGreaterThan(seq - 20);
    expect(back).toEqual([]);
  });

  it('a restarted process (seq from 1 again, higher incarnation) is heard at once', () => {
    const sim = new Sim({ seed: 22, delayMs: 1, jitterMs: 5 });
    const nodes = sim.addMany(4, 20);
    sim.run(20_000, { stepMs: 20, until: () => sim.converged() });
    let a = nodes[3]!;
    for (let i = 1; i <= 60; i++) {
      a.m.setLoad({ connections: 7, sessions: 0, utilization: 0, seq: i });
      sim.run(50, { stepMs: 10 });
    }
    const b = nodes[0]!;
    expect(b.m.members().find((m) => m.node === a.name)?.load?.seq).toBe(60);
    sim.crash(a);
    sim.run(3000, { stepMs: 20 });
    a = sim.restart(a);
    sim.run(3000, { stepMs: 20, until: () => b.m.members().find((m) => m.node === a.name)?.status === 'alive' });
    a.m.setLoad({ connections: 3, sessions: 0, utilization: 0, seq: 1 });
    const ms = sim.run(3000, { stepMs: 10, until: () => b.m.members().find((m) => m.node === a.name)?.load?.connections === 3 });
    expect(b.m.members().find((m) => m.node === a.name)?.load).toMatchObject({ connections: 3, seq: 1 });
    expect(ms).toBeLessThan(1000);
  });
});
