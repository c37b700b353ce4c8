/**
 * Every picker keeps its own scratch (round-robin position, smooth WRR's current weights, the
 * rotating start of the scans): two pickers of a strategy over the same servers, interleaved,
 * each give the sequence a lone picker gives. The balancer runs several at once (the TCP picker,
 * the datagram picker of a mixed view, the ring for keys).
 */
import { describe, expect, it } from 'vitest';
import { STRATEGY_NAMES, STRATEGIES } from '../../../../../sdk/core/pickers/index.js';
import { XorShiftRandom } from '../../../../../sdk/core/random.js';
import { ServerState } from '../../../../../sdk/core/server.js';

const servers = () =>
  Array.from({ length: 7 }, (_, i) => {
    const s = new ServerState({ id: `s${i}`, service: 'game', host: '127.0.0.1', tcpPort: 1, udpPort: 1, weight: 50 + 40 * i, health: 'healthy' });
    s.expected = s.estimate = (i * 3) % 5;
    s.rtt = 1 + (i % 3);
    return s;
  });

describe('pickers keep their own scratch', () => {
  it.each(STRATEGY_NAMES)('%s: two pickers interleaved pick as each alone would', (name) => {
    const all = servers();
    const make = () => STRATEGIES[name](all, { random: new XorShiftRandom(11) });
    const alone = make();
    const expected = Array.from({ length: 60 }, (_, i) => alone.pick(i % 3 === 0 ? -1 : i * 7919)!.id);
    const x = make();
    const y = make();
    const gotX: string[] = [];
    const gotY: string[] = [];
    for (let i = 0; i < 60; i++) {
      const h = i % 3 === 0 ? -1 : i * 7919;
      gotX.push(x.pick(h)!.id);
      gotY.push(y.pick(h)!.id);
    }
    expect(gotX).toEqual(expected);
    expect(gotY).toEqual(expected);
  });

  it('a picker copies its list: the caller’s array changing later does not move it', () => {
    const all = servers();
    const p = STRATEGIES['round-robin'](all, { random: new XorShiftRandom(1) });
    const first = p.pick(-1);
    all.length = 0;
    expect(first).toBeDefined();
    expect(p.pick(-1)).toBeDefined();
  });
});
