/**
 * The load estimate of every server as this client sees it: the server's last load report, what
 * this client did since (connections opened and closed, picks counted), this client's share of
 * the cluster's load, and a round-trip time. The formulas are in timing.ts and
 * ServerState.refreshEstimate; this file keeps the state they read:
 *
 * - which reports are taken (newer seq, or any once the last is older than an interval: an agent
 *   that restarted counts from 0 again),
 * - a ring of this client's own counts at its last ticks, so that a report that arrives late is
 *   compared with what this client held when the report was taken, not when it arrived,
 * - the inverse share (`shareScale`) and each report's weight as it ages, on every tick,
 * - the counts: `countPick`, `opened`, `closed` (leases call the last two, see lease.ts),
 * - the peak-EWMA round-trip time of outcomes.
 */
import type { LoadReport } from '../protocol.js';
import { HISTORY, type ServerState } from '../server.js';
import { peakEwma, reportWeight, shareScale } from '../timing.js';

export interface LoadOptions {
  reportIntervalMs: number;
  reportExpireIntervals: number;
  ewmaDecayMs: number;
}

/** A unit of work the user runs against `s` themselves: counts until the next report. */
export function countPick(s: ServerState): void {
  s.picks++;
  s.counted++;
  s.refreshEstimate();
}

/** A connection to `s` opened (or is being opened): counts until `closed`. */
export function opened(s: ServerState): void {
  s.picks++;
  s.active++;
  s.refreshEstimate();
}

export function closed(s: ServerState): void {
  if (s.active > 0) s.active--;
  s.refreshEstimate();
}

/** A round-trip sample of `s` at `now` (ms; negative or undefined: none). */
export function recordRtt(s: ServerState, sample: number | undefined, now: number, o: LoadOptions): void {
  if (sample === undefined || !(sample >= 0)) return;
  s.rtt = peakEwma(s.rtt, sample, now - s.rttAt, o.ewmaDecayMs);
  s.rttAt = now;
}

export class LoadEstimate {
  /** Times of the ticks whose own counts each server keeps (a ring; see ServerState.history). */
  private readonly historyAt = new Float64Array(HISTORY);
  private historyNext = 0;
  private historyLen = 0;

  constructor(private readonly o: LoadOptions) {}

  /** A record's report for `s` arrived at `now`: take it if it is newer (see the file comment). */
  report(s: ServerState, load: LoadReport, now: number): void {
    const prev = s.report;
    if (prev && !(load.seq > prev.seq || now - s.reportAt > this.o.reportIntervalMs)) return;
    if (prev && load.seq === prev.seq) return;
    s.report = load;
    s.reportAt = now - load.ageMs;
    s.reportedActive = Math.max(load.connections, load.sessions);
    // What this client held when the report was taken: the report already counts that, and what
    // it did since (until now) it does not.
    const slot = s.reportAt >= now ? -1 : this.historySlot(s.reportAt);
    const h = s.history;
    s.activeAtReport = slot < 0 ? s.active : h ? h[slot]! : 0;
    s.unitsAtReport = slot < 0 ? s.active + s.counted : h ? h[HISTORY + slot]! : 0;
    s.reportW = reportWeight(now - s.reportAt, this.o.reportIntervalMs, this.o.reportExpireIntervals);
  }

  /** This client's inverse share of the load, from the reports and what it held when they were taken. */
  scale(all: readonly ServerState[]): number {
    let reported = 0;
    let own = 0;
    for (const s of all)
      if (s.report) {
        reported += s.reportedActive;
        own += s.activeAtReport;
      }
    return shareScale(reported, own);
  }

  /** Age `s`'s report to `now` under the cluster's `scale` (the caller refreshes the estimate). */
  age(s: ServerState, now: number, scale: number): void {
    s.scale = scale;
    if (s.report) s.reportW = reportWeight(now - s.reportAt, this.o.reportIntervalMs, this.o.reportExpireIntervals);
  }

  /** Keep each server's own counts at this tick, for reports that arrive after the time they describe. */
  recordHistory(all: readonly ServerState[], now: number): void {
    const i = this.historyNext;
    this.historyAt[i] = now;
    for (const s of all) {
      let h = s.history;
      if (h === undefined) {
        if (s.active === 0 && s.counted === 0) continue;
        h = s.history = new Float64Array(2 * HISTORY);
      }
      h[i] = s.active;
      h[HISTORY + i] = s.active + s.counted;
    }
    this.historyNext = (i + 1) % HISTORY;
    if (this.historyLen < HISTORY) this.historyLen++;
  }

  /** The history slot of the last tick at or before `t` (the oldest kept if `t` is older), or -1 if none. */
  historySlot(t: number): number {
    if (this.historyLen === 0) return -1;
    let slot = this.historyNext;
    for (let k = 0; k < this.historyLen; k++) {
      slot = slot === 0 ? HISTORY - 1 : slot - 1;
      if (this.historyAt[slot]! <= t) return slot;
    }
    return slot;
  }
}
