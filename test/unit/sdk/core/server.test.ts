/** Server.wsUrl (sdk/core/server.ts): built from the record's ws fields, kept in step with new records. */
import { describe, expect, it } from 'vitest';
import { ServerState, wsUrlOf } from '../../../../sdk/core/server.js';
import type { ServerRecord } from '../../../../sdk/core/protocol.js';

const rec: ServerRecord = { id: 'n1', service: 'game', host: '127.0.0.1', weight: 100, health: 'healthy' };

describe('server.wsUrl', () => {
  it('is ws[s]://host:port/path when the record has a wsPort, else undefined', () => {
    expect(new ServerState({ ...rec, tcpPort: 7000 }).wsUrl).toBeUndefined();
    expect(new ServerState({ ...rec, wsPort: 8080 }).wsUrl).toBe('ws://127.0.0.1:8080/');
    expect(new ServerState({ ...rec, wsPort: 8443, wsPath: '/play', wsTls: true }).wsUrl).toBe('wss://127.0.0.1:8443/play');
    expect(new ServerState({ ...rec, host: '::1', wsPort: 9000, wsPath: '/g' }).wsUrl).toBe('ws://[::1]:9000/g');
  });

  it('follows a new record of the server (and goes when the endpoint goes)', () => {
    const s = new ServerState({ ...rec, wsPort: 8080 });
    s.assign({ ...rec, wsPort: 8081, wsPath: '/v2', wsTls: true });
    expect(s.wsUrl).toBe('wss://127.0.0.1:8081/v2');
    s.assign({ ...rec, tcpPort: 1 });
    expect(s.wsUrl).toBeUndefined();
    expect(wsUrlOf({ host: '10.0.0.1', wsPort: 1 })).toBe('ws://10.0.0.1:1/');
  });
});
