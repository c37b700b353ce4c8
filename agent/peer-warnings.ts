/**
 * The gossip transport's warnings (ws-transport.ts `onWarning`) as log lines an operator can act
 * on, rate-limited so that a peer failing 50 times a second costs a few lines, not a flood:
 *
 *  - a join seed that cannot be reached: `cannot reach join seed`, naming the seed and the error,
 *    repeated with backoff (after 1, 2, 4 … up to 64 failures in a row, then every 64th) until the
 *    agent has joined through it; other peers' connect failures are SWIM's business (debug);
 *  - frames that fail to authenticate, either way: `gossip frames fail to authenticate`, naming
 *    the peer address and the side (`ours rejected by the peer` / `theirs rejected here`), at most
 *    once per `intervalMs` per peer (with the count since the last line);
 *  - a peer without a key (no challenge): `gossip peer has no key`, as rarely;
 *  - a peer of the other scheme (ws:// vs wss://, issue 15): `gossip peer of the other scheme`, as rarely.
 *
 * Bounded: at most `maxPeers` peers are remembered (the oldest is forgotten first).
 */
import type { Logger } from './log.js';
import type { TransportWarning } from './gossip/ws-transport.js';

export interface PeerWarningsOptions {
  log: Logger;
  /** The agent's join seeds (ws:// URLs). */
  seeds: () => readonly string[];
  /** Whether the agent has `addr` as a live member (then its seed warnings stop). */
  isLiveMember: (addr: string) => boolean;
  /** Least time between two authentication lines about one peer, ms. Default 30 000. */
  intervalMs?: number;
  /** Most peers remembered. Default 1024. */
  maxPeers?: number;
  now?: () => number;
}

interface PeerState {
  /** Connect failures in a row (seeds). */
  failures: number;
  lastAt: number;
  suppressed: number;
}

export function peerWarnings(opts: PeerWarningsOptions): (w: TransportWarning) => void {
  const intervalMs = opts.intervalMs ?? 30_000;
  const maxPeers = opts.maxPeers ?? 1024;
  const now = opts.now ?? Date.now;
  const state = new Map<string, PeerState>();
  const get = (key: string): PeerState => {
    let s = state.get(key);
    if (!s) {
      if (state.size >= maxPeers) state.delete(state.keys().next().value!);
      s = { failures: 0, lastAt: -Infinity, suppressed: 0 };
      state.set(key, s);
    }
    return s;
  };
  /** At most one line per intervalMs per key; returns the lines suppressed since the last one, or undefined to stay quiet. */
  const due = (key: string): number | undefined => {
    const s = get(key);
    const t = now();
    if (t - s.lastAt < intervalMs) {
      s.suppressed++;
      return undefined;
    }
    const n = s.suppressed;
    s.lastAt = t;
    s.suppressed = 0;
    return n;
  };
  return (w) => {
    const log = opts.log;
    switch (w.kind) {
      case 'connect-failed': {
        const seed = opts.seeds().includes(w.peer) || opts.seeds().includes(w.peer.replace(/\/$/, ''));
        if (!seed || opts.isLiveMember(w.peer)) {
          state.delete(`seed ${w.peer}`);
          log.debug({ peer: w.peer, error: w.error }, 'gossip: cannot connect to peer');
          return;
        }
        const s = get(`seed ${w.peer}`);
        s.failures++;
        // Backoff: after failures 1, 2, 4, … 64, then every 64th.
        const f = s.failures;
        if ((f <= 64 && (f & (f - 1)) === 0) || f % 64 === 0) log.warn({ seed: w.peer, error: w.error, failures: f }, 'cannot reach join seed; retrying');
        return;
      }
      case 'auth-rejected': {
        const n = due(`auth-out ${w.peer}`);
        if (n !== undefined)
          log.warn({ peer: w.peer, side: 'ours rejected by the peer', reason: w.error, since: n }, 'gossip frames fail to authenticate: the peer rejects ours (wrong or missing key here or there?)');
        return;
      }
      case 'auth-failed': {
        const n = due(`auth-in ${w.peer}`);
        if (n !== undefined) log.warn({ peer: w.peer, side: 'theirs rejected here', since: n }, 'gossip frames fail to authenticate: frames from the peer do not open with our keys (wrong or missing key there?)');
        return;
      }
      case 'scheme-mismatch': {
        const n = due(`scheme ${w.peer}`);
        if (n !== undefined) log.warn({ peer: w.peer, reason: w.error, since: n }, 'gossip peer of the other scheme (ws:// vs wss://): not dialed; a cluster is all-TLS or not');
        return;
      }
      case 'peer-not-sealing': {
        const n = due(`open ${w.peer}`);
        if (n !== undefined) log.warn({ peer: w.peer, since: n }, 'gossip peer has no key (it does not seal its frames): nothing is sent to it');
        return;
      }
    }
  };
}
