/**
 * The announcer's query responder (RFC 6762 §6, §7): answers a query for names we own with
 * answerQuestions (responder.ts), and decides how and when the answer goes:
 *
 * - legacy unicast (§6.7): a query from a port other than the link's is answered to that port,
 *   with its id, its questions and TTLs of at most 10 s;
 * - the QU bit (§5.4): by unicast, unless the record was not multicast within a quarter of its TTL;
 * - truncated queries (§7.2): answered 400–500 ms later, once the rest of the known answers came;
 * - multicast answers: unique records at once, answers with shared records after 20–120 ms (§6),
 *   aggregated into one packet, and a record never multicast twice within a second (§6): held
 *   back to the end of its second, not dropped.
 *
 * Unicast answers are capped per second, so a spoofed query cannot make us a reflector. Timers
 * on the injected clock.
 */
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';
import type { Clock, TimerHandle } from '../../sdk/core/clock.js';
import type { Random } from '../../sdk/core/random.js';
import type { OwnedRecord } from '../../sdk/mdns/records.js';
import type { MdnsRinfo } from '../../sdk/mdns/socket.js';
import { ttlOf } from '../../sdk/mdns/keys.js';
import { answerQuestions, LEGACY_UNICAST_MAX_TTL } from './responder.js';
import { MIN_MULTICAST_INTERVAL_MS, rateKey, type ResponseSender } from './sender.js';

/** §6 exempts answers to probes from the one-second rule; we still keep them 250 ms apart (a probe storm must not become a packet storm). */
export const PROBE_DEFENSE_INTERVAL_MS = 250;
/** §6: answers that may collide with other responders' (shared records) wait 20–120 ms. */
export const SHARED_ANSWER_DELAY_MS: readonly [number, number] = [20, 120];
/** §7.2: a query with the TC bit is answered after 400–500 ms, once its known answers have all arrived. */
export const TRUNCATED_QUERY_DELAY_MS: readonly [number, number] = [400, 500];
/** Unicast answers (legacy and QU) at most this many per second: a spoofed query must not make us a reflector. */
export const MAX_UNICAST_PER_SECOND = 20;
/** Questions looked at per query; the rest is ignored. */
export const MAX_QUESTIONS = 256;
/** Sources with a pending truncated query (§7.2), and known answers kept per source. */
export const MAX_TC_SOURCES = 64;
export const MAX_TC_KNOWN_ANSWERS = 2048;

export interface QueryResponderDeps {
  clock: Clock;
  random: Random;
  /** UDP port of the link: queries from any other port are legacy unicast (§6.7). */
  port: number;
  /** The records we own now. */
  records(): readonly OwnedRecord[];
  /** May we answer now (announcing or announced)? */
  live(): boolean;
  sender: ResponseSender;
  /** Counted here. */
  stats: { answered: number; suppressed: number; rateLimited: number; unicastAnswers: number };
}

interface Pending {
  answers: Map<OwnedRecord, true>;
  additionals: Map<OwnedRecord, true>;
  dueAt: number;
  probe: boolean;
  timer: TimerHandle | undefined;
}

export class QueryResponder {
  private pending: Pending | undefined;
  private readonly tcPending = new Map<string, { rinfo: MdnsRinfo; questions: Question[]; known: Answer[]; timer: TimerHandle }>();
  private unicastWindow = { start: 0, count: 0 };

  constructor(private readonly d: QueryResponderDeps) {}

  /** Drop every answer not sent yet and cancel their timers (a new phase begins). */
  reset(): void {
    this.d.clock.clearTimeout(this.pending?.timer);
    for (const p of this.tcPending.values()) this.d.clock.clearTimeout(p.timer);
    this.tcPending.clear();
    this.pending = undefined;
  }

  onQuery(packet: DecodedPacket, rinfo: MdnsRinfo): void {
    const questions = (Array.isArray(packet.questions) ? packet.questions : []).slice(0, MAX_QUESTIONS);
    const known = Array.isArray(packet.answers) ? packet.answers : [];
    const src = `${rinfo?.address}|${rinfo?.port}`;
    const legacy = rinfo?.port !== this.d.port;

    // §7.2: a TC query is followed by more known answers from the same host; wait for them.
    const waiting = this.tcPending.get(src);
    if (waiting && !legacy) {
      waiting.questions.push(...questions.slice(0, MAX_QUESTIONS - waiting.questions.length));
      waiting.known.push(...known.slice(0, MAX_TC_KNOWN_ANSWERS - waiting.known.length));
      return;
    }
    if (questions.length === 0) return;
    const truncated = ((packet.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0;
    if (truncated && !legacy) {
      if (this.tcPending.size >= MAX_TC_SOURCES) return;
      const [lo, hi] = TRUNCATED_QUERY_DELAY_MS;
      const entry = {
        rinfo: { address: rinfo.address, port: rinfo.port },
        questions: [...questions],
        known: known.slice(0, MAX_TC_KNOWN_ANSWERS),
        timer: this.d.clock.setTimeout(() => {
          this.tcPending.delete(src);
          this.answer(entry.questions, entry.known, entry.rinfo, false, packet.id);
        }, lo + this.d.random.next() * (hi - lo)),
      };
      entry.timer.unref?.();
      this.tcPending.set(src, entry);
      return;
    }
    const probe = Array.isArray(packet.authorities) && packet.authorities.length > 0;
    this.answer(questions, known, rinfo, probe, packet.id, legacy ? questions : undefined);
  }

  private answer(questions: Question[], known: Answer[], rinfo: MdnsRinfo, probe: boolean, id: number | undefined, legacyQuestions?: Question[]): void {
    if (!this.d.live()) return;
    const s = this.d.stats;
    const sender = this.d.sender;
    const plan = answerQuestions(this.d.records(), questions, known);
    s.suppressed += plan.suppressed;
    if (plan.answers.length === 0) return;
    s.answered++;

    if (legacyQuestions) {
      // §6.7 legacy unicast: to the source port, same id, questions repeated, TTL ≤ 10 s, no cache-flush bit.
      if (!this.unicastAllowed()) return;
      const cap = (r: OwnedRecord) => ({ ...r.rr, ttl: Math.min(ttlOf(r.rr), LEGACY_UNICAST_MAX_TTL), flush: false }) as Answer;
      sender.sendPacket(
        { type: 'response', id: id ?? 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, questions: legacyQuestions, answers: plan.answers.map(cap), additionals: plan.additionals.map(cap) },
        { address: rinfo.address, port: rinfo.port },
      );
      s.unicastAnswers++;
      return;
    }

    let multicast = plan.answers;
    if (plan.unicastRequested) {
      // §5.4: answer by unicast unless the record has not been multicast within a quarter of its TTL.
      const now = this.d.clock.now();
      const recent = (r: OwnedRecord) => {
        const last = sender.lastMulticast.get(rateKey(r));
        return last !== undefined && now - last < (ttlOf(r.rr) * 1000) / 4;
      };
      const unicast = plan.answers.filter(recent);
      multicast = plan.answers.filter((r) => !recent(r));
      if (unicast.length > 0 && this.unicastAllowed()) {
        sender.sendResponse(unicast, multicast.length === 0 ? plan.additionals : [], { address: rinfo.address, port: rinfo.port });
        s.unicastAnswers++;
      }
      if (multicast.length === 0) return;
    }
    // §6: unique records we alone own go at once; an answer with shared records waits 20–120 ms.
    const allUnique = multicast.every((r) => r.unique);
    const [lo, hi] = SHARED_ANSWER_DELAY_MS;
    const delay = probe || allUnique ? 0 : lo + this.d.random.next() * (hi - lo);
    this.queueMulticast(multicast, plan.additionals, delay, probe);
  }

  private unicastAllowed(): boolean {
    const now = this.d.clock.now();
    if (now - this.unicastWindow.start >= 1000) this.unicastWindow = { start: now, count: 0 };
    return this.unicastWindow.count++ < MAX_UNICAST_PER_SECOND;
  }

  /** Aggregate answers due within the same window into one packet. */
  private queueMulticast(answers: OwnedRecord[], additionals: OwnedRecord[], delayMs: number, probe: boolean): void {
    const clock = this.d.clock;
    const now = clock.now();
    const dueAt = now + delayMs;
    if (!this.pending) this.pending = { answers: new Map(), additionals: new Map(), dueAt, probe, timer: undefined };
    const p = this.pending;
    for (const r of answers) p.answers.set(r, true);
    for (const r of additionals) p.additionals.set(r, true);
    p.probe ||= probe;
    if (p.timer === undefined || dueAt < p.dueAt) {
      clock.clearTimeout(p.timer);
      p.dueAt = Math.min(p.dueAt, dueAt);
      p.timer = clock.setTimeout(() => this.flushMulticast(), Math.max(0, p.dueAt - now));
      p.timer.unref?.();
    }
  }

  private flushMulticast(): void {
    const p = this.pending;
    this.pending = undefined;
    if (!p || !this.d.live()) return;
    const now = this.d.clock.now();
    const minGap = p.probe ? PROBE_DEFENSE_INTERVAL_MS : MIN_MULTICAST_INTERVAL_MS;
    const current = new Set(this.d.records());
    const lastMulticast = this.d.sender.lastMulticast;
    /** When a record may be multicast again: now or later (§6: at most once a second per record). */
    const allowedAt = (r: OwnedRecord) => {
      const last = lastMulticast.get(rateKey(r));
      return last === undefined ? now : Math.max(now, last + minGap);
    };
    const answers: OwnedRecord[] = [];
    const deferred: OwnedRecord[] = [];
    let nextAt = Infinity;
    for (const r of p.answers.keys()) {
      if (!current.has(r)) continue;
      const at = allowedAt(r);
      if (at <= now) answers.push(r);
      else {
        // §6 says "MUST NOT multicast ... until at least one second has elapsed", not "drop": the
        // answer goes out when the second is up, so a client that asked just after another one
        // still hears it (one pending entry per record, however many queries ask meanwhile).
        deferred.push(r);
        nextAt = Math.min(nextAt, at);
        this.d.stats.rateLimited++;
      }
    }
    // Additionals too: an answer whose SRV/TXT/A went out within the second would else leave the
    // querier to ask for them in another round trip. Those due now go with the answers; the
    // others with the deferred answers, when their second is up.
    const additionals: OwnedRecord[] = [];
    const laterAdditionals: OwnedRecord[] = [];
    for (const r of p.additionals.keys()) {
      if (p.answers.has(r) || !current.has(r)) continue;
      if (allowedAt(r) <= now) additionals.push(r);
      else laterAdditionals.push(r);
    }
    if (answers.length > 0) this.d.sender.sendResponse(answers, additionals, undefined);
    if (deferred.length > 0) this.queueMulticast(deferred, laterAdditionals, nextAt - now, p.probe);
    else if (laterAdditionals.length > 0 && answers.length > 0) {
      // The answers went now without some of their additionals: those follow as answers of their
      // own when allowed, so the querier need not ask again.
      const at = Math.min(...laterAdditionals.map(allowedAt));
      this.queueMulticast(laterAdditionals, [], at - now, p.probe);
    }
  }
}
