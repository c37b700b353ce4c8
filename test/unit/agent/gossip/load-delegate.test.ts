import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { LoadGossip, type MemberView } from '../../../../agent/gossip/load-delegate.js';
import { loadEntrySize, loadKey, nodeHash, type LoadEntry } from '../../../../agent/gossip/messages.js';

const config = { loadRetransmits: 2, loadOriginTransmits: 3, probeIntervalMs: 200 };

/** A member table as the delegate sees it: live members and their incarnations. */
function setup() {
  const clock = new ManualClock(10_000);
  const live = new Map<string, number>();
  const members: MemberView = {
    self: 'me',
    liveIncarnation: (node) => (node === 'me' ? undefined : live.get(node)),
    nodeOfKey: (key) => (typeof key === 'string' ? key : [...live.keys()].find((n) => nodeHash(n) === key)),
  };
  const heard: string[] = [];
  const d = new LoadGossip({ members, clock, random: new XorShiftRandom(7), config, onLoad: (n) => heard.push(n) });
  const join = (node: string, inc = 1, loadSeq?: number) => {
    live.set(node, inc);
    d.notifyJoin(node, loadSeq);
  };
  return { clock, live, d, heard, join };
}

const entry = (node: string, seq: number, connections = seq): LoadEntry => ({ key: loadKey(node), seq: seq % 128, connections, sessions: 0, utilization: 0.5, ageMs: 0 });

describe('LoadGossip: the piggyback delegate of load reports', () => {
  it('this node: seq kept when higher, else last + 1; offered loadOriginTransmits times; aged in snapshots', () => {
    const { d, clock } = setup();
    expect(d.setSelf({ connections: 1, sessions: 0, utilization: 0, seq: 5 }).seq).toBe(5);
    expect(d.setSelf({ connections: 2, sessions: 0, utilization: 0, seq: 3 }).seq).toBe(6);
    expect(d.selfSeq()).toBe(6);
    clock.advance(40);
    expect(d.current('me')?.ageMs).toBe(40);
    let sent = 0;
    for (let i = 0; i < 10; i++) sent += d.broadcasts('peer', 1000).length;
    expect(sent).toBe(config.loadOriginTransmits);
    // Never offered to the origin itself.
    d.setSelf({ connections: 3, sessions: 0, utilization: 0, seq: 7 });
    expect(d.broadcasts('me', 1000)).toEqual([]);
  });

  it('newer seq wins, older and equal are stale; unknown and dead members are counted, not taken', () => {
    const { d, join, live, heard } = setup();
    join('a');
    d.notify([entry('a', 3)], 'b');
    d.notify([entry('a', 2), entry('a', 3)], 'b');
    d.notify([entry('a', 4)], 'b');
    expect(d.current('a')?.connections).toBe(4);
    d.notify([entry('ghost', 1)], 'b');
    live.delete('a'); // dead or left: not live
    d.notify([entry('a', 5)], 'b');
    expect(d.stats()).toMatchObject({ loadsApplied: 2, loadsStale: 2, loadsUnknown: 2 });
    expect(heard).toEqual(['a', 'a']);
  });

  it('does not send a load back to its origin nor to whom it came from; within the byte budget', () => {
    const { d, join } = setup();
    for (const n of ['a', 'b', 'c', 'd']) join(n);
    d.notify([entry('a', 1), entry('c', 1), entry('d', 1)], 'b');
    expect(d.broadcasts('b', 1000)).toEqual([]); // b sent them all
    expect(d.broadcasts('a', 1000).map((e) => e.key).sort()).toEqual(['c', 'd']);
    const one = loadEntrySize(entry('c', 1));
    const fit = d.broadcasts('x', one);
    expect(fit.length).toBe(1);
    expect(d.broadcasts('x', 0)).toEqual([]);
  });

  it('keys by nodeHash for long names', () => {
    const { d, join } = setup();
    join('a-long-node-name');
    expect(typeof loadKey('a-long-node-name')).toBe('number');
    d.notify([entry('a-long-node-name', 9)], 'b');
    expect(d.current('a-long-node-name')?.seq).toBe(9);
  });

  it('after a new incarnation with a floor (its alive said loadSeq), a report from before the floor is stale; after it, full seq rebuilt', () => {
    const { d, join, live } = setup();
    join('a', 1);
    d.mergeRemoteState('a', { connections: 1, sessions: 0, utilization: 0, seq: 300, ageMs: 0 }, 'b');
    expect(d.current('a')?.seq).toBe(300);
    // The member refutes (incarnation 2) and says its seq stood at 310 then.
    live.set('a', 2);
    d.notifyAlive('a', 'suspect', 2, 310);
    d.notify([entry('a', 305)], 'b'); // in flight from before: older than the floor
    expect(d.current('a')?.seq).toBe(300);
    d.notify([entry('a', 312)], 'b');
    expect(d.current('a')?.seq).toBe(312);
    expect(d.stats().loadsStale).toBe(1);
  });

  it('a restarted member (new incarnation, no floor known) takes any seq', () => {
    const { d, join, live } = setup();
    join('a', 1);
    d.notify([entry('a', 50)], 'b');
    live.set('a', 3);
    d.notifyIncarnation('a'); // e.g. a suspicion at a higher incarnation: floor unknown
    d.notify([entry('a', 1)], 'b');
    expect(d.current('a')?.seq).toBe(1);
  });

  it('push-pull state ages with the clock; forgetting a member drops its load and queue', () => {
    const { d, join, clock } = setup();
    join('a');
    d.mergeRemoteState('a', { connections: 1, sessions: 0, utilization: 0, seq: 1, ageMs: 100 }, 'b');
    clock.advance(50);
    expect(d.localState('a')?.ageMs).toBe(150);
    expect(d.current('a')?.ageMs).toBe(100);
    d.notify([entry('a', 2)], 'b');
    d.notifyForget('a');
    expect(d.current('a')).toBeUndefined();
    expect(d.stats().queuedLoads).toBe(0);
  });
});

describe('LoadGossip: loadBytesPerSec (issue 18: load bytes flat in cluster size)', () => {
  it('sends at most loadBytesPerSec bytes of entries per second over all frames, with at most one second saved up', () => {
    const clock = new ManualClock(10_000);
    const live = new Map<string, number>();
    const members: MemberView = { self: 'me', liveIncarnation: (node) => live.get(node), nodeOfKey: (key) => (typeof key === 'string' ? key : undefined) };
    const rate = 100;
    const d = new LoadGossip({ members, clock, random: new XorShiftRandom(7), config: { ...config, loadRetransmits: 50, loadBytesPerSec: rate } });
    for (let i = 0; i < 200; i++) live.set(`m${i}`, 1);
    const bytesOf = (es: LoadEntry[]) => es.reduce((a, e) => a + loadEntrySize(e), 0);
    const feed = () => d.notify([...live.keys()].map((n, i) => entry(n, clock.now() / 1000 + i)), 'peer');
    // A full queue (200 entries, each to be passed on 50 times); many frames of 1000 bytes each second.
    feed();
    const perSecond: number[] = [];
    for (let s = 0; s < 5; s++) {
      let bytes = 0;
      for (let f = 0; f < 20; f++) {
        bytes += bytesOf(d.broadcasts('other', 1000));
        clock.advance(50);
      }
      perSecond.push(bytes);
    }
    // The bucket starts full: five seconds send at most six seconds' worth, and every second some.
    // (An entry's size is counted when it is queued; its age field may grow by a few bytes since: 15 % margin.)
    for (const b of perSecond) expect(b).toBeGreaterThan(0);
    expect(perSecond.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(6 * rate * 1.15);
    expect(perSecond.reduce((a, b) => a + b, 0)).toBeGreaterThan(4 * rate);
    // Idle for 10 s: no more than one second's worth in one burst.
    clock.advance(10_000);
    expect(bytesOf(d.broadcasts('other', 1000))).toBeLessThanOrEqual(rate * 1.15);
    // 0: no limit (one frame takes all of its budget).
    const free = new LoadGossip({ members, clock, random: new XorShiftRandom(7), config: { ...config, loadRetransmits: 50, loadBytesPerSec: 0 } });
    free.notify([...live.keys()].map((n, i) => entry(n, i + 1)), 'peer');
    expect(bytesOf(free.broadcasts('other', 1000))).toBeGreaterThan(900);
  });
});
