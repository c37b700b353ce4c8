import type { DiscoverySink, DiscoverySource } from './source.js';
import { parseUsableServerRecord, type ServerRecord } from '../protocol.js';

/**
 * A programmatic source: push records in from your own discovery (a config service, a test).
 * Records are validated like records from the network; a bad one throws a DecodeError and
 * changes nothing.
 *
 *   const feed = createFeed();
 *   const cluster = await join({ service: 'game', discovery: { source: feed } });
 *   feed.upsert({ id: 'a', service: 'game', host: '10.0.0.5', udpPort: 7001, weight: 100, health: 'healthy' });
 */
export interface Feed extends DiscoverySource {
  upsert(record: ServerRecord): void;
  remove(id: string, reason?: string): void;
  reset(records: ServerRecord[]): void;
}

export function createFeed(initial: ServerRecord[] = []): Feed {
  let current = new Map<string, ServerRecord>(initial.map((r) => [r.id, parseUsableServerRecord(r)]));
  const sinks = new Set<DiscoverySink>();
  return {
    start(sink) {
      sinks.add(sink);
      sink.reset([...current.values()]);
    },
    close() {
      sinks.clear();
    },
    upsert(record) {
      const r = parseUsableServerRecord(record);
      current.set(r.id, r);
      for (const s of sinks) s.upsert(r);
    },
    remove(id, reason = 'removed') {
      current.delete(id);
      for (const s of sinks) s.remove(id, reason);
    },
    reset(records) {
      const parsed = records.map(parseUsableServerRecord);
      current = new Map(parsed.map((r) => [r.id, r]));
      for (const s of sinks) s.reset(parsed);
    },
  };
}
