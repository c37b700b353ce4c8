/**
 * 'rejected' events raised while `await join()` is still waiting for a settled view reach the
 * listener attached right after it (they are kept for the first listener), and `onRejected` in the
 * options sees every one as it happens. Real agents sign their records with one key; the client
 * verifies with another, over /v1/watch and over mDNS (loopback, a port of this file's own).
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../../agent/index.js';
import { join, type Cluster } from '../../../sdk/index.js';
import { MAX_BUFFERED_REJECTIONS } from '../../../sdk/core/cluster.js';
import { SignatureError } from '../../../sdk/core/errors.js';
import { createFeed } from '../../../sdk/core/discovery/feed.js';
import { publicKeyBase64 } from '../../../sdk/node/signing.js';
import { agent, until } from '../../support/security.js';

const PORT = 20_000 + Math.floor(Math.random() * 30_000);
const RUN = Math.random().toString(36).slice(2, 7);
const SVC = `r${RUN}`;
const { privateKey } = generateKeyPairSync('ed25519');
const { privateKey: otherKey } = generateKeyPairSync('ed25519');
const SIGNING_PEM = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const WRONG_PUB = publicKeyBase64(otherKey);

const agents: Agent[] = [];
const clusters: Cluster[] = [];
afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.close()));
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

describe("'rejected' during join()", () => {
  it('over /v1/watch: the listener attached right after await join() gets the rejections of the first snapshot; onRejected got them during join', async () => {
    const a = await agent(`a-${RUN}`, { service: SVC, signingKey: SIGNING_PEM });
    agents.push(a);
    const early: SignatureError[] = [];
    let resolved = false;
    const c = await join({
      service: SVC,
      discovery: { agents: [a.url] },
      verify: { publicKey: WRONG_PUB },
      onRejected: (e) => early.push(Object.assign(e, { duringJoin: !resolved })),
    });
    resolved = true;
    clusters.push(c);
    const late: SignatureError[] = [];
    c.on('rejected', (e) => late.push(e));
    await until(() => late.length > 0, 2000, 'the buffered rejection');
    expect(late.map((e) => [e.server, e.source, e.reason])).toEqual([[`a-${RUN}`, 'watch', 'bad-signature']]);
    expect(early.map((e) => e.server)).toEqual([`a-${RUN}`]);
    expect((early[0] as SignatureError & { duringJoin: boolean }).duringJoin).toBe(true);
    expect(c.servers()).toEqual([]);
  });

  it('over mDNS: the same for a wrongly signed announcement found while join waits for the first query round', async () => {
    const a = await agent(`m-${RUN}`, { service: SVC, signingKey: SIGNING_PEM, mdns: { interface: '127.0.0.1', port: PORT } });
    agents.push(a);
    const c = await join({ service: SVC, discovery: { mdns: { interface: '127.0.0.1', port: PORT, subscribe: false } }, verify: { publicKey: WRONG_PUB } });
    clusters.push(c);
    const late: SignatureError[] = [];
    c.on('rejected', (e) => late.push(e));
    await until(() => late.length > 0, 2000, 'the buffered rejection');
    expect(late[0]).toMatchObject({ server: `m-${RUN}`, source: 'mdns', reason: 'bad-signature' });
    expect(c.servers()).toEqual([]);
  });

  it('keeps the latest MAX_BUFFERED_REJECTIONS for the first listener, and none twice', async () => {
    const c = await join({ service: SVC, discovery: { source: createFeed() }, waitForServersMs: 0 });
    clusters.push(c);
    for (let i = 0; i < 100; i++) c.rejected(new SignatureError(`s${i}`, 'watch', 'unsigned'));
    c.rejected(new SignatureError('s99', 'watch', 'unsigned')); // the same again: not a new event
    const got: string[] = [];
    c.on('rejected', (e) => got.push(e.server));
    await Promise.resolve();
    expect(got).toEqual(Array.from({ length: MAX_BUFFERED_REJECTIONS }, (_, i) => `s${100 - MAX_BUFFERED_REJECTIONS + i}`));
    const second: string[] = [];
    c.on('rejected', (e) => second.push(e.server));
    c.rejected(new SignatureError('x', 'mdns', 'bad-signature'));
    await Promise.resolve();
    expect(second).toEqual(['x']);
    expect(got.at(-1)).toBe('x');
  });
});
