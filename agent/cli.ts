#!/usr/bin/env node
/**
 * The `peerlb` command: run an agent, list members, try picks, make keys.
 * Every problem with what the user typed ends in one line naming the option, and exit code 2.
 */
import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import { AGENT_OPTION_SPECS, mergeAgentConfig } from './options.js';
import { PeerlbError } from '../sdk/errors.js';

const program = new Command();
program.name('peerlb').description('Load balancing for TCP and UDP clusters with no central balancer.').showHelpAfterError();

function fail(err: unknown): never {
  const msg = err instanceof PeerlbError ? `${err.message} [${err.code}]` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`peerlb: ${msg}\n`);
  process.exit(2);
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
  let agent;
  try {
    const { startAgent } = await import('./index.js');
    agent = await startAgent(load());
  } catch (err) {
    fail(err);
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
  .requiredOption('--agent <url>', 'agent to ask, ws://host:port')
  .option('--json', 'print JSON')
  .option('--timeout <ms>', 'give up after this long', '3000')
  .action(async (o: { agent: string; json?: boolean; timeout: string }) => {
    const m = /^wss?:\/\/([^/\s]+)\/?$/.exec(o.agent);
    if (!m) fail(new Error(`--agent must be ws://host:port, got ${JSON.stringify(o.agent)}`));
    const url = `${o.agent.startsWith('wss:') ? 'https' : 'http'}://${m![1]}/v1/members`;
    let members: Array<Record<string, unknown>>;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Number(o.timeout) || 3000) });
      if (!res.ok) throw new Error(`${url} answered ${res.status}`);
      members = (await res.json()) as Array<Record<string, unknown>>;
    } catch (err) {
      fail(new Error(`cannot reach agent ${o.agent}: ${(err as Error).message}`));
    }
    if (o.json) {
      process.stdout.write(JSON.stringify(members, null, 2) + '\n');
      return;
    }
    const rows = members.map((x) => {
      const load = x.load as { connections?: number; sessions?: number; utilization?: number } | undefined;
      return [
        String(x.node),
        `${x.host}:${x.port}`,
        String(x.status),
        String(x.health),
        String(x.incarnation),
        load ? `conn=${load.connections} sess=${load.sessions} util=${(load.utilization ?? 0).toFixed(2)}` : '-',
        x.ageMs === undefined ? '-' : `${x.ageMs}ms`,
      ];
    });
    printTable(['Node', 'Address', 'Status', 'Health', 'Inc', 'Load', 'Age'], rows);
  });

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
  .option('--json', 'print JSON')
  .action(async (o: { service: string; mdnsInterface?: string; agent?: string[]; servers?: string; strategy: string; key?: string; count: string; json?: boolean }) => {
    const { join } = await import('../sdk/index.js');
    const discovery = o.mdnsInterface
      ? { mdns: { interface: o.mdnsInterface } }
      : o.agent
        ? { agents: o.agent }
        : o.servers
          ? { servers: o.servers.split(',') }
          : fail(new Error('one of --mdns-interface, --agent, --servers is required'));
    const count = Number(o.count);
    if (!Number.isInteger(count) || count < 1 || count > 10_000_000) fail(new Error('--count must be an integer in 1..10000000'));
    let cluster;
    try {
      cluster = await join({ service: o.service, discovery, strategy: o.strategy as never });
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
    const { loadPrivateKeyFile, publicKeyBase64 } = await import('../sdk/signing.js');
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

program.parseAsync(process.argv).catch(fail);
