/**
 * MdnsBrowser: finds peerlb agents by DNS-SD browsing over mDNS (RFC 6762, RFC 6763), with a
 * record cache, on one interface. Pure JavaScript over `multicast-dns`, clock-injectable.
 *
 * - Continuous querying (RFC 6762 §5.2) for `_<service>._sub._peerlb._tcp.local` PTR (or
 *   `_peerlb._tcp.local` without a service), on the schedule of query-scheduler.ts: the first
 *   query at once, then intervals doubling from 1 s up to MAX_QUERY_INTERVAL_MS; each query lists
 *   the PTRs already known (§7.1), so responders answer only with what is new. A query another
 *   host sends with the same question and no known answer we lack counts as ours (§7.3).
 * - Cache (cache.ts): every record with its TTL (capped near the agents' own); a record with
 *   the cache-flush bit replaces older records of its RRset after one second (§10.2); a goodbye
 *   (TTL 0) removes its record after one second (§10.1); refresh queries go out at 80, 85, 90 and
 *   95 % of a record's TTL, plus 0–2 % (§5.2), and a record no one refreshed expires. Full, it
 *   evicts the oldest records (those of instances not up first); it never refuses new ones.
 * - Work per packet follows the packet: only the instances its records touch are put together
 *   again, and timers come from a heap, so 500 cached instances cost a packet what one does.
 * - Goodbyes: an instance whose PTR or SRV said goodbye is down at once ('down' with 'goodbye'),
 *   not a second later when the records go: the second is there to let a responder that did not
 *   mean it answer again (§10.1), and a server that is shutting down must stop taking traffic
 *   now. Its records stay cached for that second, so a fresh announcement within it brings the
 *   instance back ('up'); after it, the instance is forgotten as before.
 * - Resolution: an instance is up when its PTR, SRV, TXT and the SRV target's A or AAAA are all
 *   in the cache and the TXT decodes (records.ts); missing pieces are asked for, with backoff.
 *
 * Events: 'up' (instance), 'update' (instance, when its SRV, TXT or address changed),
 * 'down' (id, reason: 'goodbye' | 'expired'). Undecodable packets, records that do not parse,
 * socket errors and listener exceptions are counted in stats(), never thrown.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Answer, DecodedPacket, Packet } from 'dns-packet';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { defaultRandom, type Random } from '../core/random.js';
import { MDNS_SERVICE_TYPE } from '../core/protocol.js';
import { ConfigError } from '../core/errors.js';
import { assembleAnnouncement, checkSrv, decodeTxt, peerlbInstanceName, subtypeName, DEFAULT_TTLS } from './records.js';
import { recordKey, ttlOf } from './keys.js';
import { questionClass, recordsOf, splitPacket } from './packet.js';
import { closeSocket, createMdnsSocket, waitReady, type MdnsRinfo, type MdnsSocket } from './socket.js';
import { GOODBYE_REMOVE_MS, MdnsCache, srvTarget, type CachedType, type Entry } from './cache.js';
import { TimeHeap } from './time-heap.js';
import { QueryScheduler, QuestionList, Resolutions } from './query-scheduler.js';
import { instanceKey, toBrowsed, type BrowsedInstance, type DownReason } from './instance.js';

export type { BrowsedInstance, DownReason } from './instance.js';
export { CACHE_FLUSH_GRACE_MS, GOODBYE_REMOVE_MS } from './cache.js';
export {
  DUPLICATE_QUERY_SLACK_MS,
  INITIAL_QUERY_INTERVAL_MS,
  MAX_QUERY_INTERVAL_MS,
  MAX_RESOLVE_ATTEMPTS,
  REFRESH_FRACTIONS,
  REFRESH_JITTER,
  RESOLVE_DELAY_MS,
} from './query-scheduler.js';

export interface MdnsBrowserEvents {
  up: [instance: BrowsedInstance];
  update: [instance: BrowsedInstance];
  /** `instance`: the DNS-SD instance name that went (two instances may claim one node id). */
  down: [id: string, reason: DownReason, instance: string];
}

export interface MdnsBrowserOptions {
  /** Browse only this service's subtype (`_<service>._sub._peerlb._tcp.local`); default: every peerlb agent. */
  service?: string;
  /** IPv4 address of the one interface to browse on (e.g. '127.0.0.1'). */
  interface: string;
  /** An existing multicast-dns instance (tests); the browser then neither waits for it nor destroys it. */
  mdns?: MdnsSocket;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: a fresh xorshift source (refresh jitter). */
  random?: Random;
  /** UDP port of the link (default 5353, RFC 6762 §3). For tests. */
  port?: number;
}

export interface BrowserStats {
  packetsIn: number;
  responsesIn: number;
  queriesIn: number;
  queriesSent: number;
  /** Our continuous queries skipped because another host asked the same (§7.3). */
  duplicateQueriesSuppressed: number;
  /** Packets multicast-dns could not decode ('warning' events). */
  malformed: number;
  /** Records for our names that did not parse (bad TXT, version, SRV, address), and packets that made a handler throw. */
  invalid: number;
  /** Records evicted to make room (the cache was full, or one RRset held MAX_RECORDS_PER_RRSET). */
  evicted: number;
  /** Instances dropped, records and all, because the caller rejected them (reject()). */
  rejected: number;
  /** Instances looked at again (put together, compared): the work packets cost, one per instance a packet touched. */
  reconciled: number;
  /** Socket errors and failed sends. */
  errors: number;
  /** Exceptions thrown by 'up' / 'update' / 'down' listeners (caught). */
  listenerErrors: number;
}

/** Bounds: cache entries (a full cache evicts, oldest first), records of one RRset, records looked at per packet. */
export const MAX_CACHE_ENTRIES = 8192;
export const MAX_RECORDS_PER_RRSET = 8;
export const MAX_RECORDS_PER_PACKET = 512;
/**
 * TTLs honoured (s): agents send 4500 s on PTRs, 20 s on the rest (records.ts DEFAULT_TTLS); a
 * record claiming more is kept at most the agent's own (PTR) or twice it. That costs an honest
 * agent nothing (refresh queries at 80 % of the capped TTL keep its records), and a forged record
 * with a day's TTL goes within a minute unless someone keeps answering for it.
 */
export const MAX_PTR_TTL_S = DEFAULT_TTLS.ptr;
export const MAX_RECORD_TTL_S = 2 * Math.max(DEFAULT_TTLS.host, DEFAULT_TTLS.txt);

interface UpInstance {
  inst: BrowsedInstance;
  target: string;
  /** The records it was put together from (PTR, SRV, TXT, address): held in the cache. */
  parts: Entry[];
}

export class MdnsBrowser extends EventEmitter<MdnsBrowserEvents> {
  private readonly clock: Clock;
  private readonly browseName: string;
  private readonly ownSocket: boolean;
  private sock: MdnsSocket | undefined;
  private readonly sockListeners: [string, (...args: any[]) => void][] = [];
  private started = false;
  private closed = false;
  private readonly cache: MdnsCache;
  private readonly up = new Map<string, UpInstance>();
  private readonly resolving = new Resolutions();
  private readonly schedule: QueryScheduler;
  /** Instances a received record or a timer touched since the last reconcile: only these are looked at. */
  private readonly dirty = new Set<string>();
  /** While set, touches are not recorded (the instance being decided is the one touched). */
  private quiet = false;
  /** When instances are due again (resolution, the second after a goodbye); stale items are skipped. */
  private readonly instanceTimes = new TimeHeap<string>();
  private readonly goodbyeNames = new Set<string>();
  /** Instances taken down by a goodbye whose records are still cached (§10.1), and when to forget them. */
  private readonly saidGoodbye = new Map<string, number>();
  private timer: TimerHandle | undefined;
  private readonly s: Omit<BrowserStats, 'evicted'> = {
    packetsIn: 0,
    responsesIn: 0,
    queriesIn: 0,
    queriesSent: 0,
    duplicateQueriesSuppressed: 0,
    malformed: 0,
    invalid: 0,
    rejected: 0,
    reconciled: 0,
    errors: 0,
    listenerErrors: 0,
  };

  constructor(private readonly opts: MdnsBrowserOptions) {
    super();
    if (typeof opts.interface !== 'string' || opts.interface.length === 0) throw new ConfigError('MdnsBrowser: interface (an IPv4 address) is required');
    this.clock = opts.clock ?? systemClock;
    this.schedule = new QueryScheduler(opts.random ?? defaultRandom());
    this.browseName = (opts.service ? subtypeName(opts.service) : MDNS_SERVICE_TYPE).toLowerCase();
    this.ownSocket = opts.mdns === undefined;
    this.cache = new MdnsCache({ browseName: this.browseName, maxEntries: MAX_CACHE_ENTRIES, maxPerSet: MAX_RECORDS_PER_RRSET, touched: (e) => this.touch(e) });
  }

  /** Open the socket (unless injected) and send the first query. */
  async start(): Promise<void> {
    if (this.started || this.closed) return;
    this.started = true;
    const sock = this.opts.mdns ?? createMdnsSocket(this.opts.interface, this.opts.port);
    this.sock = sock;
    this.listen(sock, 'packet', (p: DecodedPacket, rinfo: MdnsRinfo) => this.onPacket(p, rinfo));
    this.listen(sock, 'warning', () => this.s.malformed++);
    this.listen(sock, 'error', () => this.s.errors++);
    if (this.ownSocket) {
      try {
        await waitReady(sock, undefined, this.clock);
      } catch (err) {
        await this.close();
        throw err;
      }
    }
    if (this.closed) return;
    this.schedule.start(this.clock.now());
    this.tick();
  }

  /** Stop querying and close the socket if it is ours. Emits nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const sock = this.sock;
    for (const [event, fn] of this.sockListeners) sock?.removeListener(event, fn);
    this.sockListeners.length = 0;
    if (sock && this.ownSocket) await closeSocket(sock, this.clock);
  }

  /** The instances up now. */
  instances(): BrowsedInstance[] {
    return [...this.up.values()].map((u) => ({ ...u.inst }));
  }

  /**
   * The caller will not use this instance (a verifying client found it unsigned or wrongly signed):
   * forget it, records and all, so it takes no room from instances that will be used. Announced
   * again, it is put together (and judged) again. Up, it is no longer, without a 'down' (the
   * caller knows). Safe inside an 'up' or 'update' listener.
   */
  reject(instance: string): void {
    const i = instance.toLowerCase();
    const prev = this.up.get(i);
    if (!prev && !this.cache.ptr(i)) return;
    this.s.rejected++;
    for (const p of prev?.parts ?? []) this.cache.hold(p, -1);
    this.up.delete(i);
    this.resolving.done(i);
    this.saidGoodbye.delete(i);
    const q = this.quiet;
    this.quiet = true;
    this.cache.dropInstance(i);
    this.quiet = q;
  }

  stats(): BrowserStats & { cacheEntries: number } {
    return { ...this.s, evicted: this.cache.evicted, cacheEntries: this.cache.size };
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  private listen(sock: MdnsSocket, event: string, fn: (...args: any[]) => void): void {
    sock.on(event, fn);
    this.sockListeners.push([event, fn]);
  }

  private onPacket(packet: DecodedPacket, rinfo: MdnsRinfo): void {
    if (this.closed) return;
    this.s.packetsIn++;
    try {
      if (!packet || typeof packet !== 'object') throw new Error('not a packet');
      if (packet.type === 'response') {
        this.s.responsesIn++;
        this.onResponse(packet);
      } else {
        this.s.queriesIn++;
        this.onQuery(packet, rinfo);
      }
    } catch {
      this.s.invalid++;
    }
    this.tick();
  }

  /** Cache what the packet says about our instances. Work: the packet's records, never the cache's. */
  private onResponse(packet: DecodedPacket): void {
    const now = this.clock.now();
    const all = recordsOf(packet, MAX_RECORDS_PER_PACKET);
    const data = (rr: Answer): unknown => (rr as { data?: unknown }).data;

    // 1. PTRs for the browsed name.
    for (const rr of all) {
      if (rr.type !== 'PTR' || rr.name.toLowerCase() !== this.browseName) continue;
      if (!peerlbInstanceName(data(rr))) {
        this.s.invalid++;
        continue;
      }
      this.insert(rr, 'PTR', now);
    }
    // 2. SRV and TXT of instances a PTR points at.
    for (const rr of all) {
      if (rr.type !== 'SRV' && rr.type !== 'TXT') continue;
      if (!this.cache.ptr(rr.name.toLowerCase())) continue;
      if (ttlOf(rr) > 0) {
        try {
          if (rr.type === 'SRV') checkSrv(data(rr));
          else decodeTxt(data(rr) as unknown[]);
        } catch {
          this.s.invalid++;
          continue;
        }
      }
      this.insert(rr, rr.type, now);
    }
    // 3. Addresses of their SRV targets.
    for (const rr of all) {
      if (rr.type !== 'A' && rr.type !== 'AAAA') continue;
      if (!this.cache.isTarget(rr.name.toLowerCase())) continue;
      const d = data(rr);
      if (ttlOf(rr) > 0 && (typeof d !== 'string' || !(rr.type === 'A' ? net.isIPv4(d) : net.isIPv6(d)))) {
        this.s.invalid++;
        continue;
      }
      this.insert(rr, rr.type, now);
    }
  }

  /** §7.3: another host's query with our question and no known answer we lack: ours is as good as sent. */
  private onQuery(packet: DecodedPacket, _rinfo: MdnsRinfo): void {
    const now = this.clock.now();
    if (this.schedule.isEcho(packet, now)) return;
    const questions = Array.isArray(packet.questions) ? packet.questions : [];
    const same = questions.some((q) => q && typeof q.name === 'string' && q.name.toLowerCase() === this.browseName && q.type === 'PTR' && !questionClass(q).qu);
    if (!same) return;
    // Each of their known answers must be one we would list (§7.1), looked up one by one.
    for (const rr of Array.isArray(packet.answers) ? packet.answers : []) {
      if (!rr || typeof rr.name !== 'string' || rr.name.toLowerCase() !== this.browseName) continue;
      const e = this.cache.get(recordKey(rr));
      if (!e || e.goodbye || (e.expiresAt - now) / 1000 <= e.ttl / 2) return;
    }
    if (this.schedule.otherAsked(now)) this.s.duplicateQueriesSuppressed++;
  }

  // -------------------------------------------------------------------------------------------
  // Cache

  private touch(e: Entry): void {
    if (this.quiet) return;
    const i = this.cache.instanceOf(e);
    if (i !== undefined) this.dirty.add(i);
    else for (const u of this.cache.usersOf(e.name)) this.dirty.add(u);
  }

  /** Into the cache, the TTL capped near the agents' own (MAX_PTR_TTL_S, MAX_RECORD_TTL_S). */
  private insert(rr: Answer, type: CachedType, now: number): void {
    const ttl = Math.min(Math.max(0, Math.floor(ttlOf(rr))), type === 'PTR' ? MAX_PTR_TTL_S : MAX_RECORD_TTL_S);
    this.cache.receive(rr, type, ttl, now, (e) => this.schedule.refreshAt(e));
  }

  // -------------------------------------------------------------------------------------------
  // The one timer: expiry and refresh (from the cache's heap), instances touched, queries.

  private tick(): void {
    if (this.closed || !this.started) return;
    const now = this.clock.now();
    try {
      const refresh: Entry[] = [];
      for (const e of this.cache.due(now)) {
        if (e.expiresAt <= now) {
          this.touch(e);
          this.cache.remove(e);
          if (e.goodbye) this.goodbyeNames.add(e.type === 'PTR' ? String(e.data).toLowerCase() : e.name);
        } else {
          // §5.2: a refresh query at 80/85/90/95 % of its TTL.
          refresh.push(e);
          e.stage++;
          e.refreshAt = this.schedule.refreshAt(e);
          this.cache.schedule(e);
        }
      }
      const resolveDue: string[] = [];
      while (this.instanceTimes.peek() <= now) {
        const [, i] = this.instanceTimes.pop()!;
        this.dirty.add(i);
        resolveDue.push(i);
      }
      this.reconcile(now);
      this.query(now, refresh, resolveDue);
    } catch {
      this.s.invalid++;
    }
    this.arm(now);
  }

  private reconcile(now: number): void {
    const events: (() => void)[] = [];
    const list = [...this.dirty];
    this.dirty.clear();
    this.quiet = true;
    try {
      for (const i of list) this.reconcileOne(i, now, events);
    } finally {
      this.quiet = false;
      this.goodbyeNames.clear();
    }
    for (const ev of events) {
      try {
        ev();
      } catch {
        this.s.listenerErrors++;
      }
    }
  }

  /** Is one instance up, changed, down, missing pieces? Its records only: O(1) in the cache's size. */
  private reconcileOne(instance: string, now: number, events: (() => void)[]): void {
    this.s.reconciled++;
    // The §10.1 second after a goodbye is over and the instance did not come back: forget it, as
    // an instance that goes down for any other reason is (below).
    const sg = this.saidGoodbye.get(instance);
    if (sg !== undefined) {
      if (this.up.has(instance)) this.saidGoodbye.delete(instance);
      else if (sg <= now) {
        this.saidGoodbye.delete(instance);
        this.resolving.done(instance);
        this.cache.dropInstance(instance);
      }
    }
    const ptr = this.cache.ptr(instance);
    let cur: UpInstance | undefined;
    let missing: string | undefined;
    let byGoodbye = false;
    if (!ptr) {
      // Garbage: no PTR points at it any more.
      this.cache.dropInstanceRecords(instance);
    } else if (ptr.goodbye || this.cache.srvsSaidGoodbye(instance)) {
      // Down now; nothing is asked for it while its records wait out their second.
      byGoodbye = true;
    } else {
      const srv = this.cache.latest(instance, 'SRV');
      const txt = this.cache.latest(instance, 'TXT');
      const target = srv ? srvTarget(srv) : '';
      const addr = srv ? (this.cache.latest(target, 'A') ?? this.cache.latest(target, 'AAAA')) : undefined;
      if (!srv || !txt || !addr) missing = `${srv ? '' : 'srv'} ${txt ? '' : 'txt'} ${target}`;
      else {
        try {
          const a = assembleAnnouncement(instance, srv.data, txt.data, addr.data, 0);
          if (this.opts.service === undefined || a.service === this.opts.service) cur = { inst: toBrowsed(a), target, parts: [ptr, srv, txt, addr] };
        } catch {
          // Not an instance we can use; nothing asked for it either.
        }
      }
    }

    // Resolution follows what is missing: progress (an SRV arrived, now the address is missing)
    // asks again at once; no progress after MAX_RESOLVE_ATTEMPTS drops the instance's PTR.
    if (missing === undefined) this.resolving.done(instance);
    else {
      const next = this.resolving.need(instance, missing, now);
      if (next === 'give-up') this.cache.dropInstance(instance);
      else if (next !== undefined) this.instanceTimes.push(next, instance);
    }

    const prev = this.up.get(instance);
    if (cur) {
      this.up.set(instance, cur);
      for (const p of cur.parts) if (!prev?.parts.includes(p)) this.cache.hold(p, 1);
      for (const p of prev?.parts ?? []) if (!cur.parts.includes(p)) this.cache.hold(p, -1);
      const c = cur;
      if (!prev) events.push(() => this.emit('up', { ...c.inst }));
      else if (instanceKey(prev.inst) !== instanceKey(c.inst)) events.push(() => this.emit('update', { ...c.inst }));
      return;
    }
    if (!prev) return;
    for (const p of prev.parts) this.cache.hold(p, -1);
    this.up.delete(instance);
    this.resolving.done(instance);
    if (byGoodbye) {
      // Its records stay for their second (§10.1): an announcement within it brings it back.
      this.saidGoodbye.set(instance, now + GOODBYE_REMOVE_MS);
      this.instanceTimes.push(now + GOODBYE_REMOVE_MS, instance);
      events.push(() => this.emit('down', prev.inst.id, 'goodbye', instance));
      return;
    }
    const reason: DownReason = this.goodbyeNames.has(instance) || this.goodbyeNames.has(prev.target) ? 'goodbye' : 'expired';
    // Whatever part went, the instance is gone: forget its PTR too rather than ask for the
    // missing part until the PTR's 75 minutes run out. Alive, it answers the next browse
    // query (its PTR is no longer a known answer) and comes back.
    this.cache.dropInstance(instance);
    events.push(() => this.emit('down', prev.inst.id, reason, instance));
  }

  private query(now: number, refresh: readonly Entry[], resolveDue: readonly string[]): void {
    const q = new QuestionList();
    // Continuous querying for the browsed name (§5.2).
    if (this.schedule.takeBrowse(now)) q.ask(this.browseName, 'PTR');
    // Refresh queries for records still cached (§5.2).
    for (const e of refresh) if (this.cache.get(e.key) === e) q.ask(e.name, e.type);
    // Missing pieces of instances (§5.2 applies the same backoff: 1 s, 2 s, 4 s… capped).
    for (const instance of resolveDue) {
      const next = this.resolving.ask(instance, now);
      if (next === undefined) continue;
      this.instanceTimes.push(next, instance);
      const srv = this.cache.latest(instance, 'SRV');
      if (!srv) q.ask(instance, 'SRV');
      if (!this.cache.latest(instance, 'TXT')) q.ask(instance, 'TXT');
      if (srv) {
        const target = srvTarget(srv);
        if (target) {
          q.ask(target, 'A');
          q.ask(target, 'AAAA');
        }
      }
    }
    const questions = q.list;
    if (questions.length === 0) return;
    const known: Answer[] = [];
    for (const x of questions) known.push(...this.cache.knownAnswers(x.name.toLowerCase(), x.type as CachedType, now));
    const packet: Packet = { type: 'query', id: 0, flags: 0, questions, answers: known };
    for (const p of splitPacket(packet)) this.send(p, now);
  }

  private send(p: Packet, now: number): void {
    const sock = this.sock;
    if (!sock) return;
    this.schedule.sent(p, now);
    try {
      sock.send(p, null, (err) => {
        if (err) this.s.errors++;
      });
      this.s.queriesSent++;
    } catch {
      this.s.errors++;
    }
  }

  private arm(now: number): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    // Instances touched from outside a tick (reject() in a listener) are looked at next.
    const at = this.dirty.size > 0 ? now : Math.min(this.schedule.nextBrowseAt, this.cache.nextTime(), this.instanceTimes.peek());
    this.timer = this.clock.setTimeout(() => this.tick(), Math.max(1, at - now));
    this.timer.unref?.();
  }
}
