/**
 * `cluster.websocket()`: a WebSocket already open to a picked server, with failover. The browser's
 * way to a game server (browsers have no TCP or UDP sockets), and the runtime-neutral one: it runs
 * over any W3C `WebSocket` constructor (a browser's, Deno's, Bun's, or the `ws` package's in Node).
 *
 * As TCP connect (sdk/node/tcp.ts): each attempt holds a lease (balancer/lease.ts), so the socket
 * counts as one open connection on its server from the pick until it closes; an open that errors,
 * closes before opening or passes its deadline (on the cluster's clock) is a failure of that server
 * (outlier ejection, ewma) and the next attempt goes to another one, up to `attempts` servers.
 * Servers without a WebSocket endpoint (no wsUrl) are never opened: they are skipped without
 * using up an attempt.
 */
import { attemptBudget, type Balancer } from './balancer/index.js';
import type { ServerState } from './server.js';
import { AbortedError, AllAttemptsFailedError, BadOptionError, NoServersError, type AttemptFailure } from './errors.js';

/**
 * The W3C WebSocket surface an open uses: every runtime's WebSocket has it (the `ws` package's too).
 * Listeners go through addEventListener, so the caller's own `onopen`/`onclose` are left alone.
 */
export interface GameWebSocket {
  readonly readyState: number;
  readonly url: string;
  addEventListener(type: 'open' | 'error' | 'close', listener: (ev: unknown) => void): void;
  removeEventListener(type: 'open' | 'error' | 'close', listener: (ev: unknown) => void): void;
  close(code?: number, reason?: string): void;
}

/** A W3C WebSocket constructor: `new WebSocket(url, protocols)`. */
export type GameWebSocketConstructor = new (url: string, protocols?: string | string[]) => GameWebSocket;

export interface WebSocketOptions {
  /** Affinity key: the same key goes to the same server while it is eligible (a player's reconnects). */
  key?: string | number | Uint8Array;
  /** Subprotocols offered in the handshake (the second argument of `new WebSocket`). */
  protocols?: string | string[];
  /** Per-attempt open timeout, ms (default: the cluster's connectTimeoutMs, 2000). */
  timeoutMs?: number;
  /** Servers to try before giving up (default: the cluster's connectAttempts, 3). */
  attempts?: number;
  signal?: AbortSignal;
}

/** What an error event says, where the runtime says anything (`ws`'s ErrorEvent has a message; a browser's has none). */
function describe(ev: unknown, fallback: string): string {
  const m = (ev as { message?: unknown; error?: { message?: unknown } } | null)?.message ?? (ev as { error?: { message?: unknown } } | null)?.error?.message;
  return typeof m === 'string' && m.length > 0 ? m.slice(0, 200) : fallback;
}

/**
 * Open a WebSocket to a picked server (`hash`: a key hash, or -1), failing over as described above.
 * Resolves with the open socket; rejects with an AbortedError (signal), a NoServersError (no server
 * with a WebSocket endpoint), an AllAttemptsFailedError (each attempt's server and error), a
 * BadOptionError, or what the constructor threw (a bad URL or subprotocol: another server would get
 * the same, so it ends the open).
 */
export function openWebSocket<W extends GameWebSocket>(
  b: Balancer,
  WS: new (url: string, protocols?: string | string[]) => W,
  hash: number,
  opts: WebSocketOptions,
  service: string,
): Promise<W> {
  const budget = attemptBudget(opts, b.opts);
  if (budget instanceof BadOptionError) return Promise.reject(budget);
  const { timeoutMs, attempts } = budget;
  const { protocols, signal } = opts;
  if (protocols !== undefined && typeof protocols !== 'string' && !(Array.isArray(protocols) && protocols.every((p) => typeof p === 'string')))
    return Promise.reject(new BadOptionError('protocols', 'must be a string or an array of strings'));
  if (signal?.aborted) return Promise.reject(new AbortedError(signal.reason));

  return new Promise<W>((resolve, reject) => {
    /** Servers this open will not go to again: failed ones, and ones without a WebSocket endpoint. */
    const tried = new Set<ServerState>();
    const failures: AttemptFailure[] = [];
    let left = attempts;

    const giveUp = () => (failures.length === 0 ? reject(new NoServersError(service)) : reject(new AllAttemptsFailedError(failures)));

    const next = (): void => {
      if (signal?.aborted) return reject(new AbortedError(signal.reason));
      if (left-- <= 0) return giveUp();
      // The first pick goes through the WebSocket servers' picker (the key's server on their ring);
      // after a failure, any untried server, skipping those without an endpoint (at most every
      // server once: each skipped one joins `tried`).
      let s = tried.size === 0 ? b.pickWs(hash) : b.pickExcluding(hash, tried);
      while (s && s.wsUrl === undefined) {
        tried.add(s);
        s = b.pickExcluding(hash, tried);
      }
      if (!s) return giveUp();
      open(s, s.wsUrl!);
    };

    const open = (s: ServerState, url: string): void => {
      // The lease counts the socket from here until it closes, takes the outcome, and fails by
      // itself at the deadline (on the cluster's clock), calling `finish` first.
      const lease = b.lease(s, { timeoutMs, onTimeout: (err) => finish(err) });
      let ws: W;
      try {
        ws = protocols === undefined ? new WS(url) : new WS(url, protocols);
      } catch (err) {
        lease.closed();
        return reject(err);
      }
      let done = false;
      const onOpen = () => finish();
      // Stays registered until the socket closes: the `ws` package throws an 'error' event that has
      // no listener, and one can come after the open was given up (close() on a connecting socket).
      const onError = (ev: unknown) => {
        if (!done) finish(new Error(describe(ev, `WebSocket error on ${url}`)));
      };
      const onClose = (ev: unknown) => {
        ws.removeEventListener('open', onOpen);
        ws.removeEventListener('error', onError);
        ws.removeEventListener('close', onClose);
        if (!done) {
          const code = (ev as { code?: unknown } | null)?.code;
          return finish(new Error(`closed before opening${typeof code === 'number' ? ` (code ${code})` : ''}`));
        }
        lease.closed();
      };
      const onAbort = () => finish(new AbortedError(signal?.reason));

      function finish(err?: Error): void {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        ws.removeEventListener('open', onOpen);
        if (!err) {
          lease.connected();
          return resolve(ws);
        }
        // Given up: the socket will not be used; onClose stays to unhook the error listener.
        if (ws.readyState === 0 || ws.readyState === 1) {
          try {
            ws.close();
          } catch {
            // A socket that cannot close (already closing) has nothing left to do.
          }
        }
        if (err instanceof AbortedError) {
          lease.closed();
          return reject(err);
        }
        lease.failed(err);
        failures.push({ server: s.id, address: url, error: (err as { code?: string }).code ?? err.message });
        tried.add(s);
        next();
      }

      ws.addEventListener('open', onOpen);
      ws.addEventListener('error', onError);
      ws.addEventListener('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
    };

    next();
  });
}
