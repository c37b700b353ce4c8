/** `peerlb pick`: discover a service and show which servers picks go to. */
import type { Command } from 'commander';
import { fail, portFlag, printTable } from './common.js';

/** Register `peerlb pick` on `program`. */
export function registerPick(program: Command): void {
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
      const { join } = await import('../../sdk/index.js');
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
}
