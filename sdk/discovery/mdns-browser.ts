/**
 * MdnsBrowser: finds peerlb agents by DNS-SD browsing over mDNS (RFC 6762, RFC 6763), with a
 * record cache, on one interface. Pure JavaScript over `multicast-dns`, clock-injectable.
 *
 * - Continuous querying (RFC 6762 §5.2) for `_<service>._sub._peerlb._tcp.local` PTR (or
 *   `_peerlb._tcp.local` without a service): the first query at once, then intervals doubling
 *   from 1 s up to MAX_QUERY_INTERVAL_MS; each query lists the PTRs already known (§7.1), so
 *   responders answer only with what is new. A query another host sends with the same question
 *   and no known answer we lack counts as ours (§7.3), so many clients on a LAN share one query.
 * - Cache: every record with its TTL; a record with the cache-flush bit replaces older records of
 *   its RRset after one second (§10.2); a goodbye (TTL 0) removes its record after one second
 *   (§10.1); refresh queries go out at 80, 85, 90 and 95 % of a record's TTL, plus 0–2 % (§5.2),
 *   and a record no one refreshed expires.
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
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { defaultRandom, type Random } from '../random.js';
import { MDNS_SERVICE_TYPE, type Health } from '../protocol.js';
import { ConfigError } from '../errors.js';
import { assembleAnnouncement, checkSrv, decodeTxt, peerlbInstanceName, subtypeName, type Announcement } from '../../agent/mdns/records.js';
import { questionClass, recordKey, splitPacket, ttlOf } from '../../agent/mdns/responder.js';
import { createMdnsSocket, waitReady, type MdnsRinfo, type MdnsSocket } from '../../agent/mdns/socket.js';

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
  /** When the TXT has a `sig=`: it and the bytes it must sign (sdk/signing.ts), for clients that verify. */
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
  /** Records not cached because the cache was full. */
  dropped: number;
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
/** Bounds: cache entries, records looked at per packet, TTL honoured (s). */
export const MAX_CACHE_ENTRIES = 8192;
export const MAX_RECORDS_PER_PACKET = 512;
export const MAX_TTL_S = 86_400;
/** How long a query we sent is recognised when multicast loopback brings it back. */
const OWN_QUERY_ECHO_MS = 2000;

type CachedType = 'PTR' | 'SRV' | 'TXT' | 'A' | 'AAAA';

interface Entry {
  key: string;
  set: string;
  name: string;
  type: CachedType;
  data: unknown;
  ttl: number;
  receivedAt: number;
  expiresAt: number;
  refreshAt: number;
  stage: number;
  goodbye: boolean;
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
  private readonly entries = new Map<string, Entry>();
  private readonly bySet = new Map<string, Set<Entry>>();
  private readonly up = new Map<string, { inst: BrowsedInstance; target: string }>();
  private readonly resolving = new Map<string, { attempt: number; nextAt: number; missing: string }>();
  private readonly goodbyeNames = new Set<string>();
  /** Instances taken down by a goodbye whose records are still cached (§10.1), and when to forget them. */
  private readonly saidGoodbye = new Map<string, number>();
  /** Signature of a query we sent → echoes still expected (multicast loopback brings each back once) and until when. */
  private readonly ownQueries = new Map<string, { echoes: number; until: number }>();
  private nextBrowseAt = 0;
  private browseInterval = INITIAL_QUERY_INTERVAL_MS;
  private timer: TimerHandle | undefined;
  private readonly s: BrowserStats = {
    packetsIn: 0,
    responsesIn: 0,
    queriesIn: 0,
    queriesSent: 0,
    duplicateQueriesSuppressed: 0,
    malformed: 0,
    invalid: 0,
    dropped: 0,
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

  stats(): BrowserStats & { cacheEntries: number } {
    return { ...this.s, cacheEntries: this.entries.size };
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
    const instances = this.pointedInstances();
    for (const rr of all) {
      if (rr.type !== 'SRV' && rr.type !== 'TXT') continue;
      if (!instances.has(rr.name.toLowerCase())) continue;
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
    const targets = this.srvTargets(instances);
    for (const rr of all) {
      if (rr.type !== 'A' && rr.type !== 'AAAA') continue;
      if (!targets.has(rr.name.toLowerCase())) continue;
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
    const ours = new Set(this.knownAnswers(this.browseName, 'PTR', now).map((rr) => recordKey(rr)));
    const theirs = (Array.isArray(packet.answers) ? packet.answers : []).filter((rr) => rr && typeof rr.name === 'string' && rr.name.toLowerCase() === this.browseName);
    if (!theirs.every((rr) => ours.has(recordKey(rr)))) return;
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

  private insert(rr: Answer, type: CachedType, now: number): void {
    const name = rr.name.toLowerCase();
    const key = recordKey(rr);
    const set = `${name}|${type}`;
    const ttl = Math.min(Math.max(0, Math.floor(ttlOf(rr))), MAX_TTL_S);
    const existing = this.entries.get(key);
    if (ttl === 0) {
      // §10.1: goodbye — keep it one more second, then drop it.
      if (existing) {
        existing.expiresAt = Math.min(existing.expiresAt, now + GOODBYE_REMOVE_MS);
        existing.refreshAt = Infinity;
        existing.goodbye = true;
      }
      return;
    }
    if ((rr as { flush?: boolean }).flush) {
      // §10.2: the sender says this is the whole RRset; older members go in one second.
      for (const e of this.bySet.get(set) ?? []) {
        if (e.key === key) continue;
        e.refreshAt = Infinity;
        if (e.receivedAt < now - CACHE_FLUSH_GRACE_MS) e.expiresAt = Math.min(e.expiresAt, now + CACHE_FLUSH_GRACE_MS);
      }
    }
    const data = (rr as { data?: unknown }).data;
    if (existing) {
      existing.data = data;
      existing.ttl = ttl;
      existing.receivedAt = now;
      existing.expiresAt = now + ttl * 1000;
      existing.goodbye = false;
      existing.stage = 0;
      existing.refreshAt = this.refreshTime(existing);
      return;
    }
    if (this.entries.size >= MAX_CACHE_ENTRIES) {
      this.s.dropped++;
      return;
    }
    const e: Entry = { key, set, name, type, data, ttl, receivedAt: now, expiresAt: now + ttl * 1000, refreshAt: Infinity, stage: 0, goodbye: false };
    e.refreshAt = this.refreshTime(e);
    this.entries.set(key, e);
    let s = this.bySet.get(set);
    if (!s) this.bySet.set(set, (s = new Set()));
    s.add(e);
  }

  private remove(e: Entry): void {
    this.entries.delete(e.key);
    const s = this.bySet.get(e.set);
    s?.delete(e);
    if (s && s.size === 0) this.bySet.delete(e.set);
  }

  /** Drop an instance's PTR and, with it, everything only it needed. */
  private forget(instance: string): void {
    for (const e of [...(this.bySet.get(`${this.browseName}|PTR`) ?? [])]) if (String(e.data).toLowerCase() === instance) this.remove(e);
    const targets = this.srvTargets(this.pointedInstances());
    for (const type of ['SRV', 'TXT'] as const)
      for (const e of [...(this.bySet.get(`${instance}|${type}`) ?? [])]) {
        this.remove(e);
        if (type === 'SRV') {
          const t = String((e.data as { target?: unknown })?.target ?? '').toLowerCase();
          if (!targets.has(t)) for (const at of ['A', 'AAAA'] as const) for (const x of [...(this.bySet.get(`${t}|${at}`) ?? [])]) this.remove(x);
        }
      }
  }

  private refreshTime(e: Entry): number {
    if (e.stage >= REFRESH_FRACTIONS.length) return Infinity;
    return e.receivedAt + e.ttl * 1000 * (REFRESH_FRACTIONS[e.stage]! + this.random.next() * REFRESH_JITTER);
  }

  /** The most recently received live record of an RRset. */
  private latest(name: string, type: CachedType): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.bySet.get(`${name}|${type}`) ?? []) if (!best || e.receivedAt > best.receivedAt) best = e;
    return best;
  }

  /** Instances a cached PTR points at; with `live`, only through a PTR that did not say goodbye. */
  private pointedInstances(live = false): Set<string> {
    const out = new Set<string>();
    for (const e of this.bySet.get(`${this.browseName}|PTR`) ?? []) if (!live || !e.goodbye) out.add(String(e.data).toLowerCase());
    return out;
  }

  /** Did the instance say goodbye: every PTR to it, or every SRV of it, has TTL 0 (§10.1)? */
  private goneByGoodbye(instance: string, live: Set<string>): boolean {
    if (!live.has(instance)) return true;
    const srvs = this.bySet.get(`${instance}|SRV`);
    if (!srvs || srvs.size === 0) return false;
    for (const e of srvs) if (!e.goodbye) return false;
    return true;
  }

  private srvTargets(instances: Set<string>): Set<string> {
    const out = new Set<string>();
    for (const i of instances)
      for (const e of this.bySet.get(`${i}|SRV`) ?? []) {
        const t = (e.data as { target?: unknown })?.target;
        if (typeof t === 'string') out.add(t.toLowerCase());
      }
    return out;
  }

  /** Known answers for a question (§7.1): cached records with more than half their TTL left, with the TTL that is left. */
  private knownAnswers(name: string, type: CachedType, now: number): Answer[] {
    const out: Answer[] = [];
    for (const e of this.bySet.get(`${name}|${type}`) ?? []) {
      if (e.goodbye) continue;
      const left = (e.expiresAt - now) / 1000;
      if (left <= e.ttl / 2) continue;
      out.push({ name: e.name, type: e.type, class: 'IN', ttl: Math.floor(left), data: e.data } as Answer);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // The one timer: expiry, instance changes, queries.

  private tick(): void {
    if (this.closed || !this.started) return;
    const now = this.clock.now();
    try {
      this.sweep(now);
      this.reconcile(now);
      this.query(now);
    } catch {
      this.s.invalid++;
    }
    this.arm(now);
  }

  private sweep(now: number): void {
    for (const e of [...this.entries.values()]) {
      if (e.expiresAt > now) continue;
      this.remove(e);
      if (e.goodbye) this.goodbyeNames.add(e.type === 'PTR' ? String(e.data).toLowerCase() : e.name);
    }
  }

  private reconcile(now: number): void {
    // The §10.1 second after a goodbye is over and the instance did not come back: forget it, as
    // an instance that goes down for any other reason is (below).
    for (const [instance, at] of this.saidGoodbye) {
      if (this.up.has(instance)) this.saidGoodbye.delete(instance);
      else if (at <= now) {
        this.saidGoodbye.delete(instance);
        this.resolving.delete(instance);
        this.forget(instance);
      }
    }
    const current = new Map<string, { inst: BrowsedInstance; target: string }>();
    const pointed = this.pointedInstances();
    const live = this.pointedInstances(true);
    const needed = new Map<string, string>();
    const byGoodbye = new Set<string>();
    for (const instance of pointed) {
      if (this.goneByGoodbye(instance, live)) {
        // Down now; nothing is asked for it while its records wait out their second.
        byGoodbye.add(instance);
        continue;
      }
      const srv = this.latest(instance, 'SRV');
      const txt = this.latest(instance, 'TXT');
      const target = srv ? String((srv.data as { target?: unknown })?.target ?? '').toLowerCase() : '';
      const addr = srv ? (this.latest(target, 'A') ?? this.latest(target, 'AAAA')) : undefined;
      if (!srv || !txt || !addr) {
        needed.set(instance, `${srv ? '' : 'srv'} ${txt ? '' : 'txt'} ${target}`);
        continue;
      }
      let a: Announcement;
      try {
        a = assembleAnnouncement(instance, srv.data, txt.data, addr.data, 0);
      } catch {
        continue;
      }
      if (this.opts.service !== undefined && a.service !== this.opts.service) continue;
      current.set(instance, { inst: toBrowsed(a), target });
    }

    // Garbage: records no pointed instance needs any more.
    const targets = this.srvTargets(pointed);
    for (const e of [...this.entries.values()]) {
      if ((e.type === 'SRV' || e.type === 'TXT') && !pointed.has(e.name)) this.remove(e);
      else if ((e.type === 'A' || e.type === 'AAAA') && !targets.has(e.name)) this.remove(e);
    }
    // Resolution follows what is missing: progress (an SRV arrived, now the address is missing)
    // asks again at once; no progress after MAX_RESOLVE_ATTEMPTS drops the instance's PTR.
    for (const i of [...this.resolving.keys()]) if (!needed.has(i)) this.resolving.delete(i);
    for (const [i, missing] of needed) {
      const r = this.resolving.get(i);
      if (r && r.missing === missing) {
        if (r.attempt >= MAX_RESOLVE_ATTEMPTS && r.nextAt <= now) {
          this.resolving.delete(i);
          this.forget(i);
        }
        continue;
      }
      this.resolving.set(i, { attempt: 0, nextAt: now + RESOLVE_DELAY_MS, missing });
    }

    const events: (() => void)[] = [];
    for (const [instance, cur] of current) {
      const prev = this.up.get(instance);
      this.up.set(instance, cur);
      if (!prev) events.push(() => this.emit('up', { ...cur.inst }));
      else if (instanceKey(prev.inst) !== instanceKey(cur.inst)) events.push(() => this.emit('update', { ...cur.inst }));
    }
    for (const [instance, prev] of [...this.up]) {
      if (current.has(instance)) continue;
      this.up.delete(instance);
      this.resolving.delete(instance);
      if (byGoodbye.has(instance)) {
        // Its records stay for their second (§10.1): an announcement within it brings it back.
        this.saidGoodbye.set(instance, now + GOODBYE_REMOVE_MS);
        events.push(() => this.emit('down', prev.inst.id, 'goodbye', instance));
        continue;
      }
      const reason: DownReason = this.goodbyeNames.has(instance) || this.goodbyeNames.has(prev.target) ? 'goodbye' : 'expired';
      // Whatever part went, the instance is gone: forget its PTR too rather than ask for the
      // missing part until the PTR's 75 minutes run out. Alive, it answers the next browse
      // query (its PTR is no longer a known answer) and comes back.
      this.forget(instance);
      events.push(() => this.emit('down', prev.inst.id, reason, instance));
    }
    this.goodbyeNames.clear();
    for (const ev of events) {
      try {
        ev();
      } catch {
        this.s.listenerErrors++;
      }
    }
  }

  private query(now: number): void {
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
    // Refresh queries for records of live instances at 80/85/90/95 % of their TTL (§5.2).
    for (const e of this.entries.values()) {
      if (e.refreshAt > now) continue;
      ask(e.name, e.type);
      e.stage++;
      e.refreshAt = this.refreshTime(e);
    }
    // Missing pieces of instances (§5.2 applies the same backoff: 1 s, 2 s, 4 s… capped).
    for (const [instance, r] of this.resolving) {
      if (r.nextAt > now) continue;
      r.attempt++;
      r.nextAt = now + Math.min(INITIAL_QUERY_INTERVAL_MS * 2 ** (r.attempt - 1), MAX_QUERY_INTERVAL_MS);
      const srv = this.latest(instance, 'SRV');
      if (!srv) ask(instance, 'SRV');
      if (!this.latest(instance, 'TXT')) ask(instance, 'TXT');
      if (srv) {
        const target = String((srv.data as { target?: unknown })?.target ?? '').toLowerCase();
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
    let at = this.nextBrowseAt;
    for (const e of this.entries.values()) at = Math.min(at, e.expiresAt, e.refreshAt);
    for (const r of this.resolving.values()) at = Math.min(at, r.nextAt);
    for (const t of this.saidGoodbye.values()) at = Math.min(at, t);
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
