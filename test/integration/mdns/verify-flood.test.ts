/**
 * A verifying client (join with verify.publicKey, mDNS discovery) under a flood of forged,
 * unsigned instances, on real multicast sockets confined to loopback (interface 127.0.0.1) on a
 * port of this file's own, with a per-run service name. Judged by outcome: the genuine signed
 * agents are found (one that was there before the flood, one that starts after it), nothing
 * forged gets in, and an instance whose announcement turns out wrongly signed stops being a server.
 * A control client without the key sees the forgeries, so they did reach the link.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Answer } from 'dns-packet';
import type { Agent } from '../../../agent/index.js';
import { MdnsAnnouncer } from '../../../agent/mdns/announcer.js';
import { buildRecords, type AnnounceInfo } from '../../../sdk/mdns/records.js';
import { createMdnsSocket, waitReady } from '../../../sdk/mdns/socket.js';
import { join, type Cluster } from '../../../sdk/index.js';
import { publicKeyBase64, signBytes } from '../../../sdk/node/signing.js';
import type { SignatureError } from '../../../sdk/core/errors.js';
import { agent, until, sleep } from '../../support/security.js';

const IFACE = '127.0.0.1';
const PORT = 20_000 + Math.floor(Math.random() * 30_000);
const RUN = Math.random().toString(36).slice(2, 7);
const SVC = `v${RUN}`;
const MDNS = { interface: IFACE, port: PORT };

const { privateKey } = generateKeyPairSync('ed25519');
const { privateKey: otherKey } = generateKeyPairSync('ed25519');
const PUB = publicKeyBase64(privateKey);
const SIGNING_PEM = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
});

async function client(verify: boolean) {
  const rejected: SignatureError[] = [];
  const c: Cluster = await join({ service: SVC, discovery: { mdns: { ...MDNS, subscribe: false } }, ...(verify ? { verify: { publicKey: PUB } } : {}), waitForServersMs: 0 });
  c.on('rejected', (e) => rejected.push(e));
  closers.push(() => c.close());
  return { c, rejected, ids: () => c.servers().map((s) => s.id).sort() };
}

const forged = (node: string, n: number, over: Partial<AnnounceInfo> = {}): AnnounceInfo => ({
  node,
  service: SVC,
  host: `127.1.${(n >> 8) & 255}.${n & 255}`,
  agentPort: 9,
  udpPort: 41_000,
  weight: 10_000,
  health: 'healthy',
  loadBucket: 0,
  ...over,
});

describe('verifying mDNS client under a flood of forged instances (loopback, port of its own)', () => {
  it('2,000 packets of 5 unsigned instances each (40,000 records, five times what a cache holds): the signed agent there before stays, one started after is found within seconds, nothing forged is picked', async () => {
    const g1 = await agent(`g1-${RUN}`, { service: SVC, signingKey: SIGNING_PEM, mdns: MDNS, udpPort: 40_011 });
    closers.push(() => g1.stop());
    const verifying = await client(true);
    const control = await client(false);
    await until(() => verifying.ids().includes(g1.node), 8000, 'the verifying client to find g1');

    // The flood: day-long TTLs, cache-flush bits as a real responder sends them, no signature.
    const sock = createMdnsSocket(IFACE, PORT);
    sock.on('error', () => {});
    sock.on('warning', () => {});
    await waitReady(sock);
    closers.push(() => new Promise<void>((r) => sock.destroy(() => r())));
    const day = { host: 86_400, txt: 86_400, ptr: 86_400 };
    for (let p = 0; p < 2000; p++) {
      const answers: Answer[] = [];
      for (let k = 0; k < 5; k++) {
        const set = buildRecords(forged(`f${RUN}-${p}-${k}`, p * 5 + k), { ttls: day });
        const keep = new Set([set.names.subtype, set.names.instance, set.names.hostname]);
        for (const r of set.records) if (keep.has(r.rr.name)) answers.push({ ...r.rr, flush: r.unique } as Answer);
      }
      sock.send({ type: 'response', id: 0, flags: 0x400, answers });
      // Let the receivers (in this process) drain their sockets now and then.
      if (p % 20 === 19) await sleep(2);
    }
    // The forgeries reached the link: the control client took many of them.
    await until(() => control.ids().length > 1000, 10_000, 'the control client to see the forgeries');
    expect(verifying.rejected.length).toBeGreaterThan(1000);

    const g2 = await agent(`g2-${RUN}`, { service: SVC, signingKey: SIGNING_PEM, mdns: MDNS, udpPort: 40_012 });
    closers.push(() => g2.stop());
    await until(() => verifying.ids().includes(g2.node), 4000, 'the verifying client to find g2, started after the flood');
    expect(verifying.ids()).toEqual([g1.node, g2.node].sort());
    const picks = new Set<string>();
    for (let i = 0; i < 1000; i++) picks.add(verifying.c.pick()!.id);
    expect([...picks].sort()).toEqual([g1.node, g2.node].sort());
  }, 60_000);

  it('a signed instance whose announcement turns wrongly signed is a server no longer (rejected, not kept from before); signed again, it comes back', async () => {
    let key = privateKey;
    const node = `t-${RUN}`;
    const base = forged(node, 7, { host: '127.0.0.1', agentPort: 7, weight: 100 });
    const a = new MdnsAnnouncer({ info: base, interface: IFACE, port: PORT, sign: (d) => signBytes(d, key) });
    closers.push(() => a.stop());
    await a.start();
    const verifying = await client(true);
    await until(() => verifying.ids().includes(node), 8000, 'the signed instance');

    key = otherKey;
    a.update({ ...base, weight: 200 });
    await until(() => verifying.rejected.some((e) => e.server === node && e.reason === 'bad-signature'), 5000, 'its rejection');
    await until(() => !verifying.ids().includes(node), 3000, 'the server to leave the view');
    expect(verifying.c.pick()).toBeUndefined();

    key = privateKey;
    a.update({ ...base, weight: 300 });
    await until(() => verifying.c.servers().some((s) => s.id === node && s.weight === 300), 10_000, 'the signed announcement to bring it back');
  });
});
