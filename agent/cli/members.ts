/** `peerlb members`: the members an agent knows (like `serf members`). */
import type { Command } from 'commander';
import { fail, fetchError, portFlag, printTable } from './common.js';

/** Register `peerlb members` on `program`. */
export function registerMembers(program: Command): void {
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
}

/** The ws:// URL of the first peerlb agent (of `service`, if given) that mDNS finds on `iface` within `timeoutMs`. */
async function agentOverMdns(iface: string, port: string | undefined, service: string | undefined, timeoutMs: number): Promise<string> {
  const { MdnsBrowser } = await import('../../sdk/mdns/browser.js');
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
      if (found) return found.agentUrl;
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

