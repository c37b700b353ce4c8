/**
 * The probing phase (RFC 6762 §8.1–8.2) as one cancellable object on an injected clock, as
 * homebridge/ciao's Prober: three probe queries 250 ms apart after a random 0–250 ms delay, each
 * asking ANY for every unique name and carrying the proposed records in the Authority section.
 * A response holding a different record for one of those names is a conflict; a simultaneous
 * probe from another host is settled by the §8.2 tiebreak.
 */
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';
import type { Clock, TimerHandle } from '../../sdk/core/clock.js';
import type { Random } from '../../sdk/core/random.js';
import type { OwnedRecord } from '../../sdk/mdns/records.js';
import { recordKey } from '../../sdk/mdns/keys.js';
import { compareProbeRecords, findConflicts } from './responder.js';

/** §8.1: "a random delay between 0 and 250 ms" before the first probe. */
export const PROBE_INITIAL_DELAY_MAX_MS = 250;
/** §8.1: probes 250 ms apart. */
export const PROBE_INTERVAL_MS = 250;
/** §8.1: three probes; then, with no conflict 250 ms after the third, the name is ours. */
export const PROBE_COUNT = 3;
/** §8.2: the loser of a tiebreak "waits one second" and probes again. */
export const PROBE_TIEBREAK_DEFER_MS = 1000;
/** Losing the tiebreak this many times in a row is treated as a conflict (bounds a probe storm). */
export const MAX_TIEBREAK_LOSSES = 5;

export type ProbeOutcome = { kind: 'claimed' } | { kind: 'conflict'; records: Answer[] };

export interface ProberDeps {
  clock: Clock;
  random: Random;
  /** Unique records to claim. */
  records: readonly OwnedRecord[];
  send(packet: Packet): void;
  /** Is this record key (responder.recordKey) one we sent ourselves recently? */
  isOwn(key: string): boolean;
  done(outcome: ProbeOutcome): void;
}

export class Prober {
  private timer: TimerHandle | undefined;
  private sent = 0;
  private losses = 0;
  private finished = false;
  /** Tiebreaks lost (for stats). */
  tiebreaksLost = 0;

  constructor(private d: ProberDeps) {}

  /** The records changed (same names, new data): later probes carry the new ones. */
  setRecords(records: readonly OwnedRecord[]): void {
    this.d = { ...this.d, records };
  }

  /** Begin, after `delayMs` (default: random 0–250 ms, §8.1). */
  start(delayMs: number = this.d.random.next() * PROBE_INITIAL_DELAY_MAX_MS): void {
    this.schedule(delayMs);
  }

  cancel(): void {
    this.finished = true;
    this.d.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  get active(): boolean {
    return !this.finished;
  }

  private schedule(ms: number): void {
    this.d.clock.clearTimeout(this.timer);
    this.timer = this.d.clock.setTimeout(() => this.tick(), ms);
    this.timer.unref?.();
  }

  private tick(): void {
    if (this.finished) return;
    if (this.sent >= PROBE_COUNT) {
      this.finish({ kind: 'claimed' });
      return;
    }
    this.sent++;
    this.d.send(this.probePacket());
    this.schedule(PROBE_INTERVAL_MS);
  }

  /**
   * The probe: ANY questions for each unique name, our records in the Authority section (§8.2),
   * without the cache-flush bit (§10.2). The unicast-response bit that §8.1 suggests for the
   * first probe is not set: on one host every responder shares port 5353, so a unicast answer
   * would reach only one of the sockets bound there; multicast answers reach all.
   */
  probePacket(): Packet {
    const names = [...new Set(this.d.records.map((r) => r.rr.name))];
    return {
      type: 'query',
      id: 0,
      flags: 0,
      questions: names.map((name) => ({ name, type: 'ANY' as Question['type'], class: 'IN' as const })),
      authorities: this.d.records.map((r) => ({ ...r.rr, flush: false }) as Answer),
    };
  }

  /** Feed every received packet while probing. */
  handle(packet: DecodedPacket): void {
    if (this.finished) return;
    if (packet.type === 'response') {
      const received = [...(Array.isArray(packet.answers) ? packet.answers : []), ...(Array.isArray(packet.additionals) ? packet.additionals : [])];
      const conflicts = findConflicts(this.d.records, received, (k) => this.d.isOwn(k));
      if (conflicts.length > 0) this.finish({ kind: 'conflict', records: conflicts });
      return;
    }
    // Another host probing for one of our names at the same time (§8.2).
    const auth = Array.isArray(packet.authorities) ? packet.authorities : [];
    if (auth.length === 0) return;
    for (const name of new Set(this.d.records.map((r) => r.rr.name.toLowerCase()))) {
      const theirs = auth.filter((rr) => rr && typeof rr.name === 'string' && rr.name.toLowerCase() === name);
      // Our own probe, echoed by multicast loopback, is not another host's. (Compare whole sets
      // otherwise: a record both sides propose is part of each side's set.)
      if (theirs.length === 0 || theirs.every((rr) => this.d.isOwn(recordKey(rr)))) continue;
      const ours = this.d.records.filter((r) => r.rr.name.toLowerCase() === name).map((r) => r.rr);
      if (compareProbeRecords(ours, theirs) < 0) {
        this.tiebreaksLost++;
        if (++this.losses >= MAX_TIEBREAK_LOSSES) {
          this.finish({ kind: 'conflict', records: theirs });
          return;
        }
        // Lost: wait one second, then probe again from the start.
        this.sent = 0;
        this.schedule(PROBE_TIEBREAK_DEFER_MS);
        return;
      }
    }
  }

  private finish(outcome: ProbeOutcome): void {
    this.cancel();
    this.d.done(outcome);
  }
}
