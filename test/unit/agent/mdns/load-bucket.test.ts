/**
 * The TXT load figure: hysteresis and the minimum interval (agent/mdns/load-bucket.ts), as pure
 * functions (tables) and in the announcer on a ManualClock over the in-memory link, counted in
 * packets: a load flickering around a bucket edge re-announces nothing; a real change goes out,
 * and further load-only changes at most once per MIN_LOAD_ANNOUNCE_INTERVAL_MS; anything else
 * that changes still goes out at once.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { AnnouncerState, MdnsAnnouncer } from '../../../../agent/mdns/announcer.js';
import { decodeTxt, type AnnounceInfo } from '../../../../sdk/mdns/records.js';
import { loadBucketOf, loadChangeWait, nextLoadBucket, MIN_LOAD_ANNOUNCE_INTERVAL_MS } from '../../../../agent/mdns/load-bucket.js';
import { FakeMdnsNet, fixedRandom } from '../../../support/fake-mdns.js';

describe('load bucket: hysteresis and interval (pure)', () => {
  it('nextLoadBucket keeps the bucket within one tenth of its middle, and rounds beyond', () => {
    const table: [number | undefined, number, number][] = [
      // [announced, utilization, next]
      [undefined, 0.34, 3],
      [undefined, 0.36, 4],
      [3, 0.36, 3],
      [3, 0.39, 3],
      [3, 0.4, 3],
      [3, 0.41, 4],
      [3, 0.45, 5],
      [3, 0.21, 3],
      [3, 0.2, 3],
      [3, 0.19, 2],
      [4, 0.34, 4],
      [4, 0.3, 4],
      [4, 0.29, 3],
      [0, 0.09, 0],
      [0, 0.11, 1],
      [10, 0.91, 10],
      [10, 0.89, 9],
      [0, 1.7, 10],
      [5, -1, 0],
      [5, Number.NaN, 0],
    ];
    for (const [cur, u, next] of table) expect([cur, u, nextLoadBucket(cur, u)]).toEqual([cur, u, next]);
    expect(loadBucketOf(0.35)).toBe(4);
    expect(loadBucketOf(2)).toBe(10);
  });

  it('loadChangeWait: never before, at once; within the interval, the rest of it', () => {
    expect(loadChangeWait(1000, -Infinity)).toBe(0);
    expect(loadChangeWait(1000, 0)).toBe(MIN_LOAD_ANNOUNCE_INTERVAL_MS - 1000);
    expect(loadChangeWait(MIN_LOAD_ANNOUNCE_INTERVAL_MS, 0)).toBe(0);
    expect(loadChangeWait(MIN_LOAD_ANNOUNCE_INTERVAL_MS + 1, 0)).toBe(0);
  });
});

const INFO: AnnounceInfo = { node: 'x', service: 'game', host: '10.0.0.1', agentPort: 7946, udpPort: 7001, weight: 100, health: 'healthy', loadBucket: 0 };
/** What the agent passes: the rounded bucket and the figure it comes from (agent/index.ts announceInfo). */
const at = (u: number, over: Partial<AnnounceInfo> = {}): AnnounceInfo => ({ ...INFO, loadBucket: Math.round(u * 10), utilization: u, ...over });

async function setup() {
  const clock = new ManualClock(0);
  const net = new FakeMdnsNet(clock);
  const a = new MdnsAnnouncer({ info: at(0.34), interface: '127.0.0.1', mdns: net.socket('10.0.0.1'), clock, random: fixedRandom(0.5) });
  const p = a.start();
  clock.advance(3000);
  await p;
  expect(a.state).toBe(AnnouncerState.Announced);
  /** [time, load] of every response from the announcer carrying the instance's TXT, after `t`. */
  const txts = (t: number) =>
    net
      .sentBy('10.0.0.1', 'response')
      .filter((s) => s.at >= t)
      .flatMap((s) => [...s.packet.answers, ...s.packet.additionals].filter((rr) => rr.type === 'TXT' && rr.name === 'x._peerlb._tcp.local' && (rr.ttl ?? 0) > 0).map((rr) => [s.at, decodeTxt((rr as { data: Buffer[] }).data).loadBucket]));
  return { clock, a, txts };
}

describe('MdnsAnnouncer: the TXT load figure with hysteresis and a minimum interval', () => {
  it('a load flickering around a bucket edge (34 % / 36 %, a report every 100 ms for 20 s) re-announces nothing', async () => {
    const { clock, a, txts } = await setup();
    const t0 = clock.now();
    for (let k = 0; k < 200; k++) {
      a.update(at(k % 2 ? 0.36 : 0.34));
      clock.advance(100);
    }
    expect(txts(t0)).toEqual([]);
    await a.stop();
  });

  it('a real change goes out at once (twice, §8.4); the next load-only change waits out the interval and is judged then', async () => {
    const { clock, a, txts } = await setup();
    const t0 = clock.now();
    a.update(at(0.8));
    clock.advance(1500);
    expect(txts(t0)).toEqual([
      [t0, 8],
      [t0 + 1000, 8],
    ]);
    // 2 s later: 20 %. Held back until 5 s after the last change…
    clock.advance(500);
    a.update(at(0.2));
    clock.advance(MIN_LOAD_ANNOUNCE_INTERVAL_MS - 2000 - 1);
    expect(txts(t0).map(([, l]) => l)).toEqual([8, 8]);
    // …then the latest figure goes out (it is 25 % by then: bucket 3, no hysteresis issue from 8).
    a.update(at(0.25));
    clock.advance(1);
    clock.advance(1500);
    expect(txts(t0)).toEqual([
      [t0, 8],
      [t0 + 1000, 8],
      [t0 + MIN_LOAD_ANNOUNCE_INTERVAL_MS, 3],
      [t0 + MIN_LOAD_ANNOUNCE_INTERVAL_MS + 1000, 3],
    ]);
    // A load that swings 10 % ↔ 90 % at every report for 20 s: at most one change per interval.
    const t1 = clock.now();
    for (let k = 0; k < 200; k++) {
      a.update(at(k % 2 ? 0.9 : 0.1));
      clock.advance(100);
    }
    const changes = txts(t1).filter(([, l], i, all) => i === 0 || all[i - 1]![1] !== l);
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.length).toBeLessThanOrEqual(Math.ceil(20_000 / MIN_LOAD_ANNOUNCE_INTERVAL_MS) + 1);
    for (let i = 1; i < changes.length; i++) expect(changes[i]![0] - changes[i - 1]![0]).toBeGreaterThanOrEqual(MIN_LOAD_ANNOUNCE_INTERVAL_MS);
    await a.stop();
  });

  it('a health change goes out at once, with the load figure of the moment, interval or not', async () => {
    const { clock, a, txts } = await setup();
    const t0 = clock.now();
    a.update(at(0.8));
    clock.advance(2500); // past the §6 second after the 2nd announcement of 8, within the load interval
    a.update(at(0.2, { health: 'draining' }));
    clock.advance(0);
    const last = txts(t0).at(-1)!;
    expect(last).toEqual([t0 + 2500, 2]);
    await a.stop();
  });
});
