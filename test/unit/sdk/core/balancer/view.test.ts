/**
 * The view (sdk/core/balancer/view.ts): records onto server states, what is structural, the cap;
 * and through the balancer, batching (one rebuild per snapshot or held burst) and the events.
 */
import { describe, expect, it } from 'vitest';
import { View } from '../../../../../sdk/core/balancer/view.js';
import { LIMITS } from '../../../../../sdk/core/protocol.js';
import { balancer, rec } from './fixtures.js';

describe('View', () => {
  it('upsert: added, then structural for an address, port, weight, zone or health change, same for load or agent only', () => {
    const v = new View();
    expect(v.upsert(rec('a')).result).toBe('added');
    const table: [over: Parameters<typeof rec>[1], result: string, turnedHealthy: boolean][] = [
      [{}, 'same', false],
      [{ agent: 'x', load: { connections: 1, sessions: 0, utilization: 0, seq: 1, ageMs: 0 } }, 'same', false],
      [{ host: '127.0.0.2' }, 'structural', false],
      [{ tcpPort: 2 }, 'structural', false],
      [{ udpPort: undefined }, 'structural', false],
      [{ weight: 5 }, 'structural', false],
      [{ zone: 'z' }, 'structural', false],
      [{ health: 'unhealthy' }, 'structural', false],
      [{}, 'structural', true], // unhealthy → healthy
      [{ health: 'draining' }, 'structural', false],
    ];
    for (const [over, result, turnedHealthy] of table) {
      const got = v.upsert(rec('a', over));
      expect(got, JSON.stringify(over)).toMatchObject({ result, turnedHealthy });
      expect(got.s).toBe(v.get('a'));
    }
    expect(v.get('a')!.agent).toBe('x'); // a record without an agent keeps the one known
  });

  it('refuses new servers past LIMITS.maxServers, reports that once until it is below the cap again', () => {
    const v = new View();
    for (let i = 0; i < LIMITS.maxServers; i++) v.upsert(rec(`s${i}`));
    expect(v.upsert(rec('one-more'))).toMatchObject({ s: undefined, result: 'refused' });
    expect(v.refusal()).toBe(true);
    expect(v.refusal()).toBe(false);
    expect(v.upsert(rec('s0', { weight: 1 })).result).toBe('structural'); // known ones still update
    expect(v.remove('s0')).toBe(true);
    expect(v.remove('s0')).toBe(false);
    expect(v.upsert(rec('one-more')).result).toBe('added');
    expect(v.upsert(rec('two-more')).result).toBe('refused');
    expect(v.refusal()).toBe(true);
  });

  it('retain and snapshot: the order servers came in, with their indexes', () => {
    const v = new View();
    for (const id of ['a', 'b', 'c', 'd']) v.upsert(rec(id));
    expect(v.retain(new Set(['a', 'b', 'c', 'd']))).toBe(false);
    expect(v.retain(new Set(['d', 'b']))).toBe(true);
    const all = v.snapshot();
    expect(all.map((s) => `${s.id}@${s.index}`)).toEqual(['b@0', 'd@1']);
    expect(v.all).toBe(all);
  });
});

describe('through the balancer', () => {
  it('a snapshot is one rebuild; a burst under hold() is one rebuild at the end of the task', async () => {
    const { b } = balancer([]);
    const v0 = b.version;
    b.reset(Array.from({ length: 50 }, (_, i) => rec(`s${i}`)));
    expect(b.version - v0).toBe(1);
    b.hold();
    for (let i = 0; i < 20; i++) b.upsert(rec(`t${i}`));
    b.remove('s0');
    expect(b.version - v0).toBe(1);
    expect(b.size).toBe(69); // a read in between rebuilds first
    expect(b.version - v0).toBe(2);
    b.upsert(rec('u'));
    await Promise.resolve();
    expect(b.version - v0).toBe(3);
    b.close();
  });

  it('change events are coalesced per microtask; a refusal is an error event, once', async () => {
    const { b } = balancer([]);
    let changes = 0;
    const errors: string[] = [];
    b.on('change', () => changes++);
    b.on('error', (e) => errors.push((e as { code?: string }).code ?? e.message));
    b.upsert(rec('a'));
    b.upsert(rec('b'));
    b.upsert(rec('a', { load: { connections: 1, sessions: 0, utilization: 0, seq: 1, ageMs: 0 } }));
    await Promise.resolve();
    expect(changes).toBe(1);
    b.reset(Array.from({ length: LIMITS.maxServers + 2 }, (_, i) => rec(`s${i}`)));
    b.reset(Array.from({ length: LIMITS.maxServers + 2 }, (_, i) => rec(`s${i}`)));
    expect(errors).toEqual(['PEERLB_ERR_LIMIT']);
    expect(b.size).toBe(LIMITS.maxServers);
    b.close();
  });

  it('panic events when the share of eligible servers crosses the threshold', () => {
    const { b } = balancer([rec('a'), rec('b'), rec('c'), rec('d')], { panicThreshold: 0.5 });
    const ev: boolean[] = [];
    b.on('panic', (p) => ev.push(p));
    b.upsert(rec('a', { health: 'unhealthy' }));
    b.upsert(rec('b', { health: 'unhealthy' }));
    expect(b.panic).toBe(false);
    b.upsert(rec('c', { health: 'unhealthy' }));
    expect(b.panic).toBe(true);
    b.upsert(rec('c'));
    expect(ev).toEqual([true, false]);
    b.close();
  });
});
