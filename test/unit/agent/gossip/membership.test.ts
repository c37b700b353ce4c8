/**
 * Membership on small simulated clusters: each behaviour on its own, on a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import { Sim, nodeAddr } from '../../../support/gossip-sim.js';
import { decodeFrame, encodeFrame, type GossipFrame } from '../../../../agent/gossip/messages.js';
import type { SimNode } from '../../../support/gossip-sim.js';
import { Membership, type Member, type MemberStatus } from '../../../../agent/gossip/membership.js';
import { DEFAULT_GOSSIP_CONFIG } from '../../../../agent/gossip/config.js';

function changes(sim: Sim, viewer: string): Array<[string, MemberStatus, MemberStatus | undefined]> {
  const out: Array<[string, MemberStatus, MemberStatus | undefined]> = [];
  sim.nodes.get(viewer)!.m.on('change', (m: Member, prev) => out.push([m.node, m.status, prev]));
  return out;
}

describe('membership: join and dissemination', () => {
  it('members join through a seed and all see all alive; change events say previous = undefined', () => {
    const sim = new Sim({ seed: 1 });
    const [a] = sim.addMany(1);
    const seen = changes(sim, a!.name);
    sim.addMany(4);
    sim.run(3000, { until: () => sim.converged() });
    expect(sim.converged()).toBe(true);
    expect(a!.m.members().map((m) => m.node).sort()).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
    expect(seen.filter(([, s, p]) => s === 'alive' && p === undefined).map(([n]) => n).sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
    const m = a!.m.member('n3')!;
    expect(m).toMatchObject({ addr: nodeAddr(3), status: 'alive', incarnation: 1, meta: { id: 'n3', service: 'game', weight: 100, health: 'healthy' } });
    expect(a!.m.self()).toMatchObject({ node: 'n0', status: 'alive', addr: nodeAddr(0) });
  });

  it('retries joining until a seed answers', () => {
    const sim = new Sim({ seed: 2 });
    // n1 starts first, with n0 (not started yet) as its seed.
    const b = sim.add({ index: 1, seeds: [nodeAddr(0)] });
    sim.run(2500);
    expect(b.m.stats().joinAttempts).toBeGreaterThanOrEqual(3);
    expect(b.m.members()).toHaveLength(1);
    sim.add({ index: 0, seeds: [] });
    sim.run(3000, { until: () => sim.converged() });
    expect(sim.converged()).toBe(true);
    const attempts = b.m.stats().joinAttempts;
    sim.run(3000);
    expect(b.m.stats().joinAttempts).toBe(attempts); // stopped retrying
  });

  it('setMeta incarnates and reaches everyone as a change with the same status', () => {
    const sim = new Sim({ seed: 3 });
    const [a, b] = sim.addMany(4);
    sim.run(3000, { until: () => sim.converged() });
    const seen = changes(sim, 'n2');
    const inc = a!.m.self().incarnation;
    a!.m.setMeta({ ...a!.m.self().meta, health: 'draining', weight: 7 });
    expect(a!.m.self().incarnation).toBe(inc + 1);
    sim.run(2000, { until: () => [b, sim.nodes.get('n2'), sim.nodes.get('n3')].every((v) => v!.m.member('n0')!.meta.health === 'draining') });
    for (const v of ['n1', 'n2', 'n3']) expect(sim.nodes.get(v)!.m.member('n0')).toMatchObject({ status: 'alive', incarnation: inc + 1, meta: { health: 'draining', weight: 7 } });
    expect(seen).toContainEqual(['n0', 'alive', 'alive']);
  });

  it('setLoad reaches the others as load events, newest seq wins, no incarnation', () => {
    const sim = new Sim({ seed: 4 });
    const [a] = sim.addMany(5);
    sim.run(3000, { until: () => sim.converged() });
    const loads: Member[] = [];
    sim.nodes.get('n3')!.m.on('load', (m) => loads.push(m));
    const inc = a!.m.self().incarnation;
    a!.m.setLoad({ connections: 10, sessions: 2, utilization: 0.25, seq: 7 });
    sim.run(1000);
    a!.m.setLoad({ connections: 12, sessions: 3, utilization: 0.5, seq: 8 });
    sim.run(1000);
    for (const v of ['n1', 'n2', 'n3', 'n4']) expect(sim.nodes.get(v)!.m.member('n0')!.load).toMatchObject({ connections: 12, sessions: 3, utilization: 0.5, seq: 8 });
    expect(a!.m.self().incarnation).toBe(inc);
    expect(loads.map((m) => m.load!.seq)).toEqual([7, 8]);
    // a seq that does not increase is replaced by last + 1
    a!.m.setLoad({ connections: 1, sessions: 1, utilization: 0.1, seq: 3 });
    expect(a!.m.self().load!.seq).toBe(9);
  });

  it('load entries of long node names travel by hash', () => {
    const sim = new Sim({ seed: 5 });
    sim.add({ name: 'game-server-eu-1', index: 0 });
    const b = sim.add({ name: 'game-server-eu-2', index: 1 });
    sim.run(2000, { until: () => sim.converged() });
    b.m.setLoad({ connections: 42, sessions: 0, utilization: 0.1, seq: 1 });
    sim.run(500);
    expect(sim.nodes.get('game-server-eu-1')!.m.member('game-server-eu-2')!.load).toMatchObject({ connections: 42, seq: 1 });
  });
});

describe('membership: failure detection', () => {
  it('a silent member is suspected, then dead; a crashed one too, faster (hint)', () => {
    const sim = new Sim({ seed: 6 });
    const nodes = sim.addMany(6);
    sim.run(5000, { until: () => sim.converged() });
    sim.run(5000);
    const t0 = sim.clock.now();
    sim.crash(nodes[3]!);
    const crashMs = sim.run(5000, { until: () => sim.allSee('n3', 'dead') });
    expect(sim.allSee('n3', 'dead')).toBe(true);
    expect(nodes[0]!.m.stats().hintProbes).toBeGreaterThan(0);
    sim.silence(nodes[4]!);
    const silentMs = sim.run(10_000, { until: () => sim.allSee('n4', 'dead') });
    expect(sim.allSee('n4', 'dead')).toBe(true);
    expect(crashMs).toBeLessThan(silentMs);
    expect(sim.clock.now() - t0).toBeLessThan(10_000);
    // never dead before suspect
    for (const v of sim.live()) expect(v.m.stats().suspicions).toBeGreaterThan(0);
  });

  it('a hint about a live member only makes us probe it at once: no suspicion', () => {
    const sim = new Sim({ seed: 7 });
    const [a, b] = sim.addMany(3);
    sim.run(3000, { until: () => sim.converged() });
    const before = a!.m.stats();
    (a!.t as unknown as { deliverHint(addr: string): void }).deliverHint(b!.addr);
    sim.run(1000);
    const after = a!.m.stats();
    expect(after.hintProbes).toBe(before.hintProbes + 1);
    expect(after.suspicions).toBe(before.suspicions);
    expect(a!.m.member(b!.name)!.status).toBe('alive');
  });

  it('a suspected member refutes with a higher incarnation and stays alive everywhere', () => {
    const sim = new Sim({ seed: 8 });
    const [a, b, c] = sim.addMany(4);
    sim.run(3000, { until: () => sim.converged() });
    const inc = b!.m.self().incarnation;
    // c tells everyone (through a) that b is suspect.
    a!.t.send(a!.addr, encodeFrame({ type: 'gossip', from: { node: c!.name, addr: c!.addr }, piggyback: { updates: [{ kind: 'suspect', node: b!.name, incarnation: inc, from: c!.name }], loads: [] } }));
    sim.run(20);
    expect(a!.m.member(b!.name)!.status).toBe('suspect');
    sim.run(3000);
    for (const v of sim.live()) expect(v.m.member(b!.name)).toMatchObject({ status: 'alive' });
    expect(b!.m.self().incarnation).toBeGreaterThan(inc);
    expect(b!.m.stats().refutations).toBeGreaterThan(0);
  });

  it('drops garbage and misdirected pings, counts them, and keeps working', () => {
    const sim = new Sim({ seed: 9 });
    const [a, b] = sim.addMany(2);
    sim.run(2000, { until: () => sim.converged() });
    for (const junk of [Buffer.from([0xc1]), Buffer.alloc(0), Buffer.from('not msgpack at all'), Buffer.alloc(2_000_000)]) a!.t.send(b!.addr, junk);
    a!.t.send(b!.addr, encodeFrame({ type: 'ping', from: { node: a!.name, addr: a!.addr }, seq: 77, target: 'someone-else' }));
    sim.run(500);
    expect(b!.m.stats().decodeErrors).toBe(4);
    expect(b!.m.stats().misdirectedPings).toBe(1);
    expect(sim.converged()).toBe(true);
  });
});

/** Record the frames a member sends (decoded), by destination. */
function spy(n: SimNode): Array<{ to: string; f: GossipFrame }> {
  const out: Array<{ to: string; f: GossipFrame }> = [];
  const send = n.t.send.bind(n.t);
  n.t.send = (to: string, frame: Uint8Array) => {
    out.push({ to, f: decodeFrame(frame) });
    send(to, frame);
  };
  return out;
}

const carries = (f: GossipFrame, kind: string, node: string) => 'piggyback' in f && !!f.piggyback?.updates.some((u) => u.kind === kind && u.node === node);

describe('membership: beyond memberlist', () => {
  it('a refutation goes straight to the member that raised the suspicion', () => {
    const sim = new Sim({ seed: 20 });
    const [a, b, c] = sim.addMany(5);
    sim.run(3000, { until: () => sim.converged() });
    const sent = spy(b!);
    const inc = b!.m.self().incarnation;
    // c relays a's suspicion of b to b
    c!.t.send(b!.addr, encodeFrame({ type: 'gossip', from: { node: c!.name, addr: c!.addr }, piggyback: { updates: [{ kind: 'suspect', node: b!.name, incarnation: inc, from: a!.name }], loads: [] } }));
    sim.run(5);
    expect(b!.m.self().incarnation).toBe(inc + 1);
    const direct = sent.filter((x) => carries(x.f, 'alive', b!.name)).map((x) => x.to);
    expect(direct).toContain(a!.addr);
    expect(direct).toContain(c!.addr);
  });

  it('a member that has X dead tells whoever still suspects X', () => {
    const sim = new Sim({ seed: 21 });
    const nodes = sim.addMany(5);
    sim.run(3000, { until: () => sim.converged() });
    sim.crash(nodes[4]!);
    sim.run(3000, { until: () => sim.allSee('n4', 'dead') });
    const [a, b] = nodes;
    const sent = spy(a!);
    const inc = a!.m.member('n4')!.incarnation;
    b!.t.send(a!.addr, encodeFrame({ type: 'gossip', from: { node: b!.name, addr: b!.addr }, piggyback: { updates: [{ kind: 'suspect', node: 'n4', incarnation: inc, from: b!.name }], loads: [] } }));
    sim.run(5);
    expect(sent.some((x) => x.to === b!.addr && carries(x.f, 'dead', 'n4'))).toBe(true);
  });

  it("a member that hears of another's suspicion probes the suspect itself; a live one answers with its refutation", () => {
    const sim = new Sim({ seed: 22 });
    const [a, b, c] = sim.addMany(6);
    sim.run(3000, { until: () => sim.converged() });
    const before = a!.m.stats().confirmProbes;
    // c's suspicion of b reaches a only (b does not hear of it from c)
    c!.t.send(a!.addr, encodeFrame({ type: 'gossip', from: { node: c!.name, addr: c!.addr }, piggyback: { updates: [{ kind: 'suspect', node: b!.name, incarnation: b!.m.self().incarnation, from: c!.name }], loads: [] } }));
    sim.run(2);
    expect(a!.m.statusOf(b!.name)).toBe('suspect');
    sim.run(300);
    expect(a!.m.stats().confirmProbes).toBe(before + 1);
    expect(a!.m.statusOf(b!.name)).toBe('alive');
    expect(b!.m.stats().refutations).toBeGreaterThan(0);
  });

  it('a new member announces itself to a few members besides its seed', () => {
    const sim = new Sim({ seed: 23 });
    sim.addMany(10);
    sim.run(3000, { until: () => sim.converged() });
    // a member built by hand, so that its sends are watched from the start
    const t = sim.net.transport('ws://10.0.0.77:7946');
    const sent: string[] = [];
    const send = t.send.bind(t);
    t.send = (to, f) => {
      const d = decodeFrame(f);
      if (d.type === 'gossip' && d.piggyback.updates.some((u) => u.kind === 'alive' && u.node === 'late')) sent.push(to);
      send(to, f);
    };
    const m = new Membership({ node: 'late', meta: { id: 'late', service: 'game', host: '10.0.0.77', weight: 100, health: 'healthy' }, transport: t, clock: sim.clock });
    m.start([nodeAddr(0)]);
    sim.run(10);
    expect(new Set(sent).size).toBe(4);
    expect(sent).not.toContain(nodeAddr(0));
    m.stop();
  });
});

describe('membership: leave, restart, reap', () => {
  it('leave: everyone sees left; leave() resolves, then the member is stopped', async () => {
    const sim = new Sim({ seed: 10 });
    const nodes = sim.addMany(5);
    sim.run(3000, { until: () => sim.converged() });
    const seen = changes(sim, 'n0');
    let done = false;
    const p = nodes[2]!.m.leave(1000).then(() => (done = true));
    sim.run(1000);
    await p;
    expect(done).toBe(true);
    nodes[2]!.up = false;
    expect(sim.allSee('n2', 'left')).toBe(true);
    expect(nodes[2]!.m.self().status).toBe('left');
    expect(seen).toContainEqual(['n2', 'left', 'alive']);
    // it stays left (no suspicion or death follows)
    sim.run(5000);
    expect(sim.allSee('n2', 'left')).toBe(true);
  });

  it('a restarted member comes back with a higher incarnation, at the same or another address', () => {
    const sim = new Sim({ seed: 11 });
    const nodes = sim.addMany(5);
    sim.run(3000, { until: () => sim.converged() });
    const x = nodes[3]!;
    x.m.setMeta({ ...x.m.self().meta, weight: 5 }); // incarnation 2
    x.m.setMeta({ ...x.m.self().meta, weight: 6 }); // incarnation 3
    sim.run(2000);
    sim.crash(x);
    sim.run(5000, { until: () => sim.allSee('n3', 'dead') });
    const remembered = nodes[0]!.m.member('n3')!.incarnation;
    const again = sim.restart(x);
    expect(again.m.self().incarnation).toBe(1);
    sim.run(5000, { until: () => sim.converged() });
    expect(sim.converged()).toBe(true);
    for (const v of sim.live()) if (v !== again) expect(v.m.member('n3')!.incarnation).toBeGreaterThan(remembered);
    // and again, quickly (before anyone noticed), at another address
    const inc2 = again.m.self().incarnation;
    sim.crash(again);
    const third = sim.restart(again, { index: 40 });
    sim.run(5000, { until: () => sim.converged() && sim.live().every((v) => v.m.member('n3')!.addr === nodeAddr(40)) });
    for (const v of sim.live()) expect(v.m.member('n3')).toMatchObject({ status: 'alive', addr: nodeAddr(40) });
    expect(third.m.self().incarnation).toBeGreaterThan(inc2);
  });

  it('dead and left members are reaped after the configured time', () => {
    const sim = new Sim({ seed: 12, config: { deadReapMs: 10_000, leftReapMs: 5_000 } });
    const nodes = sim.addMany(4);
    sim.run(3000, { until: () => sim.converged() });
    const reaped: string[] = [];
    nodes[0]!.m.on('reap', (m) => reaped.push(`${m.node}:${m.status}`));
    sim.crash(nodes[3]!);
    sim.run(3000, { until: () => sim.allSee('n3', 'dead') });
    sim.run(9000);
    expect(nodes[0]!.m.member('n3')).toBeDefined();
    sim.run(2000);
    expect(nodes[0]!.m.member('n3')).toBeUndefined();
    expect(reaped).toEqual(['n3:dead']);
  });
});

describe('membership: options', () => {
  it('rejects a bad node name and a bad config', () => {
    const sim = new Sim();
    const t = sim.net.transport('ws://x:1');
    const meta = { id: 'a', service: 's', host: 'h', weight: 1, health: 'healthy' as const };
    expect(() => new Membership({ node: '', meta, transport: t })).toThrow(/node/);
    expect(() => new Membership({ node: 'a', meta, transport: t, config: { probeTimeoutMs: DEFAULT_GOSSIP_CONFIG.probeIntervalMs } })).toThrow(/probeTimeoutMs/);
  });
});
