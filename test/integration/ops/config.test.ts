/**
 * Configuration of `peerlb agent` through the real CLI (dist/agent/cli.js): a JSON config file <
 * PEERLB_* environment variables < command-line flags; `--help` against the option table
 * (agent/options.ts), whose defaults must be the ones the agent really uses; and bad values, each
 * refused in one line that names the option as the user wrote it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_OPTION_SPECS, resolveAgentOptions } from '../../../agent/options.js';
import { MDNS_PORT } from '../../../sdk/mdns/packet.js';
import { ownLoopback } from '../../support/net.js';
import { configWriter, getJson, runCli, startCliAgent, stopCliAgents, type MemberRow, type OpsAgent } from '../../support/ops.js';

const H = await ownLoopback('127.0.0.31');
const dir = mkdtempSync(path.join(os.tmpdir(), 'peerlb-config-'));
const procs: OpsAgent[] = [];
const writeConfig = configWriter(dir);

afterAll(async () => {
  await stopCliAgents(procs);
  rmSync(dir, { recursive: true, force: true });
}, 20_000);

function getPath(o: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((cur, k) => (cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined), o);
}

describe('config precedence through `peerlb agent`', () => {
  it('file < PEERLB_* env < flags, nested options merged key by key, and the agent runs with the result', async () => {
    const file = writeConfig('precedence.json', {
      service: 'game',
      node: 'cfg-a',
      host: H,
      port: 0,
      gossipProfile: 'local',
      weight: 11, // env 22, flag 33 → 33
      zone: 'file-zone', // env → env-zone
      drainTimeoutMs: 1111, // env 2222 → 2222
      capacity: 50, // file only → 50
      loadIntervalMs: 700, // flag 900 → 900
      health: { type: 'tcp', intervalMs: 300, rise: 1 }, // env interval 400, flag 500 → 500; rise from the file
    });
    const a = await startCliAgent(procs, 'cfg-a', H, {
      noDefaults: true,
      extra: (tcp) => ['--config', file, '--tcp', String(tcp), '--weight', '33', '--load-interval', '900', '--health-interval', '500'],
      env: { PEERLB_WEIGHT: '22', PEERLB_ZONE: 'env-zone', PEERLB_DRAIN_TIMEOUT: '2222', PEERLB_HEALTH_INTERVAL: '400', PEERLB_NODE: 'cfg-a-env' },
    });
    // PEERLB_NODE and the file both set the node: the environment wins.
    const cfg = a.logs.find((l) => l.msg === 'configuration')?.config as Record<string, unknown> | undefined;
    expect(cfg, 'the agent logs its resolved configuration').toBeDefined();
    expect(cfg).toMatchObject({
      service: 'game',
      node: 'cfg-a-env',
      host: H,
      weight: 33,
      zone: 'env-zone',
      drainTimeoutMs: 2222,
      capacity: 50,
      loadIntervalMs: 900,
      gossipProfile: 'local',
      tcpPort: a.tcpPort,
      // timeoutMs: half the interval (issue 14; it was a fixed 500 whatever the interval).
      health: { type: 'tcp', intervalMs: 500, rise: 1, fall: 3, timeoutMs: 250 },
    });
    // What the running agent publishes, not only what it logged.
    const self = (await getJson<MemberRow[]>(`${a.http}/v1/members`)).find((m) => m.node === 'cfg-a-env');
    expect(self).toMatchObject({ weight: 33, zone: 'env-zone', status: 'alive' });
  });

  it('an empty PEERLB_* variable counts as unset (the file value stays)', async () => {
    const file = writeConfig('empty-env.json', { service: 'game', node: 'cfg-b', host: H, port: 0, weight: 7, zone: 'kept' });
    const b = await startCliAgent(procs, 'cfg-b', H, { noDefaults: true, extra: (tcp) => ['--config', file, '--tcp', String(tcp)], env: { PEERLB_WEIGHT: '', PEERLB_ZONE: '' } });
    const self = (await getJson<MemberRow[]>(`${b.http}/v1/members`)).find((m) => m.node === 'cfg-b');
    expect(self).toMatchObject({ weight: 7, zone: 'kept' });
  });
});

describe('`peerlb agent --help`', () => {
  /** The help text cut into one block per option, whitespace folded (commander wraps lines). */
  async function helpBlocks(): Promise<Map<string, string>> {
    const r = await runCli(['agent', '--help']);
    expect(r.code).toBe(0);
    const blocks = new Map<string, string>();
    let cur: string | undefined;
    for (const line of r.stdout.split('\n')) {
      const m = /^ {2}(?:-h, )?--([a-z][a-z-]*)\b/.exec(line);
      if (m) {
        cur = m[1]!;
        expect(blocks.has(cur), `--${cur} listed once`).toBe(false);
        blocks.set(cur, line.trim());
      } else if (cur && /^ {3,}\S/.test(line)) blocks.set(cur, `${blocks.get(cur)!} ${line.trim()}`);
      else cur = undefined;
    }
    return blocks;
  }

  it('lists every option of the table, with its environment variable and its default, and nothing else', async () => {
    const blocks = await helpBlocks();
    expect([...blocks.keys()].sort()).toEqual([...AGENT_OPTION_SPECS.map((s) => s.flag), 'config', 'help'].sort());
    for (const spec of AGENT_OPTION_SPECS) {
      const text = blocks.get(spec.flag)!;
      expect(text, spec.flag).toContain(`[env ${spec.env}]`);
      expect(text, spec.flag).toContain(spec.describe.split(' ').slice(0, 3).join(' '));
      if (spec.choices) expect(text, spec.flag).toContain(`(${spec.choices.join(' | ')})`);
      if (spec.path === 'service') expect(text).toContain('required');
      else expect(text, spec.flag).toContain(`(default: ${spec.default ?? 'none'})`);
    }
    expect(blocks.get('config')).toContain('(default: none)');
  });

  it('shows the defaults the agent really applies', () => {
    const withTcp = resolveAgentOptions({ service: 'game', tcpPort: 7000 });
    const udpOnly = resolveAgentOptions({ service: 'game', udpPort: 7001 });
    // The DNS server's own options apply once it is on (--dns-port): read them from options that turn it on.
    const withDns = resolveAgentOptions({ service: 'game', tcpPort: 7000, dns: { port: 8600 } });
    let checked = 0;
    for (const spec of AGENT_OPTION_SPECS) {
      const got = getPath(spec.path.startsWith('dns.') && spec.path !== 'dns.port' ? withDns : withTcp, spec.path);
      if (typeof spec.default === 'number') {
        expect(got, spec.path).toBe(spec.default);
        checked++;
      } else if (spec.default !== undefined && spec.choices?.includes(spec.default)) {
        expect(got, spec.path).toBe(spec.default);
        checked++;
      } else if (spec.default === undefined && spec.path !== 'service' && spec.path !== 'tcpPort') {
        // "(default: none)": not set unless given (limits and the like always have a number default).
        expect(got === undefined || (Array.isArray(got) && got.length === 0), `${spec.path}: ${JSON.stringify(got)}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(AGENT_OPTION_SPECS.length - 12); // all but service, tcpPort, health.timeoutMs and the nine below
    expect(withTcp.mdns).toBe(false);
    expect(udpOnly.tcpPort).toBeUndefined();
    // The defaults described in words.
    expect(withTcp.node).toBe(os.hostname());
    expect(withTcp.host).toBe('127.0.0.1');
    expect(resolveAgentOptions({ service: 'game', tcpPort: 7000, host: '127.0.0.5' }).bind).toBe('127.0.0.5');
    expect(withTcp.health.type).toBe('tcp');
    expect(udpOnly.health.type).toBe('none');
    // health.timeoutMs: half the interval (issue 14: it was a fixed 500 whatever the interval).
    expect(withTcp.health).toMatchObject({ intervalMs: 1000, timeoutMs: 500 });
    // mdns.port: unset unless given; the announcer then uses the mDNS port.
    expect(resolveAgentOptions({ service: 'game', tcpPort: 7000, mdns: { interface: '127.0.0.1' } }).mdns).toEqual({ interface: '127.0.0.1' });
    expect(MDNS_PORT).toBe(5353);
    // wsPath '/' and wsTls false (issue 15): with a wsPort; without one there is no ws endpoint.
    expect(resolveAgentOptions({ service: 'game', wsPort: 8080 })).toMatchObject({ wsPath: '/', wsTls: false });
    expect(withTcp).toMatchObject({ wsPort: undefined, wsPath: undefined, wsTls: false });
    // dns.domain 'peerlb.' and dns.bind the --bind address (issue 16): once --dns-port turns DNS on.
    expect(withDns.dns).toMatchObject({ port: 8600, domain: 'peerlb.', bind: withDns.bind });
    expect(withTcp.dns).toBeUndefined();
  });
});

describe('bad values are refused in one line naming the option', () => {
  const base = ['agent', '--service', 'game', '--host', H, '--port', '0', '--tcp', '7000', '--node', 'bad'];
  const cases: Array<[string, string[], NodeJS.ProcessEnv, RegExp]> = [
    ['non-integer flag', ['--weight', 'abc'], {}, /"--weight" must be an integer/],
    ['flag out of range', ['--weight', '0'], {}, /"--weight" must be an integer in 1\.\.10000, got "0"/],
    ['port out of range', ['--port', '70000'], {}, /"--port" must be an integer in 0\.\.65535/],
    ['unknown enum value', ['--gossip-profile', 'fast'], {}, /"--gossip-profile" must be one of lan, local, got "fast"/],
    ['bad log level', ['--log-level', 'loud'], {}, /"--log-level" must be one of fatal, error/],
    ['bad health type', ['--health', 'bogus'], {}, /"--health" must be one of tcp, udp, ws, ttl, none/],
    ['not an address', ['--host', 'example.com'], {}, /"--host" must be an IPv4 or IPv6 address, got "example\.com"/],
    ['bad join URL', ['--join', 'http://127.0.0.1:1'], {}, /"--join" must be ws:\/\/host:port/],
    ['bad environment variable', [], { PEERLB_WEIGHT: 'x' }, /"PEERLB_WEIGHT" must be an integer, got "x"/],
    ['environment variable out of range', [], { PEERLB_HEALTH_RISE: '1000' }, /"PEERLB_HEALTH_RISE" must be an integer in 1\.\.100/],
    ['udp health without --udp', ['--health', 'udp'], {}, /"--health" is 'udp' but no --udp is set/],
  ];
  for (const [what, flags, env, re] of cases) {
    it(what, async () => {
      const r = await runCli([...base, ...flags], env);
      expect(r.code, r.stderr).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^peerlb: option /);
      expect(lines[0]).toMatch(re);
    });
  }

  it('a missing --service names it', async () => {
    const r = await runCli(['agent', '--tcp', '7000', '--port', '0', '--host', H]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"--service"/);
  });

  it('config file problems name the file and the key', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{ "service": "game", ', /config file .*bad-json\.json is not valid JSON/],
      [[1, 2], /must hold a JSON object/],
      [{ service: 'game', tcpPort: 7000, wieght: 5 }, /unknown option "wieght"/],
      [{ service: 'game', tcpPort: 7000, weight: 0 }, /"weight" must be an integer in 1\.\.10000, got 0/],
      [{ service: 'game', tcpPort: 7000, weight: '5' }, /"weight" must be an integer/],
      // Typos inside nested options are named too, not left silently at their defaults.
      [{ service: 'game', tcpPort: 7000, health: { type: 'tcp', intervalMS: 100 } }, /"health\.intervalMS" is not an option \(did you mean "health\.intervalMs"\?\)\. Known in health: type, intervalMs/],
      [{ service: 'game', tcpPort: 7000, limits: { maxFrameByte: 9000 } }, /"limits\.maxFrameByte" is not an option \(did you mean "limits\.maxFrameBytes"\?\)\. Known in limits/],
      [{ service: 'game', tcpPort: 7000, mdns: { interface: '127.0.0.1', iface: 'lo' } }, /"mdns\.iface" is not an option\. Known in mdns: interface, port/],
    ];
    for (const [i, [body, re]] of cases.entries()) {
      const file = writeConfig(i === 0 ? 'bad-json.json' : `bad-${i}.json`, body);
      const r = await runCli(['agent', '--config', file, '--host', H, '--port', '0']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
    const missing = await runCli(['agent', '--config', path.join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read config file .*nope\.json/);
  });
});
