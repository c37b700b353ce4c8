import type { KeyObject } from 'node:crypto';
import type { DiscoverySink, DiscoverySource } from '../core/discovery/source.js';
import { DecodeError, SignatureError } from '../core/errors.js';
import { nodeVerifier, verifyBytes } from './signing.js';
import { wsConnector } from './ws.js';
import type { WatchConnector } from '../core/discovery/websocket.js';
import { AgentWatch } from '../core/discovery/agents.js';
import { msgpackWatchCodec } from '../core/msgpack.js';
import { MdnsBrowser, type BrowsedInstance } from '../mdns/browser.js';
import { copyEndpoints, parseUsableServerRecord, type ServerRecord } from '../core/protocol.js';
import { systemClock, type Clock } from '../core/clock.js';
import { MdnsSettle } from '../core/discovery/settle.js';

export interface MdnsDiscoveryOptions {
  service: string;
  interface: string;
  /** Subscribe to a found agent's /v1/watch for exact load and health (default true). */
  subscribe: boolean;
  token?: string;
  clock?: Clock;
  /** UDP port of the link (default 5353). For tests. */
  port?: number;
  /** Only instances whose TXT is signed with this Ed25519 public key are used (sdk/node/signing.ts). */
  verify?: KeyObject;
  /** An instance or record was ignored for its signature. */
  onRejected?: (err: SignatureError) => void;
  /** How the subscription reaches a found agent (default: the `ws` connector; join passes its own, e.g. trusting its `ca`). */
  connect?: WatchConnector;
}

/** The record an mDNS announcement alone gives: coarse load (the TXT bucket, tenths of utilization). */
export function recordFromInstance(i: BrowsedInstance): ServerRecord {
  const r: ServerRecord = {
    id: i.node,
    service: i.service,
    host: i.host,
    weight: i.weight,
    health: i.health,
    agent: i.agentUrl,
    load: { connections: 0, sessions: 0, utilization: i.loadBucket / 10, seq: 0, ageMs: 0 },
  };
  copyEndpoints(i, r);
  if (i.zone !== undefined) r.zone = i.zone;
  return r;
}

/**
 * Zero-configuration discovery: browse `_<service>._sub._peerlb._tcp.local` on one interface.
 * Found agents give the view at once (from their TXT records); with `subscribe`, the source also
 * subscribes to one agent's /v1/watch and, while that subscription is up, takes the view from it
 * (exact load, health, every member the agent knows). When the subscribed agent dies, the watch
 * moves to another agent found by mDNS, and mDNS goodbyes still remove servers either way.
 */
export class MdnsDiscovery implements DiscoverySource {
  private readonly browser: MdnsBrowser;
  private readonly watch: AgentWatch | undefined;
  private readonly found = new Map<string, ServerRecord>();
  /** The instance each found id was taken from: only its own going removes the server. */
  private readonly foundFrom = new Map<string, string>();
  private sink: DiscoverySink | undefined;
  private watching = false;
  /** join() waits for a settled view: the first query round answered, or the watch's first snapshot (settle.ts). */
  private readonly settle: MdnsSettle;
  private watchFailures = 0;

  constructor(private readonly opts: MdnsDiscoveryOptions) {
    this.browser = new MdnsBrowser({ service: opts.service, interface: opts.interface, clock: opts.clock, port: opts.port });
    this.settle = new MdnsSettle(opts.clock ?? systemClock, opts.subscribe);
    if (opts.subscribe) {
      this.watch = new AgentWatch({
        service: opts.service,
        agents: [],
        token: opts.token,
        clock: opts.clock,
        verify: opts.verify ? nodeVerifier(opts.verify) : undefined,
        connect: opts.connect ?? wsConnector,
        codec: msgpackWatchCodec,
        onRejected: opts.onRejected,
        // A refusal is final for join's purpose; a timeout or a close may be a busy agent: give
        // up on the snapshot after a few of those (join's waitForServersMs caps the wait anyway).
        onFailure: (refused) => {
          if (refused || ++this.watchFailures >= 3) this.settle.watchFailed();
        },
        onAgent: (url) => {
          this.watching = url !== undefined;
          // Lost the subscription: fall back to what mDNS alone says until another agent answers.
          if (!this.watching) this.sink?.reset([...this.found.values()]);
        },
      });
    }
  }

  async start(sink: DiscoverySink): Promise<void> {
    this.sink = sink;
    // The watch feeds the sink only through this wrapper, so mDNS can still remove goodbyes.
    this.watch?.start(sink);
    void this.watch?.settled().then(() => this.settle.snapshot());
    this.browser.on('up', (i: BrowsedInstance) => this.onInstance(i));
    this.browser.on('update', (i: BrowsedInstance) => this.onInstance(i));
    this.browser.on('down', (id: string, reason: string, instance: string) => {
      // Another instance claiming this id (a forged or rejected one, a renamed duplicate) going
      // away says nothing about the one the server was taken from.
      if (this.foundFrom.get(id) !== instance) return;
      this.foundFrom.delete(id);
      const rec = this.found.get(id);
      this.found.delete(id);
      if (rec?.agent) this.watch?.removeAgent(rec.agent);
      sink.remove(id, `mdns ${reason}`);
    });
    await this.browser.start();
    // start() sent the first query.
    this.settle.queried();
  }

  settled(): Promise<void> {
    return this.settle.wait();
  }

  private onInstance(i: BrowsedInstance): void {
    if (i.service !== this.opts.service) return;
    if (this.opts.verify) {
      const s = i.signature;
      const why = s === undefined ? 'unsigned' : verifyBytes(s.data, s.sig, this.opts.verify) ? undefined : 'bad-signature';
      if (why) {
        // Ignored entirely: not in the view, and its agent is not subscribed to.
        this.opts.onRejected?.(new SignatureError(i.id, 'mdns', why, `${i.instance} at ${i.host}:${i.agentPort}`));
        this.drop(i);
        return;
      }
    }
    let rec: ServerRecord;
    try {
      // The same checks as a record from /v1/watch: an address a server can have, a port.
      rec = parseUsableServerRecord(recordFromInstance(i));
    } catch (err) {
      this.sink?.error(new DecodeError(`mdns ${i.instance}: ${(err as Error).message}; not in the view`));
      return;
    }
    this.found.set(rec.id, rec);
    this.foundFrom.set(rec.id, i.instance);
    if (rec.agent) this.watch?.addAgent(rec.agent);
    if (!this.watching) this.sink?.upsert(rec);
    this.settle.found();
  }

  /**
   * A rejected instance: the browser keeps none of its records (they would only take room from
   * instances that can be used), and if this server was taken from it, it is a server no longer:
   * what the instance says now is not signed.
   */
  private drop(i: BrowsedInstance): void {
    this.browser.reject(i.instance);
    if (this.foundFrom.get(i.id) !== i.instance) return;
    this.foundFrom.delete(i.id);
    const rec = this.found.get(i.id);
    this.found.delete(i.id);
    if (rec?.agent) this.watch?.removeAgent(rec.agent);
    this.sink?.remove(i.id, 'mdns rejected');
  }

  async close(): Promise<void> {
    this.settle.done();
    this.watch?.close();
    await this.browser.close();
  }
}
