import type { ServerRecord } from '../protocol.js';

/**
 * Where servers come from. A source only produces records (grpc-js's resolver); the balancer owns
 * the state. Static lists, mDNS, seed agents and user feeds all implement this.
 */
export interface DiscoverySink {
  /** Add a server or replace what is known about it (a newer load report, health, weight…). */
  upsert(record: ServerRecord): void;
  /** The server is gone (goodbye, left, dead, expired). */
  remove(id: string, reason?: string): void;
  /** Replace the whole set (a fresh snapshot). */
  reset(records: ServerRecord[]): void;
  /** Something went wrong in the source; the view keeps what it had. */
  error(err: Error): void;
  /**
   * Optional: the changes from now to the end of this task are one batch (the balancer rebuilds
   * its picker once, not once per change). For sources whose changes come in bursts.
   */
  hold?(): void;
}

export interface DiscoverySource {
  start(sink: DiscoverySink): void | Promise<void>;
  close(): void | Promise<void>;
  /**
   * Resolves once the source's view is settled (see settle.ts): `join()` waits for it after
   * `start`, at most `waitForServersMs`, so the first picks spread over the servers there are.
   * Without it, join waits for the first server.
   */
  settled?(): Promise<void>;
}
