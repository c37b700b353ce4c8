/**
 * The load figure an agent puts in its TXT (`load=`, tenths of utilization), with hysteresis and
 * a minimum interval: pure functions, table-tested (test/unit/agent/mdns/load-bucket.test.ts).
 *
 * Every change of the TXT is a re-announcement (RFC 6762 §8.4: twice) that every browser on the
 * link receives and processes. Host CPU moves all the time; rounded to tenths with no
 * hysteresis, a CPU near a bucket edge (34 %, 36 %, 35 %…) flips the bucket at every load
 * report, and 200 honest agents on a busy host then re-announce about every second each. The
 * TXT figure is coarse on purpose: a client that needs live load subscribes to an agent's
 * /v1/watch, which carries every report.
 */
import { MAX_LOAD_BUCKET, type AnnounceInfo } from '../../sdk/mdns/records.js';

/**
 * Hysteresis (peerlb's choice): the announced bucket b stays while utilization is within one
 * tenth of b's middle (b ± 1 tenths); beyond, the bucket is the utilization rounded. A CPU swinging 30 %↔40 % around a 35 % edge keeps its
 * bucket; a move from 30 % to 45 % is announced.
 */
export const LOAD_BUCKET_HYSTERESIS = 0.5;

/**
 * A change of the load bucket alone (nothing else in the TXT changed) is announced at most this
 * often; a change that comes sooner waits for the interval to end and is then judged again
 * against the figure of that moment. 5 s: the interval at which browsers query at the latest
 * (sdk/mdns/browser.ts MAX_QUERY_INTERVAL_MS), so that 200 agents re-announce their
 * load about 40 times a second between them at most, instead of 400.
 * Health, weight or ports changing still go out at once (with the current bucket).
 */
export const MIN_LOAD_ANNOUNCE_INTERVAL_MS = 5000;

/** Utilization (0..1, clamped; NaN → 0) rounded to tenths. */
export function loadBucketOf(utilization: number): number {
  const u = Number.isFinite(utilization) ? Math.min(1, Math.max(0, utilization)) : 0;
  return Math.round(u * MAX_LOAD_BUCKET);
}

/**
 * The bucket to announce for `utilization`, given the one announced now (`current`, undefined
 * before the first). Pure.
 */
export function nextLoadBucket(current: number | undefined, utilization: number, hysteresis: number = LOAD_BUCKET_HYSTERESIS): number {
  const target = loadBucketOf(utilization);
  if (current === undefined) return target;
  const x = (Number.isFinite(utilization) ? Math.min(1, Math.max(0, utilization)) : 0) * MAX_LOAD_BUCKET;
  const edge = 0.5 + hysteresis;
  // A tiny epsilon: 0.3 * 10 is 3.0000000000000004.
  return x > current + edge + 1e-9 || x < current - edge - 1e-9 ? target : current;
}

/**
 * May a load-only change go out now? `lastChangeAt`: when the bucket last changed on the wire
 * (-Infinity: never). Returns 0 when it may, else how long to wait (ms). Pure.
 */
export function loadChangeWait(now: number, lastChangeAt: number, minIntervalMs: number = MIN_LOAD_ANNOUNCE_INTERVAL_MS): number {
  const wait = lastChangeAt + minIntervalMs - now;
  return wait > 0 ? wait : 0;
}

export const isUtilization = (u: unknown): u is number => typeof u === 'number' && Number.isFinite(u);

/** The info as announced: this load bucket, no utilization (records ignore it anyway). */
export function withBucket(info: AnnounceInfo, loadBucket: number): AnnounceInfo {
  const { utilization: _u, ...rest } = info;
  return { ...rest, loadBucket };
}

/** What of an info reaches the wire: equal keys, equal records. */
export const wireKey = (i: AnnounceInfo): string =>
  JSON.stringify([i.node, i.service, i.host, i.hostname, i.agentPort, i.udpPort, i.tcpPort, i.wsPort, i.wsPath, i.wsTls, i.agentTls, i.weight, i.zone, i.health, i.loadBucket]);
