/**
 * Signed announcements, on real multicast sockets confined to loopback (interface 127.0.0.1, socket
 * bound to 0.0.0.0) on a port of this file's own, with a per-run service name.
 *
 * A genuine agent signs its mDNS TXT and its own /v1/watch record with the cluster's Ed25519 key
 * (other members' records keep their own agent's signature, or none: test/integration/security/origin-signing.test.ts).
 * Forgers announce the same service: unsigned, signed with another key, with the right key's
 * signature over other data, and one under the genuine agent's own node id. An SDK holding the
 * public key never picks a forged server and emits 'rejected' for each; the genuine one is picked.
 * A client without the key (control) does see the forgeries, so they did reach the link.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../../agent/index.js';
import { MdnsAnnouncer } from '../../../agent/mdns/announcer.js';
import type { AnnounceInfo } from '../../../sdk/mdns/records.js';
import { join, type Cluster } from '../../../sdk/index.js';
import { publicKeyBase64, signBytes } from '../../../sdk/node/signing.js';
import type { SignatureError } from '../../../sdk/core/errors.js';
import { agent, until, sleep } from '../../support/security.js';

const IFACE = '127.0.0.1';
const PORT = 20_000 + Math.floor(Math.random() * 30_000);
const RUN = Math.random().toString(36).slice(2, 7);
const SVC = `s${RUN}`;
const MDNS = { interface: IFACE, port: PORT };

const { privateKey } = generateKeyPairSync('ed25519');
const { privateKey: otherKey } = generateKeyPairSync('ed25519');
const PUB = publicKeyBase64(privateKey);
const SIGNING_PEM = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

const agents: Agent[] = [];
const announcers: MdnsAnnouncer[] = [];
const clusters: Cluster[] = [];
afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all(announcers.splice(0).map((a) => a.stop().catch(() => {})));
  await Promise.all(agents.splice(0).map((a) => a.stop().catch(() => {})));
});
afterAll(async () => {
  await sleep(50);
});

const forged = (node: string, agentPort: number, over: Partial<AnnounceInfo> = {}): AnnounceInfo => ({
  node,
  service: SVC,
  host: '127.0.0.1',
  agentPort,
  udpPort: 41_000,
  weight: 10_000,
  health: 'healthy',
  loadBucket: 0,
  ...over,
});

async function announce(info: AnnounceInfo, sign?: (d: Buffer) => string): Promise<MdnsAnnouncer> {
  const a = new MdnsAnnouncer({ info, interface: IFACE, port: PORT, sign });
  announcers.push(a);
  await a.start();
  return a;
}

async function client(over: { verify?: boolean; subscribe?: boolean; agents?: string[] } = {}) {
  const rejected: SignatureError[] = [];
  const discovery = over.agents ? { agents: over.agents } : { mdns: { ...MDNS, subscribe: over.subscribe ?? false } };
  const c = await join({ service: SVC, discovery, ...(over.verify ? { verify: { publicKey: PUB } } : {}), waitForServersMs: 0 });
  c.on('rejected', (e) => rejected.push(e));
  clusters.push(c);
  return { c, rejected, ids: () => c.servers().map((s) => s.id).sort() };
}

describe('signed announcements (mDNS on loopback, port of its own)', () => {
  it('forged mDNS announcements (unsigned, another key, the right key over other data) are never picked by a verifying SDK, which emits rejected; the signed one is', async () => {
    const g = await agent(`g-${RUN}`, { service: SVC, signingKey: SIGNING_PEM, mdns: MDNS, udpPort: 40_001 });
    agents.push(g);
    // An open agent of the same service: where the forged announcements point (were a client to
    // subscribe there, it would get unsigned records).
    const open = await agent(`o-${RUN}`, { service: SVC, udpPort: 40_002 });
    agents.push(open);

    const verifying = await client({ verify: true });
    const subscribing = await client({ verify: true, subscribe: true });
    const control = await client();
    await announce(forged(`unsigned-${RUN}`, open.port));
    await announce(forged(`otherkey-${RUN}`, open.port), (d) => signBytes(d, otherKey));
    // The genuine key's signature, but over different data (as if lifted from another announcement).
    await announce(forged(`lifted-${RUN}`, open.port), (d) => signBytes(Buffer.concat([d, Buffer.from('x')]), privateKey));

    const forgeries = [`lifted-${RUN}`, `otherkey-${RUN}`, `unsigned-${RUN}`];
    await until(() => forgeries.every((f) => control.ids().includes(f)) && control.ids().includes(g.node), 8000, 'the control client to see all four');
    await until(() => verifying.ids().includes(g.node) && subscribing.ids().includes(g.node), 5000, 'the verifying clients to see the genuine agent');
    await until(() => forgeries.every((f) => verifying.rejected.some((e) => e.server === f)), 5000, 'a rejection per forgery');
    await sleep(1500); // re-announcements and updates come and go: still nothing forged gets in

    for (const v of [verifying, subscribing]) {
      expect(v.ids()).toEqual([g.node]);
      const picks = new Set<string>();
      for (let i = 0; i < 2000; i++) picks.add(v.c.pick()!.id);
      for (let i = 0; i < 200; i++) picks.add(v.c.pick({ key: `k${i}` })!.id);
      expect([...picks]).toEqual([g.node]);
    }
    const why = (node: string) => verifying.rejected.filter((e) => e.server === node).map((e) => [e.code, e.source, e.reason]);
    expect(why(`unsigned-${RUN}`)).toContainEqual(['PEERLB_ERR_SIGNATURE', 'mdns', 'unsigned']);
    expect(why(`otherkey-${RUN}`)).toContainEqual(['PEERLB_ERR_SIGNATURE', 'mdns', 'bad-signature']);
    expect(why(`lifted-${RUN}`)).toContainEqual(['PEERLB_ERR_SIGNATURE', 'mdns', 'bad-signature']);
    expect(verifying.rejected.some((e) => e.server === g.node)).toBe(false);
    // The control client picks forged servers (heavier weight): what the verification prevents.
    const controlPicks = new Set<string>();
    for (let i = 0; i < 2000; i++) controlPicks.add(control.c.pick()!.id);
    expect(forgeries.some((f) => controlPicks.has(f))).toBe(true);
  });

  it("a forger under the genuine agent's node id cannot replace it, nor remove it with its goodbye", async () => {
    const g = await agent(`same-${RUN}`, { service: SVC, signingKey: SIGNING_PEM, mdns: MDNS, udpPort: 40_003 });
    agents.push(g);
    const verifying = await client({ verify: true });
    await until(() => verifying.ids().includes(g.node), 8000, 'the genuine agent');
    // Same node id: it probes, meets the genuine records, renames its instance (`same-… (2)`), and
    // announces TXT node=same-… unsigned, pointing at another port.
    const f = await announce(forged(g.node, 9, { udpPort: 41_001 }));
    expect(f.names().label).not.toBe(g.node);
    await until(() => verifying.rejected.some((e) => e.server === g.node && e.reason === 'unsigned'), 5000, 'its rejection');
    expect(verifying.c.servers().map((s) => [s.id, s.udpPort])).toEqual([[g.node, 40_003]]);
    // Watch every change of the view from now on: the genuine server must never leave it (it would
    // come back at its next TXT update, so a check at the end alone could miss its removal).
    const views: string[][] = [];
    verifying.c.on('change', (v) => views.push(v.map((s) => s.id)));
    await f.stop(); // goodbyes (TTL 0) for the forged instance; receivers drop it a second later (RFC 6762 §10.1)
    await sleep(2500);
    expect(views.filter((v) => !v.includes(g.node))).toEqual([]);
    expect(verifying.c.servers().map((s) => [s.id, s.udpPort])).toEqual([[g.node, 40_003]]);
    expect(verifying.c.pick()?.id).toBe(g.node);
  });

  it('an unsigned server in the same cluster as a signing one, both on mDNS, is never picked by a verifying SDK, subscribed or not', async () => {
    const g = await agent(`ms-${RUN}`, { service: SVC, signingKey: SIGNING_PEM, mdns: MDNS, udpPort: 40_006 });
    agents.push(g);
    const u = await agent(`mu-${RUN}`, { service: SVC, mdns: MDNS, udpPort: 40_007, join: [g.url] });
    agents.push(u);
    await until(() => g.members().length === 2 && u.members().length === 2, 8000, 'the two agents to see each other');
    const subscribing = await client({ verify: true, subscribe: true });
    const browsing = await client({ verify: true, subscribe: false });
    const control = await client({ subscribe: true });
    await until(() => control.ids().length === 2, 8000, 'the control client to see both');
    await until(() => subscribing.ids().includes(g.node) && browsing.ids().includes(g.node), 8000, 'the verifying clients to see the signed server');
    await sleep(1500); // announcements, watch upserts and load updates come and go
    for (const v of [subscribing, browsing]) {
      const counts = new Map<string, number>();
      for (let i = 0; i < 2000; i++) {
        const id = v.c.pick()?.id;
        if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      for (let i = 0; i < 200; i++) {
        const id = v.c.pick({ key: `k${i}` })?.id;
        if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      expect(counts.get(u.node) ?? 0).toBe(0);
      expect(counts.get(g.node)).toBe(2200);
      expect(v.ids()).toEqual([g.node]);
      expect(v.rejected.some((e) => e.server === u.node && e.reason === 'unsigned')).toBe(true);
      expect(v.rejected.some((e) => e.server === g.node)).toBe(false);
    }
  });

  it('/v1/watch: a verifying SDK takes the signed records of a signing agent and rejects every record of an agent that does not sign', async () => {
    const g = await agent(`w-${RUN}`, { service: SVC, signingKey: SIGNING_PEM, udpPort: 40_004 });
    const u = await agent(`u-${RUN}`, { service: SVC, udpPort: 40_005 });
    agents.push(g, u);
    const good = await client({ verify: true, agents: [g.url] });
    await until(() => good.ids().includes(g.node), 5000, 'the signed record');
    // Load updates (not covered by the signature, which the record keeps) keep coming through.
    g.report({ sessions: 7 });
    await until(() => good.c.servers().find((s) => s.id === g.node)?.load?.sessions === 7, 5000, 'a signed load update');
    const bad = await client({ verify: true, agents: [u.url] });
    await until(() => bad.rejected.some((e) => e.server === u.node), 5000, 'the rejection of the unsigned record');
    await sleep(500);
    expect(bad.ids()).toEqual([]);
    expect(bad.rejected[0]).toMatchObject({ code: 'PEERLB_ERR_SIGNATURE', source: 'watch', reason: 'unsigned' });
    expect(bad.c.pick()).toBeUndefined();
    // The same agent's records are fine for a client that does not verify (control).
    const plain = await client({ agents: [u.url] });
    await until(() => plain.ids().includes(u.node), 5000, 'the unsigned record without verify');
  });
});
