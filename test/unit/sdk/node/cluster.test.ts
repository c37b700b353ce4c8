/**
 * In Node, `peerlb/sdk`'s Cluster is still a Node EventEmitter (the core has its own emitter, for
 * browsers): instanceof, the statics, the MaxListenersExceededWarning, once-then-on of one function.
 * A static list: no sockets.
 */
import { EventEmitter, errorMonitor } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { join, Cluster } from '../../../../sdk/index.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('peerlb/sdk Cluster is a Node EventEmitter', () => {
  it('instanceof EventEmitter, with its statics and its max-listeners warning', async () => {
    cluster = await join({ service: 'game', discovery: { servers: ['127.0.0.1:7000'] } });
    expect(cluster).toBeInstanceOf(EventEmitter);
    const statics = Cluster as unknown as typeof EventEmitter; // inherited at run time (the .d.ts does not list Node's statics)
    expect(statics.errorMonitor).toBe(errorMonitor);
    expect(statics.defaultMaxListeners).toBe(EventEmitter.defaultMaxListeners);
    expect(typeof statics.once).toBe('function');

    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      cluster.setMaxListeners(1);
      cluster.on('change', () => undefined);
      cluster.on('change', () => undefined);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toContain('MaxListenersExceededWarning');
  });

  it('once then on with the same function: the once goes, the on stays', async () => {
    cluster = await join({ service: 'game', discovery: { servers: ['127.0.0.1:7000'] } });
    let n = 0;
    const f = () => void n++;
    cluster.once('panic', f);
    cluster.on('panic', f);
    cluster.emit('panic', true);
    cluster.emit('panic', false);
    expect(n).toBe(3);
    expect(cluster.listenerCount('panic')).toBe(1);
  });
});
