/**
 * Issue 15: the agent's port over TLS (`--tls-cert`, `--tls-key`, `--tls-ca`) and the Origin gate
 * (`--allow-origin`), through real `peerlb agent` processes on loopback and committed test
 * certificates (test/support/tls.ts, test/support/certs/).
 *
 *  - a client trusting the CA subscribes to /v1/watch over wss:// and gets the snapshot;
 *  - two TLS agents gossip (wss:// dials) and see each other alive;
 *  - a plain http:// or ws:// client to the TLS port gets a plain-text 400 saying so, and a
 *    client that does not trust the certificate fails its handshake;
 *  - /v1/watch and /v1/events: an upgrade from an Origin not listed gets 403, a listed one, the
 *    agent's own and none at all (not a browser) are served;
 *  - a cluster is all-TLS or not: a TLS agent refuses a ws:// seed at start; a plain agent
 *    dialing a TLS agent's port, and a TLS agent that does not trust its peer's certificate, say
 *    why in their "cannot reach join seed" warning;
 *  - SIGHUP re-reads the certificate files: new connections get the new certificate.
 *
 * These are new features: before them `--tls-cert` and `--allow-origin` were unknown options
 * (the CLI exits 2), so every case here failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { copyFileSync } from 'node:fs';
import net from 'node:net';
import { WebSocket } from 'ws';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI, spawnAgent, stopAll, type AgentProc } from '../../support/agents.js';
import { until } from '../../support/until.js';
import { makeTestCert, type TestCert } from '../../support/tls.js';

const LISTED = 'https://game.example';

let cert: TestCert;
let other: TestCert;
let a: AgentProc;
let b: AgentProc;
const procs: AgentProc[] = [];

const tlsFlags = (c: TestCert, ca: TestCert | undefined = c) => ['--tls-cert', c.certFile, '--tls-key', c.keyFile, ...(ca ? ['--tls-ca', ca.certFile] : [])];

async function spawn(node: string, opts: Parameters<typeof spawnAgent>[1]): Promise<AgentProc> {
  const p = await spawnAgent(node, opts);
  procs.push(p);
  return p;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(url: string, o: https.RequestOptions = {}): Promise<Answer> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { timeout: 5000, ...o }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

const httpsOf = (p: AgentProc) => p.url.replace(/^wss:/, 'https:');

/**
 * Open a WebSocket: `{ frame }` with its first message (after a JSON hello on /v1/watch), or
 * `{ status, body }` when the upgrade is refused, or `{ error }`.
 */
function open(url: string, o: { ca?: Buffer; origin?: string; hello?: boolean } = {}): Promise<{ frame?: Record<string, unknown>; status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { ca: o.ca, origin: o.origin, handshakeTimeout: 5000, perMessageDeflate: false });
    const done = (r: { frame?: Record<string, unknown>; status?: number; body?: string; error?: string }) => {
      resolve(r);
      ws.terminate();
    };
    ws.on('open', () => {
      if (o.hello) ws.send(JSON.stringify({ t: 'hello', v: 1, service: 'game' }));
    });
    ws.on('message', (d) => done({ frame: JSON.parse(String(d)) as Record<string, unknown> }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => done({ status: res.statusCode, body }));
    });
    ws.on('error', (err) => done({ error: err.message }));
  });
}

const aliveAt = async (p: AgentProc): Promise<string[]> => {
  const r = await get(`${httpsOf(p)}/v1/members`, { ca: cert.cert });
  return (JSON.parse(r.body) as { node: string; status: string }[])
    .filter((m) => m.status === 'alive')
    .map((m) => m.node)
    .sort();
};

/** The JSON log lines of an agent with this message. */
const logged = (p: AgentProc, msg: string): Record<string, unknown>[] =>
  p.stderr
    .join('')
    .split('\n')
    .flatMap((l) => {
      try {
        const j = JSON.parse(l) as Record<string, unknown>;
        return j.msg === msg ? [j] : [];
      } catch {
        return [];
      }
    });

beforeAll(async () => {
  cert = makeTestCert('peerlb-a');
  other = makeTestCert('peerlb-other');
  a = await spawn('tls-a', { extra: [...tlsFlags(cert), '--allow-origin', LISTED] });
  b = await spawn('tls-b', { join: [a.url], extra: tlsFlags(cert) });
}, 60_000);

afterAll(async () => {
  await stopAll(procs);
  cert?.remove();
  other?.remove();
});

describe('the agent port over TLS', () => {
  it('serves /v1/watch over wss:// to a client that trusts the CA: the snapshot', async () => {
    expect(a.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    const r = await open(`${a.url}/v1/watch?format=json`, { ca: cert.cert, hello: true });
    expect(r.error).toBeUndefined();
    expect(r.frame).toMatchObject({ t: 'snapshot' });
    const servers = (r.frame!.servers as { id: string }[]).map((s) => s.id);
    expect(servers).toContain('tls-a');
    // The agents it names for failover are wss:// too.
    expect((r.frame!.agents as string[]).every((u) => u.startsWith('wss://'))).toBe(true);
  });

  it('two TLS agents gossip over wss:// and see each other alive', async () => {
    await until(async () => (await aliveAt(a)).join() === 'tls-a,tls-b' && (await aliveAt(b)).join() === 'tls-a,tls-b', 20_000, 'both TLS agents alive at both');
    const members = JSON.parse((await get(`${httpsOf(a)}/v1/members`, { ca: cert.cert })).body) as { node: string; addr: string }[];
    expect(members.find((m) => m.node === 'tls-b')!.addr).toBe(b.url);
  });

  it('`peerlb members --agent wss://…` reads the members, trusting the CA through NODE_EXTRA_CA_CERTS', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'members', '--agent', a.url, '--json'], {
      timeout: 15_000,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cert.certFile },
    });
    expect((JSON.parse(stdout) as { node: string }[]).map((m) => m.node).sort()).toEqual(['tls-a', 'tls-b']);
  });

  it('a socket past the per-address cap is refused over TLS, with the reason (429)', async () => {
    const { startAgent } = await import('../../../agent/index.js');
    const c = await startAgent(
      { service: 'game', node: 'tls-cap', tcpPort: 7000, port: 0, tls: { cert: cert.certFile, key: cert.keyFile }, limits: { maxConnectionsPerAddress: 2 } },
      { log: false },
    );
    const held: tls.TLSSocket[] = [];
    try {
      for (let i = 0; i < 2; i++)
        held.push(await new Promise<tls.TLSSocket>((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port: c.port, ca: cert.cert }, () => resolve(s));
          s.on('error', reject);
        }));
      const r = await get(`https://127.0.0.1:${c.port}/v1/health`, { ca: cert.cert, agent: false });
      expect(r.status).toBe(429);
      expect(r.body).toMatch(/too many connections from 127\.0\.0\.1: at most 2/);
      expect(c.admissionCounters().refused['http:address']).toBeGreaterThanOrEqual(1);
    } finally {
      for (const s of held) s.destroy();
      await c.stop();
    }
  });

  it('a socket that starts a handshake and stalls, or sends nothing, is closed within the header timeout (5 s) and gives its slot back', async () => {
    const { startAgent } = await import('../../../agent/index.js');
    const c = await startAgent({ service: 'game', node: 'tls-stall', tcpPort: 7000, port: 0, tls: { cert: cert.certFile, key: cert.keyFile } }, { log: false });
    try {
      const open0 = c.admissionCounters().open;
      const stalled = [Buffer.from([0x16, 0x03, 0x01]), undefined].map((first) => {
        const s = net.connect(c.port, '127.0.0.1', () => first && s.write(first));
        s.on('error', () => {});
        return new Promise<number>((resolve) => {
          const t0 = Date.now();
          s.on('close', () => resolve(Date.now() - t0));
        });
      });
      await until(() => c.admissionCounters().open === open0 + 2, 5000, 'both sockets accepted');
      const took = await Promise.race([Promise.all(stalled), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('not closed within 15 s')), 15_000))]);
      for (const ms of took) expect(ms).toBeLessThan(15_000);
      await until(() => c.admissionCounters().open === open0, 5000, 'slots given back');
    } finally {
      await c.stop();
    }
  }, 30_000);

  it('a socket reset before its first bytes leaves the agent running', async () => {
    const resets = Array.from({ length: 5 }, () =>
      new Promise<void>((resolve) => {
        const s = net.connect(a.port, '127.0.0.1', () => setTimeout(() => s.resetAndDestroy(), 50));
        s.on('error', () => {});
        s.on('close', () => resolve());
      }),
    );
    await Promise.all(resets);
    // The agent would die of an unhandled ECONNRESET within moments: give it those, then ask.
    await new Promise((r) => setTimeout(r, 300));
    expect(a.proc.exitCode).toBeNull();
    expect((await get(`${httpsOf(a)}/v1/health`, { ca: cert.cert })).status).toBe(200);
  });

  it('a plain http:// or ws:// client to the TLS port gets a plain 400 saying so', async () => {
    const r = await get(`http://127.0.0.1:${a.port}/v1/health`);
    expect(r.status).toBe(400);
    expect(r.body).toMatch(/this port speaks TLS: use https:\/\/ or wss:\/\//);
    expect(r.headers['x-peerlb-tls']).toBe('required');
    const w = await open(`ws://127.0.0.1:${a.port}/v1/watch`);
    expect(w).toMatchObject({ status: 400 });
    expect(w.body).toMatch(/speaks TLS/);
    // And the port still serves TLS afterwards.
    expect((await get(`${httpsOf(a)}/v1/health`, { ca: cert.cert })).status).toBe(200);
  });

  it('a client that does not trust the certificate fails its handshake', async () => {
    await expect(get(`${httpsOf(a)}/v1/health`)).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    await expect(get(`${httpsOf(a)}/v1/health`, { ca: other.cert })).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });
});

describe('--allow-origin', () => {
  for (const path of ['/v1/watch?format=json', '/v1/events']) {
    const hello = path.startsWith('/v1/watch');
    const first = hello ? { t: 'snapshot' } : { type: 'members' };

    it(`${path}: an Origin not listed gets 403; a listed one is served`, async () => {
      const url = `${a.url}${path}`;
      const evil = await open(url, { ca: cert.cert, origin: 'https://evil.example', hello });
      expect(evil.status).toBe(403);
      expect(evil.body).toMatch(/"https:\/\/evil\.example" may not open this endpoint: it is not in the agent's allowOrigin/);
      // The listed origin's neighbours are not it: another port, the other scheme, `null`.
      for (const origin of ['https://game.example:8443', 'http://game.example', 'null']) expect((await open(url, { ca: cert.cert, origin, hello })).status).toBe(403);
      expect((await open(url, { ca: cert.cert, origin: LISTED, hello })).frame).toMatchObject(first);
    });

    it(`${path}: the agent's own origin (its dashboard) and a client sending no Origin are served`, async () => {
      const url = `${a.url}${path}`;
      expect((await open(url, { ca: cert.cert, origin: httpsOf(a), hello })).frame).toMatchObject(first);
      expect((await open(url, { ca: cert.cert, origin: `https://localhost:${a.port}`, hello })).frame).toMatchObject(first);
      expect((await open(url, { ca: cert.cert, hello })).frame).toMatchObject(first);
    });
  }

  it('an agent without --allow-origin serves every origin (as before); refusals are counted in /metrics', async () => {
    expect((await open(`${b.url}/v1/events`, { ca: cert.cert, origin: 'https://evil.example' })).frame).toMatchObject({ type: 'members' });
    const metrics = (await get(`${httpsOf(a)}/metrics`, { ca: cert.cert })).body;
    expect(metrics).toMatch(/peerlb_refused_total\{endpoint="watch",reason="origin"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/peerlb_refused_total\{endpoint="events",reason="origin"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/peerlb_refused_total\{endpoint="http",reason="plain_on_tls"[^}]*\} [1-9]/);
  });
});

describe('a cluster is all-TLS or not', () => {
  it('a TLS agent refuses a ws:// seed at start, naming it', async () => {
    await expect(spawn('tls-bad-seed', { join: [`ws://127.0.0.1:${a.port}`], extra: tlsFlags(cert) })).rejects.toThrow(/exited with 2: .*"--join" is ws:\/\/127\.0\.0\.1:\d+, a plain ws:\/\/ seed, but this agent serves TLS .*all-TLS or not/);
  });

  it('a plain agent dialing a TLS port, and a TLS agent not trusting the certificate, say why', async () => {
    const plain = await spawn('plain-c', { join: [`ws://127.0.0.1:${a.port}`] });
    const untrusting = await spawn('tls-d', { join: [a.url], extra: tlsFlags(other) });
    await until(() => logged(plain, 'cannot reach join seed; retrying').length > 0 && logged(untrusting, 'cannot reach join seed; retrying').length > 0, 15_000, 'seed warnings');
    expect(logged(plain, 'cannot reach join seed; retrying')[0]!.error).toMatch(/the peer's port speaks TLS \(400\): dial it at wss:\/\//);
    expect(logged(untrusting, 'cannot reach join seed; retrying')[0]!.error).toMatch(/DEPTH_ZERO_SELF_SIGNED_CERT: the peer's certificate is not trusted here.*--tls-ca/);
    // Neither got in.
    expect(await aliveAt(a)).toEqual(['tls-a', 'tls-b']);
  });
});

describe('SIGHUP', () => {
  it('re-reads the certificate files: new connections get the new certificate', async () => {
    const renewed = makeTestCert('peerlb-renewed');
    const mine = makeTestCert('peerlb-e');
    try {
      const e = await spawn('tls-e', { extra: tlsFlags(mine) });
      const served = () =>
        new Promise<string>((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port: e.port, ca: [mine.cert, renewed.cert], servername: 'localhost' }, () => {
            resolve(s.getPeerCertificate().subject.CN as string);
            s.end();
          });
          s.on('error', reject);
        });
      expect(await served()).toBe('peerlb-e');
      copyFileSync(renewed.certFile, mine.certFile);
      copyFileSync(renewed.keyFile, mine.keyFile);
      e.proc.kill('SIGHUP');
      await until(() => logged(e, 'TLS certificate reloaded: new connections get the new one').length > 0, 10_000, 'the reload');
      expect(await served()).toBe('peerlb-renewed');
    } finally {
      renewed.remove();
      mine.remove();
    }
  });
});

describe('bad TLS files', () => {
  it('stop the start, naming the option and the file, before any port is taken', async () => {
    const { startAgent } = await import('../../../agent/index.js');
    const start = (t: { cert: string; key: string; ca?: string }) => startAgent({ service: 'game', node: 'bad-tls', tcpPort: 7000, port: 0, tls: t }, { log: false });
    await expect(start({ cert: cert.certFile, key: other.keyFile })).rejects.toThrow(/tls.key \(.*key\.pem\) does not match the certificate of tls.cert/);
    await expect(start({ cert: `${cert.dir}/missing.pem`, key: cert.keyFile })).rejects.toThrow(/cannot read tls.cert file .*missing\.pem: ENOENT/);
    await expect(start({ cert: cert.keyFile, key: cert.keyFile })).rejects.toThrow(/tls.cert \(.*\) is not a PEM certificate/);
    await expect(start({ cert: cert.certFile, key: cert.keyFile, ca: cert.keyFile })).rejects.toThrow(/tls.ca \(.*\) is not a PEM certificate/);
    // PEM text works as well as a file.
    const ok = await start({ cert: cert.cert.toString(), key: cert.key.toString() });
    expect(ok.url).toMatch(/^wss:/);
    await ok.stop();
  });
});
