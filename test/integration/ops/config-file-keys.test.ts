/**
 * A `peerlb agent --config` file takes every startAgent option (README: "keys as in startAgent"),
 * also those with no flag or environment variable — signingKey, limits.slowPeerMs and the other
 * limits — through the real CLI; a key that is no option is still refused, naming it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { keyIdHex } from '../../../agent/gossip/keyring.js';
import { checkRecordSignature } from '../../../sdk/node/signing.js';
import type { ServerRecord } from '../../../sdk/core/protocol.js';
import { ownLoopback } from '../../support/net.js';
import { configWriter, getJson, runCli, startCliAgent, stopCliAgents, type OpsAgent } from '../../support/ops.js';

const H = await ownLoopback('127.0.0.42');
const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-config-keys-'));
const procs: OpsAgent[] = [];
const writeConfig = configWriter(dir);

afterAll(async () => {
  await stopCliAgents(procs);
  rmSync(dir, { recursive: true, force: true });
}, 20_000);

/** The first snapshot of a JSON /v1/watch subscription. */
function snapshot(url: string): Promise<ServerRecord[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/v1/watch?format=json`);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no snapshot'));
    }, 5000);
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1 })));
    ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as { t: string; servers?: ServerRecord[] };
      if (f.t !== 'snapshot') return;
      clearTimeout(timer);
      ws.terminate();
      resolve(f.servers!);
    });
  });
}

describe('config file keys as in startAgent', () => {
  it('signingKey, keyring and limits without flags of their own are taken from the file and used', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = randomBytes(32).toString('base64');
    const file = writeConfig('all-keys.json', {
      signingKey: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      keyring: [key],
      limits: { slowPeerMs: 1234, replayWindowMs: 5000, authFailureWindowMs: 2000, authBlockMs: 1000, maxSubscribers: 7 },
      drainTimeoutMs: 100,
    });
    const a = await startCliAgent(procs, 'cfk-a', H, { extra: ['--config', file] });
    const cfg = a.logs.find((l) => l.msg === 'configuration')?.config as Record<string, unknown> | undefined;
    expect(cfg).toMatchObject({
      signingKey: '(set)',
      keyring: '(set)',
      drainTimeoutMs: 100,
      limits: { slowPeerMs: 1234, replayWindowMs: 5000, authFailureWindowMs: 2000, authBlockMs: 1000, maxSubscribers: 7 },
    });
    // The keys are really in use: gossip sealed with the file's key, watch records signed with its signing key.
    expect(await getJson(`${a.http}/v1/keyring`)).toEqual({ keys: [keyIdHex(Buffer.from(key, 'base64'))], primary: keyIdHex(Buffer.from(key, 'base64')) });
    expect(a.logs.some((l) => /cluster is open/.test(String(l.msg)))).toBe(false);
    const servers = await snapshot(a.url);
    expect(servers.map((s) => s.id)).toEqual(['cfk-a']);
    expect(checkRecordSignature(servers[0]!, publicKey)).toBeUndefined();
  });

  it('a key that is no option of startAgent is still refused, naming it', async () => {
    for (const [name, body, re] of [
      ['typo.json', { service: 'game', tcpPort: 7000, signingKye: 'x' }, /unknown option "signingKye"/],
      ['flag-name.json', { service: 'game', tcpPort: 7000, 'max-frame-bytes': 9000 }, /unknown option "max-frame-bytes"/],
      ['nested.json', { service: 'game', tcpPort: 7000, limits: { slowPeerMS: 10 } }, /"limits\.slowPeerMS" is not an option \(did you mean "limits\.slowPeerMs"\?\)\. Known in limits/],
      ['bad-signing.json', { service: 'game', tcpPort: 7000, signingKey: 'AAAA' }, /"signingKey"/],
    ] as const) {
      const r = await runCli(['agent', '--config', writeConfig(name, body), '--host', H, '--port', '0']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });
});
