/**
 * Signatures are made at the origin (sdk/core/signing.ts): an agent with the signing key signs only its
 * own server's record; other members' records travel through gossip with the signature their own
 * agent made and are relayed unchanged on /v1/watch. Real agents on loopback sockets, open
 * clusters (no keyring: anyone can join, which is what makes relaying unsigned matter).
 *
 *  - A signing agent does not sign a member whose agent has no key: a verifying SDK watching the
 *    signing agent never has that server in its view or picks.
 *  - An agent without the key relays the signed records of the others unchanged: a verifying SDK
 *    watching it has them (and not its own server).
 *  - A record signed with another key, relayed, is rejected; a rejection is reported once per
 *    change of the record, not once per load update.
 *  - `verify.publicKey` takes what `peerlb keygen --public` prints, PEM, base64 SPKI DER and hex;
 *    garbage is a BadOptionError naming the option.
 *  - Gossip carries the signature beside the meta; a signature of another incarnation is dropped.
 *  - A signing agent without a keyring warns that anyone can join and is relayed unsigned.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../../../agent/index.js';
import { createLogger } from '../../../agent/log.js';
import { decodeFrame, encodeFrame, type MemberMeta, type StateUpdate } from '../../../agent/gossip/messages.js';
import { Membership } from '../../../agent/gossip/membership.js';
import { MemoryNetwork } from '../../../agent/gossip/memory-transport.js';
import { ManualClock } from '../../../sdk/core/clock.js';
import { AgentWatch } from '../../../sdk/core/discovery/agents.js';
import { join, type Cluster } from '../../../sdk/index.js';
import { BadOptionError, type SignatureError } from '../../../sdk/core/errors.js';
import { checkRecordSignature, nodeVerifier, publicKeyBase64, signFields } from '../../../sdk/node/signing.js';
import { wsConnector } from '../../../sdk/node/ws.js';
import type { ServerRecord } from '../../../sdk/core/protocol.js';
import { CLI } from '../../support/agents.js';
import { agent, alive, until, sleep } from '../../support/security.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const { privateKey: otherKey } = generateKeyPairSync('ed25519');
const SIGNING_PEM = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const OTHER_PEM = otherKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const PUB_RAW = publicKeyBase64(privateKey);

const running: Agent[] = [];
const clusters: Cluster[] = [];
const watches: AgentWatch[] = [];
afterEach(async () => {
  watches.splice(0).forEach((w) => w.close());
  await Promise.all(clusters.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all(running.splice(0).map((a) => a.stop().catch(() => {})));
});

async function started(node: string, opts: Parameters<typeof agent>[1] = {}): Promise<Agent> {
  const a = await agent(node, { service: 'sig', ...opts });
  running.push(a);
  return a;
}

async function client(agents: string[], verify: boolean) {
  const rejected: SignatureError[] = [];
  const c = await join({ service: 'sig', discovery: { agents }, ...(verify ? { verify: { publicKey: PUB_RAW } } : {}), waitForServersMs: 0 });
  c.on('rejected', (e) => rejected.push(e));
  clusters.push(c);
  return { c, rejected, ids: () => c.servers().map((s) => s.id).sort() };
}

/** Ids picked in `n` plain picks and `n / 10` keyed ones, with their counts. */
function picks(c: Cluster, n = 2000): Map<string, number> {
  const out = new Map<string, number>();
  const add = (id: string | undefined) => id !== undefined && out.set(id, (out.get(id) ?? 0) + 1);
  for (let i = 0; i < n; i++) add(c.pick()?.id);
  for (let i = 0; i < n / 10; i++) add(c.pick({ key: `k${i}` })?.id);
  return out;
}

describe('signatures made at the origin, relayed unchanged (real agents, open cluster)', () => {
  it("a signing agent does not sign a keyless member's record: a verifying SDK watching it never views or picks that server", async () => {
    const a = await started('os-a', { signingKey: SIGNING_PEM, udpPort: 40_101 });
    const b = await started('os-b', { join: [a.url], udpPort: 40_102 });
    await until(() => alive(a).length === 2 && alive(b).length === 2, 8000, 'a and b to see each other');

    const control = await client([a.url], false);
    const verifying = await client([a.url], true);
    await until(() => control.ids().length === 2, 8000, "the control client to get both servers from a's watch");
    await until(() => verifying.ids().includes('os-a'), 8000, 'the verifying client to take a');
    await sleep(1000); // load updates of b (every 100 ms) keep coming: still not in the view

    const got = picks(verifying.c);
    expect(got.get('os-b') ?? 0).toBe(0);
    expect([...got.keys()]).toEqual(['os-a']);
    expect(verifying.ids()).toEqual(['os-a']);
    await until(() => verifying.rejected.some((e) => e.server === 'os-b'), 8000, "b's rejection");
    expect(verifying.rejected.filter((e) => e.server === 'os-b').map((e) => [e.source, e.reason])).toEqual([['watch', 'unsigned']]);
    expect(verifying.rejected.some((e) => e.server === 'os-a')).toBe(false);
  });

  it("an agent without the key relays the others' signatures unchanged: a verifying SDK watching it takes them, not its own server", async () => {
    const a = await started('or-a', { signingKey: SIGNING_PEM, udpPort: 40_111 });
    const c = await started('or-c', { signingKey: SIGNING_PEM, join: [a.url], udpPort: 40_113 });
    const relay = await started('or-r', { join: [a.url], udpPort: 40_112 });
    await until(() => alive(relay).length === 3 && alive(a).length === 3 && alive(c).length === 3, 8000, 'the three to see each other');

    const verifying = await client([relay.url], true);
    await until(() => verifying.ids().length === 2, 8000, "a's and c's signed records through the relay");
    await until(() => verifying.rejected.some((e) => e.server === 'or-r'), 8000, "the relay's own unsigned record rejected");
    await sleep(500);
    expect(verifying.ids()).toEqual(['or-a', 'or-c']);
    const got = picks(verifying.c);
    expect([...got.keys()].sort()).toEqual(['or-a', 'or-c']);
    expect(got.get('or-r') ?? 0).toBe(0);
    // A new weight at the origin (a signed field, a new incarnation) is signed again there and still taken.
    expect(a.reload({ service: 'sig', node: 'or-a', host: '127.0.0.1', port: 0, udpPort: 40_111, gossipProfile: 'local', loadIntervalMs: 100, signingKey: SIGNING_PEM, weight: 250 }).changed).toEqual(['weight']);
    await until(() => verifying.c.servers().find((s) => s.id === 'or-a')?.weight === 250, 8000, "a's new weight through the relay");
    expect(verifying.ids()).toEqual(['or-a', 'or-c']);
    expect(verifying.rejected.some((e) => e.server === 'or-a' || e.server === 'or-c')).toBe(false);
  });

  it('a record signed with another key is rejected whichever agent relays it, once per change of the record, not per load update', async () => {
    const a = await started('ok-a', { signingKey: SIGNING_PEM, udpPort: 40_121 });
    const x = await started('ok-x', { signingKey: OTHER_PEM, join: [a.url], udpPort: 40_122, loadIntervalMs: 50 });
    await until(() => alive(a).length === 2 && alive(x).length === 2, 8000, 'a and x');

    // The source itself (below the cluster's own de-duplication), to count its reports.
    const rejected: SignatureError[] = [];
    const upserts: string[] = [];
    const view = new Map<string, ServerRecord>();
    const w = new AgentWatch({ service: 'sig', agents: [a.url], connect: wsConnector, verify: nodeVerifier(publicKey), onRejected: (e) => rejected.push(e) });
    watches.push(w);
    w.start({
      upsert: (r) => (upserts.push(r.id), view.set(r.id, r)),
      remove: (id) => view.delete(id),
      reset: (rs) => (view.clear(), rs.forEach((r) => view.set(r.id, r))),
      error: () => {},
    });
    // A control watch counts x's upserts: many load updates reach a's subscribers.
    const xUpserts: number[] = [];
    const control = new AgentWatch({ service: 'sig', agents: [a.url], connect: wsConnector });
    watches.push(control);
    control.start({ upsert: (r) => r.id === 'ok-x' && xUpserts.push(1), remove: () => {}, reset: () => {}, error: () => {} });
    await until(() => view.has('ok-a') && rejected.some((e) => e.server === 'ok-x'), 8000, 'a taken, x rejected');
    for (let i = 0; i < 20; i++) {
      x.report({ sessions: i + 1 });
      await sleep(60);
    }
    await until(() => xUpserts.length >= 10, 8000, "x's load updates on a's watch");
    expect([...view.keys()]).toEqual(['ok-a']);
    expect(upserts.includes('ok-x')).toBe(false);
    expect(rejected.filter((e) => e.server === 'ok-x').map((e) => e.reason)).toEqual(['bad-signature']);
  });

  it('verify.publicKey takes what `peerlb keygen --public` prints, PEM, base64 SPKI DER (the README form) and hex; garbage is refused naming the option', async () => {
    const a = await started('pk-a', { signingKey: SIGNING_PEM, udpPort: 40_131 });
    const dir = mkdtempSync(pathJoin(tmpdir(), 'peerlb-pk-'));
    const keyFile = pathJoin(dir, 'sign.pem');
    writeFileSync(keyFile, SIGNING_PEM);
    const cli = spawnSync(process.execPath, [CLI, 'keygen', '--public', keyFile], { encoding: 'utf8', timeout: 20_000 });
    expect(cli.status).toBe(0);
    const printed = cli.stdout; // with its newline, as a user pastes it
    const spkiDer = publicKey.export({ format: 'der', type: 'spki' });
    const forms: Record<string, string> = {
      'keygen --public': printed,
      pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      'base64 SPKI DER': spkiDer.toString('base64'),
      'base64 SPKI DER, wrapped': spkiDer.toString('base64').replace(/(.{20})/g, '$1\n'),
      'hex raw': Buffer.from(PUB_RAW, 'base64').toString('hex'),
      'base64url raw': Buffer.from(PUB_RAW, 'base64').toString('base64url'),
    };
    expect(forms['base64 SPKI DER']!.startsWith('MCowBQYDK2VwAyEA')).toBe(true); // the README's example
    for (const [form, key] of Object.entries(forms)) {
      const c = await join({ service: 'sig', discovery: { agents: [a.url] }, verify: { publicKey: key }, waitForServersMs: 5000 });
      clusters.push(c);
      expect([form, c.servers().map((s) => s.id)]).toEqual([form, ['pk-a']]);
    }
    const garbage = ['not a key', 'AAAA', randomBytes(31).toString('base64'), randomBytes(44).toString('base64'), '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', SIGNING_PEM.replace('PRIVATE', 'PUBLIC')];
    for (const g of garbage) {
      let err: unknown;
      try {
        clusters.push(await join({ service: 'sig', discovery: { agents: [a.url] }, verify: { publicKey: g }, waitForServersMs: 0 }));
      } catch (e) {
        err = e;
      }
      expect(err, g).toBeInstanceOf(BadOptionError);
      expect((err as BadOptionError).option).toBe('verify.publicKey');
      expect((err as Error).message).toMatch(/verify\.publicKey/);
    }
    // Another kind of key (RSA) is refused too.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    await expect(join({ service: 'sig', discovery: { agents: [a.url] }, verify: { publicKey: rsa }, waitForServersMs: 0 })).rejects.toThrow(/verify\.publicKey.*Ed25519/);
  });

  it('a signing agent without a keyring warns that anyone can join and is relayed unsigned; with a keyring it does not', async () => {
    const lines: Array<{ level: number; msg: string; node?: string }> = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { level: number; msg: string });
        cb();
      },
    });
    const logger = createLogger({ level: 'info', destination: sink, pretty: false });
    const base = { service: 'sig', host: '127.0.0.1', port: 0, udpPort: 40_141 };
    running.push(await startAgent({ ...base, node: 'warn-open', signingKey: SIGNING_PEM }, { log: logger }));
    running.push(await startAgent({ ...base, node: 'warn-sealed', signingKey: SIGNING_PEM, keyring: [randomBytes(32).toString('base64')] }, { log: logger }));
    running.push(await startAgent({ ...base, node: 'warn-nokey' }, { log: logger }));
    await sleep(100);
    const warn = lines.filter((l) => /signing key without a keyring/.test(l.msg));
    expect(warn.map((l) => [l.node, l.level])).toEqual([['warn-open', 40]]);
    expect(warn[0]!.msg).toMatch(/anyone can join/);
    expect(warn[0]!.msg).toMatch(/unsigned/);
  });
});

describe('gossip carries the origin signature beside the meta', () => {
  const meta: MemberMeta = { id: 'n1', service: 'sig', host: '127.0.0.1', udpPort: 7001, weight: 100, health: 'healthy' };
  const from = { node: 'n1', addr: 'ws://127.0.0.1:7946' };
  const sig = signFields({ ...meta, agent: from.addr }, 5, privateKey);

  it('alive updates and push-pull states keep sig and sigv of their own incarnation, drop those of another, and frames without decode as before', () => {
    const alive = (incarnation: number, m: MemberMeta) =>
      decodeFrame(encodeFrame({ type: 'gossip', from, piggyback: { updates: [{ kind: 'alive', node: 'n1', incarnation, addr: from.addr, meta: m }], loads: [] } }));
    const got = alive(5, { ...meta, sig, sigv: 5 });
    const u = got.type === 'gossip' ? got.piggyback.updates[0] : undefined;
    expect(u?.kind === 'alive' && u.meta).toEqual({ ...meta, sig, sigv: 5 });
    // Replayed over a newer incarnation: the old signature does not ride along.
    const replayed = alive(9, { ...meta, sig, sigv: 5 });
    const r = replayed.type === 'gossip' ? replayed.piggyback.updates[0] : undefined;
    expect(r?.kind === 'alive' && r.meta).toEqual(meta);
    const plain = alive(5, meta);
    const p = plain.type === 'gossip' ? plain.piggyback.updates[0] : undefined;
    expect(p?.kind === 'alive' && p.meta).toEqual(meta);

    const pp = decodeFrame(encodeFrame({ type: 'push-pull-resp', from, states: [{ node: 'n1', addr: from.addr, incarnation: 5, status: 'alive', meta: { ...meta, sig, sigv: 5 } }] }));
    expect(pp.type === 'push-pull-resp' && pp.states[0]!.meta).toEqual({ ...meta, sig, sigv: 5 });
    // What the relay builds for /v1/watch from it verifies at the client.
    const rec: ServerRecord = { ...meta, sig, sigv: 5, agent: from.addr };
    expect(checkRecordSignature(rec, publicKey)).toBeUndefined();
    expect(checkRecordSignature({ ...rec, host: '10.0.0.1' }, publicKey)).toBe('bad-signature');
    expect(checkRecordSignature({ ...rec, sigv: 6 }, publicKey)).toBe('bad-signature');
    // Load and health are not covered.
    expect(checkRecordSignature({ ...rec, health: 'unhealthy', load: { connections: 1, sessions: 2, utilization: 0.5, seq: 9, ageMs: 0 } }, publicKey)).toBeUndefined();
  });
});

describe('a signed full state larger than one frame', () => {
  it('push-pull goes in parts under the frame limit, and a joining member learns every member with its signature', () => {
    const MAX = 4096;
    const clock = new ManualClock();
    const net = new MemoryNetwork({ clock });
    const config = { probeIntervalMs: 600_000, probeTimeoutMs: 500, pushPullIntervalMs: 0 };
    const addr = (i: number) => `ws://127.0.0.1:${10_000 + i}`;
    const metaOf = (node: string): MemberMeta => ({ id: node, service: 'sig', host: '127.0.0.1', udpPort: 7001, weight: 100, health: 'healthy' });
    const signMeta = (m: MemberMeta, a: string, inc: number) => signFields({ ...m, agent: a }, inc, privateKey);
    const a = new Membership({ node: 'a', meta: metaOf('a'), transport: net.transport(addr(0)), clock, config, maxFrameBytes: MAX, signMeta });
    a.start([]);
    // 60 members, each signed by its own node, told to a in frames that fit.
    const fake = net.transport(addr(1));
    const updates: StateUpdate[] = [];
    for (let i = 2; i < 62; i++) {
      net.transport(addr(i)); // a socket that swallows what it gets
      const node = `m${i}`;
      const meta = { ...metaOf(node), sig: signMeta(metaOf(node), addr(i), 1), sigv: 1 };
      updates.push({ kind: 'alive', node, incarnation: 1, addr: addr(i), meta });
    }
    for (let i = 0; i < updates.length; i += 10) fake.send(addr(0), encodeFrame({ type: 'gossip', from: { node: 'm1', addr: addr(1) }, piggyback: { updates: updates.slice(i, i + 10), loads: [] } }));
    for (let t = 0; t < 100; t++) clock.advance(100); // delivered, and a's retransmissions of them are over
    expect(a.members().length).toBe(61);
    const full = encodeFrame({ type: 'push-pull-resp', from: { node: 'a', addr: addr(0) }, states: a.members().map((m) => ({ node: m.node, addr: m.addr, incarnation: m.incarnation, status: m.status, meta: m.meta })) });
    expect(full.length).toBeGreaterThan(MAX);

    const b = new Membership({ node: 'b', meta: metaOf('b'), transport: net.transport(addr(100)), clock, config, maxFrameBytes: MAX });
    b.start([addr(0)]);
    for (let t = 0; t < 50; t++) clock.advance(100);
    const known = b.members().filter((m) => m.node.startsWith('m'));
    expect(known.length).toBe(60);
    // Every member's record, as b would relay it on /v1/watch, verifies: signed by its own node, unchanged.
    for (const m of known) expect(checkRecordSignature({ ...m.meta, id: m.node, agent: m.addr }, publicKey)).toBeUndefined();
    // b has no signing key: its own record goes unsigned, a's is signed by a.
    expect(b.self().meta.sig).toBeUndefined();
    const am = b.member('a')!;
    expect(checkRecordSignature({ ...am.meta, id: 'a', agent: am.addr }, publicKey)).toBeUndefined();
    a.stop();
    b.stop();
  });
});
