/**
 * The mDNS link's waits (sdk/mdns/socket.ts) on a ManualClock: waitReady's timeout and
 * closeSocket's give-up both fire when the clock is advanced, not after real time. No sockets.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { CLOSE_TIMEOUT_MS, closeSocket, waitReady, type MdnsSocket } from '../../../../sdk/mdns/socket.js';

/** A socket that never becomes ready and, unless told, never says it closed. */
function stuckSocket(closes = false) {
  const listeners = new Map<string, Set<(...a: any[]) => void>>();
  let destroyed = 0;
  const sock: MdnsSocket = {
    on: (e, fn) => listeners.set(e, (listeners.get(e) ?? new Set()).add(fn)),
    removeListener: (e, fn) => listeners.get(e)?.delete(fn),
    send: () => {},
    destroy: (cb) => {
      destroyed++;
      if (closes) queueMicrotask(() => cb?.());
    },
  };
  const emit = (e: string, ...a: unknown[]) => {
    for (const fn of [...(listeners.get(e) ?? [])]) fn(...a);
  };
  return { sock, emit, destroyed: () => destroyed, count: (e: string) => listeners.get(e)?.size ?? 0 };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

describe('waitReady on the injected clock', () => {
  it('rejects when the clock passes the timeout, not before; removes its listeners', async () => {
    const clock = new ManualClock();
    const s = stuckSocket();
    let outcome: string | undefined;
    waitReady(s.sock, 5000, clock).then(
      () => (outcome = 'ready'),
      (e: Error) => (outcome = e.message),
    );
    clock.advance(4999);
    await flush();
    expect(outcome).toBeUndefined();
    clock.advance(1);
    await flush();
    expect(outcome).toMatch(/not ready after 5000 ms/);
    expect(s.count('ready') + s.count('error')).toBe(0);
  });

  it('resolves on ready and cancels its timer', async () => {
    const clock = new ManualClock();
    const s = stuckSocket();
    const p = waitReady(s.sock, 5000, clock);
    expect(clock.pending()).toBe(1);
    s.emit('ready');
    await expect(p).resolves.toBeUndefined();
    expect(clock.pending()).toBe(0);
  });

  it('rejects with the bind error', async () => {
    const clock = new ManualClock();
    const s = stuckSocket();
    const p = waitReady(s.sock, 5000, clock);
    s.emit('error', new Error('EADDRINUSE'));
    await expect(p).rejects.toThrow('EADDRINUSE');
    expect(clock.pending()).toBe(0);
  });
});

describe('closeSocket on the injected clock', () => {
  it('a socket that never says it closed: resolves when the clock passes CLOSE_TIMEOUT_MS', async () => {
    const clock = new ManualClock();
    const s = stuckSocket(false);
    let done = false;
    void closeSocket(s.sock, clock).then(() => (done = true));
    expect(s.destroyed()).toBe(1);
    clock.advance(CLOSE_TIMEOUT_MS - 1);
    await flush();
    expect(done).toBe(false);
    clock.advance(1);
    await flush();
    expect(done).toBe(true);
  });

  it('a socket that closes: resolves at once, its timer cancelled; a late error is swallowed', async () => {
    const clock = new ManualClock();
    const s = stuckSocket(true);
    await closeSocket(s.sock, clock);
    expect(clock.pending()).toBe(0);
    expect(s.count('error')).toBe(1);
    expect(() => s.emit('error', new Error('late'))).not.toThrow();
  });
});
