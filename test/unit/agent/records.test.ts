/** The pure record views (agent/records.ts): what the agent announces and serves. */
import { describe, expect, it } from 'vitest';
import { agentUrls, announceInfo, healthCheckFor, memberInfo, memberMeta, serverRecord } from '../../../agent/records.js';
import { mergeAgentConfig, resolveAgentOptions } from '../../../agent/options.js';
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

  it('an agent over TLS announces it (TXT tls=1), one without does not', () => {
    expect(announceInfo(o, 7946, 'healthy', undefined)).not.toHaveProperty('agentTls');
    const t = resolveAgentOptions({ service: 'game', node: 'n1', host: '127.0.0.9', tcpPort: 7000, tls: { cert: '/certs/c.pem', key: '/certs/k.pem' } });
    expect(announceInfo(t, 7946, 'healthy', undefined)).toMatchObject({ agentTls: true });
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

describe('the WebSocket endpoint in the record views', () => {
  const w = resolveAgentOptions({ service: 'game', node: 'n1', host: '127.0.0.9', wsPort: 8080, wsPath: '/play', wsTls: true });

  it('meta, announce info and /v1/members rows carry port, path and TLS', () => {
    expect(memberMeta(w, 'healthy')).toEqual({ id: 'n1', service: 'game', host: '127.0.0.9', weight: 100, health: 'healthy', wsPort: 8080, wsPath: '/play', wsTls: true });
    expect(announceInfo(w, 7946, 'healthy', undefined)).toMatchObject({ wsPort: 8080, wsPath: '/play', wsTls: true });
    const member: Member = { node: 'n1', addr: 'ws://127.0.0.9:7946', status: 'alive', incarnation: 1, meta: memberMeta(w, 'healthy'), statusSince: 0, updatedAt: 0 };
    expect(memberInfo(member, 0, 0, undefined)).toMatchObject({ wsPort: 8080, wsPath: '/play', wsTls: true });
    expect(serverRecord(member, 0, 0)).toMatchObject({ wsPort: 8080, wsPath: '/play', wsTls: true });
    // The path defaults to '/', TLS to off; an agent without --ws shows none of them.
    const plain = resolveAgentOptions({ service: 'game', wsPort: 9000 });
    expect(memberMeta(plain, 'healthy')).toMatchObject({ wsPort: 9000, wsPath: '/' });
    expect(memberMeta(plain, 'healthy')).not.toHaveProperty('wsTls');
    expect(memberMeta(o, 'healthy')).not.toHaveProperty('wsPort');
    expect(memberInfo(m('n1', 'alive'), 0, 0, undefined)).not.toHaveProperty('wsPort');
  });

  it('--health ws opens the ws endpoint; it needs a wsPort', () => {
    const h = resolveAgentOptions({ service: 'game', host: '127.0.0.9', wsPort: 8080, wsPath: '/play', wsTls: true, health: { type: 'ws', intervalMs: 200 } });
    expect(healthCheckFor(h)).toEqual({ check: { type: 'ws', host: '127.0.0.9', port: 8080, path: '/play', tls: true, timeoutMs: 100 }, opts: { intervalMs: 200, rise: 2, fall: 3 } });
    expect(() => resolveAgentOptions({ service: 'game', tcpPort: 1, health: { type: 'ws' } })).toThrow(/'ws' but no wsPort/);
  });

  it('options: a ws-only agent is valid; path and TLS need the port; the path is checked', () => {
    expect(() => resolveAgentOptions({ service: 'game' })).toThrow(/"udpPort" or tcpPort or wsPort must be given/);
    expect(resolveAgentOptions({ service: 'game', wsPort: 1 })).toMatchObject({ wsPort: 1, wsPath: '/', wsTls: false });
    expect(resolveAgentOptions({ service: 'game', udpPort: 1 })).toMatchObject({ wsPort: undefined, wsPath: undefined, wsTls: false });
    expect(() => resolveAgentOptions({ service: 'game', udpPort: 1, wsPath: '/x' })).toThrow(/wsPath.*wsPort is not/);
    expect(() => resolveAgentOptions({ service: 'game', udpPort: 1, wsTls: true })).toThrow(/wsTls.*wsPort is not/);
    expect(() => resolveAgentOptions({ service: 'game', wsPort: 1, wsPath: 'x' })).toThrow(/wsPath.*start with/);
    expect(() => resolveAgentOptions({ service: 'game', wsPort: 1, wsPath: '/a b' })).toThrow(/wsPath.*printable/);
    expect(() => resolveAgentOptions({ service: 'game', wsPort: 1, wsTls: 'yes' as unknown as boolean })).toThrow(/wsTls/);
    expect(() => resolveAgentOptions({ service: 'game', wsPort: 70000 })).toThrow(/wsPort/);
    expect(resolveAgentOptions({ service: 'game', wsPort: 1, wsPath: '/' + 'p'.repeat(247) }).wsPath).toHaveLength(248);
    expect(() => resolveAgentOptions({ service: 'game', wsPort: 1, wsPath: '/' + 'p'.repeat(248) })).toThrow(/wsPath.*at most 248 chars/);
  });

  it('flags and environment: --ws, --ws-path, --ws-tls (a bare flag), PEERLB_WS_TLS=true', () => {
    expect(mergeAgentConfig({ flags: { service: 'game', ws: '8080', 'ws-path': '/p', 'ws-tls': 'true' } })).toMatchObject({ wsPort: 8080, wsPath: '/p', wsTls: true });
    expect(mergeAgentConfig({ env: { PEERLB_WS: '8080', PEERLB_WS_TLS: 'false' } })).toMatchObject({ wsPort: 8080, wsTls: false });
    expect(() => mergeAgentConfig({ env: { PEERLB_WS_TLS: 'maybe' } })).toThrow(/"PEERLB_WS_TLS" must be true or false/);
  });
});
