import type { DiscoverySink, DiscoverySource } from './source.js';
import type { ServerRecord } from '../protocol.js';

/** A fixed list of servers (`discovery: { servers: [...] }`), already parsed by the options. */
export function staticSource(records: ServerRecord[]): DiscoverySource {
  return {
    start(sink: DiscoverySink) {
      sink.reset(records);
    },
    close() {},
  };
}
