/**
 * The failure detector alone, over a fake host: a member table, a ManualClock, and the frames it
 * sends captured (no transport, no sockets, no sleeps).
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { resolveGossipConfig } from '../../../../agent/gossip/config.js';
import { FailureDetector } from '../../../../agent/gossip/failure-detector.js';
import type { Counter, GossipHost, InFrame } from '../../../../agent/gossip/host.js';
import { MemberTable, newRec } from '../../../../agent/gossip/member-table.js';
import type { GossipFrame, MemberMeta, StateUpdate } from '../../../../agent/gossip/messages.js';

const meta = (id: string): MemberMeta => ({ id, service: 'game', host: '10.0.0.1', weight: 100, health: 'healthy' });
const addr = (n: string) => `ws://${n}:7946`;

function setup(others: string[]) {
  const clock = new ManualClock(1000);
  const config = resolveGossipConfig({}); // probe interval 200, timeout 100, 3 indirect checks
  const table = new MemberTable(newRec('me', addr('me'), 1, meta('me'), clock.now()), 100);
  const sent: { to: string; frame: GossipFrame; ctx: InFrame | undefined }[] = [];
  const rtts: { node: string; ms: number; phase: string }[] = [];
  const verdicts: StateUpdate[] = [];
  const counters = new Proxy({} as Record<Counter, number>, { get: (o, k) => (o as Record<string | symbol, number>)[k] ?? 0 });
  let frame: InFrame | undefined;
  const host: GossipHost = {
    node: 'me',
    config,
    clock,
    random: new XorShiftRandom(11),
    log: { debug() {}, info() {}, warn() {}, error() {} },
    counters,
    table,
    stopped: false,
    leaving: false,
    joined: true,
    send: (to, f) => sent.push({ to, frame: f, ctx: frame }),
    sendIn: (ctx, to, f) => sent.push({ to, frame: f, ctx }),
    inFrame: () => frame,
    sender: () => ({ node: 'me', addr: addr('me') }),
    after: (fn, ms) => clock.setTimeout(fn, ms),
    piggyback: (_t, first) => (first && first.length ? { updates: first, loads: [] } : undefined),
    broadcast: () => {},
    pushPull: (a) => sent.push({ to: a, frame: { type: 'push-pull-req', from: { node: 'me', addr: addr('me') }, join: false, states: [] }, ctx: undefined }),
    statusChanged: () => {},
    changed: () => {},
    emitRtt: (i) => rtts.push(i),
    emitConflict: () => {},
    stop: () => {},
  };
  const fd = new FailureDetector(host, { suspect: (u) => verdicts.push(u), dead: (u) => verdicts.push(u) });
  for (const n of others) {
    table.add(newRec(n, addr(n), 1, meta(n), clock.now()));
    fd.add(n);
  }
  const setFrame = (f: InFrame | undefined) => (frame = f);
  return { clock, config, table, fd, sent, rtts, verdicts, counters, setFrame };
}

const pings = <T extends { frame: GossipFrame }>(sent: T[]): T[] => sent.filter((s) => s.frame.type === 'ping');

describe('FailureDetector (fake host, ManualClock)', () => {
  it('probes one member per probe interval, round-robin over all of them', () => {
    const { clock, fd, sent, config } = setup(['a', 'b', 'c']);
    fd.start();
    clock.advance(config.probeIntervalMs);
    expect(pings(sent).length).toBe(1);
    // Answer each probe so none goes indirect.
    const targets = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const p = pings(sent).at(-1)!;
      targets.add(p.to);
      fd.onAck((p.frame as Extract<GossipFrame, { type: 'ping' }>).seq, 'x');
      clock.advance(config.probeIntervalMs);
    }
    expect([...targets].sort()).toEqual([addr('a'), addr('b'), addr('c')]);
  });

  it('an ack ends the probe, with its round trip on the clock; no suspicion', () => {
    const { clock, fd, sent, rtts, verdicts, config } = setup(['a']);
    fd.start();
    clock.advance(config.probeIntervalMs);
    const p = pings(sent)[0]!.frame as Extract<GossipFrame, { type: 'ping' }>;
    clock.advance(7);
    fd.onAck(p.seq, 'a');
    clock.advance(config.probeIntervalMs - 8);
    expect(rtts).toEqual([{ node: 'a', ms: 7, phase: 'direct' }]);
    expect(verdicts).toEqual([]);
    expect(sent.filter((s) => s.frame.type === 'ping-req')).toEqual([]);
  });

  it('no ack within probeTimeout: ping-reqs to indirectChecks others and a second direct ping; nothing by the deadline: suspect', () => {
    const { clock, fd, sent, verdicts, config } = setup(['a', 'b', 'c', 'd', 'e']);
    fd.start();
    clock.advance(config.probeIntervalMs);
    const first = pings(sent)[0]!;
    const target = (first.frame as Extract<GossipFrame, { type: 'ping' }>).target;
    clock.advance(config.probeTimeoutMs - 1);
    expect(sent.filter((s) => s.frame.type === 'ping-req').length).toBe(0);
    clock.advance(1);
    const reqs = sent.filter((s) => s.frame.type === 'ping-req');
    expect(reqs.length).toBe(config.indirectChecks);
    expect(reqs.every((r) => r.to !== first.to && (r.frame as Extract<GossipFrame, { type: 'ping-req' }>).target === target)).toBe(true);
    expect(pings(sent).filter((s) => s.to === first.to).length).toBe(2);
    // The deadline is the end of the probe interval from the first ping.
    clock.advance(config.probeIntervalMs - config.probeTimeoutMs - 1);
    expect(verdicts).toEqual([]);
    clock.advance(1);
    expect(verdicts).toEqual([{ kind: 'suspect', node: target, incarnation: 1, from: 'me' }]);
  });

  it('an ack through the helpers (after the indirect phase began) ends the probe as indirect', () => {
    const { clock, fd, sent, rtts, verdicts, config } = setup(['a', 'b']);
    fd.start();
    clock.advance(config.probeIntervalMs);
    const p = pings(sent)[0]!.frame as Extract<GossipFrame, { type: 'ping' }>;
    clock.advance(config.probeTimeoutMs + 20);
    fd.onAck(p.seq, p.target);
    clock.advance(config.probeIntervalMs);
    expect(rtts[0]).toMatchObject({ node: p.target, phase: 'indirect', ms: config.probeTimeoutMs + 20 });
    expect(verdicts).toEqual([]);
  });

  it('late acks teach the timeout to wait longer (RTT-driven), never past the cap', () => {
    const { clock, fd, sent, config } = setup(['a']);
    expect(fd.probeTimeout()).toBe(config.probeTimeoutMs);
    fd.start();
    for (let i = 0; i < 8; i++) {
      clock.advance(config.probeIntervalMs);
      const p = pings(sent).at(-1)!.frame as Extract<GossipFrame, { type: 'ping' }>;
      clock.advance(300); // after the probe gave up: a late ack is still a sample
      fd.onAck(p.seq, 'a');
    }
    expect(fd.probeTimeout()).toBeGreaterThan(300);
    expect(fd.probeTimeout()).toBeLessThanOrEqual(fd.timeoutCap());
    expect(fd.extraWait()).toBe(fd.probeTimeout() - config.probeTimeoutMs);
    expect(fd.slowness()).toBeGreaterThan(3);
  });

  it('a closed socket is a hint: the member is probed at once, at most once per probe interval', () => {
    const { fd, sent, counters, clock, config } = setup(['a', 'b']);
    fd.onPeerClosed(addr('a'));
    expect(pings(sent).map((s) => s.to)).toEqual([addr('a')]);
    fd.onPeerClosed(addr('a'));
    expect(pings(sent).length).toBe(1);
    fd.onPeerClosed('ws://nobody:1');
    expect(counters.hintProbes).toBe(1);
    expect(counters.hints).toBe(3);
    // A probe interval later (and the first hint probe over), the next hint probes again.
    clock.advance(config.probeIntervalMs);
    fd.onPeerClosed(addr('a'));
    expect(counters.hintProbes).toBe(2);
  });

  it('a ping-req is relayed: ping the target; its ack goes back to the asker on the socket the request came in on; else a nack in time', () => {
    const { fd, sent, clock, config, setFrame } = setup(['a', 'b']);
    const via = { reply: () => {}, dialed: false };
    const ctx = { from: addr('a'), node: 'a', addr: addr('a'), via };
    setFrame(ctx);
    fd.onPingReq({ type: 'ping-req', from: { node: 'a', addr: addr('a') }, seq: 77, target: 'b', targetAddr: addr('b'), nack: true });
    setFrame(undefined);
    const relayed = pings(sent)[0]!;
    expect(relayed.to).toBe(addr('b'));
    fd.onAck((relayed.frame as Extract<GossipFrame, { type: 'ping' }>).seq, 'b');
    const ack = sent.find((s) => s.frame.type === 'ack')!;
    expect(ack.to).toBe(addr('a'));
    expect((ack.frame as Extract<GossipFrame, { type: 'ack' }>).seq).toBe(77);
    expect(ack.ctx?.via).toBe(via);
    // A second relay that gets no ack: a nack before the asker's deadline.
    fd.onPingReq({ type: 'ping-req', from: { node: 'a', addr: addr('a') }, seq: 78, target: 'b', targetAddr: addr('b'), nack: true });
    clock.advance(config.probeIntervalMs - config.probeTimeoutMs);
    const nack = sent.find((s) => s.frame.type === 'nack')!;
    expect((nack.frame as Extract<GossipFrame, { type: 'nack' }>).seq).toBe(78);
    expect(nack.ctx).toBeUndefined(); // no socket recorded: dialed
  });

  it('a suspicion times out into a dead verdict; min time scales with slowness; a confirmation probe follows another member’s suspicion', () => {
    const { fd, table, sent, verdicts, clock } = setup(['a', 'b', 'c', 'd', 'e']);
    const r = table.get('a')!;
    const u = { kind: 'suspect' as const, node: 'a', incarnation: 1, from: 'b' };
    const s = fd.suspect(r, u);
    table.setStatus(r, 'suspect', clock.now());
    r.suspicion = s;
    fd.followSuspicion(r, s, u);
    clock.advance(resolveGossipConfig({}).probeTimeoutMs);
    expect(pings(sent).map((x) => x.to)).toEqual([addr('a')]); // confirm probe
    clock.advance(60_000);
    expect(verdicts.some((v) => v.kind === 'dead' && v.node === 'a')).toBe(true);
  });
});
