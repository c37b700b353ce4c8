/**
 * MdnsBrowser: finds peerlb agents by DNS-SD browsing over mDNS (RFC 6762, RFC 6763), with a
 * record cache, on one interface. Pure JavaScript over `multicast-dns`, clock-injectable.
 *
 * - Continuous querying (RFC 6762 §5.2) for `_<service>._sub._peerlb._tcp.local` PTR (or
 *   `_peerlb._tcp.local` without a service): the first query at once, then intervals doubling
 *   from 1 s up to MAX_QUERY_INTERVAL_MS; each query lists the PTRs already known (§7.1), so
 *   responders answer only with what is new. A query another host sends with the same question
 *   and no known answer we lack counts as ours (§7.3), so many clients on a LAN share one query.
 * - Cache (mdns-cache.ts): every record with its TTL (capped near the agents' own); a record with
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
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { defaultRandom, type Random } from '../core/random.js';
import { MDNS_SERVICE_TYPE, type Health } from '../core/protocol.js';
import { ConfigError } from '../core/errors.js';
import { assembleAnnouncement, checkSrv, decodeTxt, peerlbInstanceName, subtypeName, DEFAULT_TTLS, type Announcement } from './records.js';
import { questionClass, recordKey, splitPacket, ttlOf } from '../../agent/mdns/responder.js';
import { createMdnsSocket, waitReady, type MdnsRinfo, type MdnsSocket } from './socket.js';
import { MdnsCache, TimeHeap, srvTarget, type CachedType, type Entry } from './cache.js';

/** One agent found by mDNS: what its records say, ready for the SDK's view. */
export interface BrowsedInstance {
  /** The node id (TXT `node`): the server's id in the SDK's view. */
  id: string;
  node: string;
  service: string;
  /** The SRV target's address (A preferred over AAAA). */
  host: string;
  agentPort: number;
  udpPort?: number;
  tcpPort?: number;
  weight: number;
  zone?: string;
  health: Health;
  /** 0..10, utilization in tenths. */
  loadBucket: number;
  /** `ws://host:port` of the agent (`ws://[v6]:port` for IPv6). */
  agentUrl: string;
  /** The DNS-SD instance name, e.g. `n1._peerlb._tcp.local`. */
  instance: string;
  /** When the TXT has a `sig=`: it and the bytes it must sign (sdk/core/signing.ts), for clients that verify. */
  signature?: { sig: string; data: Buffer };
}

export type DownReason = 'goodbye' | 'expired';

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

/** §5.2: the interval between the first two queries is at least one second. */
export const INITIAL_QUERY_INTERVAL_MS = 1000;
/**
 * §5.2 lets continuous querying back off to 60 minutes; peerlb caps it at 5 s. A query is the
 * only way a client recovers an announcement it missed (both copies lost, or sent before the
 * client's socket was up), and a cluster that autoscales or restarts servers must not hide a new
 * one for an hour. The cap is cheap: known-answer suppression (§7.1) means a steady-state query
 * draws no answer at all, and duplicate-question suppression (§7.3) means the clients of a LAN
 * send about one such query per interval between them.
 */
export const MAX_QUERY_INTERVAL_MS = 5000;
/** §7.3: after another host's query stands for ours, our next one waits this much (the §5.2 20–120 ms range) beyond its interval. */
export const DUPLICATE_QUERY_SLACK_MS: readonly [number, number] = [20, 120];
/** §5.2: refresh queries at 80, 85, 90 and 95 % of the TTL… */
export const REFRESH_FRACTIONS: readonly number[] = [0.8, 0.85, 0.9, 0.95];
/** …each plus a random 0–2 % of the TTL. */
export const REFRESH_JITTER = 0.02;
/** §10.1: a goodbye removes the record one second later. §10.2: so does a cache flush. */
export const GOODBYE_REMOVE_MS = 1000;
export const CACHE_FLUSH_GRACE_MS = 1000;
/** Wait this long after a partial instance appears before asking for its missing records (the rest often follows). */
export const RESOLVE_DELAY_MS = 20;
/** Questions for an incomplete instance before its PTR is dropped (about 17 s with the backoff). */
export const MAX_RESOLVE_ATTEMPTS = 5;
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
/** How long a query we sent is recognised when multicast loopback brings it back. */
const OWN_QUERY_ECHO_MS = 2000;

interface UpInstance {
  inst: BrowsedInstance;
  target: string;
  /** The records it was put together from (PTR, SRV, TXT, address): held in the cache. */
  parts: Entry[];
}

export class MdnsBrowser extends EventEmitter<MdnsBrowserEvents> {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly browseName: string;
  private readonly ownSocket: boolean;
  private sock: MdnsSocket | undefined;
  private readonly sockListeners: [string, (...args: any[]) => void][] = [];
  private started = false;
  private closed = false;
  private readonly cache: MdnsCache;
  private readonly up = new Map<string, UpInstance>();
  private readonly resolving = new Map<string, { attempt: number; nextAt: number; missing: string }>();
  /** Instances a received record or a timer touched since the last reconcile: only these are looked at. */
  private readonly dirty = new Set<string>();
  /** While set, touches are not recorded (the instance being decided is the one touched). */
  private quiet = false;
  /** When instances are due again (resolution, the second after a goodbye); stale items are skipped. */
  private readonly instanceTimes = new TimeHeap<string>();
  private readonly goodbyeNames = new Set<string>();
  /** Instances taken down by a goodbye whose records are still cached (§10.1), and when to forget them. */
  private readonly saidGoodbye = new Map<string, number>();
  /** Signature of a query we sent → echoes still expected (multicast loopback brings each back once) and until when. */
  private readonly ownQueries = new Map<string, { echoes: number; until: number }>();
  private nextBrowseAt = 0;
  private browseInterval = INITIAL_QUERY_INTERVAL_MS;
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
    this.random = opts.random ?? defaultRandom();
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
        await waitReady(sock);
      } catch (err) {
        await this.close();
        throw err;
      }
    }
    if (this.closed) return;
    this.nextBrowseAt = this.clock.now();
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
    if (sock && this.ownSocket) {
      sock.on('error', () => {});
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        t.unref?.();
        sock.destroy(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
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
    this.resolving.delete(i);
    this.saidGoodbye.delete(i);
    const q = this.quiet;
    this.quiet = true;
    this.forget(i);
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
    const all: Answer[] = [];
    for (const list of [packet.answers, packet.additionals])
      if (Array.isArray(list)) for (const rr of list) if (rr && typeof rr === 'object' && typeof rr.name === 'string' && all.length < MAX_RECORDS_PER_PACKET) all.push(rr);
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
    const sig = querySignature(packet);
    const own = this.ownQueries.get(sig);
    if (own && own.until > now && own.echoes > 0) {
      // Our own query, back through multicast loopback (another host's identical one is not).
      if (--own.echoes === 0) this.ownQueries.delete(sig);
      return;
    }
    const questions = Array.isArray(packet.questions) ? packet.questions : [];
    const same = questions.some((q) => q && typeof q.name === 'string' && q.name.toLowerCase() === this.browseName && q.type === 'PTR' && !questionClass(q).qu);
    if (!same) return;
    // Each of their known answers must be one we would list (§7.1), looked up one by one.
    for (const rr of Array.isArray(packet.answers) ? packet.answers : []) {
      if (!rr || typeof rr.name !== 'string' || rr.name.toLowerCase() !== this.browseName) continue;
      const e = this.cache.get(recordKey(rr));
      if (!e || e.goodbye || (e.expiresAt - now) / 1000 <= e.ttl / 2) return;
    }
    if (this.nextBrowseAt > now) {
      // A little later than the other host, so that it stays the one that asks and we stay
      // quiet; equal schedules would tie and both would ask every time.
      const [lo, hi] = DUPLICATE_QUERY_SLACK_MS;
      this.nextBrowseAt = now + this.browseInterval + lo + this.random.next() * (hi - lo);
      this.browseInterval = Math.min(this.browseInterval * 2, MAX_QUERY_INTERVAL_MS);
      this.s.duplicateQueriesSuppressed++;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Cache

  private touch(e: Entry): void {
    if (this.quiet) return;
    const i = this.cache.instanceOf(e);
    if (i !== undefined) this.dirty.add(i);
    else for (const u of this.cache.usersOf(e.name)) this.dirty.add(u);
  }

  private insert(rr: Answer, type: CachedType, now: number): void {
    const name = rr.name.toLowerCase();
    const ttl = Math.min(Math.max(0, Math.floor(ttlOf(rr))), type === 'PTR' ? MAX_PTR_TTL_S : MAX_RECORD_TTL_S);
    if (ttl === 0) {
      // §10.1: goodbye — keep it one more second, then drop it.
      const existing = this.cache.get(recordKey(rr));
      if (existing) {
        existing.expiresAt = Math.min(existing.expiresAt, now + GOODBYE_REMOVE_MS);
        existing.refreshAt = Infinity;
        existing.goodbye = true;
        this.cache.schedule(existing);
        this.touch(existing);
      }
      return;
    }
    // §10.2: the sender says this is the whole RRset; older members go in one second. The bit
    // belongs on unique records only; a PTR is shared (RFC 6763 §4.1), and a flush on the browsed
    // name would let one packet expire every instance's PTR: ignored there.
    if ((rr as { flush?: boolean }).flush && type !== 'PTR') {
      const key = recordKey(rr);
      for (const e of this.cache.set(name, type) ?? []) {
        if (e.key === key) continue;
        e.refreshAt = Infinity;
        if (e.receivedAt < now - CACHE_FLUSH_GRACE_MS) e.expiresAt = Math.min(e.expiresAt, now + CACHE_FLUSH_GRACE_MS);
        this.cache.schedule(e);
      }
    }
    this.cache.upsert(rr, type, ttl, now, (e) => this.refreshTime(e));
  }

  /** Drop an instance's PTR and, with it, everything only it needed (the cache drops unused addresses). */
  private forget(instance: string): void {
    const ptr = this.cache.ptr(instance);
    if (ptr) this.cache.remove(ptr);
    for (const type of ['SRV', 'TXT'] as const) for (const e of [...(this.cache.set(instance, type) ?? [])]) this.cache.remove(e);
  }

  private refreshTime(e: Entry): number {
    if (e.stage >= REFRESH_FRACTIONS.length) return Infinity;
    return e.receivedAt + e.ttl * 1000 * (REFRESH_FRACTIONS[e.stage]! + this.random.next() * REFRESH_JITTER);
  }

  /** The most recently received live record of an RRset. */
  private latest(name: string, type: CachedType): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.cache.set(name, type) ?? []) if (!best || e.receivedAt >= best.receivedAt) best = e; // ties: the later one
    return best;
  }

  /** Did every SRV of the instance say goodbye (§10.1)? */
  private srvsSaidGoodbye(instance: string): boolean {
    const srvs = this.cache.set(instance, 'SRV');
    if (!srvs || srvs.size === 0) return false;
    for (const e of srvs) if (!e.goodbye) return false;
    return true;
  }

  /** Known answers for a question (§7.1): cached records with more than half their TTL left, with the TTL that is left. */
  private knownAnswers(name: string, type: CachedType, now: number): Answer[] {
    const out: Answer[] = [];
    for (const e of this.cache.set(name, type) ?? []) {
      if (e.goodbye) continue;
      const left = (e.expiresAt - now) / 1000;
      if (left <= e.ttl / 2) continue;
      out.push({ name: e.name, type: e.type, class: 'IN', ttl: Math.floor(left), data: e.data } as Answer);
    }
    return out;
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
          e.refreshAt = this.refreshTime(e);
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
        this.resolving.delete(instance);
        this.forget(instance);
      }
    }
    const ptr = this.cache.ptr(instance);
    let cur: UpInstance | undefined;
    let missing: string | undefined;
    let byGoodbye = false;
    if (!ptr) {
      // Garbage: no PTR points at it any more.
      for (const type of ['SRV', 'TXT'] as const) for (const e of [...(this.cache.set(instance, type) ?? [])]) this.cache.remove(e);
    } else if (ptr.goodbye || this.srvsSaidGoodbye(instance)) {
      // Down now; nothing is asked for it while its records wait out their second.
      byGoodbye = true;
    } else {
      const srv = this.latest(instance, 'SRV');
      const txt = this.latest(instance, 'TXT');
      const target = srv ? srvTarget(srv) : '';
      const addr = srv ? (this.latest(target, 'A') ?? this.latest(target, 'AAAA')) : undefined;
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
    if (missing === undefined) this.resolving.delete(instance);
    else {
      const r = this.resolving.get(instance);
      if (r && r.missing === missing) {
        if (r.attempt >= MAX_RESOLVE_ATTEMPTS && r.nextAt <= now) {
          this.resolving.delete(instance);
          this.forget(instance);
        }
      } else {
        this.resolving.set(instance, { attempt: 0, nextAt: now + RESOLVE_DELAY_MS, missing });
        this.instanceTimes.push(now + RESOLVE_DELAY_MS, instance);
      }
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
    this.resolving.delete(instance);
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
    this.forget(instance);
    events.push(() => this.emit('down', prev.inst.id, reason, instance));
  }

  private query(now: number, refresh: readonly Entry[], resolveDue: readonly string[]): void {
    const questions: Question[] = [];
    const asked = new Set<string>();
    const ask = (name: string, type: CachedType) => {
      const k = `${name}|${type}`;
      if (asked.has(k)) return;
      asked.add(k);
      questions.push({ name, type, class: 'IN' });
    };
    // Continuous querying for the browsed name (§5.2).
    if (now >= this.nextBrowseAt) {
      ask(this.browseName, 'PTR');
      this.nextBrowseAt = now + this.browseInterval;
      this.browseInterval = Math.min(this.browseInterval * 2, MAX_QUERY_INTERVAL_MS);
    }
    // Refresh queries for records still cached (§5.2).
    for (const e of refresh) if (this.cache.get(e.key) === e) ask(e.name, e.type);
    // Missing pieces of instances (§5.2 applies the same backoff: 1 s, 2 s, 4 s… capped).
    for (const instance of resolveDue) {
      const r = this.resolving.get(instance);
      if (!r || r.nextAt > now) continue;
      r.attempt++;
      r.nextAt = now + Math.min(INITIAL_QUERY_INTERVAL_MS * 2 ** (r.attempt - 1), MAX_QUERY_INTERVAL_MS);
      this.instanceTimes.push(r.nextAt, instance);
      const srv = this.latest(instance, 'SRV');
      if (!srv) ask(instance, 'SRV');
      if (!this.latest(instance, 'TXT')) ask(instance, 'TXT');
      if (srv) {
        const target = srvTarget(srv);
        if (target) {
          ask(target, 'A');
          ask(target, 'AAAA');
        }
      }
    }
    if (questions.length === 0) return;
    const known: Answer[] = [];
    for (const q of questions) known.push(...this.knownAnswers(q.name.toLowerCase(), q.type as CachedType, now));
    const packet: Packet = { type: 'query', id: 0, flags: 0, questions, answers: known };
    for (const p of splitPacket(packet)) this.send(p, now);
  }

  private send(p: Packet, now: number): void {
    const sock = this.sock;
    if (!sock) return;
    const sig = querySignature(p);
    const prev = this.ownQueries.get(sig);
    this.ownQueries.set(sig, { echoes: (prev && prev.until > now ? prev.echoes : 0) + 1, until: now + OWN_QUERY_ECHO_MS });
    if (this.ownQueries.size > 64) for (const [k, o] of this.ownQueries) if (o.until <= now) this.ownQueries.delete(k);
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
    const at = this.dirty.size > 0 ? now : Math.min(this.nextBrowseAt, this.cache.nextTime(), this.instanceTimes.peek());
    this.timer = this.clock.setTimeout(() => this.tick(), Math.max(1, at - now));
    this.timer.unref?.();
  }
}

function toBrowsed(a: Announcement): BrowsedInstance {
  const b: BrowsedInstance = {
    id: a.node,
    node: a.node,
    service: a.service,
    host: a.host,
    agentPort: a.agentPort,
    weight: a.weight,
    health: a.health,
    loadBucket: a.loadBucket,
    agentUrl: net.isIPv6(a.host) ? `ws://[${a.host}]:${a.agentPort}` : `ws://${a.host}:${a.agentPort}`,
    instance: a.instance,
  };
  if (a.signature) b.signature = a.signature;
  if (a.udpPort !== undefined) b.udpPort = a.udpPort;
  if (a.tcpPort !== undefined) b.tcpPort = a.tcpPort;
  if (a.zone !== undefined) b.zone = a.zone;
  return b;
}

const instanceKey = (i: BrowsedInstance): string =>
  JSON.stringify([i.node, i.service, i.host, i.agentPort, i.udpPort, i.tcpPort, i.weight, i.zone, i.health, i.loadBucket, i.signature?.sig]);

/** Questions and known answers of a query, order-free: how a query's multicast echo is recognised. */
function querySignature(p: { questions?: unknown; answers?: unknown }): string {
  const qs = (Array.isArray(p.questions) ? p.questions : []).map((q: { name?: unknown; type?: unknown }) => `${String(q?.name).toLowerCase()}|${String(q?.type)}`).sort();
  const ks = (Array.isArray(p.answers) ? p.answers : []).map((rr: Answer) => (rr && typeof rr.name === 'string' ? recordKey(rr) : '?')).sort();
  return JSON.stringify([qs, ks]);
}
