/**
 * Response-rate limiting for UDP DNS (after BIND's RRL): a token bucket per source, so a flood
 * from one address (or a reflection attack spoofing it) is answered at most `rate` times a second
 * on average, with bursts of `burst`. Over the rate, every `slip`-th response goes out as an empty
 * TC answer (a genuine client retries over TCP, which cannot be spoofed) and the rest are dropped.
 * The table of sources is bounded (least recently seen evicted). Time comes from the clock.
 */
import type { Clock } from '../../sdk/core/clock.js';

export type RateDecision = 'answer' | 'slip' | 'drop';

export interface RateLimitOptions {
  /** Responses per second per source, on average. */
  rate: number;
  /** Bucket size: responses a source may get at once. */
  burst: number;
  /** Over the rate, every slip-th response is sent truncated (BIND's default 2); 0: drop all. */
  slip: number;
  /** Most sources tracked; the least recently seen is forgotten past it. */
  maxSources: number;
  clock: Clock;
}

interface Bucket {
  tokens: number;
  at: number;
  limited: number;
}

export class ResponseRateLimiter {
  private readonly sources = new Map<string, Bucket>();
  readonly counters = { answered: 0, slipped: 0, dropped: 0, evicted: 0 };

  constructor(private readonly o: RateLimitOptions) {}

  get size(): number {
    return this.sources.size;
  }

  /** The key of a source address: IPv4 as is, IPv6 by its /64 (one host's or site's addresses). */
  static keyOf(address: string): string {
    if (!address.includes(':')) return address;
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (v4) return v4[1]!;
    const head = address.split('::')[0]!.split(':');
    return head.slice(0, 4).join(':') + '::/64';
  }

  /** What to do with the response to a query from `address`. */
  check(address: string): RateDecision {
    const key = ResponseRateLimiter.keyOf(address);
    const now = this.o.clock.now();
    let b = this.sources.get(key);
    if (b) {
      // Refill, then move to the most recent end (Map order is insertion order).
      b.tokens = Math.min(this.o.burst, b.tokens + ((now - b.at) / 1000) * this.o.rate);
      b.at = now;
      this.sources.delete(key);
    } else {
      b = { tokens: this.o.burst, at: now, limited: 0 };
      if (this.sources.size >= this.o.maxSources) {
        const oldest = this.sources.keys().next().value;
        if (oldest !== undefined) this.sources.delete(oldest);
        this.counters.evicted++;
      }
    }
    this.sources.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.counters.answered++;
      return 'answer';
    }
    b.limited++;
    if (this.o.slip > 0 && b.limited % this.o.slip === 0) {
      this.counters.slipped++;
      return 'slip';
    }
    this.counters.dropped++;
    return 'drop';
  }
}
