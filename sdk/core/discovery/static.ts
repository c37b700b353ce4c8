import { lookup } from 'node:dns/promises';
import type { DiscoverySink, DiscoverySource } from './source.js';
import { ipFamily, serverAddressProblem, type ServerRecord } from '../protocol.js';
import { BadOptionError } from '../errors.js';

/** A fixed list of servers (`discovery: { servers: [...] }`), already parsed and resolved. */
export function staticSource(records: ServerRecord[]): DiscoverySource {
  return {
    start(sink: DiscoverySink) {
      sink.reset(records);
    },
    close() {},
    settled: () => Promise.resolve(),
  };
}

/**
 * Resolve the host names of a static list once, at join (the first address the system resolver
 * gives), so the view holds addresses only and no datagram or connect waits on DNS. A name that
 * does not resolve within `timeoutMs`, or to an address no server can have, fails join with a
 * BadOptionError naming the entry (`discovery.servers[i]`). IP literals pass as they are.
 */
export async function resolveStaticServers(records: ServerRecord[], timeoutMs: number): Promise<ServerRecord[]> {
  return Promise.all(
    records.map(async (r, i) => {
      if (ipFamily(r.host) !== 0) return r;
      const option = `discovery.servers[${i}]`;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const found = await Promise.race([
          lookup(r.host),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        const problem = serverAddressProblem(found.address);
        if (problem) throw new Error(`resolves to ${found.address}, which ${problem.replace(/^must/, 'must')}`);
        return { ...r, host: found.address };
      } catch (err) {
        throw new BadOptionError(option, `host "${r.host}" does not resolve to a usable address: ${(err as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}
