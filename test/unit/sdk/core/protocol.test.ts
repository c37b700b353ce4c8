/**
 * The server record's WebSocket endpoint (sdk/core/protocol.ts, issue 15): wsPort, wsPath, wsTls
 * through parseServerRecord / parseUsableServerRecord, the path limits (wsPathProblem), and the
 * endpoint URL (wsEndpointUrl). Pure: no sockets, no clock.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../../sdk/core/errors.js';
import { MAX_WS_PATH_LENGTH, parseServerRecord, parseUsableServerRecord, wsEndpointUrl, wsPathProblem, type ServerRecord } from '../../../../sdk/core/protocol.js';
import { pack, unpackFrame } from '../../../../sdk/core/msgpack.js';

const base = { id: 'n1', service: 'game', host: '127.0.0.1', weight: 100, health: 'healthy' } as const;

describe('ws fields of a server record', () => {
  it('round trip through msgpack and the decoder unchanged', () => {
    const recs: ServerRecord[] = [
      { ...base, wsPort: 8080, wsPath: '/', wsTls: true },
      { ...base, tcpPort: 7000, wsPort: 443, wsPath: '/game/ws?v=2' },
      { ...base, udpPort: 7001, wsPort: 65535 },
    ];
    for (const r of recs) expect(parseServerRecord(unpackFrame(pack(r)))).toEqual(r);
  });

  it('a record with only a wsPort is usable; one with no port at all is not', () => {
    expect(parseUsableServerRecord({ ...base, wsPort: 9000 })).toEqual({ ...base, wsPort: 9000 });
    expect(() => parseUsableServerRecord({ ...base })).toThrow(/needs a udpPort, a tcpPort or a wsPort/);
  });

  it('path and TLS without a port describe no endpoint and are dropped', () => {
    expect(parseServerRecord({ ...base, udpPort: 1, wsPath: '/x', wsTls: true })).toEqual({ ...base, udpPort: 1 });
    // wsTls false is the absence of TLS: not kept (so records compare and sign the same).
    expect(parseServerRecord({ ...base, wsPort: 1, wsTls: false })).toEqual({ ...base, wsPort: 1 });
  });

  it('refuses a bad port, path or TLS flag with a DecodeError naming the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ wsPort: 0 }, /wsPort must be a port/],
      [{ wsPort: 65536 }, /wsPort must be a port/],
      [{ wsPort: '80' }, /wsPort must be a port/],
      [{ wsPort: 80, wsPath: 'game' }, /wsPath must start with '\/'/],
      [{ wsPort: 80, wsPath: '' }, /wsPath must start with '\/'/],
      [{ wsPort: 80, wsPath: '/a b' }, /wsPath must be printable ASCII/],
      [{ wsPort: 80, wsPath: '/a\nb' }, /wsPath must be printable ASCII/],
      [{ wsPort: 80, wsPath: '/é' }, /wsPath must be printable ASCII/],
      [{ wsPort: 80, wsPath: '/' + 'a'.repeat(MAX_WS_PATH_LENGTH) }, /wsPath must be at most 255 chars/],
      [{ wsPort: 80, wsPath: 7 }, /wsPath must be a string/],
      [{ wsPort: 80, wsTls: 1 }, /wsTls must be a boolean/],
      [{ wsPort: 80, wsTls: 'true' }, /wsTls must be a boolean/],
    ];
    for (const [extra, msg] of bad) {
      let err: unknown;
      try {
        parseServerRecord({ ...base, ...extra });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(extra)).toBeInstanceOf(DecodeError);
      expect((err as Error).message, JSON.stringify(extra)).toMatch(msg);
    }
  });

  it('the path limits: 255 chars of printable ASCII pass, 256 do not', () => {
    expect(wsPathProblem('/' + 'a'.repeat(MAX_WS_PATH_LENGTH - 1))).toBeUndefined();
    expect(wsPathProblem('/' + 'a'.repeat(MAX_WS_PATH_LENGTH))).toMatch(/at most/);
    let all = '/';
    for (let c = 0x21; c <= 0x7e; c++) all += String.fromCharCode(c);
    expect(wsPathProblem(all)).toBeUndefined();
    expect(wsPathProblem('/\x7f')).toMatch(/printable/);
    expect(wsPathProblem('/\t')).toMatch(/printable/);
  });
});

describe('wsEndpointUrl', () => {
  it('builds ws[s]://host:port/path, IPv6 in brackets, path default /', () => {
    expect(wsEndpointUrl('127.0.0.1', 8080, undefined, undefined)).toBe('ws://127.0.0.1:8080/');
    expect(wsEndpointUrl('127.0.0.1', 8443, '/game', true)).toBe('wss://127.0.0.1:8443/game');
    expect(wsEndpointUrl('::1', 9000, '/x?y=1', false)).toBe('ws://[::1]:9000/x?y=1');
    expect(wsEndpointUrl('fe80::1', 1, '/', true)).toBe('wss://[fe80::1]:1/');
    // What new URL makes of it is the same endpoint (a browser's new WebSocket parses it so).
    const u = new URL(wsEndpointUrl('::1', 9000, '/p', true));
    expect([u.protocol, u.hostname, u.port, u.pathname]).toEqual(['wss:', '[::1]', '9000', '/p']);
  });
});
