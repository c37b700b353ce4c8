import { DecodeError, InvalidRecordError, PeerlbError, SignatureError, WatchRefusedError } from '../errors.js';
import { RecordVerifier, type SignatureVerifier } from '../signing.js';
import type { DiscoverySink, DiscoverySource } from './source.js';
import {
  PROTOCOL_VERSION,
  MAX_WATCH_FRAME_BYTES,
  WATCH_PATH,
  parseAgentUrl,
  type ServerRecord,
  type WatchServerFrame,
} from '../protocol.js';
import { every, systemClock, type Clock, type TimerHandle } from '../clock.js';
import { Latch } from './settle.js';
import { webSocketConnector, type WatchConnection, type WatchConnector } from './websocket.js';
import type { WatchCodec } from './codec.js';
import { jsonWatchCodec } from './json-codec.js';

export interface AgentWatchOptions {
  service: string;
  /** Seed agent URLs (ws://host:port). More are learned from the agents themselves. */
  agents: string[];
  token?: string;
  /**
   * How sockets are opened (websocket.ts): by default a W3C `WebSocket` (the runtime's global);
   * the Node entry passes sdk/node/ws.ts.
   */
  connect?: WatchConnector;
  /**
   * How frames are written and read (codec.ts): by default JSON text (`/v1/watch?format=json`),
   * which needs no msgpack codec in a page's bundle; the Node entry passes msgpack (msgpack.ts).
   */
  codec?: WatchCodec;
  /**
   * Heartbeat: ping every `pingMs`, give the agent up if no pong within `pongTimeoutMs` (any frame
   * counts as one). A protocol-level ping where the connection has one, else a `ping` frame.
   */
  pingMs?: number;
  pongTimeoutMs?: number;
  /** Give up a connect attempt after this long. */
  connectTimeoutMs?: number;
  clock?: Clock;
  /** Called whenever the subscribed agent changes (undefined while none). */
  onAgent?: (url: string | undefined) => void;
  /** Called when an attempt ends without a snapshot: `refused` when the agent answered with an HTTP status. */
  onFailure?: (refused: boolean) => void;
  /**
   * Only records signed with the cluster's Ed25519 key enter the view (sdk/core/signing.ts): the
   * verifier of its public key. An asynchronous one (WebCrypto) delays frames, never reorders them.
   */
  verify?: SignatureVerifier;
  /** A record was ignored for its signature. */
  onRejected?: (err: SignatureError) => void;
}

/**
 * Most agent URLs kept from the subscribed agent's lists; seeds and mDNS-found agents come on top.
 * Enough to fail over through in any cluster (each dead one tried costs up to connectTimeoutMs),
 * and a bound on what an agent that lists thousands can make a client hold.
 */
export const MAX_LEARNED_AGENTS = 64;

/**
 * Subscribes to one agent's read-only `/v1/watch` (the full view, then deltas) and, when that
 * agent dies or stalls, moves to another known agent. Heartbeats bound the time to notice a
 * silent agent to about pingMs + pongTimeoutMs; a killed agent process is noticed at once (its
 * socket closes). The view is kept while switching; the new agent's snapshot replaces it.
 *
 * Known agents: the configured seeds (always kept), those mDNS found (until their goodbye), and
 * those the subscribed agent lists as alive in its latest snapshot or agents frame (replaced by
 * each such frame, at most MAX_LEARNED_AGENTS). Agents that left or died drop out with the next
 * list, so a failover does not walk them; they are tried first, being the most recently seen alive.
 */
export class AgentWatch implements DiscoverySource {
  private readonly seeds: string[] = [];
  private readonly found: string[] = [];
  private learned: string[] = [];
  /** The order agents are tried in: learned, found, seeds (each once). */
  private known: string[] = [];
  private next = 0;
  /** The agent whose socket closed (or failed) last: not tried again first while there is another. */
  private lastClosed: string | undefined;
  private ws: WatchConnection | undefined;
  private sink: DiscoverySink | undefined;
  private closed = false;
  private retryTimer: TimerHandle | undefined;
  private stopPing: (() => void) | undefined;
  private lastPong = 0;
  private failuresInRow = 0;
  /** Subscriptions ended in a row because a frame did not decode: backs off the resubscription. */
  private badInRow = 0;
  private readonly clock: Clock;
  private readonly connector: WatchConnector;
  private readonly codec: WatchCodec;
  /** With `verify`: checks each record's origin signature, once per change of its signed part. */
  private readonly verifier: RecordVerifier | undefined;
  /** Open from the first snapshot on: the view is settled (join waits for it). */
  private readonly synced = new Latch();
  current: string | undefined;

  constructor(private readonly opts: AgentWatchOptions) {
    this.clock = opts.clock ?? systemClock;
    this.connector = opts.connect ?? webSocketConnector();
    this.codec = opts.codec ?? jsonWatchCodec;
    this.verifier = opts.verify ? new RecordVerifier(opts.verify) : undefined;
    // join checked the seeds (options.ts); a URL that is not usable is never kept.
    for (const a of opts.agents) {
      const u = parseAgentUrl(a);
      if (u !== undefined && !this.seeds.includes(u)) this.seeds.push(u);
    }
    this.rebuildKnown();
  }

  /** Another agent found (by mDNS): kept until removeAgent. An unusable URL is ignored. */
  addAgent(url: string): void {
    const u = parseAgentUrl(url);
    if (u === undefined) return;
    if (!this.found.includes(u)) {
      this.found.push(u);
      this.rebuildKnown();
    }
    if (this.sink && !this.ws && !this.closed && this.retryTimer === undefined) this.connectNext();
  }

  /** Forget an agent (its mDNS goodbye); switch away if it is the current one. Seeds stay. */
  removeAgent(url: string): void {
    const u = parseAgentUrl(url) ?? url;
    const i = this.found.indexOf(u);
    if (i >= 0) this.found.splice(i, 1);
    this.learned = this.learned.filter((x) => x !== u);
    this.rebuildKnown();
    if (this.current === u) this.ws?.terminate();
  }

  /**
   * The subscribed agent's list of live agents replaces the learned ones (not merged: an agent
   * that left or died is gone from the next list, and must not cost a failover a connect timeout
   * for ever after). Over the cap, the ones already known are kept first, so a long list cannot
   * churn the set; the subscribed agent itself always stays.
   */
  private learn(urls: readonly string[]): void {
    const before = new Set(this.learned);
    const kept: string[] = [];
    const fresh: string[] = [];
    for (const u of urls) {
      if (u === this.current) continue;
      (before.has(u) ? kept : fresh).push(u);
    }
    const all = this.current !== undefined && urls.includes(this.current) ? [this.current, ...kept, ...fresh] : [...kept, ...fresh];
    this.learned = all.slice(0, MAX_LEARNED_AGENTS);
    this.rebuildKnown();
  }

  private rebuildKnown(): void {
    const known = [...new Set([...this.learned, ...this.found, ...this.seeds])];
    if (known.length === this.known.length && known.every((u, i) => u === this.known[i])) return;
    this.known = known;
    // Next after the subscribed one: when it goes, its successor in the list is tried first.
    if (this.current !== undefined) this.next = known.indexOf(this.current) + 1;
  }

  agents(): readonly string[] {
    return this.known;
  }

  /** Resolves when the first full snapshot (of any agent) is in the view. */
  settled(): Promise<void> {
    return this.synced.wait();
  }

  start(sink: DiscoverySink): void {
    this.sink = sink;
    this.connectNext();
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.retryTimer);
    this.stopPing?.();
    this.ws?.terminate();
    this.ws = undefined;
  }

  private connectNext(): void {
    if (this.closed || this.known.length === 0) return;
    const n = this.known.length;
    let url = this.known[this.next++ % n]!;
    if (url === this.lastClosed && n > 1) url = this.known[this.next++ % n]!;
    /** A snapshot came: only then is the attempt a success (an agent that accepts and then closes, or sends what cannot be read, is a failure and backs off). */
    let synced = false;
    let opened = false;
    /** This subscription is given up because a frame did not decode. */
    let broken = false;
    let refused = false;
    let gone = false;
    let pingN = 0;
    let ws: WatchConnection;
    /** Frames waiting for an asynchronous signature check: later ones wait behind them (kept in order). */
    let queued = 0;
    let tail: Promise<void> = Promise.resolve();
    /** After a frame is applied: what its type means for this subscription. */
    const applied = (t: WatchServerFrame['t'] | undefined) => {
      // A frame checked after its socket closed says nothing of the next one: it must not count as
      // this subscription's snapshot (and reset the backoff its close just raised).
      if (gone || this.closed) return;
      if (t === undefined) {
        // A frame lost: the view may miss a change and this agent cannot say which. Start over
        // from a fresh snapshot (another agent's, or this one's), backing off.
        if (broken) return;
        broken = true;
        this.badInRow++;
        ws.terminate();
      } else if (t === 'snapshot' && !synced) {
        synced = true;
        this.failuresInRow = 0;
      }
    };
    const live = () => !gone && !broken && !this.closed;
    const onData = (data: Uint8Array | string) => {
      if (queued === 0) {
        const r = this.onFrame(data, live);
        if (typeof r !== 'object') return applied(r);
        queued++;
        tail = r.then(applied).finally(() => {
          queued--;
          this.lastPong = this.clock.now();
        });
        return;
      }
      queued++;
      tail = tail
        .then(() => {
          if (!live()) return;
          const r = this.onFrame(data, live);
          return typeof r === 'object' ? r.then(applied) : applied(r);
        })
        .finally(() => {
          queued--;
          this.lastPong = this.clock.now();
        });
    };
    try {
      ws = this.connector(url + WATCH_PATH + (this.codec.format === 'json' ? '?format=json' : ''), { maxPayload: MAX_WATCH_FRAME_BYTES, connectTimeoutMs: this.opts.connectTimeoutMs ?? 1000, token: this.opts.token, clock: this.clock }, {
        open: () => {
          opened = true;
          this.current = url;
          this.lastPong = this.clock.now();
          ws.send(this.codec.encode({ t: 'hello', v: PROTOCOL_VERSION, service: this.opts.service, token: this.opts.token }));
          const pingMs = this.opts.pingMs ?? 500;
          const timeout = this.opts.pongTimeoutMs ?? 1500;
          this.stopPing = every(this.clock, pingMs, () => {
            if (this.clock.now() - this.lastPong > timeout) ws.terminate();
            else if (ws.ping) ws.ping();
            else {
              ws.send(this.codec.encode({ t: 'ping', v: PROTOCOL_VERSION, n: pingN }));
              pingN = (pingN + 1) & 0x7fffffff;
            }
          });
          this.opts.onAgent?.(url);
        },
        pong: () => (this.lastPong = this.clock.now()),
        refused: (status, text) => {
          // The agent answered the upgrade with an HTTP status (503 at its subscriber limit, 429 when
          // blocked, 401 without the token): say so, then the close below retries with backoff.
          refused = true;
          this.sink?.error(new WatchRefusedError(url, status, text));
        },
        message: (data) => {
          // Frames of the codec's kind (text for JSON, binary for msgpack); any other is ignored.
          if ((typeof data === 'string') === (this.codec.format === 'json') && !broken) onData(data);
          // The heartbeat counts from the end of processing: a big snapshot can take longer than the
          // pong timeout to apply, and the agent was not silent meanwhile.
          this.lastPong = this.clock.now();
        },
        error: (err) => {
          // ws closes with 1009 a frame over maxPayload. Said plainly: it would come back at every
          // reconnect (the same view, the same size), and otherwise looks like a flaky agent.
          if ((err as { code?: unknown }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
            this.sink?.error(
              new PeerlbError('PEERLB_ERR_FRAME_TOO_LARGE', `agent ${url}: a /v1/watch frame is over this client's limit of ${MAX_WATCH_FRAME_BYTES} bytes (closed 1009); reconnecting with backoff`, { cause: err }),
            );
          else if (opened) this.sink?.error(err);
        },
        close: () => {
          gone = true;
          this.stopPing?.();
          this.stopPing = undefined;
          if (this.ws === ws) this.ws = undefined;
          if (this.current === url) {
            this.current = undefined;
            this.opts.onAgent?.(undefined);
          }
          this.lastClosed = url;
          if (this.closed) return;
          if (!synced) {
            this.failuresInRow++;
            this.opts.onFailure?.(refused);
          } else if (!broken) this.badInRow = 0;
          this.retryLater();
        },
      });
    } catch (err) {
      // Every kept URL passed parseAgentUrl, so this should not happen; but this runs in a retry
      // timer, where a throw would be an uncaught exception in the user's process. A failed attempt.
      this.sink?.error(new PeerlbError('PEERLB_ERR_CONFIG', `agent ${url}: cannot connect: ${(err as Error).message}`, { cause: err }));
      this.lastClosed = url;
      this.failuresInRow++;
      this.opts.onFailure?.(false);
      this.retryLater();
      return;
    }
    this.ws = ws;
  }

  /** Try the next agent at once; after a full round of failures, back off (≤ 2 s). */
  private retryLater(): void {
    if (this.closed) return;
    const backoff = (n: number) => Math.min(2000, 100 * 2 ** Math.min(5, n));
    const delay = Math.max(
      this.failuresInRow < this.known.length ? 0 : backoff(this.failuresInRow - this.known.length),
      // After a frame that did not decode, even once a snapshot came: an agent that sends a good
      // snapshot and then garbage must not make the client resubscribe in a tight loop.
      this.badInRow > 0 ? backoff(this.badInRow - 1) : 0,
    );
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.connectNext();
    }, delay);
    this.retryTimer.unref?.();
  }

  /**
   * Apply one frame of the subscribed agent; returns its type, or undefined if it did not decode
   * (the caller resubscribes). An upsert whose record does not parse only costs that server. With
   * an asynchronous verifier, a frame with records to check returns a promise, and is applied when
   * they are checked, if the subscription is still `live()` (the caller queues later frames).
   */
  private onFrame(data: Uint8Array | string, live: () => boolean): WatchServerFrame['t'] | undefined | Promise<WatchServerFrame['t'] | undefined> {
    const sink = this.sink!;
    // Frames come several to a socket read (an agent's burst of upserts): one rebuild for them all.
    sink.hold?.();
    let f: WatchServerFrame;
    try {
      f = this.codec.decode(data);
    } catch (err) {
      if (err instanceof InvalidRecordError) {
        // What the server is now cannot be used: it leaves the view rather than stay as it was.
        if (err.server !== undefined) sink.remove(err.server, 'invalid record');
        sink.error(new DecodeError(`agent ${this.current ?? '?'}: ${err.message}; server left out of the view`));
        return 'upsert';
      }
      // As it is (its code says what was wrong: decode, version, size).
      sink.error(err as Error);
      return undefined;
    }
    if (f.t === 'snapshot' && f.droppedServers) {
      const { count, example } = f.droppedServers;
      sink.error(new DecodeError(`agent ${this.current ?? '?'}: left ${count} server record${count === 1 ? '' : 's'} of its snapshot out of the view (e.g. ${example})`));
    }
    if ((f.t === 'snapshot' || f.t === 'agents') && f.invalidAgents) {
      const { count, example } = f.invalidAgents;
      sink.error(new DecodeError(`agent ${this.current ?? '?'}: ignored ${count} invalid agent URL${count === 1 ? '' : 's'} in its ${f.t} frame (e.g. ${example})`));
    }
    const records = f.t === 'snapshot' ? f.servers : f.t === 'upsert' ? [f.server] : [];
    const verdicts = records.map((r) => this.accepts(r));
    if (verdicts.every((v): v is boolean => typeof v === 'boolean')) return this.apply(f, verdicts);
    const frame = f;
    return Promise.all(verdicts).then((vs) => {
      if (!live()) return frame.t;
      sink.hold?.();
      return this.apply(frame, vs);
    });
  }

  /**
   * Whether a record may enter the view: this service, and with verify a valid signature of its
   * own agent, whichever agent relays it; a refusal reported once per change of the record.
   */
  private accepts(r: ServerRecord): boolean | Promise<boolean> {
    if (r.service !== this.opts.service) return false;
    if (!this.verifier) return true;
    const who = `agent ${this.current ?? '?'}`;
    const judge = ({ why, fresh }: { why: string | undefined; fresh: boolean }) => {
      if (why && fresh) this.opts.onRejected?.(new SignatureError(r.id, 'watch', why as 'unsigned' | 'bad-signature', who));
      return why === undefined;
    };
    const c = this.verifier.check(r);
    return 'then' in c ? c.then(judge) : judge(c);
  }

  /** A decoded frame into the sink; `ok[i]`: whether its i-th record (snapshot or upsert) is taken. */
  private apply(f: WatchServerFrame, ok: boolean[]): WatchServerFrame['t'] {
    const sink = this.sink!;
    switch (f.t) {
      case 'snapshot':
        sink.reset(f.servers.filter((_, i) => ok[i]));
        this.learn(f.agents);
        this.synced.open();
        break;
      case 'upsert':
        if (ok[0]) sink.upsert(f.server);
        // Rejected (or no longer this service): what the server is now cannot be used, so it
        // leaves the view rather than stay as it was (as an invalid record does, and as mDNS does).
        else sink.remove(f.server.id, f.server.service === this.opts.service ? 'rejected' : 'other service');
        break;
      case 'remove':
        sink.remove(f.id, f.reason);
        break;
      case 'agents':
        this.learn(f.agents);
        break;
      case 'error':
        sink.error(new Error(`agent ${this.current}: ${f.code}: ${f.message}`));
        break;
      case 'pong':
        // The heartbeat's answer: every frame counts as one (the message handler).
        break;
    }
    return f.t;
  }
}
