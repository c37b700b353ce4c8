/**
 * MdnsAnnouncer.stop() on a ManualClock: the goodbye's send wait (GOODBYE_SEND_TIMEOUT_MS) is a
 * timer of the injected clock, so a socket that never confirms a send holds stop() until the clock
 * is advanced, not for a second of real time. No sockets: a stub link that records packets.
 */
import { describe, expect, it } from 'vitest';
import type { Packet } from 'dns-packet';
import { ManualClock } from '../../../../sdk/core/clock.js';
import type { MdnsSocket } from '../../../../sdk/mdns/socket.js';
import { AnnouncerState, GOODBYE_SEND_TIMEOUT_MS, MdnsAnnouncer } from '../../../../agent/mdns/announcer.js';

const fixed = (v: number) => ({ next: () => v, int: (n: number) => Math.floor(v * n) });
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A link that takes every packet and never calls the send callback. */
function silentLink() {
  const sent: Packet[] = [];
  const sock: MdnsSocket = {
    on: () => undefined,
    removeListener: () => undefined,
    send: (p) => void sent.push(p),
    destroy: (cb) => cb?.(),
  };
  return { sock, sent };
}

describe('MdnsAnnouncer on the injected clock', () => {
  it('stop(): the goodbye goes at once; stop resolves when the clock passes GOODBYE_SEND_TIMEOUT_MS though the socket never confirms', async () => {
    const clock = new ManualClock();
    const link = silentLink();
    const a = new MdnsAnnouncer({
      info: { node: 'n1', service: 'game', host: '10.0.0.5', agentPort: 7946, udpPort: 7001, weight: 100, health: 'healthy', loadBucket: 0 },
      interface: '127.0.0.1',
      mdns: link.sock,
      clock,
      random: fixed(0.5),
    });
    const started = a.start();
    clock.advance(2000); // probes (§8.1) and the first announcement
    await started;
    clock.advance(1000); // the second announcement (§8.3)
    expect(a.state).toBe(AnnouncerState.Announced);

    const before = link.sent.length;
    let stopped = false;
    void a.stop().then(() => (stopped = true));
    const goodbye = link.sent.slice(before);
    expect(goodbye).toHaveLength(1);
    expect(goodbye[0]!.answers!.every((rr) => (rr as { ttl?: number }).ttl === 0)).toBe(true);
    clock.advance(GOODBYE_SEND_TIMEOUT_MS - 1);
    await flush();
    expect(stopped).toBe(false);
    clock.advance(1);
    await flush();
    expect(stopped).toBe(true);
    expect(a.state).toBe(AnnouncerState.Stopped);
    expect(clock.pending()).toBe(0);
  });
});
