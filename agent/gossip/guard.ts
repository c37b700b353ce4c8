/**
 * What a member does not take on trust from the network (membership.ts applies these):
 *
 *  - Incarnations stay in 0..MAX_INCARNATION (2^32 − 1, memberlist's uint32), which every agent
 *    encodes and decodes: a refutation stops at the cap instead of producing an undecodable value.
 *  - Lifeguard: only a member raises its own incarnation. News from a third party that puts a
 *    known member more than INCARNATION_WINDOW above the incarnation we have is not applied (a
 *    member incarnates by one per refutation or meta change; a jump that large is a forgery or
 *    news we missed): we ask the member itself instead (a nudge it answers with its own state,
 *    over the socket we dialed to it). News about ourselves that far above our own incarnation is
 *    ignored once we have joined: nobody can know a later incarnation of us than we do.
 *  - memberlist's address conflict rule: an alive update never moves a live (alive or suspect)
 *    member to another address; a dead or left member's address changes only on news that came
 *    over a socket we dialed to that address (the member confirmed it). Conflicts are logged.
 *  - Dials to addresses that are not a known member's (a sender's claimed address, a ping-req's
 *    unknown target, the claimed new address of a dead member) share a small budget
 *    (DialBudget); answers to a frame go back on the socket it came in on, not to the address it
 *    claims (no reflection).
 */
import type { Clock } from '../../sdk/core/clock.js';
import { MAX_INCARNATION } from './messages.js';

export { MAX_INCARNATION };

/** Largest jump above the incarnation we know that a third party's news may carry. */
export const INCARNATION_WINDOW = 64;

/**
 * A restarted process counts from 1, while the cluster may remember a previous life of it far
 * higher (each meta change and refutation of a long life adds one): in a record (taken from the
 * seed's state before the join completes) or in a tombstone, which its holders tell only once they
 * hear the new life's alive — possibly after it joined through a seed that never knew it. So for
 * SELF_NEWS_GRACE_MS after joining, one jump about ourselves past INCARNATION_WINDOW is taken, up
 * to PREVIOUS_LIFE_MAX_INCARNATION: a forged claim then costs one bounded step (2^24, far from
 * the 2^32 − 1 cap), once per process, never the cap.
 */
export const SELF_NEWS_GRACE_MS = 60_000;
export const PREVIOUS_LIFE_MAX_INCARNATION = 1 << 24;

/** The incarnation after `n`, never above the cap. */
export function nextIncarnation(n: number): number {
  return Math.min(MAX_INCARNATION, n + 1);
}

/** Whether a third party's news at `claimed` about a member we know at `known` is plausible. */
export function plausibleJump(known: number, claimed: number): boolean {
  return claimed <= known + INCARNATION_WINDOW;
}

/**
 * Two live agents with one node id: which one keeps it. The one with the higher incarnation (the
 * cluster takes its alive over the other's), else the lower address, so that both sides decide
 * the same way from what they see of each other. Pure.
 */
export function keepsName(mine: { incarnation: number; addr: string }, theirs: { incarnation: number; addr: string }): boolean {
  if (mine.incarnation !== theirs.incarnation) return mine.incarnation > theirs.incarnation;
  return mine.addr < theirs.addr;
}

/**
 * A token bucket for dials to unconfirmed addresses: `burst` at once, refilled at `perSecond`,
 * on the injected clock. Bounded memory (one number).
 */
export class DialBudget {
  private tokens: number;
  private at: number;

  constructor(
    private readonly clock: Clock,
    private readonly perSecond = 20,
    private readonly burst = 20,
  ) {
    this.tokens = burst;
    this.at = clock.now();
  }

  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

/** Log the 1st, 2nd, 4th, 8th… occurrence only: a peer repeating something cannot flood the log. */
export function powerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}
