/**
 * MdnsAnnouncer: the agent's mDNS/DNS-SD responder (RFC 6762, RFC 6763), in pure JavaScript over
 * `multicast-dns`. The RFC phases are an explicit state:
 *
 *   idle ─start()→ probing ─claimed→ announcing ─2nd announcement→ announced ─stop()→ stopped
 *                    ↑  └─conflict: rename `node (2)`, probe again        │
 *                    └──────────── conflict seen while announced (§9) ───┘
 *
 * - probing (§8.1): see prober.ts.
 * - announcing (§8.3): every record, twice, one second apart; queries are answered already.
 * - announced: answers queries for every name it owns (query-responder.ts: ANY included, the §9
 *   enumeration, known-answer suppression, additionals, §6 delays and rate limit, unicast).
 * - update(): changed records are re-announced twice (§8.4), each at most once a second (§6);
 *   new names (another node, service, host name or port kind) are goodbye'd and probed again.
 *   One that changes nothing on the wire builds and signs nothing. The load bucket has
 *   hysteresis and an interval of its own (load-bucket.ts).
 * - stop(): one goodbye packet, every record with TTL 0 (§10.1).
 *
 * Sending (cache-flush bits, our own records' echoes) is sender.ts. Nothing received can crash
 * it: undecodable packets ('warning'), socket errors ('error') and packets that throw in a
 * handler are counted in stats().
 */
import { EventEmitter } from 'node:events';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { systemClock, type Clock, type TimerHandle } from '../../sdk/core/clock.js';
import { defaultRandom, type Random } from '../../sdk/core/random.js';
import { ConfigError } from '../../sdk/core/errors.js';
import { buildRecords, checkAnnounceInfo, goodbyes, DEFAULT_TTLS, type TxtSigner, type AnnounceInfo, type OwnedRecord, type RecordNames, type RecordSet, type Ttls } from '../../sdk/mdns/records.js';
import { recordKey } from '../../sdk/mdns/keys.js';
import { MDNS_PORT } from '../../sdk/mdns/packet.js';
import { closeSocket, createMdnsSocket, waitReady, type MdnsRinfo, type MdnsSocket } from '../../sdk/mdns/socket.js';
import { findConflicts } from './responder.js';
import { Prober, type ProbeOutcome } from './prober.js';
import { isUtilization, loadBucketOf, loadChangeWait, nextLoadBucket, wireKey, withBucket } from './load-bucket.js';
import { QueryResponder } from './query-responder.js';
import { GOODBYE_SEND_TIMEOUT_MS, MIN_MULTICAST_INTERVAL_MS, ResponseSender, rateKey } from './sender.js';

export {
  MAX_QUESTIONS,
  MAX_TC_KNOWN_ANSWERS,
  MAX_TC_SOURCES,
  MAX_UNICAST_PER_SECOND,
  PROBE_DEFENSE_INTERVAL_MS,
  SHARED_ANSWER_DELAY_MS,
  TRUNCATED_QUERY_DELAY_MS,
} from './query-responder.js';
export { GOODBYE_SEND_TIMEOUT_MS, MIN_MULTICAST_INTERVAL_MS, OWN_ECHO_MS } from './sender.js';
export type { AnnounceInfo, Ttls } from '../../sdk/mdns/records.js';

export enum AnnouncerState {
  Idle = 'idle',
  Probing = 'probing',
  Announcing = 'announcing',
  Announced = 'announced',
  Stopped = 'stopped',
}

/** §8.3: "at least two unsolicited responses". */
export const ANNOUNCE_COUNT = 2;
/** §8.3: "one second apart". */
export const ANNOUNCE_INTERVAL_MS = 1000;
/** §8.1: after 15 conflicts within 10 s, wait at least 5 s before each further probe. */
export const CONFLICT_RATE = { count: 15, windowMs: 10_000, backoffMs: 5000 } as const;
/** Give up claiming a name after this many renames (`node (2)` … `node (100)`). */
export const MAX_RENAMES = 100;

export interface MdnsAnnouncerOptions {
  info: AnnounceInfo;
  /** IPv4 address of the one interface to announce on (e.g. '127.0.0.1'); required, never "all". */
  interface: string;
  /** An existing multicast-dns instance (tests); the announcer then neither waits for it nor destroys it. */
  mdns?: MdnsSocket;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: a fresh xorshift source. */
  random?: Random;
  /** Default: DEFAULT_TTLS (records.ts: 20 s for SRV/TXT/A/AAAA, 4500 s for PTR). */
  ttls?: Ttls;
  /** UDP port of the link (default 5353, RFC 6762 §3); queries from any other port are legacy unicast (§6.7). For tests. */
  port?: number;
  /** Sign the TXT data (`sig=`) with the cluster's signing key (sdk/core/signing.ts). */
  sign?: TxtSigner;
}

export interface AnnouncerStats {
  packetsIn: number;
  queriesIn: number;
  responsesIn: number;
  packetsOut: number;
  /** Queries this announcer answered (at least one record sent). */
  answered: number;
  /** Answers left out because the querier listed them as known (§7.1). */
  suppressed: number;
  /** Answers held back (deferred to the end of the second) because the record went out less than a second before (§6). */
  rateLimited: number;
  unicastAnswers: number;
  /** Packets multicast-dns could not decode ('warning' events). */
  malformed: number;
  /** Decoded packets that made a handler throw (caught). */
  invalid: number;
  /** Socket errors and failed sends. */
  errors: number;
  conflicts: number;
  renames: number;
  tiebreaksLost: number;
}

export interface MdnsAnnouncerEvents {
  state: [state: AnnouncerState];
  rename: [names: RecordNames, previous: RecordNames];
  conflict: [records: Answer[]];
}

export class MdnsAnnouncer extends EventEmitter<MdnsAnnouncerEvents> {
  private info: AnnounceInfo;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly ttls: Ttls;
  private rename = 1;
  private set: RecordSet;
  private _state = AnnouncerState.Idle;
  private sock: MdnsSocket | undefined;
  private readonly ownSocket: boolean;
  private prober: Prober | undefined;
  private probeTimer: TimerHandle | undefined;
  private announceTimer: TimerHandle | undefined;
  private announcementsSent = 0;
  private dirtyTimer: TimerHandle | undefined;
  /** rate key → announcements still owed (§8.4: a change is announced twice). */
  private readonly dirty = new Map<string, number>();
  private readonly sender: ResponseSender;
  private readonly responder: QueryResponder;
  private conflictTimes: number[] = [];
  /** The last info given; when the load bucket last changed on the wire; a held-back change's timer. */
  private latest: AnnounceInfo;
  private loadChangedAt = -Infinity;
  private loadTimer: TimerHandle | undefined;
  private startWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly sockListeners: [string, (...args: any[]) => void][] = [];
  private readonly s: AnnouncerStats = {
    packetsIn: 0,
    queriesIn: 0,
    responsesIn: 0,
    packetsOut: 0,
    answered: 0,
    suppressed: 0,
    rateLimited: 0,
    unicastAnswers: 0,
    malformed: 0,
    invalid: 0,
    errors: 0,
    conflicts: 0,
    renames: 0,
    tiebreaksLost: 0,
  };

  constructor(private readonly opts: MdnsAnnouncerOptions) {
    super();
    if (typeof opts.interface !== 'string' || opts.interface.length === 0) throw new ConfigError('MdnsAnnouncer: interface (an IPv4 address) is required');
    this.latest = { ...opts.info };
    this.info = withBucket(opts.info, isUtilization(opts.info.utilization) ? loadBucketOf(opts.info.utilization) : opts.info.loadBucket);
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? defaultRandom();
    this.ttls = opts.ttls ?? DEFAULT_TTLS;
    this.ownSocket = opts.mdns === undefined;
    // Validate now, so a wrong node, service or host fails at construction, not on the wire.
    this.set = buildRecords(this.info, { rename: this.rename, ttls: this.ttls, sign: this.opts.sign });
    this.sender = new ResponseSender({ clock: this.clock, socket: () => this.sock, stats: this.s });
    this.responder = new QueryResponder({
      clock: this.clock,
      random: this.random,
      port: opts.port ?? MDNS_PORT,
      records: () => this.set.records,
      live: () => this._state === AnnouncerState.Announcing || this._state === AnnouncerState.Announced,
      sender: this.sender,
      stats: this.s,
    });
  }

  get state(): AnnouncerState {
    return this._state;
  }

  /** The names in use (they change when a conflict forces a rename). */
  names(): RecordNames {
    return { ...this.set.names };
  }

  /** The records this announcer owns now, as they go on the wire (without cache-flush bits). */
  records(): Answer[] {
    return this.set.records.map((r) => ({ ...r.rr }) as Answer);
  }

  stats(): AnnouncerStats {
    return { ...this.s, tiebreaksLost: this.s.tiebreaksLost + (this.prober?.tiebreaksLost ?? 0) };
  }

  /**
   * Open the socket (unless one was injected), probe, and resolve once the first announcement
   * has gone out: the names in names() are then ours. Resolves at once if stop() comes first.
   */
  async start(): Promise<void> {
    if (this._state !== AnnouncerState.Idle) {
      if (this._state === AnnouncerState.Probing) return new Promise((resolve, reject) => this.startWaiters.push({ resolve, reject }));
      return;
    }
    const sock = this.opts.mdns ?? createMdnsSocket(this.opts.interface, this.opts.port ?? MDNS_PORT);
    this.sock = sock;
    this.listen(sock, 'packet', (p: DecodedPacket, rinfo: MdnsRinfo) => this.onPacket(p, rinfo));
    this.listen(sock, 'warning', () => this.s.malformed++);
    this.listen(sock, 'error', () => this.s.errors++);
    this.setState(AnnouncerState.Probing);
    const claimed = new Promise<void>((resolve, reject) => this.startWaiters.push({ resolve, reject }));
    if (this.ownSocket) {
      try {
        await waitReady(sock, undefined, this.clock);
      } catch (err) {
        await this.stop();
        throw err;
      }
      if ((this._state as AnnouncerState) !== AnnouncerState.Probing) return;
    }
    this.beginProbe();
    return claimed;
  }

  /** New data to announce. Throws (BadOptionError, PEERLB_ERR_LIMIT) before changing anything when info cannot be announced. */
  update(info: AnnounceInfo): void {
    checkAnnounceInfo(info);
    if (this._state === AnnouncerState.Stopped) return;
    this.latest = { ...info };
    info = this.withLoad(info);
    if (wireKey(info) === wireKey(this.info)) return;
    const renameFrom = info.node !== this.info.node || info.hostname !== this.info.hostname ? 1 : this.rename;
    const next = buildRecords(info, { rename: renameFrom, ttls: this.ttls, sign: this.opts.sign });
    const old = this.set;
    this.info = { ...info };
    this.rename = renameFrom;
    if (this._state === AnnouncerState.Idle) {
      this.set = next;
      return;
    }
    const uniqueNames = (s: RecordSet) =>
      [...new Set(s.records.filter((r) => r.unique).map((r) => `${r.rr.name.toLowerCase()}|${r.rr.type}`))].sort().join(',');
    if (uniqueNames(old) !== uniqueNames(next)) {
      // New names must be probed before use; the old ones are given up.
      const announced = this._state === AnnouncerState.Announcing || this._state === AnnouncerState.Announced;
      const keep = new Set(next.records.map((r) => recordKey(r.rr)));
      const gone = old.records.filter((r) => !keep.has(recordKey(r.rr)));
      this.set = next;
      this.resetPhases();
      if (announced && gone.length > 0) this.sender.sendResponse(goodbyes(gone.map((r) => r.rr)), [], undefined);
      this.setState(AnnouncerState.Probing);
      this.beginProbe();
      return;
    }
    // Same names: re-announce what changed.
    const oldKeys = new Set(old.records.map((r) => recordKey(r.rr)));
    const newKeys = new Set(next.records.map((r) => recordKey(r.rr)));
    const goneShared = old.records.filter((r) => !r.unique && !newKeys.has(recordKey(r.rr)));
    this.set = next;
    if (this._state === AnnouncerState.Probing) {
      this.prober?.setRecords(next.records.filter((r) => r.unique));
      return;
    }
    if (goneShared.length > 0) this.sender.sendResponse(goodbyes(goneShared.map((r) => r.rr)), [], undefined);
    for (const r of next.records) if (!oldKeys.has(recordKey(r.rr))) this.dirty.set(rateKey(r), ANNOUNCE_COUNT);
    if (this._state === AnnouncerState.Announced) this.flushDirty();
  }

  /** `info` with the bucket to announce (load-bucket.ts); a held-back change is looked at again by a timer. */
  private withLoad(info: AnnounceInfo): AnnounceInfo {
    const cur = this.info.loadBucket;
    const wanted = isUtilization(info.utilization) ? nextLoadBucket(cur, info.utilization) : info.loadBucket;
    if (wanted === cur) return withBucket(info, cur);
    const [now, live] = [this.clock.now(), this._state === AnnouncerState.Announcing || this._state === AnnouncerState.Announced];
    const wait = loadChangeWait(now, this.loadChangedAt);
    if (live && wait > 0 && wireKey(withBucket(info, cur)) === wireKey(this.info)) {
      this.loadTimer ??= this.clock.setTimeout(() => {
        this.loadTimer = undefined;
        this.update(this.latest);
      }, wait);
      this.loadTimer.unref?.();
      return withBucket(info, cur);
    }
    if (live) this.loadChangedAt = now;
    return withBucket(info, wanted);
  }

  /** Send goodbyes (if anything was announced), cancel every timer, close the socket if it is ours. */
  async stop(): Promise<void> {
    if (this._state === AnnouncerState.Stopped) return;
    this.clock.clearTimeout(this.loadTimer);
    this.loadTimer = undefined;
    const was = this._state;
    this.resetPhases();
    this.setState(AnnouncerState.Stopped);
    const sock = this.sock;
    if (sock && (was === AnnouncerState.Announcing || was === AnnouncerState.Announced)) {
      // §10.1: every record with TTL 0. Not rate limited: a goodbye must go out.
      await this.sender.sendAndWait(sock, {
        type: 'response',
        id: 0,
        flags: dnsPacket.AUTHORITATIVE_ANSWER,
        answers: goodbyes(this.set.records.map((r) => r.rr)),
      });
    }
    for (const [event, fn] of this.sockListeners) sock?.removeListener(event, fn);
    this.sockListeners.length = 0;
    // Keep counting late socket errors of an injected socket? No: it is the caller's again.
    if (sock && this.ownSocket) await closeSocket(sock, this.clock, GOODBYE_SEND_TIMEOUT_MS);
    for (const w of this.startWaiters.splice(0)) w.resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Phases

  private setState(s: AnnouncerState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
  }

  private resetPhases(): void {
    this.prober?.cancel();
    if (this.prober) this.s.tiebreaksLost += this.prober.tiebreaksLost;
    this.prober = undefined;
    for (const t of [this.probeTimer, this.announceTimer, this.dirtyTimer]) this.clock.clearTimeout(t);
    this.responder.reset();
    this.probeTimer = this.announceTimer = this.dirtyTimer = undefined;
    this.dirty.clear();
    this.announcementsSent = 0;
  }

  private beginProbe(delayMs?: number): void {
    this.prober?.cancel();
    if (this.prober) this.s.tiebreaksLost += this.prober.tiebreaksLost;
    const prober = new Prober({
      clock: this.clock,
      random: this.random,
      records: this.set.records.filter((r) => r.unique),
      send: (p) => this.sender.sendPacket(p, undefined),
      isOwn: (k) => this.sender.isOwn(k),
      done: (o) => this.onProbeDone(o),
    });
    this.prober = prober;
    prober.start(delayMs);
  }

  private onProbeDone(o: ProbeOutcome): void {
    if (this._state !== AnnouncerState.Probing) return;
    if (this.prober) this.s.tiebreaksLost += this.prober.tiebreaksLost;
    this.prober = undefined;
    if (o.kind === 'conflict') {
      this.s.conflicts++;
      this.emit('conflict', o.records);
      if (this.rename >= MAX_RENAMES) {
        const err = new ConfigError(`mDNS: no free name for node "${this.info.node}" after ${MAX_RENAMES} tries`);
        for (const w of this.startWaiters.splice(0)) w.reject(err);
        void this.stop();
        return;
      }
      const previous = this.set.names;
      this.rename++;
      this.s.renames++;
      this.set = buildRecords(this.info, { rename: this.rename, ttls: this.ttls, sign: this.opts.sign });
      this.emit('rename', this.names(), previous);
      this.beginProbe(this.conflictBackoff());
      return;
    }
    this.setState(AnnouncerState.Announcing);
    this.announcementsSent = 0;
    this.announce();
    for (const w of this.startWaiters.splice(0)) w.resolve();
  }

  /** §8.1 rate limit: after 15 conflicts within 10 s, 5 s between probe attempts. */
  private conflictBackoff(): number | undefined {
    const now = this.clock.now();
    this.conflictTimes = this.conflictTimes.filter((t) => now - t < CONFLICT_RATE.windowMs);
    this.conflictTimes.push(now);
    return this.conflictTimes.length >= CONFLICT_RATE.count ? CONFLICT_RATE.backoffMs : undefined;
  }

  private announce(): void {
    if (this._state !== AnnouncerState.Announcing) return;
    this.sender.sendResponse(this.set.records, [], undefined);
    for (const r of this.set.records) {
      const k = rateKey(r);
      const left = this.dirty.get(k);
      if (left !== undefined) left <= 1 ? this.dirty.delete(k) : this.dirty.set(k, left - 1);
    }
    this.announcementsSent++;
    if (this.announcementsSent < ANNOUNCE_COUNT) {
      this.announceTimer = this.clock.setTimeout(() => this.announce(), ANNOUNCE_INTERVAL_MS);
      this.announceTimer.unref?.();
    } else {
      this.setState(AnnouncerState.Announced);
      this.flushDirty();
    }
  }

  /** §8.4 with §6's rate limit: send each changed record once it has been quiet for a second. */
  private flushDirty(): void {
    this.clock.clearTimeout(this.dirtyTimer);
    this.dirtyTimer = undefined;
    if (this._state !== AnnouncerState.Announced || this.dirty.size === 0) return;
    const now = this.clock.now();
    const due: OwnedRecord[] = [];
    let nextAt = Infinity;
    for (const [key, left] of [...this.dirty]) {
      const recs = this.set.records.filter((r) => rateKey(r) === key);
      if (recs.length === 0) {
        this.dirty.delete(key);
        continue;
      }
      const last = this.sender.lastMulticast.get(key);
      if (last !== undefined && now - last < MIN_MULTICAST_INTERVAL_MS) {
        nextAt = Math.min(nextAt, last + MIN_MULTICAST_INTERVAL_MS);
        continue;
      }
      due.push(...recs);
      if (left <= 1) this.dirty.delete(key);
      else {
        this.dirty.set(key, left - 1);
        nextAt = Math.min(nextAt, now + MIN_MULTICAST_INTERVAL_MS);
      }
    }
    if (due.length > 0) this.sender.sendResponse(due, [], undefined);
    if (nextAt < Infinity) {
      this.dirtyTimer = this.clock.setTimeout(() => this.flushDirty(), Math.max(0, nextAt - now));
      this.dirtyTimer.unref?.();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  private listen(sock: MdnsSocket, event: string, fn: (...args: any[]) => void): void {
    sock.on(event, fn);
    this.sockListeners.push([event, fn]);
  }

  private onPacket(packet: DecodedPacket, rinfo: MdnsRinfo): void {
    this.s.packetsIn++;
    try {
      if (!packet || typeof packet !== 'object') throw new Error('not a packet');
      const st = this._state;
      if (st === AnnouncerState.Idle || st === AnnouncerState.Stopped) return;
      if (packet.type === 'response') {
        this.s.responsesIn++;
        if (st === AnnouncerState.Probing) this.prober?.handle(packet);
        else this.checkConflicts(packet);
      } else {
        this.s.queriesIn++;
        if (st === AnnouncerState.Probing) this.prober?.handle(packet);
        else this.responder.onQuery(packet, rinfo);
      }
    } catch {
      this.s.invalid++;
    }
  }

  /** §9: another host's response holding a different record under one of our unique names. */
  private checkConflicts(packet: DecodedPacket): void {
    const received = [...(Array.isArray(packet.answers) ? packet.answers : []), ...(Array.isArray(packet.additionals) ? packet.additionals : [])];
    const conflicts = findConflicts(this.set.records, received, (k) => this.sender.isOwn(k));
    if (conflicts.length === 0) return;
    this.s.conflicts++;
    this.emit('conflict', conflicts);
    // "The host MUST immediately reset its conflicted records to probing state": a host that
    // still holds the name will defend it against our probes, and we rename then.
    this.resetPhases();
    this.setState(AnnouncerState.Probing);
    this.beginProbe(this.conflictBackoff());
  }
}
