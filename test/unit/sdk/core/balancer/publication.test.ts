/**
 * Picker publication (sdk/core/balancer/publication.ts): a picker per published choice set, the
 * ring for keyed picks, the datagram pickers of a mixed view, failover picks.
 */
import { describe, expect, it } from 'vitest';
import { Publication } from '../../../../../sdk/core/balancer/publication.js';
import { XorShiftRandom } from '../../../../../sdk/core/random.js';
import { state } from './fixtures.js';

const pub = (strategy: 'round-robin' | 'consistent-hash' | 'p2c' = 'round-robin') => new Publication(strategy, { random: new XorShiftRandom(3) });

describe('Publication', () => {
  it('nothing published: no server; each publication bumps the version and replaces the picker', () => {
    const p = pub();
    expect(p.pick(-1)).toBeUndefined();
    expect(p.pick(5)).toBeUndefined();
    expect(p.pickUdp(-1)).toBeUndefined();
    const a = state('a');
    p.publish([a], [a]);
    expect(p.version).toBe(1);
    expect(p.pick(-1)).toBe(a);
    const b = state('b');
    p.publish([b], [a, b]);
    expect(p.version).toBe(2);
    expect(p.pick(-1)).toBe(b);
    expect(p.pick(12345)).toBe(b); // the ring is rebuilt too
  });

  it('a key goes through the hash ring whatever the strategy: the same key, the same server', () => {
    const all = ['a', 'b', 'c', 'd'].map((id) => state(id));
    for (const strategy of ['round-robin', 'p2c', 'consistent-hash'] as const) {
      const p = pub(strategy);
      p.publish(all, all);
      for (let h = 0; h < 2 ** 32; h += 2 ** 28) expect(p.pick(h)).toBe(p.pick(h));
    }
  });

  it('datagrams: the candidates with a UDP port only, with the same key’s server when it has one', () => {
    const tcpOnly = state('t', { udpPort: undefined });
    const all = [tcpOnly, state('u1'), state('u2')];
    const p = pub();
    p.publish(all, all);
    for (let i = 0; i < 30; i++) expect(p.pickUdp(-1)).not.toBe(tcpOnly);
    for (let h = 0; h < 2 ** 32; h += 2 ** 27) {
      const s = p.pick(h)!;
      if (s !== tcpOnly) expect(p.pickUdp(h)).toBe(s);
    }
  });

  it('pickExcluding: never a server tried, then the least loaded untried, then any not draining; none left: undefined', () => {
    const a = state('a', {}, { expected: 5 });
    const b = state('b', {}, { expected: 1 });
    const c = state('c', { health: 'draining' });
    const d = state('d', { health: 'unhealthy' }, { expected: 9 });
    const p = pub();
    p.publish([a, b], [a, b, c, d]);
    for (let i = 0; i < 20; i++) expect(p.pickExcluding(-1, new Set([a]))).toBe(b);
    expect(p.pickExcluding(-1, new Set([a, b]))).toBe(d);
    expect(p.pickExcluding(-1, new Set([a, b, d]))).toBeUndefined();
  });
});
