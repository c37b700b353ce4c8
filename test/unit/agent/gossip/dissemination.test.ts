/**
 * What rides on a frame (dissemination.ts), and the boundary between SWIM and load gossip seen
 * through Membership on a MemoryNetwork and a ManualClock (no sockets, no sleeps).
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { Dissemination } from '../../../../agent/gossip/dissemination.js';
import { MemoryNetwork } from '../../../../agent/gossip/memory-transport.js';
import { Membership } from '../../../../agent/gossip/membership.js';
import { PIGGYBACK_ARRAY_OVERHEAD, loadEntrySize, tryDecodeFrame, updateSize, type LoadEntry, type MemberMeta, type StateUpdate } from '../../../../agent/gossip/messages.js';

const meta = (id: string): MemberMeta => ({ id, service: 'game', host: '10.0.0.1', weight: 100, health: 'healthy' });
/** Bytes a load entry's age may have grown between queueing and sending (a msgpack uint from 1 to 3 bytes). */
const AGE_SLACK_BYTES = 2;
const alive = (node: string, incarnation = 1): StateUpdate => ({ kind: 'alive', node, incarnation, addr: `ws://${node}:1`, meta: meta(node) });

describe('Dissemination', () => {
  const entry: LoadEntry = { key: 'x', seq: 1, connections: 1, sessions: 0, utilization: 0, ageMs: 0 };

  it('state updates first; the delegate gets the bytes left, never more', () => {
    const budgets: number[] = [];
    const d = new Dissemination(4, () => 10, 200, { broadcasts: (_t, b) => (budgets.push(b), [entry]) });
    expect(d.piggyback('t')).toEqual({ updates: [], loads: [entry] });
    expect(budgets).toEqual([200 - PIGGYBACK_ARRAY_OVERHEAD]);
    const u = alive('a');
    d.broadcast(u);
    const first = alive('b');
    expect(d.piggyback('t', [first])).toEqual({ updates: [first, u], loads: [entry] });
    expect(budgets[1]).toBe(200 - PIGGYBACK_ARRAY_OVERHEAD - updateSize(first) - updateSize(u));
  });

  it('nothing to send: no piggyback at all', () => {
    const d = new Dissemination(4, () => 10, 200, { broadcasts: () => [] });
    expect(d.piggyback('t')).toBeUndefined();
  });

  it('one suspicion entry per suspecter; any other news of the member supersedes them all', () => {
    const d = new Dissemination(4, () => 10, 10_000, { broadcasts: () => [] });
    d.broadcast({ kind: 'suspect', node: 'a', incarnation: 1, from: 'b' });
    d.broadcast({ kind: 'suspect', node: 'a', incarnation: 1, from: 'c' });
    expect(d.size).toBe(2);
    d.broadcast({ kind: 'dead', node: 'a', incarnation: 1, from: 'b' });
    expect(d.size).toBe(1);
    d.forget('a');
    expect(d.size).toBe(0);
  });

  it('an update is sent retransmitMult × ceil(log10(N + 1)) times; a leave calls back once sent out', () => {
    let done = 0;
    const d = new Dissemination(2, () => 9, 10_000, { broadcasts: () => [] });
    d.leave({ kind: 'left', node: 'me', incarnation: 2 }, () => done++);
    let sends = 0;
    for (let i = 0; i < 10; i++) sends += d.piggyback('t')?.updates.length ?? 0;
    expect(sends).toBe(2);
    expect(done).toBe(1);
  });
});

describe('Membership over a MemoryNetwork: load gossip stays out of the SWIM state', () => {
  it('a hundred load reports reach every member and change no incarnation, status or state counter', () => {
    const clock = new ManualClock();
    const net = new MemoryNetwork({ clock, random: new XorShiftRandom(5) });
    const names = ['a', 'b', 'c', 'd'];
    const ms = names.map((n, i) => new Membership({ node: n, meta: meta(n), transport: net.transport(`ws://${n}:1`), clock, random: new XorShiftRandom(i + 1) }));
    ms.forEach((m, i) => m.start(i === 0 ? [] : ['ws://a:1']));
    clock.advance(3000);
    for (const m of ms) expect(m.members().filter((x) => x.status === 'alive').length).toBe(4);
    const incarnations = () => ms.map((m) => m.members().map((x) => `${x.node}@${x.incarnation}:${x.status}`).sort().join(','));
    const before = incarnations();
    const swim = () => ms.map((m) => ({ ...m.stats() })).map((s) => [s.suspicions, s.refutations, s.deathsDeclared]);
    const swimBefore = swim();
    let loadEvents = 0;
    for (const m of ms.slice(1)) m.on('load', (x) => x.node === 'a' && loadEvents++);
    for (let i = 1; i <= 100; i++) {
      ms[0]!.setLoad({ connections: i, sessions: 0, utilization: i / 100, seq: i });
      clock.advance(250);
    }
    clock.advance(2000);
    expect(incarnations()).toEqual(before);
    expect(swim()).toEqual(swimBefore);
    for (const m of ms.slice(1)) expect(m.member('a')?.load?.connections).toBe(100);
    expect(loadEvents).toBeGreaterThanOrEqual(3 * 90);
    for (const m of ms) m.stop();
  });

  it('every frame on the wire stays within maxPiggybackBytes of piggyback, loads included', () => {
    const clock = new ManualClock();
    const net = new MemoryNetwork({ clock, random: new XorShiftRandom(9) });
    const maxPiggybackBytes = 300;
    const names = Array.from({ length: 12 }, (_, i) => `n${i}`);
    const frames: Uint8Array[] = [];
    const ms = names.map((n, i) => {
      const t = net.transport(`ws://${n}:1`);
      const send = t.send.bind(t);
      t.send = (to, f) => (frames.push(f), send(to, f));
      return new Membership({ node: n, meta: meta(n), transport: t, clock, random: new XorShiftRandom(i + 1), config: { maxPiggybackBytes } });
    });
    ms.forEach((m, i) => m.start(i === 0 ? [] : ['ws://n0:1']));
    for (let r = 0; r < 40; r++) {
      ms.forEach((m, i) => m.setLoad({ connections: r * 100 + i, sessions: r, utilization: 0.5, seq: r + 1, source: 'reported' }));
      clock.advance(100);
    }
    let checked = 0;
    let worst = 0;
    for (const f of frames) {
      const d = tryDecodeFrame(f, 1 << 20);
      if (!d.ok || !('piggyback' in d.frame) || !d.frame.piggyback) continue;
      const p = d.frame.piggyback;
      if (p.loads.length === 0) continue;
      checked++;
      // The buddy ("first") updates count within the budget too; a load's size is taken when it
      // is queued, and its age may have grown a byte or two by the time it is sent.
      let bytes = PIGGYBACK_ARRAY_OVERHEAD;
      for (const u of p.updates) bytes += updateSize(u);
      for (const e of p.loads) bytes += loadEntrySize(e) - AGE_SLACK_BYTES;
      worst = Math.max(worst, bytes);
      expect(bytes).toBeLessThanOrEqual(maxPiggybackBytes);
    }
    expect(checked).toBeGreaterThan(100);
    // And the budget was in use: frames came close to it (so the check above had something to check).
    expect(worst).toBeGreaterThan(maxPiggybackBytes - 50);
    for (const m of ms) m.stop();
  });
});
