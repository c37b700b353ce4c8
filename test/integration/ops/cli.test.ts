/**
 * The `peerlb` command line as a user meets it (the real CLI, dist/agent/cli.js): --version, usage
 * errors in one line with exit 2, messages that name flags, `members` and `pick` against live and
 * dead agents (--token, --mdns-port), and what startAgent() refuses.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgent } from '../../../agent/index.js';
import { resolveAgentOptions } from '../../../agent/options.js';
import { BadOptionError } from '../../../sdk/core/errors.js';
import { ownLoopback } from '../../support/net.js';
import { exited, getJson, runCli, startCliAgent, stopCliAgents, tcpServerOn, until, type MemberRow, type OpsAgent } from '../../support/ops.js';

const H = await ownLoopback('127.0.0.37');
const procs: OpsAgent[] = [];
const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

afterAll(() => stopCliAgents(procs), 20_000);

/** A UDP port nobody uses right now (for mDNS on loopback and for agents that are not there). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, H, () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function oneLine(r: { code: number | null; stderr: string }, code: number): string {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0]!;
}

describe('version and usage errors', () => {
  it('--version and -V print the version', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(VERSION);
    }
  });

  it.each([
    [['agent', '--service', 'game', '--tcp', '7000', '--bogus'], /unknown option '--bogus'/],
    [['members', '--agent', 'ws://127.0.0.1:7946', '--jsn'], /unknown option '--jsn'/],
    [['pick', '--service', 'game', '--servers', '127.0.0.1:9', '--cnt', '3'], /unknown option '--cnt'/],
    [['agent', '--service', 'game', '--weight'], /option '--weight <n>' argument missing/],
    [['members'], /one of --agent, --mdns-interface is required/],
    [['pick', '--servers', '127.0.0.1:9'], /required option '--service <name>' not specified/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('%j: one line naming it, exit 2', async (args, re) => {
    const line = oneLine(await runCli(args), 2);
    expect(line).toMatch(/^peerlb: /);
    expect(line).toMatch(re);
  });

  it.each([
    [['--udp', '7001', '--health', 'udp'], /option "--health-udp-send" is required for a 'udp' health check/],
    [[], /option "--udp" or --tcp or --ws must be given/],
    [['--udp', '7001', '--health', 'tcp'], /option "--health" is 'tcp' but no --tcp is set/],
    [['--tcp', '7000', '--join', 'http://127.0.0.1:1'], /option "--join" must be ws:\/\/host:port/],
  ])('agent %j: the message names flags, not option paths', async (flags, re) => {
    const line = oneLine(await runCli(['agent', '--service', 'game', '--host', H, '--port', '0', ...flags]), 2);
    expect(line).toMatch(re);
    expect(line).not.toMatch(/udpPort|tcpPort|health\.send|health\.type|join\[/);
  });

  it('--mdns-interface with an address not on this host is refused like --host is', async () => {
    // 198.51.100.7 (TEST-NET-2) is on no interface here; nothing is sent anywhere (a bind is tried).
    const line = oneLine(await runCli(['agent', '--service', 'game', '--host', H, '--port', '0', '--tcp', '7000', '--mdns-interface', '198.51.100.7']), 2);
    expect(line).toMatch(/option "--mdns-interface" is 198\.51\.100\.7, which is not an address of this host/);
    const host = oneLine(await runCli(['agent', '--service', 'game', '--host', '198.51.100.7', '--port', '0', '--tcp', '7000']), 2);
    expect(host).toMatch(/198\.51\.100\.7 is not on this host/);
  });
});

describe('members', () => {
  it('against a dead agent says ECONNREFUSED, not "fetch failed"', async () => {
    const port = await freeUdpPort(); // no TCP listener there either, in practice
    const line = oneLine(await runCli(['members', '--agent', `ws://${H}:${port}`]), 2);
    expect(line).toMatch(/cannot reach agent .*: ECONNREFUSED/);
    expect(line).not.toMatch(/fetch failed/);
  });

  it("shows a dead member's health as -, accepts --token, and says what each load figure is", async () => {
    const a = await startCliAgent(procs, 'cli-a', H, { extra: ['--token', 'sesame'] });
    const b = await startCliAgent(procs, 'cli-b', H, { join: [a.url] });
    await until(async () => (await getJson<MemberRow[]>(`${a.http}/v1/members`)).filter((m) => m.status === 'alive').length === 2, 10_000, 'two members');
    b.proc.kill('SIGKILL');
    await exited(b.proc);
    await until(async () => (await getJson<MemberRow[]>(`${a.http}/v1/members`)).some((m) => m.node === 'cli-b' && m.status === 'dead'), 20_000, 'cli-b dead');
    const r = await runCli(['members', '--agent', a.url, '--token', 'sesame']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^Node\s+Address\s+Status\s+Health/);
    const dead = rows.find((l) => l.startsWith('cli-b'))!;
    expect(dead.split(/\s+/).slice(2, 4)).toEqual(['dead', '-']);
    const self = rows.find((l) => l.startsWith('cli-a'))!;
    expect(self.split(/\s+/).slice(2, 4)).toEqual(['alive', 'healthy']);
    // cli-a's server reports nothing and has no capacity: its figure is the host's CPU, and says so.
    expect(self).toMatch(/cpu=\d\.\d\d\(host CPU, not the server's\)|util=0\.00\(none\)/);
  }, 60_000);
});

describe('pick', () => {
  it('that finds no server says why and exits 1', async () => {
    const port = await freeUdpPort();
    const r = await runCli(['pick', '--service', 'nobody', '--mdns-interface', H === '127.0.0.1' ? H : '127.0.0.1', '--mdns-port', String(port)], {}, 30_000);
    const line = oneLine(r, 1);
    expect(line).toMatch(/no server of service "nobody" found over mDNS on 127\.0\.0\.1 port \d+/);
  }, 40_000);

  it('--token reaches an agent that requires one; --mdns-port finds an agent announcing on that port (pick and members)', async () => {
    const mdnsPort = await freeUdpPort();
    const a = await startCliAgent(procs, 'cli-p', H, { extra: ['--token', 'open-up', '--mdns-interface', '127.0.0.1', '--mdns-port', String(mdnsPort)] });
    await until(async () => (await getJson<{ health: string }>(`${a.http}/v1/health`)).health === 'healthy', 10_000, 'cli-p healthy');
    const viaAgent = await runCli(['pick', '--service', 'game', '--agent', a.url, '--token', 'open-up', '--count', '5', '--json'], {}, 30_000);
    expect(viaAgent.code, viaAgent.stderr).toBe(0);
    expect((JSON.parse(viaAgent.stdout) as { picks: Record<string, number> }).picks).toEqual({ 'cli-p': 5 });
    // How long `pick` waits for discovery is another matter (its wait rule); on a busy machine one
    // short wait may see nothing yet, so a few tries: what is judged is where the picks go.
    let viaMdns = { code: null as number | null, stdout: '', stderr: '' };
    for (let i = 0; i < 5 && viaMdns.code !== 0; i++)
      viaMdns = await runCli(['pick', '--service', 'game', '--mdns-interface', '127.0.0.1', '--mdns-port', String(mdnsPort), '--count', '5', '--json'], {}, 30_000);
    expect(viaMdns.code, viaMdns.stderr).toBe(0);
    expect((JSON.parse(viaMdns.stdout) as { picks: Record<string, number> }).picks).toEqual({ 'cli-p': 5 });
    // members finds the agent the same way, and passes the token.
    const members = await runCli(['members', '--mdns-interface', '127.0.0.1', '--mdns-port', String(mdnsPort), '--service', 'game', '--token', 'open-up', '--json'], {}, 30_000);
    expect(members.code, members.stderr).toBe(0);
    expect((JSON.parse(members.stdout) as Array<{ node: string }>).map((x) => x.node)).toEqual(['cli-p']);
    const none = await runCli(['members', '--mdns-interface', '127.0.0.1', '--mdns-port', String(await freeUdpPort()), '--timeout', '1500'], {}, 30_000);
    expect(oneLine(none, 2)).toMatch(/no peerlb agent found over mDNS on 127\.0\.0\.1 port \d+ within 1500 ms/);
  }, 60_000);
});

describe('startAgent() options', () => {
  it('refuses unknown keys with a BadOptionError naming them', async () => {
    expect(() => resolveAgentOptions({ service: 'game', tcpPort: 7000, wieght: 5 } as never)).toThrow(BadOptionError);
    expect(() => resolveAgentOptions({ service: 'game', tcpPort: 7000, wieght: 5 } as never)).toThrow(/option "wieght" is not an agent option/);
    await expect(startAgent({ service: 'game', tcpPort: 7000, port: 0, host: H, udpport: 7001 } as never, { log: false })).rejects.toMatchObject({ option: 'udpport' });
  });

  it('{ log: false } among the options is refused, pointing at the second argument (where it works)', async () => {
    await expect(startAgent({ service: 'game', tcpPort: 7000, port: 0, host: H, log: false } as never)).rejects.toThrow(/option "log" is not an agent option: it goes in the second argument, startAgent\(options, \{ log: … \}\)/);
    const a = await startAgent({ service: 'game', udpPort: 7001, port: 0, host: H, gossipProfile: 'local' }, { log: false });
    await a.stop();
  });

  it('refuses an mdns.interface that is not on this host', async () => {
    await expect(startAgent({ service: 'game', udpPort: 7001, port: 0, host: H, mdns: { interface: '198.51.100.7' } }, { log: false })).rejects.toMatchObject({ option: 'mdns.interface' });
  });
});

describe('the first health state is logged with its reason', () => {
  it('healthy (tcp connect ok) and unhealthy (ECONNREFUSED)', async () => {
    const up = await startCliAgent(procs, 'cli-h1', H);
    await until(() => up.logs.some((l) => l.msg === 'server health (first check)'), 10_000, 'first health line');
    const first = up.logs.find((l) => l.msg === 'server health (first check)')!;
    expect(first).toMatchObject({ health: 'healthy' });
    expect(String(first.reason)).toMatch(/tcp connect .*: ok/);
    // An agent whose server is not listening: the first state is unhealthy, and the line says why.
    const closed = await tcpServerOn(H);
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = await startCliAgent(procs, 'cli-h2', H, { extra: ['--tcp', String(port)] }); // the later --tcp wins
    await until(() => down.logs.some((l) => l.msg === 'server health (first check)'), 10_000, 'first health line');
    const bad = down.logs.find((l) => l.msg === 'server health (first check)')!;
    expect(bad).toMatchObject({ health: 'unhealthy' });
    expect(String(bad.reason)).toMatch(new RegExp(`tcp connect ${H.replace(/\./g, '\\.')}:${port}: ECONNREFUSED`));
  });
});
