/**
 * The MdnsBrowser's record cache (RFC 6762 §10), with what makes every received packet cost work
 * in proportion to that packet and not to the cache:
 *
 * - indexes: RRset → records, instance → its PTR, SRV target → instances that name it, so a
 *   record finds the instances it concerns without a scan;
 * - one min-heap of times (expiry, refresh), so the browser's timer looks at what is due and
 *   never walks every entry;
 * - bounds: at most `maxEntries` records and `maxPerSet` per RRset (PTRs aside). A full cache evicts, oldest
 *   first (least recently received), and it evicts records of instances that are not up before
 *   those of instances that are: new records are never refused (a flood must not lock out an
 *   agent that comes later), and a flood of pieces that never resolve cannot push out the
 *   instances already in use.
 *
 * It applies what a received record means for the cache (`receive`: a goodbye, §10.1; the
 * cache-flush bit, §10.2) and answers the browser's questions about one instance's records, but
 * it knows nothing of instances being up: the browser says which records it holds (`hold`).
 */
import type { Answer } from 'dns-packet';
import { recordKey } from './keys.js';
import { TimeHeap } from './time-heap.js';

export { TimeHeap } from './time-heap.js';

/** §10.1: a goodbye removes the record one second later. §10.2: so does a cache flush. */
export const GOODBYE_REMOVE_MS = 1000;
export const CACHE_FLUSH_GRACE_MS = 1000;

export type CachedType = 'PTR' | 'SRV' | 'TXT' | 'A' | 'AAAA';

export interface Entry {
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
  /** How many up instances were put together from it: held records are evicted only when no other can be. */
  held: number;
}

export interface CacheOptions {
  /** The browsed name (lower case): its PTRs point at instances. */
  browseName: string;
  maxEntries: number;
  maxPerSet: number;
  /** Records whose instances should be looked at again (added, changed, removed, evicted). */
  touched: (e: Entry) => void;
}

export class MdnsCache {
  /** Not held, least recently received first. */
  private readonly loose = new Map<string, Entry>();
  /** Held (instances up), least recently received first. */
  private readonly kept = new Map<string, Entry>();
  private readonly bySet = new Map<string, Set<Entry>>();
  private readonly ptrs = new Map<string, Entry>();
  private readonly targetUsers = new Map<string, Map<string, number>>();
  private readonly times = new TimeHeap<Entry>();
  evicted = 0;

  constructor(private readonly o: CacheOptions) {}

  get size(): number {
    return this.loose.size + this.kept.size;
  }

  get(key: string): Entry | undefined {
    return this.loose.get(key) ?? this.kept.get(key);
  }

  set(name: string, type: CachedType): ReadonlySet<Entry> | undefined {
    return this.bySet.get(`${name}|${type}`);
  }

  /** The PTR (from the browsed name) to an instance. */
  ptr(instance: string): Entry | undefined {
    return this.ptrs.get(instance);
  }

  /** Is `name` the target of a cached SRV? */
  isTarget(name: string): boolean {
    return this.targetUsers.has(name);
  }

  /** Instances whose cached SRV names `target`. */
  usersOf(target: string): Iterable<string> {
    return this.targetUsers.get(target)?.keys() ?? [];
  }

  /** The instance a PTR / SRV / TXT record belongs to (undefined for addresses). */
  instanceOf(e: Entry): string | undefined {
    if (e.type === 'PTR') return String(e.data).toLowerCase();
    if (e.type === 'SRV' || e.type === 'TXT') return e.name;
    return undefined;
  }

  /**
   * A received record, its TTL already bounded (`ttl` 0: a goodbye). A goodbye keeps the record one
   * more second, then drops it (§10.1). A record with the cache-flush bit says it is the whole
   * RRset: older members go in one second (§10.2). The bit belongs on unique records only; a PTR
   * is shared (RFC 6763 §4.1), and a flush on the browsed name would let one packet expire every
   * instance's PTR: ignored there.
   */
  receive(rr: Answer, type: CachedType, ttl: number, now: number, refreshAt: (e: Entry) => number): void {
    if (ttl === 0) {
      const existing = this.get(recordKey(rr));
      if (existing) {
        existing.expiresAt = Math.min(existing.expiresAt, now + GOODBYE_REMOVE_MS);
        existing.refreshAt = Infinity;
        existing.goodbye = true;
        this.schedule(existing);
        this.o.touched(existing);
      }
      return;
    }
    if ((rr as { flush?: boolean }).flush && type !== 'PTR') {
      const key = recordKey(rr);
      for (const e of this.set(rr.name.toLowerCase(), type) ?? []) {
        if (e.key === key) continue;
        e.refreshAt = Infinity;
        if (e.receivedAt < now - CACHE_FLUSH_GRACE_MS) e.expiresAt = Math.min(e.expiresAt, now + CACHE_FLUSH_GRACE_MS);
        this.schedule(e);
      }
    }
    this.upsert(rr, type, ttl, now, refreshAt);
  }

  /** The most recently received live record of an RRset (ties: the later one). */
  latest(name: string, type: CachedType): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.set(name, type) ?? []) if (!best || e.receivedAt >= best.receivedAt) best = e;
    return best;
  }

  /** Did every SRV of the instance say goodbye (§10.1)? */
  srvsSaidGoodbye(instance: string): boolean {
    const srvs = this.set(instance, 'SRV');
    if (!srvs || srvs.size === 0) return false;
    for (const e of srvs) if (!e.goodbye) return false;
    return true;
  }

  /** Known answers for a question (§7.1): cached records with more than half their TTL left, with the TTL that is left. */
  knownAnswers(name: string, type: CachedType, now: number): Answer[] {
    const out: Answer[] = [];
    for (const e of this.set(name, type) ?? []) {
      if (e.goodbye) continue;
      const left = (e.expiresAt - now) / 1000;
      if (left <= e.ttl / 2) continue;
      out.push({ name: e.name, type: e.type, class: 'IN', ttl: Math.floor(left), data: e.data } as Answer);
    }
    return out;
  }

  /** Drop an instance's SRV and TXT records (addresses only they named go with them). */
  dropInstanceRecords(instance: string): void {
    for (const type of ['SRV', 'TXT'] as const) for (const e of [...(this.set(instance, type) ?? [])]) this.remove(e);
  }

  /** Drop an instance's PTR and, with it, everything only it needed. */
  dropInstance(instance: string): void {
    const ptr = this.ptr(instance);
    if (ptr) this.remove(ptr);
    this.dropInstanceRecords(instance);
  }

  /** A record's new or renewed copy, with `ttl` already bounded. Returns the entry. */
  upsert(rr: Answer, type: CachedType, ttl: number, now: number, refreshAt: (e: Entry) => number): Entry {
    const name = rr.name.toLowerCase();
    const key = recordKey(rr);
    const data = (rr as { data?: unknown }).data;
    const existing = this.get(key);
    if (existing) {
      existing.data = data;
      existing.ttl = ttl;
      existing.receivedAt = now;
      existing.expiresAt = now + ttl * 1000;
      existing.goodbye = false;
      existing.stage = 0;
      existing.refreshAt = refreshAt(existing);
      // Most recently received: last in its order.
      const order = existing.held > 0 ? this.kept : this.loose;
      order.delete(key);
      order.set(key, existing);
      this.schedule(existing);
      this.o.touched(existing);
      return existing;
    }
    const set = `${name}|${type}`;
    let s = this.bySet.get(set);
    if (s && s.size >= this.o.maxPerSet && type !== 'PTR') {
      // A unique RRset holds a few records (an address or two, a changing TXT); more is a flood.
      // (The PTRs of the browsed name are the list of instances: the cache's cap bounds them.)
      let oldest: Entry | undefined;
      for (const x of s) if (!oldest || x.receivedAt < oldest.receivedAt) oldest = x;
      if (oldest) this.evict(oldest);
      s = this.bySet.get(set);
    }
    while (this.size >= this.o.maxEntries) {
      const victim = first(this.loose) ?? first(this.kept);
      if (!victim) break;
      this.evict(victim);
    }
    const e: Entry = { key, set, name, type, data, ttl, receivedAt: now, expiresAt: now + ttl * 1000, refreshAt: Infinity, stage: 0, goodbye: false, held: 0 };
    e.refreshAt = refreshAt(e);
    this.loose.set(key, e);
    if (!s) this.bySet.set(set, (s = new Set()));
    s.add(e);
    if (type === 'PTR') this.ptrs.set(String(data).toLowerCase(), e);
    if (type === 'SRV') this.addUser(e);
    this.schedule(e);
    this.o.touched(e);
    return e;
  }

  /** New expiry or refresh time of an entry: put it on the heap (an older item for it goes stale). */
  schedule(e: Entry): void {
    this.times.push(Math.min(e.expiresAt, e.refreshAt), e);
    // Stale items pile up when one record is renewed many times within its TTL: rebuild then.
    if (this.times.size > 4 * this.size + 1024) {
      this.times.clear();
      for (const x of this.loose.values()) this.times.push(Math.min(x.expiresAt, x.refreshAt), x);
      for (const x of this.kept.values()) this.times.push(Math.min(x.expiresAt, x.refreshAt), x);
    }
  }

  /** The earliest expiry or refresh time (Infinity when none). Skips stale items. */
  nextTime(): number {
    for (;;) {
      const at = this.times.peek();
      if (at === Infinity) return at;
      const e = this.times.peekValue()!;
      if (this.live(e) && Math.min(e.expiresAt, e.refreshAt) === at) return at;
      this.times.pop();
    }
  }

  /** Entries whose expiry or refresh time has come, each once, earliest first. */
  due(now: number): Entry[] {
    const out: Entry[] = [];
    const seen = new Set<Entry>();
    while (this.times.peek() <= now) {
      const [at, e] = this.times.pop()!;
      if (!this.live(e) || Math.min(e.expiresAt, e.refreshAt) !== at || seen.has(e)) continue;
      seen.add(e);
      out.push(e);
    }
    return out;
  }

  remove(e: Entry): void {
    if (!this.live(e)) return;
    (e.held > 0 ? this.kept : this.loose).delete(e.key);
    const s = this.bySet.get(e.set);
    s?.delete(e);
    if (s && s.size === 0) this.bySet.delete(e.set);
    if (e.type === 'PTR') {
      const i = String(e.data).toLowerCase();
      if (this.ptrs.get(i) === e) this.ptrs.delete(i);
    }
    if (e.type === 'SRV') this.dropUser(e);
  }

  /** An instance that is up was put together from this record (+1), or is no longer (-1). */
  hold(e: Entry, delta: 1 | -1): void {
    if (!this.live(e)) return;
    const was = e.held > 0;
    e.held = Math.max(0, e.held + delta);
    if (was === e.held > 0) return;
    (was ? this.kept : this.loose).delete(e.key);
    (was ? this.loose : this.kept).set(e.key, e);
  }

  private evict(e: Entry): void {
    this.evicted++;
    // The instances it concerns must be looked at before it goes (an address: through its SRVs).
    this.o.touched(e);
    this.remove(e);
  }

  private live(e: Entry): boolean {
    return (e.held > 0 ? this.kept : this.loose).get(e.key) === e;
  }

  private addUser(srv: Entry): void {
    const t = srvTarget(srv);
    if (!t) return;
    let m = this.targetUsers.get(t);
    if (!m) this.targetUsers.set(t, (m = new Map()));
    m.set(srv.name, (m.get(srv.name) ?? 0) + 1);
  }

  private dropUser(srv: Entry): void {
    const t = srvTarget(srv);
    if (!t) return;
    const m = this.targetUsers.get(t);
    if (!m) return;
    const n = (m.get(srv.name) ?? 0) - 1;
    if (n > 0) m.set(srv.name, n);
    else m.delete(srv.name);
    if (m.size > 0) return;
    // No SRV names this host any more: its addresses are garbage.
    this.targetUsers.delete(t);
    for (const type of ['A', 'AAAA'] as const) for (const a of [...(this.bySet.get(`${t}|${type}`) ?? [])]) this.remove(a);
  }
}

/** The lower-cased target of an SRV entry ('' when it has none). */
export function srvTarget(e: Entry): string {
  const t = (e.data as { target?: unknown } | undefined)?.target;
  return typeof t === 'string' ? t.toLowerCase() : '';
}

function first<K, V>(m: Map<K, V>): V | undefined {
  for (const v of m.values()) return v;
  return undefined;
}
