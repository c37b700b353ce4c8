import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handleLoadRequest, MAX_LOAD_BODY_BYTES } from '../../../../agent/endpoints/load.js';
import { InvalidLoadError } from '../../../../agent/load/input.js';
import { hasIPv6Loopback } from '../../../support/net.js';

type Sink = Parameters<typeof handleLoadRequest>[2];
let received: unknown[] = [];
let sink: Sink = (r) => received.push(r);

/** A real HTTP server on loopback routing to the handler. `x-test-remote` pretends another peer
 *  address, since tests may only use loopback. */
function makeServer(): http.Server {
  return http.createServer((req, res) => {
    const fake = req.headers['x-test-remote'];
    if (typeof fake === 'string') Object.defineProperty(req.socket, 'remoteAddress', { value: fake, configurable: true });
    handleLoadRequest(req, res, (r) => sink(r), { bodyTimeoutMs: 200 });
  });
}

async function listen(server: http.Server, host: string): Promise<number> {
  server.listen({ host, port: 0 });
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: Record<string, unknown> | undefined;
}

function request(
  port: number,
  opts: { method?: string; path?: string; body?: string | Buffer; headers?: Record<string, string>; host?: string; chunks?: Buffer[] } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: opts.host ?? '127.0.0.1', port, method: opts.method ?? 'PUT', path: opts.path ?? '/v1/load', headers: opts.headers, agent: false, timeout: 5000 },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString();
          resolve({ status: res.statusCode!, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(opts.body);
  });
}

const put = (port: number, body: unknown, extra: Parameters<typeof request>[1] = {}) =>
  request(port, { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...extra });

let server: http.Server;
let port: number;
beforeAll(async () => {
  server = makeServer();
  port = await listen(server, '127.0.0.1');
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received = [];
  sink = (r) => received.push(r);
});

describe('PUT /v1/load', () => {
  it('accepts a report from loopback with 204 and hands it to the sink', async () => {
    const r = await put(port, { sessions: 12, connections: 3, utilization: 0.4 });
    expect(r.status).toBe(204);
    expect(r.json).toBeUndefined();
    expect(received).toEqual([{ sessions: 12, connections: 3, utilization: 0.4 }]);
  });

  it('accepts any one field, with or without a content type, with a query string', async () => {
    expect((await put(port, { utilization: 0 })).status).toBe(204);
    expect((await request(port, { path: '/v1/load?x=1', body: '{"sessions":1}' })).status).toBe(204);
    expect(received).toEqual([{ utilization: 0 }, { sessions: 1 }]);
  });

  it('accepts a chunked body', async () => {
    const r = await request(port, { chunks: [Buffer.from('{"sess'), Buffer.from('ions": 5}')] });
    expect(r.status).toBe(204);
    expect(received).toEqual([{ sessions: 5 }]);
  });

  it.each([
    [{ sessions: -1 }, 'sessions'],
    [{ connections: 1.5 }, 'connections'],
    [{ utilization: 1.5 }, 'utilization'],
    [{ utilization: '0.4' }, 'utilization'],
    [{ sesions: 3 }, 'sesions'],
  ])('answers 400 naming the field for %j', async (body, field) => {
    const r = await put(port, body);
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json).toMatchObject({ error: 'bad_value', field });
    expect(String(r.json!.message)).toContain(field);
    expect(received).toEqual([]);
  });

  it.each([
    ['{"sessions": 12', 'bad_json'],
    ['', 'bad_json'],
    ['sessions=12', 'bad_json'],
    ['[1,2]', 'bad_value'],
    ['null', 'bad_value'],
    ['{}', 'bad_value'],
  ])('answers 400 for body %j', async (body, error) => {
    const r = await put(port, body);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error });
    expect(received).toEqual([]);
  });

  it('answers 413 for a declared body over 4 KiB, and for a chunked one that grows past it', async () => {
    const big = JSON.stringify({ sessions: 1, pad: 'x'.repeat(MAX_LOAD_BODY_BYTES) });
    const r = await put(port, big);
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({ error: 'too_large' });
    const chunks = Array.from({ length: 5 }, () => Buffer.alloc(1024, 0x20));
    const r2 = await request(port, { chunks });
    expect(r2.status).toBe(413);
    expect(received).toEqual([]);
  });

  it('accepts a body of exactly 4 KiB', async () => {
    const body = '{"sessions":7}'.padEnd(MAX_LOAD_BODY_BYTES, ' ');
    expect(Buffer.byteLength(body)).toBe(MAX_LOAD_BODY_BYTES);
    expect((await put(port, body)).status).toBe(204);
  });

  it.each(['GET', 'POST', 'DELETE', 'PATCH'])('answers 405 to %s with Allow: PUT', async (method) => {
    const r = await request(port, { method, body: method === 'GET' ? undefined : '{"sessions":1}' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('PUT');
    expect(received).toEqual([]);
  });

  it('answers 404 on another path', async () => {
    expect((await put(port, { sessions: 1 }, { path: '/v1/loads' })).status).toBe(404);
  });

  it.each(['10.0.0.7', '198.18.0.5', '::ffff:10.0.0.7', 'fe80::1', '2001:db8::1', '', 'garbage'])('answers 403 to a peer at %j', async (remote) => {
    const r = await put(port, { sessions: 1 }, { headers: { 'x-test-remote': remote } });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ error: 'forbidden' });
    expect(received).toEqual([]);
  });

  it.each(['127.0.0.9', '::1', '::ffff:127.0.0.1'])('accepts a loopback peer at %s', async (remote) => {
    expect((await put(port, { sessions: 1 }, { headers: { 'x-test-remote': remote } })).status).toBe(204);
  });

  it('answers 403 when the Host header names anything but loopback (DNS rebinding)', async () => {
    const r = await put(port, { sessions: 1 }, { headers: { host: 'evil.example:7946' } });
    expect(r.status).toBe(403);
    for (const host of ['localhost:7946', '127.0.0.1', '[::1]:7946', 'LOCALHOST']) {
      expect((await put(port, { sessions: 1 }, { headers: { host } })).status).toBe(204);
    }
  });

  it('maps a sink InvalidLoadError to 400 and any other failure to 500, and survives both', async () => {
    sink = () => {
      throw new InvalidLoadError('sessions', 'sessions over capacity');
    };
    expect((await put(port, { sessions: 1 })).json).toMatchObject({ error: 'bad_value', field: 'sessions' });
    sink = () => {
      throw new Error('boom');
    };
    const r = await put(port, { sessions: 1 });
    expect(r.status).toBe(500);
    expect(r.json).toMatchObject({ error: 'internal' });
    sink = (x) => received.push(x);
    expect((await put(port, { sessions: 2 })).status).toBe(204);
  });

  it('answers 408 when the body stalls, and survives a client that vanishes mid-body', async () => {
    const sock = net.connect({ host: '127.0.0.1', port });
    await once(sock, 'connect');
    sock.write('PUT /v1/load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20\r\n\r\n{"sess');
    const [data] = (await once(sock, 'data')) as [Buffer];
    expect(data.toString()).toMatch(/^HTTP\/1\.1 408/);
    sock.destroy();

    const gone = net.connect({ host: '127.0.0.1', port });
    await once(gone, 'connect');
    gone.write('PUT /v1/load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20\r\n\r\n{"sess');
    gone.destroy();
    expect((await put(port, { sessions: 3 })).status).toBe(204); // still serving
    expect(received).toEqual([{ sessions: 3 }]);
  });
});

const v6 = await hasIPv6Loopback();

describe.skipIf(!v6)('over IPv6 and dual-stack', () => {
  it('accepts ::1 and IPv4 clients of a dual-stack server (::ffff:127.0.0.1)', async () => {
    const s = makeServer();
    const p = await listen(s, '::');
    try {
      expect((await put(p, { sessions: 1 }, { host: '::1' })).status).toBe(204);
      expect((await put(p, { sessions: 2 }, { host: '127.0.0.1' })).status).toBe(204);
      expect(received).toEqual([{ sessions: 1 }, { sessions: 2 }]);
    } finally {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });
});
