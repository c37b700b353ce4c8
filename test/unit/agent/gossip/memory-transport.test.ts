import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { MemoryNetwork, type MemoryTransport } from '../../../../agent/gossip/memory-transport.js';

function setup(opts: { delayMs?: number; jitterMs?: number; lossRate?: number } = {}) {
  const clock = new ManualClock();
  const net = new MemoryNetwork({ clock, random: new XorShiftRandom(9), ...opts });
  const got: Record<string, string[]> = {};
  const hints: Record<string, string[]> = {};
  const make = (addr: string): MemoryTransport => {
    const t = net.transport(addr);
    got[addr] = [];
    hints[addr] = [];
    t.onFrame((from, f) => got[addr]!.push(`${from}:${Buffer.from(f).toString()}`));
    t.onPeerClosed((a) => hints[addr]!.push(a));
    return t;
  };
  return { clock, net, got, hints, make };
}

const b = (s: string) => Buffer.from(s);

describe('MemoryNetwork', () => {
  it('delivers after the delay, on the clock, and counts bytes per address', () => {
    const { clock, net, got, make } = setup({ delayMs: 5 });
    const a = make('a');
    make('b');
    a.send('b', b('hello'));
    clock.advance(4);
    expect(got.b).toEqual([]);
    clock.advance(1);
    expect(got.b).toEqual(['a:hello']);
    expect(net.countersOf('a')).toMatchObject({ sentFrames: 1, sentBytes: 5, receivedFrames: 0 });
    expect(net.countersOf('b')).toMatchObject({ receivedFrames: 1, receivedBytes: 5 });
    net.resetCounters();
    expect(net.countersOf('a').sentBytes).toBe(0);
  });

  it('copies frames: the sender may reuse its buffer', () => {
    const { clock, got, make } = setup();
    const a = make('a');
    make('b');
    const buf = b('abc');
    a.send('b', buf);
    buf[0] = 0x7a;
    clock.advance(1);
    expect(got.b).toEqual(['a:abc']);
  });

  it('loses the configured share of frames', () => {
    const { clock, got, make, net } = setup({ lossRate: 0.3 });
    const a = make('a');
    make('b');
    for (let i = 0; i < 2000; i++) a.send('b', b('x'));
    clock.advance(1);
    expect(got.b!.length).toBeGreaterThan(1300);
    expect(got.b!.length).toBeLessThan(1500);
    expect(net.countersOf('a').droppedFrames).toBe(2000 - got.b!.length);
  });

  it('partitions sets of addresses, and heals', () => {
    const { clock, got, make, net } = setup();
    const a = make('a');
    const c = make('c');
    make('b');
    make('d');
    net.partition(['a', 'b'], ['c']);
    a.send('b', b('1'));
    a.send('c', b('2'));
    c.send('a', b('3'));
    a.send('d', b('4')); // d is in no group: reachable
    clock.advance(1);
    expect(got.b).toEqual(['a:1']);
    expect(got.c).toEqual([]);
    expect(got.a).toEqual([]);
    expect(got.d).toEqual(['a:4']);
    net.heal();
    a.send('c', b('5'));
    clock.advance(1);
    expect(got.c).toEqual(['a:5']);
  });

  it('crash: drops its frames, hints the peers it talked to, and hints whoever sends to it', () => {
    const { clock, got, hints, make, net } = setup({ delayMs: 1 });
    const a = make('a');
    const b1 = make('b');
    const c = make('c');
    a.send('b', b('hi'));
    clock.advance(1);
    net.crash('b');
    b1.send('a', b('ghost'));
    clock.advance(1);
    expect(hints.a).toEqual(['b']); // a had a connection with b
    expect(hints.c).toEqual([]); // c never talked to b
    c.send('b', b('anyone?'));
    clock.advance(1);
    expect(hints.c).toEqual(['b']); // connection refused
    expect(got.a).toEqual([]);
    // the process restarts at the same address
    const again = net.transport('b');
    const seen: string[] = [];
    again.onFrame((from, f) => seen.push(`${from}:${Buffer.from(f).toString()}`));
    c.send('b', b('back?'));
    clock.advance(1);
    expect(seen).toEqual(['c:back?']);
  });

  it('silence: frames vanish both ways and nobody gets a hint', () => {
    const { clock, got, hints, make, net } = setup();
    const a = make('a');
    const s = make('s');
    a.send('s', b('1'));
    clock.advance(1);
    net.silence('s');
    a.send('s', b('2'));
    s.send('a', b('3'));
    clock.advance(1);
    expect(got.s).toEqual(['a:1']);
    expect(got.a).toEqual([]);
    expect(hints.a).toEqual([]);
    net.unsilence('s');
    a.send('s', b('4'));
    clock.advance(1);
    expect(got.s).toEqual(['a:1', 'a:4']);
  });

  it('frames in flight to a host that goes silent are lost', () => {
    const { clock, got, make, net } = setup({ delayMs: 10 });
    const a = make('a');
    make('s');
    a.send('s', b('1'));
    clock.advance(5);
    net.silence('s');
    clock.advance(10);
    expect(got.s).toEqual([]);
  });

  it('an address is taken once; close() hints the peers', async () => {
    const { clock, hints, make, net } = setup();
    const a = make('a');
    make('b');
    expect(() => net.transport('a')).toThrow(/already in use/);
    a.send('b', b('x'));
    clock.advance(1);
    await a.close();
    clock.advance(1);
    expect(hints.b).toEqual(['a']);
    expect(() => net.transport('a')).not.toThrow();
  });

  it('jitter reorders but delivers everything', () => {
    const { clock, got, make } = setup({ delayMs: 1, jitterMs: 5 });
    const a = make('a');
    make('b');
    for (let i = 0; i < 50; i++) a.send('b', b(String(i)));
    clock.advance(10);
    expect(got.b!.length).toBe(50);
    const order = got.b!.map((s) => Number(s.split(':')[1]));
    expect(order).not.toEqual([...order].sort((x, y) => x - y));
  });
});
