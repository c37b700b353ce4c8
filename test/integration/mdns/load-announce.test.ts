/**
 * A real agent (startAgent, mDNS on interface 127.0.0.1, on a port of this file's own) whose
 * load comes from host CPU, with the CPU source injected. Another socket on the link counts the
 * agent's TXT announcements. A CPU flickering around a bucket edge must not re-announce; a real
 * change is announced; a CPU swinging wildly is announced at most once per minimum interval.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DecodedPacket } from 'dns-packet';
import { startAgent, type Agent } from '../../../agent/index.js';
import { decodeTxt } from '../../../sdk/mdns/records.js';
import { createMdnsSocket, waitReady } from '../../../sdk/mdns/socket.js';
import { MIN_LOAD_ANNOUNCE_INTERVAL_MS } from '../../../agent/mdns/load-bucket.js';
import { until, sleep } from '../../support/security.js';

const IFACE = '127.0.0.1';
const PORT = 20_000 + Math.floor(Math.random() * 30_000);
const RUN = Math.random().toString(36).slice(2, 7);

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
});

describe('agent TXT load announcements on loopback (CPU source injected)', () => {
  it('flicker around an edge: none; a real change: announced; a wild swing: at most once per interval', async () => {
    const node = `cpu-${RUN}`;
    const instance = `${node}._peerlb._tcp.local`;
    const obs = createMdnsSocket(IFACE, PORT);
    obs.on('error', () => {});
    obs.on('warning', () => {});
    await waitReady(obs);
    closers.push(() => new Promise<void>((r) => obs.destroy(() => r())));
    const seen: [number, number][] = [];
    obs.on('packet', (p: DecodedPacket) => {
      if (p.type !== 'response') return;
      for (const rr of [...(p.answers ?? []), ...(p.additionals ?? [])])
        if (rr.type === 'TXT' && rr.name === instance && (rr.ttl ?? 0) > 0) seen.push([Date.now(), decodeTxt(rr.data as unknown as Buffer[]).loadBucket]);
    });

    let calls = 0;
    // Flips every 100 ms (the load interval): a report sees one figure, the next the other.
    const flip = (a: number, b: number) => () => (Math.floor(Date.now() / 100) % 2 ? a : b);
    let cpu = flip(0.36, 0.34);
    const agent: Agent = await startAgent(
      { service: `l${RUN}`, node, host: '127.0.0.1', port: 0, udpPort: 40_021, gossipProfile: 'local', loadIntervalMs: 100, mdns: { interface: IFACE, port: PORT } },
      { log: false, hostCpu: () => (calls++, cpu()) },
    );
    closers.push(() => agent.stop());
    await until(() => seen.length >= 2, 5000, 'the two announcements of the start (§8.3)');
    await sleep(1200);

    // 1. 34 % / 36 % at every load report (10 a second) for 3 s: no TXT goes out.
    const t1 = seen.length;
    const calls1 = calls;
    await sleep(3000);
    expect(calls - calls1).toBeGreaterThan(10); // the source was read, and flickered
    expect(seen.slice(t1)).toEqual([]);

    // 2. 80 %: announced (twice, §8.4).
    cpu = () => 0.8;
    await until(() => seen.slice(t1).filter(([, l]) => l === 8).length >= 2, 5000, 'the change to 8 announced twice');
    const changedAt = seen.find(([, l]) => l === 8)![0];

    // 3. 10 % / 90 % at every report for 6 s: the bucket changes at most once per interval.
    const t3 = seen.length;
    cpu = flip(0.9, 0.1);
    await sleep(6000);
    const changes = [[changedAt, 8], ...seen.slice(t3)].filter(([, l], i, all) => i === 0 || all[i - 1]![1] !== l);
    // Over 6 s with a 5 s interval: at most two changes after the one to 8 (small slack for timers).
    expect(changes.length - 1).toBeLessThanOrEqual(2);
    for (let i = 1; i < changes.length; i++) expect(changes[i]![0] - changes[i - 1]![0]).toBeGreaterThanOrEqual(MIN_LOAD_ANNOUNCE_INTERVAL_MS - 50);
  }, 30_000);
});
