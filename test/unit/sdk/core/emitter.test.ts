/**
 * sdk/core/emitter.ts behaves as Node's EventEmitter where the SDK's users can tell: the order of
 * listeners (prepend, once), `newListener` before the listener is added, an unheard 'error'
 * thrown, listeners removed or added while emitting, and `events.once` from node:events working on
 * it. Each scenario runs on both emitters and must record the same thing.
 */
import { EventEmitter, once as eventsOnce } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Emitter } from '../../../../sdk/core/emitter.js';

type Any = {
  on(e: string, f: (...a: any[]) => void): unknown;
  once(e: string, f: (...a: any[]) => void): unknown;
  off(e: string, f: (...a: any[]) => void): unknown;
  prependListener(e: string, f: (...a: any[]) => void): unknown;
  prependOnceListener(e: string, f: (...a: any[]) => void): unknown;
  removeListener(e: string, f: (...a: any[]) => void): unknown;
  removeAllListeners(e?: string): unknown;
  emit(e: string, ...a: any[]): boolean;
  listenerCount(e: string): number;
  listeners(e: string): unknown[];
  eventNames(): (string | symbol)[];
};

/** Run `scenario` on a Node EventEmitter and on an Emitter; both logs must be equal (and not empty). */
function same(scenario: (e: Any, log: unknown[]) => void): unknown[] {
  const a: unknown[] = [];
  const b: unknown[] = [];
  scenario(new EventEmitter() as unknown as Any, a);
  scenario(new Emitter() as unknown as Any, b);
  expect(a.length).toBeGreaterThan(0);
  expect(b).toEqual(a);
  return b;
}

describe('Emitter: the semantics of Node’s EventEmitter', () => {
  it('listeners run in order with their arguments and `this`; emit says whether any ran', () => {
    const log = same((e, log) => {
      log.push(e.emit('x', 1));
      e.on('x', function (this: unknown, a: number, b: number) {
        log.push(['first', a, b, this === e]);
      });
      e.on('x', (a: number) => log.push(['second', a]));
      log.push(e.emit('x', 1, 2));
      log.push(e.listenerCount('x'), e.eventNames());
    });
    expect(log).toEqual([false, ['first', 1, 2, true], ['second', 1], true, 2, ['x']]);
  });

  it('once runs once; prependListener and prependOnceListener go first', () => {
    const log = same((e, log) => {
      e.on('x', () => log.push('on'));
      e.once('x', () => log.push('once'));
      e.prependListener('x', () => log.push('prepend'));
      e.prependOnceListener('x', () => log.push('prependOnce'));
      e.emit('x');
      e.emit('x');
      log.push(e.listenerCount('x'));
    });
    expect(log).toEqual(['prependOnce', 'prepend', 'on', 'once', 'prepend', 'on', 2]);
  });

  it('newListener is emitted before the listener is added (a listener added there runs first); removeListener after removal', () => {
    const log = same((e, log) => {
      let added = false;
      e.on('newListener', (event: string, fn: unknown) => {
        log.push(['new', event, typeof fn, e.listenerCount(event)]);
        if (event === 'x' && !added) {
          added = true;
          e.on('x', () => log.push('added in newListener'));
        }
      });
      e.on('removeListener', (event: string) => log.push(['removed', event, e.listenerCount(event)]));
      const f = () => log.push('f');
      e.on('x', f);
      e.emit('x');
      e.off('x', f);
      e.emit('x');
    });
    expect(log).toContainEqual(['removed', 'x', 1]);
    expect(log.indexOf('added in newListener')).toBeLessThan(log.indexOf('f'));
  });

  it('an error event with no listener is thrown (an Error as it is, anything else wrapped); with one it is delivered', () => {
    for (const make of [() => new EventEmitter(), () => new Emitter()]) {
      const e = make() as unknown as Any;
      const err = new Error('boom');
      expect(() => e.emit('error', err)).toThrow(err);
      expect(() => e.emit('error', 'text')).toThrow(/Unhandled error/);
      const got: unknown[] = [];
      e.on('error', (x: unknown) => got.push(x));
      expect(e.emit('error', err)).toBe(true);
      expect(got).toEqual([err]);
    }
  });

  it('removing or adding listeners during an emit affects the next emit only', () => {
    same((e, log) => {
      const b = () => log.push('b');
      e.on('x', () => {
        log.push('a');
        e.off('x', b);
        e.on('x', () => log.push('late'));
      });
      e.on('x', b);
      e.emit('x');
      log.push('--');
      e.emit('x');
    });
  });

  it('a once listener removed before its event never runs; removeListener takes the last registration of a listener', () => {
    same((e, log) => {
      const f = () => log.push('f');
      e.once('x', f);
      e.off('x', f);
      log.push(e.emit('x'));
      const g = (n: string) => () => log.push(n);
      const h = g('h');
      e.on('y', h);
      e.on('y', g('other'));
      e.on('y', h);
      e.removeListener('y', h);
      e.emit('y');
      log.push(e.listenerCount('y'));
      e.removeAllListeners('y');
      log.push(e.listenerCount('y'), e.emit('y'));
    });
  });

  it('events.once from node:events resolves with the arguments, and rejects on error', async () => {
    const e = new Emitter<{ change: [n: number, s: string]; error: [Error] }>();
    const p = eventsOnce(e as never, 'change');
    e.emit('change', 7, 'x');
    await expect(p).resolves.toEqual([7, 'x']);
    expect(e.listenerCount('change')).toBe(0);
    const q = eventsOnce(e as never, 'change');
    const err = new Error('bad');
    e.emit('error', err);
    await expect(q).rejects.toBe(err);
    expect(e.listenerCount('change')).toBe(0);
    expect(e.listenerCount('error')).toBe(0);
  });

  it('a listener that is not a function is a TypeError', () => {
    expect(() => new Emitter().on('x', 42 as never)).toThrow(TypeError);
  });

  it("an async listener's rejection goes to the captureRejectionSymbol handler, as Node's with captureRejections", async () => {
    for (const e of [new EventEmitter({ captureRejections: true }), new Emitter()]) {
      const seen: unknown[][] = [];
      (e as unknown as Record<symbol, unknown>)[EventEmitter.captureRejectionSymbol] = (...a: unknown[]) => void seen.push(a);
      const err = new Error('async');
      e.on('change', async () => {
        throw err;
      });
      e.emit('change', 1);
      await new Promise((r) => setImmediate(r));
      expect(seen).toEqual([[err, 'change', 1]]);
    }
  });

  it('a once that fires removes itself, not a later on() of the same function', () => {
    for (const e of [new EventEmitter(), new Emitter()]) {
      const calls: number[] = [];
      let n = 0;
      const f = () => void n++;
      e.once('x', f);
      e.on('x', f);
      for (let i = 0; i < 3; i++) {
        n = 0;
        e.emit('x');
        calls.push(n);
      }
      expect(calls).toEqual([2, 1, 1]);
      expect(e.listenerCount('x')).toBe(1);
    }
  });
});
