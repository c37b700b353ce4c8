/**
 * Balancer unit-test fixtures: records, server states and a Balancer on a ManualClock. No sockets,
 * no real time.
 */
import { Balancer } from '../../../../../sdk/core/balancer/balancer.js';
import { ManualClock } from '../../../../../sdk/core/clock.js';
import { resolveOptions, type JoinOptions } from '../../../../../sdk/core/options.js';
import type { ServerRecord } from '../../../../../sdk/core/protocol.js';
import { XorShiftRandom } from '../../../../../sdk/core/random.js';
import { ServerState } from '../../../../../sdk/core/server.js';

export function rec(id: string, over: Partial<ServerRecord> = {}): ServerRecord {
  return { id, service: 'game', host: '127.0.0.1', tcpPort: 1, udpPort: 1, weight: 100, health: 'healthy', ...over };
}

export function state(id: string, over: Partial<ServerRecord> = {}, fields: Partial<ServerState> = {}): ServerState {
  return Object.assign(new ServerState(rec(id, over)), fields);
}

export function balancer(records: ServerRecord[] = [], opts: Partial<JoinOptions> = {}, seed = 1): { b: Balancer; clock: ManualClock } {
  const clock = new ManualClock();
  const b = new Balancer(resolveOptions({ service: 'game', discovery: { servers: [] }, ...opts }), clock, new XorShiftRandom(seed));
  b.reset(records);
  b.markSeeded();
  return { b, clock };
}

/** Sum of `active` over every server of `b`. */
export const activeSum = (b: Balancer): number => b.list().reduce((n, s) => n + s.active, 0);
