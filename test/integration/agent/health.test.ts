import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { once, type EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthChecker, nextHealth, probeTcp, probeUdp, type HealthCheck, type HealthCheckerOptions, type HealthCounters, type HealthState, type ProbeResult } from '../../../agent/health/index.js';
import { ManualClock, systemClock } from '../../../sdk/core/clock.js';
import { BadOptionError } from '../../../sdk/core/errors.js';
import { ownLoopback, tcpServer } from '../../support/net.js';
import { CLI, exited } from '../../support/agents.js';
import { until } from '../../support/until.js';
import { onLines } from '../../support/lines.js';

// This file's own loopback address: its tests probe ports they just closed, which must not reach a
// server another test file opened meanwhile on the same port number of 127.0.0.1.
const H = await ownLoopback('127.0.0.3');

/** Wait for one event, failing after a real-time bound instead of hanging. */
async function next<T extends unknown[]>(em: EventEmitter, name: string, ms = 5000): Promise<T> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), ms);
  try {
    return (await once(em, name, { signal: ac.signal })) as T;
  } catch (err) {
    if (ac.signal.aborted) throw new Error(`no "${name}" event within ${ms} ms`);
    throw err;
  } finally {
    clearTimeout(t);
  }
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function checker(check: HealthCheck, opts: HealthCheckerOptions = {}) {
  const clock = new ManualClock();
  const hc = new HealthChecker(check, { clock, ...opts });
  const changes: [HealthState, string, number][] = [];
  hc.on('change', (s, d) => changes.push([s, d.reason, d.consecutive]));
  cleanups.push(() => hc.stop());
  /** Advance to the next scheduled probe and wait for its (real socket) result. */
  const probe = async (advanceMs = hc.intervalMs): Promise<ProbeResult> => {
    const p = next<[ProbeResult]>(hc, 'result');
    clock.advance(advanceMs);
    return (await p)[0];
  };
  return { clock, hc, changes, probe };
}

/** A UDP server on loopback answering every datagram through `reply` (undefined: stay silent). */
async function udpServer(reply: (msg: Buffer) => string | Buffer | undefined, port = 0) {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const r = reply(msg);
    if (r !== undefined) sock.send(r, rinfo.port, rinfo.address);
  });
  sock.bind(port, H);
  await once(sock, 'listening');
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    sock.close();
  };
  cleanups.push(close);
  return { port: sock.address().port, close };
}

describe('nextHealth (rise/fall)', () => {
  const T = { rise: 2, fall: 3 };
  const run = (start: HealthState, outcomes: string): string => {
    let c: HealthCounters = { state: start, successes: 0, failures: 0 };
    let out = '';
    for (const ch of outcomes) {
      c = nextHealth(c, ch === '+', T).counters;
      out += c.state === 'healthy' ? 'H' : 'u';
    }
    return out;
  };
  it.each([
    ['unhealthy', '++', 'uH', 'rise 2: healthy on the second success'],
    ['unhealthy', '+-+', 'uuu', 'a failure resets the rise count'],
    ['unhealthy', '+-++', 'uuuH', ''],
    ['healthy', '---', 'HHu', 'fall 3: unhealthy on the third failure'],
    ['healthy', '--+--', 'HHHHH', 'a success resets the fall count'],
    ['healthy', '--+---', 'HHHHHu', ''],
    ['unhealthy', '++---++', 'uHHHuuH', 'round trip'],
    ['healthy', '+++', 'HHH', 'successes while healthy change nothing'],
    ['unhealthy', '---', 'uuu', ''],
  ])('%s then %s → %s (%s)', (start, outcomes, want) => {
    expect(run(start as HealthState, outcomes)).toBe(want);
  });

  it('reports the change and the counters', () => {
    const r = nextHealth({ state: 'healthy', successes: 0, failures: 2 }, false, T);
    expect(r).toEqual({ counters: { state: 'unhealthy', successes: 0, failures: 3 }, changed: true });
    expect(nextHealth({ state: 'healthy', successes: 4, failures: 0 }, true, { rise: 1, fall: 1 }).changed).toBe(false);
  });
});

describe('HealthChecker options', () => {
  it.each([
    [{ type: 'tcp', host: '127.0.0.1', port: 0 }, {}, 'health.port'],
    [{ type: 'tcp', host: '', port: 80 }, {}, 'health.host'],
    [{ type: 'tcp', host: '127.0.0.1', port: 80, timeoutMs: 0 }, {}, 'health.timeoutMs'],
    [{ type: 'udp', host: '127.0.0.1', port: 80 }, {}, 'health.send'],
    [{ type: 'udp', host: '127.0.0.1', port: 80, send: '' }, {}, 'health.send'],
    [{ type: 'udp', host: '127.0.0.1', port: 80, send: 'x'.repeat(70_000) }, {}, 'health.send'],
    [{ type: 'udp', host: '127.0.0.1', port: 80, send: 'x', expect: 5 }, {}, 'health.expect'],
    [{ type: 'ttl' }, {}, 'health.ttlMs'],
    [{ type: 'ttl', ttlMs: -1 }, {}, 'health.ttlMs'],
    [{ type: 'http' }, {}, 'health.type'],
    [null, {}, 'health'],
    [{ type: 'none' }, { rise: 0 }, 'health.rise'],
    [{ type: 'none' }, { fall: 1.5 }, 'health.fall'],
    [{ type: 'none' }, { intervalMs: 5 }, 'health.intervalMs'],
    [{ type: 'none' }, { initial: 'up' }, 'health.initial'],
  ])('rejects %j %j naming %s', (check, opts, option) => {
    const make = () => new HealthChecker(check as HealthCheck, opts as HealthCheckerOptions);
    expect(make).toThrow(BadOptionError);
    expect(make).toThrow(`option "${option}"`);
  });

  it('has HAProxy defaults for probes and 1/1 for ttl', () => {
    const tcp = new HealthChecker({ type: 'tcp', host: '127.0.0.1', port: 80 });
    expect([tcp.rise, tcp.fall, tcp.intervalMs, tcp.state]).toEqual([2, 3, 1000, 'unhealthy']);
    expect(tcp.check).toMatchObject({ timeoutMs: 500 });
    const ttl = new HealthChecker({ type: 'ttl', ttlMs: 3000 });
    expect([ttl.rise, ttl.fall]).toEqual([1, 1]);
    expect(new HealthChecker({ type: 'none' }, { initial: 'unhealthy' }).state).toBe('healthy');
  });
});

describe('tcp check against a real server on loopback', () => {
  it('healthy after rise, unhealthy after fall when killed, healthy again when back', async () => {
    const srv = await tcpServer(H);
    let srvUp = true;
    cleanups.push(() => srvUp && srv.close());
    const { hc, changes, probe } = checker({ type: 'tcp', host: H, port: srv.port });

    const first = next<[ProbeResult]>(hc, 'result');
    hc.start(); // first probe at once
    expect((await first)[0]).toMatchObject({ ok: true, reason: `tcp connect ${H}:${srv.port}: ok` });
    expect(hc.state).toBe('unhealthy');
    await probe();
    expect(hc.state).toBe('healthy');
    expect(changes).toEqual([['healthy', `tcp connect ${H}:${srv.port}: ok`, 2]]);
    expect(hc.rttMs).toBeGreaterThanOrEqual(0);

    await srv.close();
    srvUp = false;
    const r1 = await probe();
    expect(r1.ok).toBe(false);
    expect(r1.reason).toMatch(/ECONNREFUSED/);
    await probe();
    expect(hc.state).toBe('healthy');
    await probe();
    expect(hc.state).toBe('unhealthy');
    expect(changes[1]).toEqual(['unhealthy', expect.stringMatching(/ECONNREFUSED/), 3]);

    const back = await tcpServer(H, srv.port);
    cleanups.push(back.close);
    await probe();
    await probe();
    expect(hc.state).toBe('healthy');
    expect(changes.map((c) => c[0])).toEqual(['healthy', 'unhealthy', 'healthy']);
  });

  it('starts healthy with initial: healthy and needs fall failures to go down', async () => {
    const srv = await tcpServer(H);
    const port = srv.port;
    await srv.close();
    const { hc, changes, probe } = checker({ type: 'tcp', host: H, port }, { initial: 'healthy', fall: 2 });
    expect(hc.state).toBe('healthy');
    const first = next(hc, 'result');
    hc.start();
    await first;
    expect(hc.state).toBe('healthy');
    await probe();
    expect(hc.state).toBe('unhealthy');
    expect(changes).toHaveLength(1);
  });

  it('times out through the clock', async () => {
    const clock = new ManualClock();
    const p = probeTcp({ host: '127.0.0.1', port: 9, timeoutMs: 100 }, { clock });
    // The timer fires synchronously inside advance(), before any socket event can be delivered.
    clock.advance(100);
    const r = await p;
    expect(r).toMatchObject({ ok: false, rttMs: undefined });
    expect(r.reason).toBe('tcp connect 127.0.0.1:9: no answer within 100 ms');
  });
});

describe('udp check against a real server on loopback', () => {
  it('healthy on the expected reply; unhealthy on a wrong reply; healthy again', async () => {
    let answer = 'PONG 1';
    const srv = await udpServer((msg) => (msg.toString() === 'PING' ? answer : 'what?'));
    const { hc, changes, probe } = checker({ type: 'udp', host: H, port: srv.port, send: 'PING', expect: 'PONG' });
    const first = next<[ProbeResult]>(hc, 'result');
    hc.start();
    expect((await first)[0]).toMatchObject({ ok: true, reason: `udp ${H}:${srv.port}: reply ok` });
    await probe();
    expect(hc.state).toBe('healthy');

    answer = 'NOT PONG';
    const bad = await probe();
    expect(bad.ok).toBe(false);
    expect(bad.reason).toBe(`udp ${H}:${srv.port}: reply "NOT PONG" does not match "PONG"`);
    await probe();
    await probe();
    expect(hc.state).toBe('unhealthy');
    expect(changes[1]).toEqual(['unhealthy', bad.reason, 3]);

    answer = 'PONG 2';
    await probe();
    await probe();
    expect(hc.state).toBe('healthy');
  });

  it('unhealthy when the server is killed (ICMP port unreachable) and healthy when it is back', async () => {
    const srv = await udpServer(() => 'ok');
    const { hc, probe } = checker({ type: 'udp', host: H, port: srv.port, send: Buffer.from([1, 2, 3]) }, { rise: 1, fall: 2 });
    const first = next(hc, 'result');
    hc.start();
    await first;
    expect(hc.state).toBe('healthy');
    srv.close();
    const r = await probe();
    expect(r.reason).toMatch(/ECONNREFUSED/);
    await probe();
    expect(hc.state).toBe('unhealthy');
    await udpServer(() => 'ok', srv.port);
    await probe();
    expect(hc.state).toBe('healthy');
  });

  it('a silent server fails at the timeout, on the clock', async () => {
    const srv = await udpServer(() => undefined);
    const { clock, hc } = checker({ type: 'udp', host: H, port: srv.port, send: 'PING', timeoutMs: 300 }, { fall: 1, initial: 'healthy' });
    const r = next<[ProbeResult]>(hc, 'result');
    hc.start();
    clock.advance(300);
    expect((await r)[0].reason).toBe(`udp ${H}:${srv.port}: no answer within 300 ms`);
    expect(hc.state).toBe('unhealthy');
  });

  it.each([
    ['regexp', /^PONG \d+$/, 'PONG 42', true],
    ['regexp with g', /^PONG \d+$/g, 'PONG 42', true],
    ['regexp', /^PONG \d+$/, 'PONG x', false],
    ['bytes prefix', Buffer.from([0xca, 0xfe]), Buffer.from([0xca, 0xfe, 0x01]), true],
    ['bytes, reply too short', Buffer.from([0xca, 0xfe]), Buffer.from([0xca]), false],
    ['string prefix, not substring', 'OK', 'NOT OK', false],
  ])('expect (%s)', async (_label, expectValue, reply, ok) => {
    const srv = await udpServer(() => reply);
    const check = { host: H, port: srv.port, send: 'x', expect: expectValue, timeoutMs: 5000 };
    expect((await probeUdp(check, { clock: systemClock })).ok).toBe(ok);
    if (expectValue instanceof RegExp) expect((await probeUdp(check, { clock: systemClock })).ok).toBe(ok); // g flag holds no state
  });
});

describe('ttl check', () => {
  it('unhealthy until a report, healthy at once on one, unhealthy when the TTL runs out', () => {
    const { clock, hc, changes } = checker({ type: 'ttl', ttlMs: 3000 });
    hc.start();
    clock.advance(5000);
    expect(hc.state).toBe('unhealthy');
    expect(hc.lastResult?.reason).toBe('no report received yet');
    hc.reported();
    expect(hc.state).toBe('healthy');
    for (let i = 0; i < 5; i++) {
      clock.advance(2500);
      hc.reported();
    }
    expect(hc.state).toBe('healthy');
    clock.advance(3000);
    expect(hc.state).toBe('healthy');
    clock.advance(1); // 3001 ms of silence
    expect(hc.state).toBe('unhealthy');
    expect(changes.at(-1)).toEqual(['unhealthy', 'no report for 3001 ms (ttl 3000 ms)', 1]);
    clock.advance(10_000);
    expect(changes).toHaveLength(2);
    hc.reported();
    expect(hc.state).toBe('healthy');
    expect(changes).toHaveLength(3);
  });

  it('initial healthy allows one ttl for the first report', () => {
    const { clock, hc } = checker({ type: 'ttl', ttlMs: 1000 }, { initial: 'healthy' });
    hc.start();
    clock.advance(1000);
    expect(hc.state).toBe('healthy');
    clock.advance(1);
    expect(hc.state).toBe('unhealthy');
    expect(hc.lastResult?.reason).toBe('no report within 1000 ms of start');
  });

  it('honours a fall > 1 by counting interval ticks of silence', () => {
    const { clock, hc } = checker({ type: 'ttl', ttlMs: 1000 }, { fall: 3, intervalMs: 1000 });
    hc.start();
    hc.reported();
    expect(hc.state).toBe('healthy');
    clock.advance(1001); // expiry: failure 1
    expect(hc.consecutive.failures).toBe(1);
    clock.advance(1999); // ticks at 2000, 3000
    expect(hc.state).toBe('unhealthy');
  });

  it('a report before start() counts at start', () => {
    const { hc } = checker({ type: 'ttl', ttlMs: 1000 });
    hc.reported();
    expect(hc.state).toBe('unhealthy');
    hc.start();
    expect(hc.state).toBe('healthy');
  });

  it('many reports cost one timer', () => {
    const { clock, hc } = checker({ type: 'ttl', ttlMs: 1000 });
    hc.start();
    for (let i = 0; i < 1000; i++) hc.reported();
    expect(clock.pending()).toBeLessThanOrEqual(2); // the tick and the expiry timer
  });

  it('reported() is a no-op for probe checks', () => {
    const { hc } = checker({ type: 'tcp', host: '127.0.0.1', port: 9 });
    hc.reported();
    expect(hc.lastResult).toBeUndefined();
  });
});

describe('lifecycle', () => {
  it('none is healthy and schedules nothing', () => {
    const { clock, hc, changes } = checker({ type: 'none' });
    hc.start();
    expect(hc.state).toBe('healthy');
    expect(clock.pending()).toBe(0);
    expect(changes).toEqual([]);
  });

  it('stop() aborts an in-flight probe, which then reports nothing, and clears timers', async () => {
    const srv = await udpServer(() => undefined);
    const { clock, hc } = checker({ type: 'udp', host: H, port: srv.port, send: 'x', timeoutMs: 10_000 });
    const results: ProbeResult[] = [];
    hc.on('result', (r) => results.push(r));
    hc.start();
    const inflight = hc.checkNow(); // shares the probe start() began
    hc.stop();
    const r = await inflight;
    expect(r.reason).toMatch(/aborted/);
    expect(results).toEqual([]);
    expect(hc.lastResult).toBeUndefined();
    expect(clock.pending()).toBe(0);
  });

  it('stop() then start() at once runs one schedule, not two', async () => {
    const srv = await tcpServer(H);
    cleanups.push(srv.close);
    const { clock, hc } = checker({ type: 'tcp', host: H, port: srv.port });
    hc.start();
    hc.stop();
    const first = next(hc, 'result');
    hc.start();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(clock.pending()).toBe(1);
  });

  it('runs on the system clock end to end', async () => {
    const srv = await tcpServer(H);
    cleanups.push(srv.close);
    const hc = new HealthChecker({ type: 'tcp', host: H, port: srv.port }, { intervalMs: 20 });
    cleanups.push(() => hc.stop());
    const changed = next<[HealthState]>(hc, 'change');
    hc.start();
    expect((await changed)[0]).toBe('healthy');
  });

  it('a probe whose socket call throws is a failure, not a crash', async () => {
    // Bypasses the constructor's validation on purpose: net/dgram throw RangeError synchronously.
    const r = await probeTcp({ host: '127.0.0.1', port: 70_000, timeoutMs: 1000 }, { clock: systemClock });
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/^tcp connect 127.0.0.1:70000: /);
    const u = await probeUdp({ host: '127.0.0.1', port: 70_000, send: 'x', timeoutMs: 1000 }, { clock: systemClock });
    expect(u.ok).toBe(false);
    expect(u.reason).toMatch(/ERR_SOCKET_BAD_PORT/);
  });
});

/** Start `node <script> args…`, keep its stdout lines, end it by PID at cleanup. */
function spawnScript(script: string, args: string[], opts: { shell?: string } = {}): { proc: ChildProcess; lines: string[]; stderr: string[] } {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const proc = opts.shell
    ? spawn('bash', ['-c', `${opts.shell}; exec "$0" "$@"`, process.execPath, file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const stderr: string[] = [];
  onLines(proc.stdout!, (l) => lines.push(l));
  proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited(proc);
    }
  });
  return { proc, lines, stderr };
}

describe('tcp check against a server that greets and has no error handler (real processes)', () => {
  it('the server survives 20 s of checks every 100 ms by a real agent', async () => {
    const gs = spawnScript('../../support/greeting-server.mjs', [H]);
    await until(() => gs.lines.some((l) => l.startsWith('port ')) || gs.proc.exitCode !== null, 15_000, 'the greeting server');
    const port = gs.lines.find((l) => l.startsWith('port '))!.slice(5);
    const agent = spawn(process.execPath, [CLI, 'agent', '--service', 'game', '--node', 'greet', '--host', H, '--tcp', port, '--port', '0', '--health-interval', '100', '--gossip-profile', 'local'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const log: string[] = [];
    agent.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    cleanups.push(async () => {
      if (agent.exitCode === null && agent.signalCode === null) {
        agent.kill('SIGKILL');
        await exited(agent);
      }
    });
    await new Promise((r) => setTimeout(r, 20_000));
    // Before the graceful close, the server died of ECONNRESET within seconds.
    expect(gs.proc.exitCode, gs.stderr.join('')).toBeNull();
    expect(gs.proc.signalCode).toBeNull();
    expect(agent.exitCode, log.join('')).toBeNull();
    const conns = gs.lines.filter((l) => l.startsWith('conn ')).length;
    expect(conns).toBeGreaterThanOrEqual(20); // the checks did run (≈ 200 on an idle machine)
    const text = log.join('');
    expect(text).not.toMatch(/"health":"unhealthy"/);
  }, 60_000);
});

describe('the agent out of file descriptors (real process, low ulimit -n)', () => {
  it('EMFILE in its own probe is "cannot tell": the state stays healthy and the log says why', async () => {
    const srv = await tcpServer(H);
    cleanups.push(() => srv.close());
    const child = spawnScript('../../support/emfile-agent.mjs', [H, String(srv.port)], { shell: 'ulimit -n 128' });
    await until(() => child.proc.exitCode !== null || child.proc.signalCode !== null, 25_000, 'the child to end');
    const out = child.lines.find((l) => l.startsWith('result '));
    expect(out, child.stderr.join('') + child.lines.join('\n')).toBeDefined();
    const result = JSON.parse(out!.slice(7)) as { before: string; during: string; after: string; filled: number };
    expect(result.filled).toBeGreaterThan(0);
    // Before the fix, fall 1 made the first EMFILE probe mark the server unhealthy.
    expect(result).toMatchObject({ before: 'healthy', during: 'healthy', after: 'healthy' });
    const logs = child.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const warn = logs.find((l) => l.msg === 'health check cannot tell: keeping the last state');
    expect(warn).toBeDefined();
    expect(String(warn!.reason)).toMatch(/EMFILE|ENFILE/);
    expect(logs.some((l) => l.msg === 'server health changed')).toBe(false);
    expect(logs.some((l) => l.msg === 'health check works again')).toBe(true);
  }, 40_000);
});
