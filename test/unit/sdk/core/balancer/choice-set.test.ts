/**
 * The choice set as a pure function (sdk/core/balancer/choice-set.ts): table tests over plain
 * server objects. Panic on and off at the threshold, what panic picks from, zone preference and
 * spill-over with its hysteresis, and the datagram set.
 */
import { describe, expect, it } from 'vitest';
import { choiceSet, preferLocalZone, udpChoiceSet, type ChoiceOptions, type ChoiceServer, type ZoneAffinity } from '../../../../../sdk/core/balancer/choice-set.js';
import type { Health } from '../../../../../sdk/core/protocol.js';
import { balancer, rec } from './fixtures.js';

interface S extends ChoiceServer {
  id: string;
}

/** A server: `h` healthy, `u` unhealthy, `d` draining, `e` healthy but ejected; zone, load, weight. */
function srv(id: string, kind: 'h' | 'u' | 'd' | 'e' = 'h', o: { zone?: string; estimate?: number; effWeight?: number; util?: number; udp?: boolean } = {}): S {
  const health: Health = kind === 'u' ? 'unhealthy' : kind === 'd' ? 'draining' : 'healthy';
  return {
    id,
    health,
    ejected: kind === 'e',
    zone: o.zone,
    udpPort: o.udp === false ? undefined : 9,
    estimate: o.estimate ?? 0,
    effWeight: o.effWeight ?? 100,
    report: o.util === undefined ? undefined : { utilization: o.util },
    reportW: o.util === undefined ? 0 : 1,
  };
}

/** Servers from a pattern string: "hhuud" → s0 healthy, s1 healthy, s2 unhealthy, … */
const servers = (pattern: string): S[] => [...pattern].map((k, i) => srv(`s${i}`, k as 'h' | 'u' | 'd' | 'e'));
const ids = (xs: readonly S[]) => xs.map((s) => s.id).join(',');

const ZA: ZoneAffinity = { minHealthyShare: 0.5, maxLoadRatio: 1.5, maxUtilization: 0.85 };
const opts = (panicThreshold: number, zone?: string, za: Partial<ZoneAffinity> = {}): ChoiceOptions => ({ panicThreshold, zone, zoneAffinity: { ...ZA, ...za } });

describe('panic', () => {
  const table: [name: string, pattern: string, threshold: number, panic: boolean, candidates: string][] = [
    ['no servers: no panic, nothing to pick', '', 0.5, false, ''],
    ['all healthy', 'hhhh', 0.5, false, 's0,s1,s2,s3'],
    ['threshold 0: some eligible, no panic', 'huuu', 0, false, 's0'],
    ['threshold 0: none eligible, panic (to every server not draining)', 'uuud', 0, true, 's0,s1,s2'],
    ['exactly at the threshold (2 of 4 at 0.5): no panic', 'hhuu', 0.5, false, 's0,s1'],
    ['one below the threshold (1 of 4 at 0.5): panic', 'huuu', 0.5, true, 's0,s1,s2,s3'],
    ['5 of 10 at 0.5: no panic', 'hhhhhuuuuu', 0.5, false, 's0,s1,s2,s3,s4'],
    ['4 of 10 at 0.5: panic', 'hhhhuuuuuu', 0.5, true, 's0,s1,s2,s3,s4,s5,s6,s7,s8,s9'],
    ['ejected servers are not eligible', 'heee', 0.5, true, 's0,s1,s2,s3'],
    ['ejected, under the threshold: out of the set', 'hhhe', 0.5, false, 's0,s1,s2'],
    ['panic leaves out the draining ones', 'hudd', 0.6, true, 's0,s1'],
    ['every server draining: panic picks from all of them', 'dddd', 0.5, true, 's0,s1,s2,s3'],
    ['threshold 1: any ineligible server is panic', 'hhhu', 1, true, 's0,s1,s2,s3'],
  ];
  it.each(table)('%s', (_name, pattern, threshold, panic, candidates) => {
    const all = servers(pattern);
    const set = choiceSet(all, opts(threshold), false);
    expect(set.panic).toBe(panic);
    expect(ids(set.candidates)).toBe(candidates);
    expect(set.zoneLocal).toBe(false);
  });

  it('reads nothing but its inputs: the same inputs give the same set, and the inputs are not changed', () => {
    const all = servers('hhuud');
    const before = JSON.stringify(all);
    const a = choiceSet(all, opts(0.5), false);
    const b = choiceSet(all, opts(0.5), false);
    expect(ids(a.candidates)).toBe(ids(b.candidates));
    expect(a.candidates).not.toBe(all);
    expect(JSON.stringify(all)).toBe(before);
  });
});

describe('zone preference and spill-over', () => {
  // Local zone "a", other zone "b"; load per weight is (estimate + 1) / effWeight summed per zone.
  const z = (id: string, zone: string, estimate = 0, kind: 'h' | 'u' | 'e' = 'h', extra: { util?: number; effWeight?: number } = {}) => srv(id, kind, { zone, estimate, ...extra });
  const table: [name: string, all: S[], zoneLocal: boolean, za: Partial<ZoneAffinity>, local: boolean][] = [
    ['balanced zones: stay local', [z('a1', 'a'), z('a2', 'a'), z('b1', 'b'), z('b2', 'b')], false, {}, true],
    ['no other zone eligible: local', [z('a1', 'a', 50), z('b1', 'b', 0, 'u')], false, {}, true],
    ['no local server eligible: spill', [z('a1', 'a', 0, 'u'), z('b1', 'b')], true, {}, false],
    ['no local server at all: spill', [z('b1', 'b'), z('b2', 'b')], true, {}, false],
    ['half the local zone eligible (= minHealthyShare): local', [z('a1', 'a'), z('a2', 'a', 0, 'u'), z('b1', 'b')], false, {}, true],
    ['under minHealthyShare: spill', [z('a1', 'a'), z('a2', 'a', 0, 'u'), z('a3', 'a', 0, 'e'), z('b1', 'b')], true, {}, false],
    // local 4/100 per weight vs other 1/100: ratio 4 > 1.5
    ['local overloaded beyond maxLoadRatio: spill', [z('a1', 'a', 3), z('b1', 'b', 0)], true, {}, false],
    // estimate 0.4 vs 0: load per weight 1.4 vs 1, a ratio of 1.4: ≤ 1.5 while local, > 0.8 × 1.5 once spilled
    ['ratio 1.4, already local: stays local', [z('a1', 'a', 0.4), z('b1', 'b', 0)], true, {}, true],
    ['ratio 1.4, spilled: stays spilled (comes back under 0.8 × 1.5)', [z('a1', 'a', 0.4), z('b1', 'b', 0)], false, {}, false],
    ['ratio 1.1, spilled: comes back', [z('a1', 'a', 0.1), z('b1', 'b', 0)], false, {}, true],
    ['weights count: twice the load on twice the weight is balanced', [z('a1', 'a', 1, 'h', { effWeight: 200 }), z('b1', 'b', 0)], false, {}, true],
    ['utilization at maxUtilization: spill', [z('a1', 'a', 0, 'h', { util: 0.85 }), z('b1', 'b')], true, {}, false],
    ['utilization 0.8, local: stays (under 0.85)', [z('a1', 'a', 0, 'h', { util: 0.8 }), z('b1', 'b')], true, {}, true],
    ['utilization 0.8, spilled: stays spilled (over 0.9 × 0.85)', [z('a1', 'a', 0, 'h', { util: 0.8 }), z('b1', 'b')], false, {}, false],
    ['a larger maxLoadRatio keeps an overloaded zone local', [z('a1', 'a', 3), z('b1', 'b', 0)], true, { maxLoadRatio: 5 }, true],
  ];
  it.each(table)('%s', (_name, all, zoneLocal, za, local) => {
    expect(preferLocalZone(all, 'a', { ...ZA, ...za }, zoneLocal)).toBe(local);
    const set = choiceSet(all, opts(0, 'a', za), zoneLocal);
    expect(set.zoneLocal).toBe(local);
    const eligible = all.filter((s) => s.health === 'healthy' && !s.ejected);
    expect(ids(set.candidates)).toBe(ids(local ? eligible.filter((s) => s.zone === 'a') : eligible));
  });

  it('no zone set: every eligible server, whatever their zones', () => {
    const all = [z('a1', 'a'), z('b1', 'b')];
    expect(choiceSet(all, opts(0), true)).toEqual({ candidates: all, panic: false, zoneLocal: false });
  });

  it('panic turns zone preference off: picks go to every server not draining, in every zone', () => {
    const all = [z('a1', 'a'), z('a2', 'a', 0, 'u'), z('b1', 'b', 0, 'u'), z('b2', 'b', 0, 'u')];
    expect(preferLocalZone(all, 'a', ZA, false)).toBe(true); // the zone rule alone would stay local
    const set = choiceSet(all, opts(0.5, 'a'), true);
    expect(set).toMatchObject({ panic: true, zoneLocal: false });
    expect(ids(set.candidates)).toBe('a1,a2,b1,b2');
  });
});

describe('the datagram set', () => {
  const u = (id: string, kind: 'h' | 'u' | 'd' = 'h', udp = true, zone?: string) => srv(id, kind, { udp, zone });
  it('every candidate has a UDP port: the candidates themselves (same array)', () => {
    const c = [u('a'), u('b')];
    expect(udpChoiceSet(c, c)).toBe(c);
  });
  it('some have: those', () => {
    const c = [u('a', 'h', false), u('b')];
    expect(ids(udpChoiceSet(c, c))).toBe('b');
  });
  it('no candidate has one: eligible UDP servers outside the set (other zones), else any not draining', () => {
    const c = [u('a', 'h', false, 'z')];
    expect(ids(udpChoiceSet(c, [...c, u('b', 'h', true, 'y'), u('c', 'u', true, 'y')]))).toBe('b');
    expect(ids(udpChoiceSet(c, [...c, u('c', 'u'), u('d', 'd')]))).toBe('c');
    expect(ids(udpChoiceSet(c, [...c, u('d', 'd')]))).toBe('');
  });
});

describe('through the balancer', () => {
  it('in panic with a zone set, ticks neither rebuild nor emit changes (they did on every tick)', async () => {
    const { b, clock } = balancer([rec('a1', { zone: 'a' }), rec('a2', { zone: 'a', health: 'unhealthy' }), rec('b1', { zone: 'b', health: 'unhealthy' }), rec('b2', { zone: 'b', health: 'unhealthy' })], { zone: 'a', panicThreshold: 0.5 });
    expect(b.panic).toBe(true);
    await Promise.resolve();
    let changes = 0;
    b.on('change', () => changes++);
    const v = b.version;
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      await Promise.resolve();
    }
    expect(b.version - v).toBe(0);
    expect(changes).toBe(0);
    // Out of panic, the zone rule applies again: a1 alone takes the picks.
    b.upsert(rec('b1', { zone: 'b' }));
    b.upsert(rec('b2', { zone: 'b' }));
    expect(b.panic).toBe(false);
    expect(b.zoneLocal).toBe(true);
    for (let i = 0; i < 10; i++) expect(b.pick(-1)!.id).toBe('a1');
    b.close();
  });

  it('a zone spill decided by load is followed on the next tick', () => {
    const load = (connections: number) => ({ connections, sessions: 0, utilization: 0.1, seq: 1, ageMs: 0 });
    const { b, clock } = balancer([rec('a1', { zone: 'a' }), rec('b1', { zone: 'b' })], { zone: 'a' });
    expect(b.zoneLocal).toBe(true);
    b.upsert(rec('a1', { zone: 'a', load: load(10) })); // load only: no rebuild yet
    expect(b.zoneLocal).toBe(true);
    clock.advance(100);
    expect(b.zoneLocal).toBe(false);
    b.close();
  });
});
