/**
 * When a discovery source's view is settled: what `join()` waits for before it resolves, so that
 * the first picks spread over the servers there are instead of all going to the first one heard
 * of (many clients starting together would otherwise all land on one server).
 *
 *  - static list: at once (join does not wait);
 *  - agents (`/v1/watch`): the first full snapshot (AgentWatch.settled);
 *  - mDNS: with a watch subscription (the default), that agent's first full snapshot; without one
 *    (or when it fails), once the first query round has had its answers (MdnsSettle below: 1.22 s);
 *  - a custom source: its own `settled()`, or else the first server.
 *
 * join() caps every wait at `waitForServersMs`.
 */
import type { Clock, TimerHandle } from '../clock.js';

/** A one-shot signal: `open()` any number of times, `wait()` resolves from the first on. */
export class Latch {
  private opened = false;
  private resolve!: () => void;
  private readonly promise = new Promise<void>((r) => (this.resolve = r));

  get isOpen(): boolean {
    return this.opened;
  }

  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.resolve();
  }

  wait(): Promise<void> {
    return this.promise;
  }
}

/**
 * RFC 6762 §5.2: the interval between the first two queries of a series is at least one second;
 * the browser sends its second one then (sdk/mdns/browser.ts INITIAL_QUERY_INTERVAL_MS, which must
 * equal this: written here too so the core imports nothing outside it).
 */
export const MDNS_FIRST_ROUND_MS = 1000;
/** RFC 6762 §6: the most a responder waits before answering a query for a shared record (a PTR): 20–120 ms. */
export const MDNS_ANSWER_DELAY_MS = 120;
/** Time for an answer to be read and resolved on a busy host (event-loop lag): not from the RFC. */
export const MDNS_SETTLE_SLACK_MS = 100;
/**
 * When the first round has had its answers: the second query's answers in. Not the first query's
 * alone, because a responder that multicast its records in the last second (to another client, or
 * announcing a load change) must not multicast them again (§6): it answers only the second query
 * (seen: one of three agents missing at 1 s in one run of five). That is 1 s + 120 ms + slack.
 */
export const MDNS_SETTLE_MS = MDNS_FIRST_ROUND_MS + MDNS_ANSWER_DELAY_MS + MDNS_SETTLE_SLACK_MS;

/**
 * The settle rule of mDNS discovery.
 *
 * With a watch subscription (the default), the view the client uses is the subscribed agent's:
 * settled by that agent's first full snapshot (`snapshot`), which lists every member the agent
 * knows, also those whose mDNS answers have not come (yet). The mDNS round does not settle it
 * then: the first agent is often heard only at the second query (see MDNS_SETTLE_MS), and its
 * snapshot follows within milliseconds. Only when the subscription fails (`watchFailed`: refused
 * with an HTTP status, or three attempts that timed out or closed) does the round rule below apply.
 *
 * Without one: the first query goes out when the browser starts (`queried`); the view is settled
 * when the first round is over (MDNS_SETTLE_MS later) and a server is known. If it found nothing,
 * the first server found later settles it one answer delay (plus slack) after it arrives, so the
 * other responders of that round (a later query, or agents that started together) are heard too.
 */
export class MdnsSettle {
  private readonly latch = new Latch();
  private timer: TimerHandle | undefined;
  private roundOver = false;
  private any = false;

  constructor(
    private readonly clock: Clock,
    /** A watch subscription is expected to give the view. */
    private subscribing = false,
  ) {}

  /** The subscription failed (an attempt ended without a snapshot): the round rule applies. */
  watchFailed(): void {
    if (!this.subscribing || this.latch.isOpen) return;
    this.subscribing = false;
    if (this.roundOver && this.any && this.timer === undefined) this.timer = this.arm(MDNS_ANSWER_DELAY_MS + MDNS_SETTLE_SLACK_MS, () => this.latch.open());
  }

  /** The first query was sent. */
  queried(): void {
    if (this.timer !== undefined || this.roundOver || this.latch.isOpen) return;
    this.timer = this.arm(MDNS_SETTLE_MS, () => {
      this.roundOver = true;
      if (this.any && !this.subscribing) this.latch.open();
    });
  }

  /** A server was found (and entered the view). */
  found(): void {
    if (this.any) return;
    this.any = true;
    if (this.roundOver && !this.subscribing && !this.latch.isOpen) this.timer = this.arm(MDNS_ANSWER_DELAY_MS + MDNS_SETTLE_SLACK_MS, () => this.latch.open());
  }

  /** The subscribed agent's first full snapshot arrived. */
  snapshot(): void {
    this.done();
  }

  wait(): Promise<void> {
    return this.latch.wait();
  }

  /** Settled now (or closed): no timer left behind. */
  done(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.latch.open();
  }

  private arm(ms: number, fn: () => void): TimerHandle {
    this.clock.clearTimeout(this.timer);
    const t = this.clock.setTimeout(() => {
      this.timer = undefined;
      fn();
    }, ms);
    t.unref?.();
    return t;
  }
}
