/**
 * Bad configuration fails at start with a message naming the cause: a missing key file, a
 * malformed key (file or option), a bad signing key, the port in use. Both through startAgent
 * (a rejected promise with a PEERLB_ERR_* code) and through `peerlb agent` (exit code 2, one
 * line on stderr). Also `peerlb keygen` output is a key file an agent starts with.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgent, type AgentOptions } from '../../../agent/index.js';
import { CLI } from '../../support/agents.js';
import { cleanEnv } from '../../support/ops.js';
import { newKey } from '../../support/security.js';

const run = promisify(execFile);
const dir = mkdtempSync(pathJoin(tmpdir(), 'peerlb-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = pathJoin(dir, name);
  writeFileSync(p, text);
  return p;
};
const base: AgentOptions = { service: 'game', node: 'cfg', host: '127.0.0.1', port: 0, udpPort: 40_000 };

/** `peerlb agent …`: its exit code and stderr (it must exit by itself within 10 s). */
async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [CLI, 'agent', '--service', 'game', '--node', 'cfg', '--host', '127.0.0.1', '--udp', '40000', ...args], { timeout: 10_000, env: cleanEnv() });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stderr?: string; killed?: boolean };
    if (e.killed) throw new Error('the agent did not exit by itself');
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

async function startFails(opts: Partial<AgentOptions>): Promise<{ code: string; message: string }> {
  try {
    const a = await startAgent({ ...base, ...opts }, { log: false });
    await a.stop();
  } catch (err) {
    return { code: (err as { code: string }).code, message: (err as Error).message };
  }
  throw new Error('startAgent did not fail');
}

describe('bad configuration fails at start, naming the cause', () => {
  const missing = pathJoin(dir, 'nope.key');
  const notBase64 = file('bad.key', 'this is not a key\n');
  const short = file('short.key', Buffer.alloc(16, 1).toString('base64') + '\n');
  const badJson = file('bad.json.key', '{"keys": [');
  const empty = file('empty.key', '# only a comment\n\n');
  const badSigning = file('bad-signing.pem', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');

  it('startAgent: missing key file, malformed keys, bad keyring option, bad signing key', async () => {
    expect(await startFails({ keyFile: missing })).toEqual({ code: 'PEERLB_ERR_CONFIG', message: `cannot read key file ${missing}: no such file` });
    expect(await startFails({ keyFile: notBase64 })).toMatchObject({ code: 'PEERLB_ERR_CONFIG', message: expect.stringMatching(new RegExp(`key file ${notBase64}, key 1: the key is not valid base64`)) });
    expect(await startFails({ keyFile: short })).toMatchObject({ code: 'PEERLB_ERR_CONFIG', message: expect.stringMatching(/must be 32 bytes \(AES-256\), this one is 16 bytes/) });
    expect(await startFails({ keyFile: badJson })).toMatchObject({ code: 'PEERLB_ERR_CONFIG', message: expect.stringMatching(new RegExp(`key file ${badJson} is not valid JSON`)) });
    expect(await startFails({ keyFile: empty })).toMatchObject({ code: 'PEERLB_ERR_CONFIG', message: expect.stringMatching(/holds no key/) });
    expect(await startFails({ keyring: ['abc'] })).toMatchObject({ code: 'PEERLB_ERR_BAD_OPTION', message: expect.stringMatching(/keyring\[0\]/) });
    expect(await startFails({ keyring: [newKey()], keyFile: short })).toMatchObject({ code: 'PEERLB_ERR_BAD_OPTION', message: expect.stringMatching(/keyring.*keyFile/) });
    expect(await startFails({ signingKeyFile: missing })).toEqual({ code: 'PEERLB_ERR_CONFIG', message: `cannot read signing key file ${missing}: no such file` });
    expect(await startFails({ signingKeyFile: badSigning })).toMatchObject({ code: 'PEERLB_ERR_CONFIG', message: expect.stringContaining(`signing key file ${badSigning}`) });
    expect(await startFails({ signingKey: 'AAAA' })).toMatchObject({ code: 'PEERLB_ERR_BAD_OPTION', message: expect.stringMatching(/signingKey/) });
  });

  it('startAgent: the port in use; a failed start leaves nothing listening', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      expect(await startFails({ port })).toEqual({ code: 'PEERLB_ERR_CONFIG', message: `agent cannot listen: port ${port} on 127.0.0.1 is already in use` });
      // A bad key fails before the port is taken: the same port is free for the next try.
      const free = await new Promise<number>((r) => {
        const s = net.createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as net.AddressInfo).port;
          s.close(() => r(p));
        });
      });
      await startFails({ port: free, keyFile: missing });
      const ok = await startAgent({ ...base, port: free, keyFile: file('good.key', newKey() + '\n') }, { log: false });
      expect(ok.port).toBe(free);
      await ok.stop();
    } finally {
      taken.close();
    }
  });

  it('`peerlb agent`: exit code 2 and one line naming the cause', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const cases: [string[], RegExp][] = [
        [['--key-file', missing], new RegExp(`^peerlb: cannot read key file ${missing}: no such file \\[PEERLB_ERR_CONFIG\\]\\n$`)],
        [['--key-file', notBase64], new RegExp(`^peerlb: key file ${notBase64}, key 1: the key is not valid base64 \\[PEERLB_ERR_CONFIG\\]\\n$`)],
        [['--key-file', short], /^peerlb: .*must be 32 bytes \(AES-256\), this one is 16 bytes \[PEERLB_ERR_CONFIG\]\n$/],
        [['--signing-key-file', missing], new RegExp(`^peerlb: cannot read signing key file ${missing}: no such file \\[PEERLB_ERR_CONFIG\\]\\n$`)],
        [['--port', String(port)], new RegExp(`^peerlb: agent cannot listen: port ${port} on 127.0.0.1 is already in use \\[PEERLB_ERR_CONFIG\\]\\n$`)],
      ];
      const results = await Promise.all(cases.map(([args]) => cli(['--port', '0', ...args])));
      results.forEach((r, i) => {
        expect(r.code, cases[i]![0].join(' ')).toBe(2);
        // pino writes JSON lines to stderr as well (e.g. the open-cluster warning): the cause is the last line.
        const last = r.stderr.split('\n').filter(Boolean).at(-1)! + '\n';
        expect(last, cases[i]![0].join(' ')).toMatch(cases[i]![1]);
      });
    } finally {
      taken.close();
    }
  });

  it('`peerlb keygen` prints a key an agent starts with; `keygen --signing` a signing key whose public key `keygen --public` prints', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'keygen'], { env: cleanEnv() });
    expect(stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    const a = await startAgent({ ...base, keyFile: file('keygen.key', stdout) }, { log: false });
    expect(a.gossipStats().keys).toHaveLength(1);
    await a.stop();
    const signing = await run(process.execPath, [CLI, 'keygen', '--signing'], { env: cleanEnv() });
    expect(signing.stdout).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const pub = /public key: (\S+)/.exec(signing.stderr)![1];
    const pem = file('signing.pem', signing.stdout);
    expect((await run(process.execPath, [CLI, 'keygen', '--public', pem], { env: cleanEnv() })).stdout.trim()).toBe(pub);
    const s = await startAgent({ ...base, signingKeyFile: pem }, { log: false });
    await s.stop();
  });
});
