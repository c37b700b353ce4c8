#!/usr/bin/env node
/**
 * The `peerlb` command: run an agent, list members, try picks, make keys.
 * Every problem with what the user typed ends in one line naming the option, and exit code 2.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { AGENT_OPTION_SPECS, mergeAgentConfig } from './options.js';
import { BadOptionError, PeerlbError } from '../sdk/core/errors.js';

/** The package's version: package.json is two levels up from dist/agent/cli.js (and from agent/cli.ts). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const program = new Command();
program
  .name('peerlb')
  .description('Load balancing for TCP and UDP clusters with no central balancer.')
  .version(packageVersion(), '-V, --version', 'print the version')
  // Usage errors (unknown option, missing value or required option, unknown command) end in one
  // line naming the flag and exit code 2, as every other problem with what the user typed.
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(`peerlb: ${str.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`) });

/**
 * The CLI names options by their flags (`--udp`, `--health-udp-send`), not by the option paths of
 * startAgent (`udpPort`, `health.send`), except for those the config file set (`fromFile`): there the
 * user wrote the path.
 */
export function flagMessage(err: BadOptionError, fromFile: (path: string) => boolean = () => false): string {
  const flagOf = (p: string): string | undefined => {
    const spec = AGENT_OPTION_SPECS.find((x) => x.path === p.replace(/\[\d+\]$/, ''));
    return spec && !fromFile(spec.path) ? `--${spec.flag}` : undefined;
  };
  const option = flagOf(err.option) ?? err.option;
  let problem = err.message.slice(`option "${err.option}" `.length);
  // Option paths named in the text (`no udpPort is set`), longest first: `health.send` before `send`.
  // Only paths that cannot be plain words of the text: camelCase or dotted (`udpPort`, `health.send`, not `host`).
  const paths = AGENT_OPTION_SPECS.map((x) => x.path)
    .filter((x) => /[A-Z.]/.test(x))
    .sort((a, b) => b.length - a.length);
  problem = problem.replace(new RegExp(`(?<![\\w.-])(${paths.map((x) => x.replace(/\./g, '\\.')).join('|')})(?![\\w-])`, 'g'), (m) => flagOf(m) ?? m);
  return `option "${option}" ${problem}`;
}

function fail(err: unknown, code = 2, fromFile?: (path: string) => boolean): never {
  const msg =
    err instanceof BadOptionError
      ? `${flagMessage(err, fromFile)} [${err.code}]`
      : err instanceof PeerlbError
        ? `${err.message} [${err.code}]`
        : err instanceof Error
          ? err.message
          : String(err);
  process.stderr.write(`peerlb: ${msg}\n`);
  process.exit(code);
}

/** Why a fetch failed: the system error (ECONNREFUSED, ENOTFOUND…) under undici's "fetch failed". */
function fetchError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'no answer in time';
  if (e?.cause?.code) return `${e.cause.code}${e.cause.message && !e.cause.message.includes(e.cause.code) ? ` (${e.cause.message})` : ''}`;
  return e?.cause?.message ?? e?.message ?? String(err);
}

function getPath(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((cur, k) => (cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined), o);
}

// ------------------------------------------------------------------ agent
const agentCmd = program
  .command('agent')
  .description('run an agent beside a server: announce it, gossip with other agents, check its health')
  .option('--config <file>', 'JSON config file (flags > PEERLB_* env vars > file > defaults) (default: none)');
for (const spec of AGENT_OPTION_SPECS) {
  const arg = spec.kind === 'list' ? `<${spec.flag}...>` : `<${spec.kind === 'int' ? 'n' : 'value'}>`;
  let help = `${spec.describe} [env ${spec.env}]`;
  if (spec.choices) help += ` (${spec.choices.join(' | ')})`;
  // Defaults are shown in the text, not set through commander: a flag must be absent unless typed,
  // or it would override the environment and the config file.
  if (spec.path !== 'service') help += ` (default: ${spec.default ?? 'none'})`;
  agentCmd.addOption(new Option(`--${spec.flag} ${arg}`, help));
}
agentCmd.action(async (flags: Record<string, string | string[] | undefined>) => {
  // commander camel-cases flags; the specs use the dashed names.
  const byFlag: Record<string, string | string[] | undefined> = {};
  for (const spec of AGENT_OPTION_SPECS) byFlag[spec.flag] = flags[camel(spec.flag)];
  const configFile = flags.config as string | undefined;
  const load = () => mergeAgentConfig({ file: configFile, env: process.env, flags: byFlag });
  /** Whether the config file set this option (then messages name it as the file does). */
  const fromFile = (path: string): boolean => {
    if (!configFile) return false;
    try {
      return getPath(mergeAgentConfig({ file: configFile }), path) !== undefined;
    } catch {
      return false;
    }
  };
  let agent;
  try {
    const { startAgent } = await import('./index.js');
    agent = await startAgent(load());
  } catch (err) {
    fail(err, 2, fromFile);
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    agent.log.info({ signal }, 'draining before exit');
    try {
      await agent.drain();
      await agent.stop();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      agent.reload(load());
    } catch (err) {
      agent.log.error({ err: (err as Error).message }, 'reload refused; keeping the running configuration');
    }
  });
});

// ------------------------------------------------------------------ members
program
  .command('members')
  .description('list the members an agent knows (like `serf members`)')
  .option('--agent <url>', 'agent to ask, ws://host:port')
  .option('--mdns-interface <ip>', 'instead of --agent: ask the first agent found over mDNS on this interface')
  .option('--mdns-port <port>', 'mDNS UDP port, with --mdns-interface (default: 5353)')
  .option('--service <name>', 'with --mdns-interface: look for agents of this service only')
  .option('--token <token>', "the agent's client token (--token of `peerlb agent`), when it requires one")
  .option('--json', 'print JSON')
  .option('--timeout <ms>', 'give up after this long', '3000')
  .action(async (o: { agent?: string; mdnsInterface?: string; mdnsPort?: string; service?: string; token?: string; json?: boolean; timeout: string }) => {
    const timeout = Number(o.timeout);
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > 3_600_000) fail(new Error(`--timeout must be an integer in 1..3600000 (ms), got ${JSON.stringify(o.timeout)}`));
    if ((o.agent === undefined) === (o.mdnsInterface === undefined)) fail(new Error('one of --agent, --mdns-interface is required'));
    if (o.mdnsInterface !== undefined) o.agent = await agentOverMdns(o.mdnsInterface, o.mdnsPort, o.service, timeout);
    else if (o.mdnsPort !== undefined || o.service !== undefined) fail(new Error(`${o.mdnsPort !== undefined ? '--mdns-port' : '--service'} needs --mdns-interface`));
    const agentUrl = o.agent!;
    const m = /^wss?:\/\/([^/\s]+)\/?$/.exec(agentUrl);
    if (!m) fail(new Error(`--agent must be ws://host:port, got ${JSON.stringify(agentUrl)}`));
    const url = `${agentUrl.startsWith('wss:') ? 'https' : 'http'}://${m![1]}/v1/members`;
    let members: Array<Record<string, unknown>>;
    try {
      const headers: Record<string, string> = o.token ? { authorization: `Bearer ${o.token}` } : {};
      const res = await fetch(url, { signal: AbortSignal.timeout(timeout), headers });
      if (!res.ok) throw new Error(`${url} answered ${res.status}`);
      members = (await res.json()) as Array<Record<string, unknown>>;
      if (!Array.isArray(members)) throw new Error(`${url} did not answer with a list of members`);
    } catch (err) {
      fail(new Error(`cannot reach agent ${agentUrl}: ${fetchError(err)}`));
    }
    if (o.json) {
      process.stdout.write(JSON.stringify(members, null, 2) + '\n');
      return;
    }
    const rows = members.map((x) => {
      const live = x.status === 'alive' || x.status === 'suspect';
      const load = x.load as { connections?: number; sessions?: number; utilization?: number; source?: string } | null | undefined;
      return [
        String(x.node),
        `${x.host}:${x.port}`,
        String(x.status),
        // A dead or departed member's last word on its server's health (and load) is stale.
        live ? String(x.health) : '-',
        String(x.incarnation),
        live && load ? `conn=${load.connections} sess=${load.sessions} ${utilText(load.utilization ?? 0, x.loadSource ?? load.source)}` : '-',
        x.ageMs === undefined ? '-' : `${x.ageMs}ms`,
      ];
    });
    printTable(['Node', 'Address', 'Status', 'Health', 'Inc', 'Load', 'Age'], rows);
  });

function portFlag(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) fail(new Error(`--mdns-port must be a port (1..65535), got ${JSON.stringify(v)}`));
  return n;
}

/** The ws:// URL of the first peerlb agent (of `service`, if given) that mDNS finds on `iface` within `timeoutMs`. */
async function agentOverMdns(iface: string, port: string | undefined, service: string | undefined, timeoutMs: number): Promise<string> {
  const { MdnsBrowser } = await import('../sdk/mdns/browser.js');
  const mdnsPort = portFlag(port);
  let browser;
  try {
    browser = new MdnsBrowser({ interface: iface, ...(service ? { service } : {}), ...(mdnsPort ? { port: mdnsPort } : {}) });
    await browser.start();
  } catch (err) {
    fail(err);
  }
  const t0 = Date.now();
  try {
    while (Date.now() - t0 < timeoutMs) {
      const found = browser.instances()[0];
      if (found) return `ws://${found.host.includes(':') ? `[${found.host}]` : found.host}:${found.agentPort}`;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await browser.close();
  }
  fail(new Error(`no peerlb agent${service ? ` of service "${service}"` : ''} found over mDNS on ${iface}${mdnsPort ? ` port ${mdnsPort}` : ''} within ${timeoutMs} ms`));
}

/**
 * The utilization figure, saying what it is: `util=` for the server's report or active/capacity,
 * `cpu=` when it is the host's CPU (the server reported nothing and has no capacity), `util?=`
 * when the member's agent did not say (an agent of an older release: the source is gossiped
 * with the figure since the `sources` addition to gossip frames, agent/gossip/messages.ts).
 */
function utilText(u: number, source: unknown): string {
  const v = u.toFixed(2);
  switch (source) {
    case 'reported':
      return `util=${v}(reported)`;
    case 'capacity':
      return `util=${v}(active/capacity)`;
    case 'cpu':
      return `cpu=${v}(host CPU, not the server's)`;
    case 'none':
      return `util=${v}(none)`;
    default:
      return `util?=${v}`;
  }
}

// ------------------------------------------------------------------ pick
program
  .command('pick')
  .description('discover a service and show which servers picks go to')
  .requiredOption('--service <name>', 'service to join')
  .option('--mdns-interface <ip>', 'discover over mDNS on this interface')
  .option('--agent <url...>', 'discover through these agents')
  .option('--servers <list>', 'static list host:port,host:port')
  .option('--strategy <name>', 'picking strategy', 'p2c')
  .option('--key <key>', 'affinity key (consistent hashing)')
  .option('--count <n>', 'number of picks', '1')
  .option('--mdns-port <port>', 'mDNS UDP port, with --mdns-interface (default: 5353)')
  .option('--token <token>', "the agents' client token (--token of `peerlb agent`), with --agent")
  .option('--json', 'print JSON')
  .action(async (o: { service: string; mdnsInterface?: string; mdnsPort?: string; token?: string; agent?: string[]; servers?: string; strategy: string; key?: string; count: string; json?: boolean }) => {
    const { join } = await import('../sdk/index.js');
    const mdnsPort = portFlag(o.mdnsPort);
    if (mdnsPort !== undefined && !o.mdnsInterface) fail(new Error('--mdns-port needs --mdns-interface'));
    const discovery = o.mdnsInterface
      ? { mdns: mdnsPort === undefined ? { interface: o.mdnsInterface } : { interface: o.mdnsInterface, port: mdnsPort } }
      : o.agent
        ? { agents: o.agent }
        : o.servers
          ? { servers: o.servers.split(',') }
          : fail(new Error('one of --mdns-interface, --agent, --servers is required'));
    const count = Number(o.count);
    if (!Number.isInteger(count) || count < 1 || count > 10_000_000) fail(new Error('--count must be an integer in 1..10000000'));
    let cluster;
    try {
      cluster = await join({ service: o.service, discovery, strategy: o.strategy as never, ...(o.token ? { token: o.token } : {}) });
    } catch (err) {
      fail(err);
    }
    const counts = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const s = cluster.pick(o.key === undefined ? undefined : { key: o.key });
      const id = s ? s.id : '(none)';
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const servers = cluster.servers();
    await cluster.close();
    if (!counts.has('(none)') || counts.size > 1) {
      // some pick found a server
    } else {
      const where = o.mdnsInterface ? `over mDNS on ${o.mdnsInterface}${mdnsPort ? ` port ${mdnsPort}` : ''}` : o.agent ? `through ${o.agent.join(', ')}` : `in ${o.servers}`;
      const why = servers.length === 0 ? `no server of service "${o.service}" found ${where}` : `none of the ${servers.length} server(s) of "${o.service}" found ${where} can take picks (${servers.map((x) => `${x.id}: ${x.health}`).join(', ')})`;
      if (o.json) process.stdout.write(JSON.stringify({ picks: Object.fromEntries(counts), servers, error: why }, null, 2) + '\n');
      fail(new Error(why), 1);
    }
    if (o.json) {
      process.stdout.write(JSON.stringify({ picks: Object.fromEntries(counts), servers }, null, 2) + '\n');
      return;
    }
    const rows = [...counts].map(([id, n]) => {
      const s = servers.find((x) => x.id === id);
      return [id, s ? `${s.host}` : '-', s?.udpPort ? String(s.udpPort) : '-', s?.tcpPort ? String(s.tcpPort) : '-', s?.health ?? '-', String(n)];
    });
    printTable(['Server', 'Host', 'UDP', 'TCP', 'Health', 'Picks'], rows);
  });

// ------------------------------------------------------------------ keygen
program
  .command('keygen')
  .description('print a new 256-bit cluster key (base64; a keyring file of one key) for --key-file')
  .option('--signing', 'print a new Ed25519 signing key (PEM) for --signing-key-file instead; its public key goes to stderr')
  .option('--public <file>', 'print the public key (base64) of the signing key in <file>, for join({ verify: { publicKey } })')
  .action(async (o: { signing?: boolean; public?: string }) => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { loadPrivateKeyFile, publicKeyBase64 } = await import('../sdk/node/signing.js');
    if (o.public !== undefined) {
      try {
        process.stdout.write(publicKeyBase64(loadPrivateKeyFile(o.public)) + '\n');
      } catch (err) {
        fail(err);
      }
      return;
    }
    if (o.signing) {
      const { privateKey } = generateKeyPairSync('ed25519');
      process.stdout.write(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
      process.stderr.write(`public key: ${publicKeyBase64(privateKey)}\n`);
      return;
    }
    process.stdout.write(randomBytes(32).toString('base64') + '\n');
  });

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write([line(head), ...rows.map(line)].join('\n') + '\n');
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // --help and --version end here too, with their own exit code 0; usage errors were printed
    // (one line, by outputError above).
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  fail(err);
});
