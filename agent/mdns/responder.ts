/**
 * Pure responder logic (RFC 6762), used by the announcer and table-tested alone: which owned
 * records answer a query (§6, RFC 6763 §12 additionals), known-answer suppression (§7.1), conflict
 * detection (§9) and the simultaneous-probe tiebreak (§8.2). Nothing here touches a socket or a
 * clock. The packet helpers (questionClass, splitPacket, …) and record keys it uses are shared
 * with the SDK's browser in sdk/mdns/ and re-exported here.
 */
import type { Answer, Question } from 'dns-packet';
import type { OwnedRecord } from '../../sdk/mdns/records.js';
import { questionClass } from '../../sdk/mdns/packet.js';
import { rdataOf, recordKey, rrsetKey, ttlOf } from '../../sdk/mdns/keys.js';


/** RFC 6762 §7.1: a known answer suppresses ours only if its TTL is at least half of ours. */
export const KNOWN_ANSWER_TTL_FRACTION = 0.5;
/** RFC 6762 §6.7: legacy unicast answers carry TTLs of at most 10 s. */
export const LEGACY_UNICAST_MAX_TTL = 10;

export interface AnswerPlan {
  answers: OwnedRecord[];
  additionals: OwnedRecord[];
  /** Answers left out because the querier already knew them (§7.1). */
  suppressed: number;
  /** Some question asked for a unicast response (§5.4). */
  unicastRequested: boolean;
}

/** Does the querier's known-answer list hold this record with at least half our TTL (§7.1)? */
export function isKnownAnswer(rr: Answer, known: readonly Answer[]): boolean {
  const key = recordKey(rr);
  const ttl = ttlOf(rr);
  const name = rr.name.toLowerCase();
  // A PTR's rdata is a name: compared as text first, so a browse query listing 500 instances
  // costs 500 string compares here, not 500 rdata encodings (recordKey).
  const ptrData = rr.type === 'PTR' && typeof (rr as { data?: unknown }).data === 'string' ? ((rr as { data: string }).data).toLowerCase() : undefined;
  for (const k of known) {
    if (!k || typeof k !== 'object' || typeof k.name !== 'string' || k.type !== rr.type) continue;
    const kttl = (k as { ttl?: unknown }).ttl;
    if (typeof kttl !== 'number' || kttl < ttl * KNOWN_ANSWER_TTL_FRACTION) continue;
    if (k.name.toLowerCase() !== name) continue;
    const kd = (k as { data?: unknown }).data;
    if (ptrData !== undefined && (typeof kd !== 'string' || kd.toLowerCase() !== ptrData)) continue;
    if (recordKey(k) === key) return true;
  }
  return false;
}

/**
 * Which of `owned` answer `questions`, minus those in `known` (§7.1), plus the additional records
 * RFC 6763 §12 recommends: for a PTR to an instance, its SRV and TXT and the target's address;
 * for an SRV, the target's address. Additionals the querier knows are left out too.
 */
export function answerQuestions(owned: readonly OwnedRecord[], questions: readonly Question[], known: readonly Answer[] = []): AnswerPlan {
  const plan: AnswerPlan = { answers: [], additionals: [], suppressed: 0, unicastRequested: false };
  const inAnswers = new Set<OwnedRecord>();
  for (const q of questions) {
    if (!q || typeof q.name !== 'string') continue;
    const { klass, qu } = questionClass(q);
    if (klass !== 1 && klass !== 255) continue; // IN or ANY
    const name = q.name.toLowerCase();
    for (const r of owned) {
      if (inAnswers.has(r)) continue;
      if (r.rr.name.toLowerCase() !== name) continue;
      if ((q.type as string) !== 'ANY' && q.type !== r.rr.type) continue;
      if (isKnownAnswer(r.rr, known)) {
        plan.suppressed++;
        continue;
      }
      inAnswers.add(r);
      plan.answers.push(r);
      if (qu) plan.unicastRequested = true;
    }
  }
  const inAdditionals = new Set<OwnedRecord>();
  const addFor = (name: string, types: readonly string[]) => {
    const n = name.toLowerCase();
    for (const r of owned) {
      if (inAnswers.has(r) || inAdditionals.has(r)) continue;
      if (r.rr.name.toLowerCase() !== n || !types.includes(r.rr.type)) continue;
      if (isKnownAnswer(r.rr, known)) continue;
      inAdditionals.add(r);
      plan.additionals.push(r);
    }
  };
  const targetsOf = (instance: string): string[] =>
    owned.filter((r) => r.rr.type === 'SRV' && r.rr.name.toLowerCase() === instance.toLowerCase()).map((r) => ((r.rr as { data: { target: string } }).data).target);
  for (const r of [...plan.answers]) {
    if (r.rr.type === 'PTR') {
      const instance = r.rr.data as string;
      // An enumeration PTR points at a service type, which owns no SRV: nothing is added (§12.3).
      addFor(instance, ['SRV', 'TXT']);
      for (const t of targetsOf(instance)) addFor(t, ['A', 'AAAA']);
    } else if (r.rr.type === 'SRV') {
      addFor((r.rr.data as { target: string }).target, ['A', 'AAAA']);
    }
  }
  return plan;
}

/**
 * Records in a received message that conflict with ours (§9): same name, type and class as one
 * of our unique records, non-zero TTL, different rdata, and not something we sent ourselves
 * (`isOwn`, which on loopback is the only way to tell our own echo from another host's record).
 */
export function findConflicts(owned: readonly OwnedRecord[], received: readonly unknown[], isOwn: (key: string) => boolean = () => false): Answer[] {
  const uniqueSets = new Map<string, Set<string>>();
  for (const r of owned) {
    if (!r.unique) continue;
    const k = rrsetKey(r.rr);
    let s = uniqueSets.get(k);
    if (!s) uniqueSets.set(k, (s = new Set()));
    s.add(recordKey(r.rr));
  }
  const out: Answer[] = [];
  for (const x of received) {
    if (!x || typeof x !== 'object') continue;
    const rr = x as Answer;
    if (typeof rr.name !== 'string' || typeof rr.type !== 'string') continue;
    const ours = uniqueSets.get(rrsetKey(rr));
    if (!ours) continue;
    if ((rr as { class?: string }).class !== undefined && (rr as { class?: string }).class !== 'IN') continue;
    const ttl = (rr as { ttl?: unknown }).ttl;
    if (typeof ttl !== 'number' || ttl === 0) continue; // a goodbye claims nothing
    const key = recordKey(rr);
    if (ours.has(key) || isOwn(key)) continue;
    out.push(rr);
  }
  return out;
}

/**
 * RFC 6762 §8.2 simultaneous probe tiebreak for one name: sort each side's records by class,
 * type, then rdata bytes, compare pairwise; the first difference decides, and a list that runs
 * out first loses. Returns > 0 when ours wins, < 0 when theirs wins, 0 when identical.
 */
export function compareProbeRecords(ours: readonly Answer[], theirs: readonly Answer[]): number {
  const norm = (rrs: readonly Answer[]) =>
    rrs
      .map((rr) => ({ klass: 1, type: typeNumber(rr.type), rdata: rdataOf(rr) ?? Buffer.alloc(0) }))
      .sort((a, b) => a.klass - b.klass || a.type - b.type || Buffer.compare(a.rdata, b.rdata));
  const a = norm(ours);
  const b = norm(theirs);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = a[i]!.klass - b[i]!.klass || a[i]!.type - b[i]!.type || Buffer.compare(a[i]!.rdata, b[i]!.rdata);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

const TYPE_NUMBERS: Record<string, number> = { A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, NSEC: 47, ANY: 255 };
function typeNumber(t: string): number {
  return TYPE_NUMBERS[t] ?? (typeof t === 'string' && /^UNKNOWN_\d+$/.test(t) ? Number(t.slice(8)) : 0);
}
