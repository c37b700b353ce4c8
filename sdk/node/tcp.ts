import net from 'node:net';
import { attemptBudget, type Balancer } from '../core/balancer/index.js';
import type { ServerState } from '../core/server.js';
import { AbortedError, AllAttemptsFailedError, BadOptionError, NoServersError, type AttemptFailure } from '../core/errors.js';

export interface ConnectOptions {
  /** Affinity key: the same key goes to the same server while it is eligible. */
  key?: string | number | Uint8Array;
  /** Per-attempt connect timeout, ms (default: the cluster's connectTimeoutMs, 2000). */
  timeoutMs?: number;
  /** Servers to try before giving up (default: the cluster's connectAttempts, 3). */
  attempts?: number;
  signal?: AbortSignal;
  /** Passed on to net.connect (noDelay, keepAlive, …). */
  socket?: Omit<net.TcpNetConnectOpts, 'host' | 'port' | 'signal'>;
}

const NOTHING_TRIED: ReadonlySet<ServerState> = new Set();

/**
 * Pick a server, connect, and on refusal, reset or timeout record the failure (feeding outlier
 * ejection) and try another server, up to `attempts` servers. Each attempt holds a lease
 * (sdk/core/balancer/lease.ts): the connection counts towards the server's load
 * (least-connections, p2c estimates) from the pick until the socket closes or the attempt ends,
 * and the attempt's deadline is on the cluster's clock.
 *
 * Written with callbacks on one promise rather than async/await over a promise per attempt: on
 * loopback a connect takes 50–80 µs and every promise layer and allocation shows in the ratio to a
 * bare net.connect (test/bench/sdk.ts). Nothing is allocated for failover until an attempt fails.
 */
export function connectWithFailover(b: Balancer, hash: number, opts: ConnectOptions, service: string): Promise<net.Socket> {
  const budget = attemptBudget(opts, b.opts);
  if (budget instanceof BadOptionError) return Promise.reject(budget);
  const { timeoutMs, attempts } = budget;
  const { signal, socket: extra } = opts;
  return new Promise((resolve, reject) => {
    let tried: Set<ServerState> | undefined;
    let failures: AttemptFailure[] | undefined;
    let left = attempts;

    const giveUp = () => {
      if (!failures) reject(new NoServersError(service));
      else reject(new AllAttemptsFailedError(failures));
    };
    const failed = (s: ServerState, error: string) => {
      (tried ??= new Set()).add(s);
      (failures ??= []).push({ server: s.id, address: s.tcpPort === undefined ? s.host : `${s.host}:${s.tcpPort}`, error });
    };

    const next = (): void => {
      for (;;) {
        if (signal?.aborted) return reject(new AbortedError(signal.reason));
        if (left-- <= 0) return giveUp();
        const s = b.pickExcluding(hash, tried ?? NOTHING_TRIED);
        if (!s) return giveUp();
        if (s.tcpPort === undefined) {
          failed(s, 'server has no TCP port');
          continue;
        }
        return connectTo(s, s.tcpPort);
      }
    };

    const connectTo = (s: ServerState, port: number): void => {
      // The lease counts the connection from here until it ends, takes the outcome, and fails by
      // itself at the deadline (on the cluster's clock), calling `finish` first.
      const lease = b.lease(s, { timeoutMs, onTimeout: finish });
      let sock: net.Socket;
      try {
        sock = net.connect(extra ? { ...extra, host: s.host, port } : { host: s.host, port });
      } catch (err) {
        // A synchronous throw (a bad `socket` option, a `lookup` that throws): nothing was opened,
        // and another server would get the same options, so it ends this connect.
        lease.closed();
        return reject(err);
      }
      let done = false;
      function finish(err?: Error): void {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        sock.removeListener('error', finish);
        sock.removeListener('connect', onConnect);
        if (!err) {
          lease.connected();
          sock.on('close', () => lease.closed());
          return resolve(sock);
        }
        sock.destroy();
        if (err instanceof AbortedError) {
          lease.closed();
          return reject(err);
        }
        lease.failed(err);
        const e = err as NodeJS.ErrnoException;
        failed(s, e.code ?? e.message);
        next();
      }
      const onConnect = () => finish();
      const onAbort = () => finish(new AbortedError(signal?.reason));
      sock.on('connect', onConnect);
      sock.on('error', finish);
      signal?.addEventListener('abort', onAbort, { once: true });
    };

    next();
  });
}
