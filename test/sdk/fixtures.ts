/**
 * SDK test fixtures: server records and a Balancer fed by a Feed on a ManualClock, for tests that
 * drive the balancer directly (the layer under `join`).
 */
import { Balancer } from '../../sdk/balancer.js';
import { ManualClock } from '../../sdk/clock.js';
import { createFeed, type Feed } from '../../sdk/discovery/feed.js';
import { resolveOptions, type JoinOptions } from '../../sdk/options.js';
import type { ServerRecord } from '../../sdk/protocol.js';
import { XorShiftRandom } from '../../sdk/random.js';
import { ServerState } from '../../sdk/server.js';

export function rec(id: string, over: Partial<ServerRecord> = {}): ServerRecord {
  return { id, service: 'game', host: '127.0.0.1', tcpPort: 1, udpPort: 1, weight: 100, health: 'healthy', ...over };
}

export function states(n: number, over: (i: number) => Partial<ServerRecord> = () => ({})): ServerState[] {
  return Array.from({ length: n }, (_, i) => new ServerState(rec(`s${i}`, over(i))));
}

export interface TestBalancer {
  b: Balancer;
  feed: Feed;
  clock: ManualClock;
  /** Count of each id over `n` picks (keyless unless `key(i)` is given). */
  tally(n: number, key?: (i: number) => number): Map<string, number>;
  close(): void;
}

export function testBalancer(records: ServerRecord[], opts: Partial<JoinOptions> = {}, seed = 1): TestBalancer {
  const clock = (opts.clock as ManualClock | undefined) ?? new ManualClock();
  const o = resolveOptions({ service: 'game', discovery: { servers: [] }, ...opts });
  const b = new Balancer(o, clock, opts.random ?? new XorShiftRandom(seed));
  const feed = createFeed(records);
  feed.start(b);
  b.markSeeded();
  return {
    b,
    feed,
    clock,
    tally(n, key) {
      const m = new Map<string, number>();
      for (const s of b.list()) m.set(s.id, 0);
      for (let i = 0; i < n; i++) {
        const s = b.pick(key ? key(i) : -1)!;
        m.set(s.id, (m.get(s.id) ?? 0) + 1);
      }
      return m;
    },
    close: () => b.close(),
  };
}
