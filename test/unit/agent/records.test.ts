/** The pure record views (agent/records.ts): what the agent announces and serves. */
import { describe, expect, it } from 'vitest';
import { agentUrls, announceInfo, healthCheckFor, memberInfo, memberMeta, serverRecord } from '../../../agent/records.js';
import { resolveAgentOptions } from '../../../agent/options.js';
import type { Member } from '../../../agent/gossip/membership.js';

const o = resolveAgentOptions({ service: 'game', node: 'n1', host: '127.0.0.9', tcpPort: 7000, udpPort: 7001, zone: 'r1', weight: 5 });
const m = (node: string, status: Member['status'], load?: Member['load']): Member => ({
  node,
  addr: `ws://127.0.0.9:${node === 'n1' ? 7946 : 7947}`,
  status,
  incarnation: 3,
  meta: memberMeta(o, 'healthy'),
  ...(load ? { load } : {}),
  statusSince: 0,
  updatedAt: 0,
});

describe('record views', () => {
  it('meta and announce info follow the options', () => {
    expect(memberMeta(o, 'draining')).toEqual({ id: 'n1', service: 'game', host: '127.0.0.9', weight: 5, health: 'draining', udpPort: 7001, tcpPort: 7000, zone: 'r1' });
    expect(announceInfo(o, 7946, 'healthy', { sessions: 1, connections: 2, utilization: 0.46, seq: 1, ageMs: 0 })).toMatchObject({ agentPort: 7946, loadBucket: 5, utilization: 0.46, zone: 'r1' });
    expect(announceInfo(o, 7946, 'healthy', undefined)).not.toHaveProperty('utilization');
  });

  it('a served record ages its load by the time since it was heard', () => {
    const rec = serverRecord(m('n2', 'alive', { sessions: 1, connections: 0, utilization: 0.1, seq: 4, ageMs: 30 }), 1000, 1250);
    expect(rec).toMatchObject({ id: 'n2', agent: 'ws://127.0.0.9:7947', load: { ageMs: 280 } });
    expect(memberInfo(m('n2', 'suspect'), 1000, 1250, 'cpu')).toMatchObject({ node: 'n2', port: 7947, status: 'suspect', load: null, ageMs: 250, loadSource: 'cpu' });
  });

  it('only live agents are listed; the health check follows the options', () => {
    expect(agentUrls([m('n1', 'alive'), m('n2', 'dead')])).toEqual(['ws://127.0.0.9:7946']);
    expect(healthCheckFor(o)).toEqual({ check: { type: 'tcp', host: '127.0.0.9', port: 7000, timeoutMs: 500 }, opts: { intervalMs: 1000, rise: 2, fall: 3 } });
    expect(healthCheckFor(resolveAgentOptions({ service: 'game', udpPort: 7001 }))).toBeUndefined();
  });
});
