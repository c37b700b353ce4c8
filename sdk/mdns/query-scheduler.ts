/**
 * When the browser asks (RFC 6762 §5.2, §7.3), apart from what it asks about:
 *
 * - continuous querying for the browsed name: the first query at once, then intervals doubling
 *   from 1 s up to MAX_QUERY_INTERVAL_MS; a query another host sends with the same question and
 *   no known answer we lack counts as ours (§7.3), so many clients on a LAN share one query; our
 *   own queries, brought back by multicast loopback, are recognised and not counted so;
 * - refresh queries for a cached record at 80, 85, 90 and 95 % of its TTL, plus 0–2 % (§5.2);
 * - resolution of an incomplete instance: questions for its missing records with the same
 *   backoff, and giving up after MAX_RESOLVE_ATTEMPTS without progress.
 *
 * Pure state on times the caller passes in: the browser owns the one timer.
 */
import type { Question } from 'dns-packet';
import type { Random } from '../core/random.js';
import type { CachedType, Entry } from './cache.js';
import { querySignature } from './packet.js';

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
/** Wait this long after a partial instance appears before asking for its missing records (the rest often follows). */
export const RESOLVE_DELAY_MS = 20;
/** Questions for an incomplete instance before its PTR is dropped (about 17 s with the backoff). */
export const MAX_RESOLVE_ATTEMPTS = 5;
/** How long a query we sent is recognised when multicast loopback brings it back. */
export const OWN_QUERY_ECHO_MS = 2000;
/** Own queries remembered before expired ones are swept. */
const MAX_OWN_QUERIES = 64;

/** §5.2 backoff of the questions for an incomplete instance: 1 s, 2 s, 4 s… capped. `attempt` counts from 1. */
export function resolveBackoffMs(attempt: number): number {
  return Math.min(INITIAL_QUERY_INTERVAL_MS * 2 ** (attempt - 1), MAX_QUERY_INTERVAL_MS);
}

/** Continuous querying for the browsed name, duplicate-question suppression, refresh times. */
export class QueryScheduler {
  /** When the next browse query is due. */
  nextBrowseAt = 0;
  private interval = INITIAL_QUERY_INTERVAL_MS;
  /** Signature of a query we sent → echoes still expected (multicast loopback brings each back once) and until when. */
  private readonly own = new Map<string, { echoes: number; until: number }>();

  constructor(private readonly random: Random) {}

  /** The first browse query is due at once. */
  start(now: number): void {
    this.nextBrowseAt = now;
  }

  /** Is the browse query due? If so it is taken (to be sent now) and the next one scheduled, the interval doubling. */
  takeBrowse(now: number): boolean {
    if (now < this.nextBrowseAt) return false;
    this.nextBrowseAt = now + this.interval;
    this.interval = Math.min(this.interval * 2, MAX_QUERY_INTERVAL_MS);
    return true;
  }

  /**
   * Another host asked our question and listed no known answer we lack (§7.3): our pending
   * query is as good as sent. Returns whether ours was put off (false when none was pending).
   */
  otherAsked(now: number): boolean {
    if (this.nextBrowseAt <= now) return false;
    // A little later than the other host, so that it stays the one that asks and we stay
    // quiet; equal schedules would tie and both would ask every time.
    const [lo, hi] = DUPLICATE_QUERY_SLACK_MS;
    this.nextBrowseAt = now + this.interval + lo + this.random.next() * (hi - lo);
    this.interval = Math.min(this.interval * 2, MAX_QUERY_INTERVAL_MS);
    return true;
  }

  /** A query we are sending: its multicast echo will be recognised (isEcho). */
  sent(p: { questions?: unknown; answers?: unknown }, now: number): void {
    const sig = querySignature(p);
    const prev = this.own.get(sig);
    this.own.set(sig, { echoes: (prev && prev.until > now ? prev.echoes : 0) + 1, until: now + OWN_QUERY_ECHO_MS });
    if (this.own.size > MAX_OWN_QUERIES) for (const [k, o] of this.own) if (o.until <= now) this.own.delete(k);
  }

  /** Is this received query our own, back through multicast loopback? (Another host's identical one is not: each echo counts once.) */
  isEcho(p: { questions?: unknown; answers?: unknown }, now: number): boolean {
    const sig = querySignature(p);
    const own = this.own.get(sig);
    if (!own || own.until <= now || own.echoes <= 0) return false;
    if (--own.echoes === 0) this.own.delete(sig);
    return true;
  }

  /** When a cached record's next refresh query is due (§5.2), Infinity after the last. */
  refreshAt(e: Pick<Entry, 'stage' | 'receivedAt' | 'ttl'>): number {
    if (e.stage >= REFRESH_FRACTIONS.length) return Infinity;
    return e.receivedAt + e.ttl * 1000 * (REFRESH_FRACTIONS[e.stage]! + this.random.next() * REFRESH_JITTER);
  }
}

/** What an incomplete instance lacks, and its questions with backoff. */
export class Resolutions {
  private readonly m = new Map<string, { attempt: number; nextAt: number; missing: string }>();

  /**
   * The instance lacks `missing` now. Progress (something else is missing than before) starts
   * over: returns when to ask, after RESOLVE_DELAY_MS. No progress after MAX_RESOLVE_ATTEMPTS
   * questions and their wait: 'give-up' (the tracking is dropped). Otherwise undefined.
   */
  need(instance: string, missing: string, now: number): number | 'give-up' | undefined {
    const r = this.m.get(instance);
    if (r && r.missing === missing) {
      if (r.attempt >= MAX_RESOLVE_ATTEMPTS && r.nextAt <= now) {
        this.m.delete(instance);
        return 'give-up';
      }
      return undefined;
    }
    this.m.set(instance, { attempt: 0, nextAt: now + RESOLVE_DELAY_MS, missing });
    return now + RESOLVE_DELAY_MS;
  }

  /** Nothing is missing (or the instance is gone): stop asking. */
  done(instance: string): void {
    this.m.delete(instance);
  }

  /** Is a question for the instance due now? If so it is counted, and the time of the next one is returned. */
  ask(instance: string, now: number): number | undefined {
    const r = this.m.get(instance);
    if (!r || r.nextAt > now) return undefined;
    r.attempt++;
    r.nextAt = now + resolveBackoffMs(r.attempt);
    return r.nextAt;
  }
}

/** The questions of one query, each (name, type) once. */
export class QuestionList {
  readonly list: Question[] = [];
  private readonly asked = new Set<string>();

  ask(name: string, type: CachedType): void {
    const k = `${name}|${type}`;
    if (this.asked.has(k)) return;
    this.asked.add(k);
    this.list.push({ name, type, class: 'IN' });
  }
}
