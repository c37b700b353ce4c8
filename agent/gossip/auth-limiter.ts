/**
 * The rate limit on unauthenticated gossip connections (ws-transport.ts, with a keyring), on the
 * injected clock: each identity (remote IP and the address it claims in x-peerlb-addr) whose
 * sockets fail authentication `max` times within `windowMs` is blocked for `blockMs`; the whole
 * IP only after IP_FAILURE_FACTOR times as many failures, so a keyless process beside a genuine
 * agent (same host or NAT) is blocked alone. Bounded: at most MAX_TRACKED_IPS × 2 keys remembered.
 *
 * And the hello deadlines of an inbound socket (helloDeadlines): a first frame within
 * firstFrameTimeoutMs, with a keyring an authentic one within authTimeoutMs.
 */
import type { Clock } from '../../sdk/core/clock.js';

export interface AuthFailureLimit {
  /** Authentication failures from one IP within windowMs before it is blocked. Default 20. */
  max: number;
  /** Default 10 000 ms. */
  windowMs: number;
  /** How long a blocked IP's upgrades are refused. Default 30 000 ms. */
  blockMs: number;
}
export const DEFAULT_AUTH_FAILURE_LIMIT: Readonly<AuthFailureLimit> = Object.freeze({ max: 20, windowMs: 10_000, blockMs: 30_000 });

/** Most remote IPs (and identities) whose failures are remembered. */
export const MAX_TRACKED_IPS = 4096;
/**
 * Failures from one IP, across its identities, before the whole IP is blocked: a multiple of the
 * per-identity limit. A keyless process beside a genuine agent (same host, same NAT) fails under
 * its own identity (the address it claims) and is blocked alone; only many identities failing
 * from one IP (someone forging claims) cost its neighbours.
 */
export const IP_FAILURE_FACTOR = 4;

/** What one strike did: whether the identity, or the whole IP, just became blocked. */
export interface Strike {
  identity: boolean;
  ip: boolean;
}

export class AuthFailureLimiter {
  readonly limit: Readonly<AuthFailureLimit>;
  /** Key (an IP, or an identity) → recent failure times and the end of its block. */
  private readonly failures = new Map<string, { at: number[]; blockedUntil: number }>();

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    limit: Partial<AuthFailureLimit> = {},
  ) {
    this.limit = Object.freeze({ ...DEFAULT_AUTH_FAILURE_LIMIT, ...limit });
  }

  /** Keys remembered (bounded). */
  get size(): number {
    return this.failures.size;
  }

  /** Blocked: the socket's identity (IP and claimed address), or its whole IP. */
  blocked(ip: string | undefined, identity: string | undefined): boolean {
    return this.isBlocked(identity) || this.isBlocked(ip);
  }

  /**
   * An authentication failure of a socket from `ip` claiming `identity`: the identity earns a
   * strike and is blocked at the limit; the IP as a whole only at IP_FAILURE_FACTOR times the limit.
   * Without an IP nothing is counted.
   */
  strike(ip: string | undefined, identity: string | undefined): Strike {
    if (!ip) return { identity: false, ip: false };
    const id = identity ? this.count(identity, this.limit.max) : false;
    return { identity: id, ip: this.count(ip, this.limit.max * IP_FAILURE_FACTOR) };
  }

  private isBlocked(key: string | undefined): boolean {
    if (!key) return false;
    const f = this.failures.get(key);
    return f !== undefined && f.blockedUntil > this.clock.now();
  }

  /** One failure under `key`: true when it just became blocked. */
  private count(key: string, max: number): boolean {
    const now = this.clock.now();
    let f = this.failures.get(key);
    if (!f) {
      if (this.failures.size >= MAX_TRACKED_IPS * 2) this.failures.delete(this.failures.keys().next().value!);
      f = { at: [], blockedUntil: 0 };
      this.failures.set(key, f);
    }
    const windowMs = this.limit.windowMs;
    f.at = f.at.filter((t) => now - t < windowMs);
    f.at.push(now);
    if (f.at.length >= max && f.blockedUntil <= now) {
      f.blockedUntil = now + this.limit.blockMs;
      f.at = [];
      return true;
    }
    return false;
  }
}

export interface HelloDeadlineOptions {
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /** A keyring is in use: an authentic frame is due within authTimeoutMs. */
  sealed: boolean;
  authTimeoutMs: number;
  firstFrameTimeoutMs: number;
  /** Whether the socket has delivered a frame; an authentic one; was cut already. */
  state: () => { heard: boolean; authed: boolean; cut: boolean };
  /** No authentic frame in time (sealed only). */
  onAuthTimeout: () => void;
  /** No frame at all in time. */
  onFirstFrameTimeout: () => void;
}

/** Start an inbound socket's hello deadlines; the function returned cancels them (on close). */
export function helloDeadlines(o: HelloDeadlineOptions): () => void {
  const { clock } = o;
  const authTimer = o.sealed
    ? clock.setTimeout(() => {
        // Holding a socket open without authenticating counts as a failure too: otherwise
        // one address could keep every inbound slot busy, a timeout at a time.
        if (!o.state().authed) o.onAuthTimeout();
      }, o.authTimeoutMs)
    : undefined;
  authTimer?.unref?.();
  // Open clusters too: a socket that says nothing gives its slot back.
  const firstTimer = clock.setTimeout(() => {
    const s = o.state();
    if (s.heard || s.cut) return;
    o.onFirstFrameTimeout();
  }, o.firstFrameTimeoutMs);
  firstTimer.unref?.();
  return () => {
    clock.clearTimeout(authTimer);
    clock.clearTimeout(firstTimer);
  };
}
