import type { DiscoverySink, DiscoverySource } from './source.js';
import { ipFamily, serverAddressProblem, type ServerRecord } from '../protocol.js';
import { BadOptionError, UnsupportedError } from '../errors.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';

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
 * Resolves a host name to one address (the first the system resolver gives). The Node entry
 * passes sdk/node/resolve.ts (node:dns); a browser has none, so there static lists hold addresses.
 */
export type HostResolver = (host: string) => Promise<string>;

/**
 * Resolve the host names of a static list once, at join, so the view holds addresses only and no
 * datagram or connect waits on DNS. A name that does not resolve within `timeoutMs` (on `clock`),
 * or to an address no server can have, fails join with a BadOptionError naming the entry
 * (`discovery.servers[i]`). IP literals pass as they are. Without a resolver, a host name is an
 * UnsupportedError naming the entry.
 */
export async function resolveStaticServers(records: ServerRecord[], timeoutMs: number, resolve?: HostResolver, clock: Clock = systemClock): Promise<ServerRecord[]> {
  return Promise.all(
    records.map(async (r, i) => {
      if (ipFamily(r.host) !== 0) return r;
      const option = `discovery.servers[${i}]`;
      if (!resolve) throw new UnsupportedError(option, `has the host name "${r.host}": this runtime's entry resolves no names (use an IP address, or the Node entry peerlb/sdk)`);
      let timer: TimerHandle | undefined;
      try {
        const address = await Promise.race([
          resolve(r.host),
          new Promise<never>((_, reject) => {
            timer = clock.setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        const problem = serverAddressProblem(address);
        if (problem) throw new Error(`resolves to ${address}, which ${problem}`);
        return { ...r, host: address };
      } catch (err) {
        throw new BadOptionError(option, `host "${r.host}" does not resolve to a usable address: ${(err as Error).message}`);
      } finally {
        clock.clearTimeout(timer);
      }
    }),
  );
}
