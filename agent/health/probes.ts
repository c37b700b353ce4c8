/**
 * Health probes on real sockets (tcp, udp, ws), each bounded by a timeout on the Clock and ended early
 * by an AbortSignal. The checker (agent/health/checker.ts) schedules them and applies rise/fall.
 *
 * Nothing here throws: socket errors are probe failures, except those of the agent's own resources
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM), which are "cannot tell" (ProbeResult.inconclusive).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import WebSocket from 'ws';
import { systemClock, type Clock, type TimerHandle } from '../../sdk/core/clock.js';
import { wsEndpointUrl } from '../../sdk/core/protocol.js';

/** Outcome of one probe (or, for `ttl`, one look at the report age). */
export interface ProbeResult {
  ok: boolean;
  /** What happened, for logs and the `change` event: "tcp connect 127.0.0.1:7000: ECONNREFUSED". */
  reason: string;
  /** Probe round trip, ms, when it succeeded (connect time for tcp, request→reply for udp). */
  rttMs: number | undefined;
  /** Clock time the probe finished. */
  at: number;
  /**
   * The probe could not be made for a reason of the agent's own (EMFILE, ENFILE: out of file
   * descriptors; ENOBUFS: out of socket buffers): it says nothing about the server. The checker
   * keeps its state and counters; the agent logs it.
   */
  inconclusive?: true;
}

// ---------------------------------------------------------------------------------------------
// Probes on real sockets. Timeouts go through the clock; an AbortSignal ends a probe early.

/** Largest UDP payload over IPv4 (65,535 − 8 UDP − 20 IP header bytes). */
export const MAX_UDP_PAYLOAD = 65_507;

/**
 * Errors of the agent's own resources, not of the server: a probe failing with one of these
 * "cannot tell" (ProbeResult.inconclusive) instead of counting as the server down.
 */
export const LOCAL_RESOURCE_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

function isLocalResourceError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && LOCAL_RESOURCE_ERRORS.has(code);
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ?? e?.message ?? String(err);
}

function preview(b: Uint8Array): string {
  const s = JSON.stringify(Buffer.from(b.subarray(0, 32)).toString('latin1'));
  return b.length > 32 ? `${s}… (${b.length} bytes)` : s;
}

export interface ProbeContext {
  clock: Clock;
  signal?: AbortSignal;
}

/** Run `body` with a clock timeout and abort support; `finish` settles exactly once. */
function probe(
  ctx: ProbeContext,
  timeoutMs: number,
  what: string,
  body: (finish: (ok: boolean, reason: string, err?: unknown) => void, started: number) => () => void,
): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    const { clock, signal } = ctx;
    const started = clock.now();
    let settled = false;
    let cleanup: (() => void) | undefined;
    let timer: TimerHandle | undefined;
    const onAbort = () => finish(false, `${what}: aborted`);
    const finish = (ok: boolean, reason: string, err?: unknown) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      try {
        cleanup?.();
      } catch {
        // closing an already closed socket: nothing left to release
      }
      const at = clock.now();
      const r: ProbeResult = { ok, reason, rttMs: ok ? at - started : undefined, at };
      if (!ok && isLocalResourceError(err)) {
        r.inconclusive = true;
        r.reason = `${reason} (the agent's own resources ran out: cannot tell whether the server is up)`;
      }
      resolve(r);
    };
    if (signal?.aborted) {
      finish(false, `${what}: aborted`);
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    timer = clock.setTimeout(() => finish(false, `${what}: no answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref?.();
    try {
      const c = body(finish, started);
      if (settled) c();
      else cleanup = c;
    } catch (err) {
      finish(false, `${what}: ${errText(err)}`, err);
    }
  });
}

/**
 * How long a tcp probe's socket may take to close after its FIN, ms, before it is destroyed. The
 * server normally answers the FIN at once with its own (Node's default, `allowHalfOpen: false`).
 */
export const TCP_CLOSE_GRACE_MS = 1000;

/**
 * Connect to host:port and close gracefully. Success = the three-way handshake completed.
 *
 * The close is a FIN (`end()`), reading and discarding whatever the server sends meanwhile (a
 * greeting: SMTP's 220, a game's banner), and a destroy only once the server closed too or after
 * TCP_CLOSE_GRACE_MS. Destroying at once, as HAProxy's bare connect check does with a RST, makes
 * the kernel answer a greeting that arrives after the close with a reset: a server without an
 * 'error' handler on its sockets then dies of ECONNRESET, killed by its own health check.
 */
export function probeTcp(check: { host: string; port: number; timeoutMs: number }, ctx: ProbeContext = { clock: systemClock }): Promise<ProbeResult> {
  const what = `tcp connect ${check.host}:${check.port}`;
  return probe(ctx, check.timeoutMs, what, (finish) => {
    const sock = net.connect({ host: check.host, port: check.port });
    let connected = false;
    // Stays attached after the probe: a late error (a reset during the close) must not become an
    // unhandled 'error' event.
    sock.on('error', (err) => finish(false, `${what}: ${errText(err)}`, err));
    sock.once('connect', () => {
      connected = true;
      finish(true, `${what}: ok`);
    });
    return () => {
      if (!connected) {
        sock.destroy(); // timed out or aborted before the handshake: nothing to close politely
        return;
      }
      // Real timers, not the clock: this is socket hygiene after the verdict, not part of it.
      const grace = setTimeout(() => sock.destroy(), TCP_CLOSE_GRACE_MS);
      grace.unref();
      sock.once('close', () => clearTimeout(grace));
      sock.resume(); // read the greeting (unread data at close time would make the close a RST)
      sock.end();
    };
  });
}

/**
 * Open a WebSocket to the server's ws endpoint (`ws[s]://host:port/path`) and close it with 1000.
 * Success = the upgrade completed (101 and a valid accept key): the server answers on that path,
 * which a bare TCP connect to the port cannot tell. A wss check does not verify the certificate:
 * the agent runs beside its server and asks whether it answers, not who it is (HAProxy's
 * `check-ssl verify none`); clients verify it. The close waits up to TCP_CLOSE_GRACE_MS for the
 * server's close frame, then the socket is destroyed.
 */
export function probeWs(check: { host: string; port: number; path?: string; tls?: boolean; timeoutMs: number }, ctx: ProbeContext = { clock: systemClock }): Promise<ProbeResult> {
  const url = wsEndpointUrl(check.host, check.port, check.path, check.tls);
  const what = `ws open ${url}`;
  return probe(ctx, check.timeoutMs, what, (finish) => {
    // No redirects, no compression, a small payload cap: the probe reads nothing the server sends.
    const ws = new WebSocket(url, { perMessageDeflate: false, followRedirects: false, maxPayload: 4096, rejectUnauthorized: false });
    let opened = false;
    // Stays attached after the probe: a late error must not become an unhandled 'error' event.
    ws.on('error', (err) => finish(false, `${what}: ${errText(err)}`, err));
    ws.once('open', () => {
      opened = true;
      finish(true, `${what}: ok`);
    });
    return () => {
      if (!opened) {
        ws.terminate(); // timed out or aborted before the upgrade
        return;
      }
      // Real timers, not the clock: socket hygiene after the verdict, not part of it.
      const grace = setTimeout(() => ws.terminate(), TCP_CLOSE_GRACE_MS);
      grace.unref();
      ws.once('close', () => clearTimeout(grace));
      ws.close(1000, 'health check');
    };
  });
}

function matcher(expect: string | RegExp | Uint8Array | undefined): (msg: Buffer) => boolean {
  if (expect === undefined) return () => true;
  if (expect instanceof RegExp) {
    // A fresh copy without g/y: those flags make test() stateful through lastIndex.
    const re = new RegExp(expect.source, expect.flags.replace(/[gy]/g, ''));
    return (msg) => re.test(msg.toString('utf8'));
  }
  const want = typeof expect === 'string' ? Buffer.from(expect, 'utf8') : Buffer.from(expect);
  return (msg) => msg.length >= want.length && msg.subarray(0, want.length).equals(want);
}

function describeExpect(expect: string | RegExp | Uint8Array): string {
  if (expect instanceof RegExp) return String(expect);
  return typeof expect === 'string' ? JSON.stringify(expect) : preview(expect);
}

/**
 * Send `send` to host:port from a connected UDP socket and wait for one reply.
 * With `expect`, the reply must start with it (string or bytes) or match it (RegExp, tested on the
 * UTF-8 text); the first reply decides, so a wrong one fails at once instead of at the timeout.
 * Prefix rather than HAProxy's substring match (`tcp-check expect string`) so that "NOT OK" does
 * not pass for "OK". A connected socket also hears ICMP port unreachable (ECONNREFUSED): a dead
 * server on the same host fails fast.
 */
export function probeUdp(
  check: { host: string; port: number; send: string | Uint8Array; expect?: string | RegExp | Uint8Array; timeoutMs: number },
  ctx: ProbeContext = { clock: systemClock },
): Promise<ProbeResult> {
  const what = `udp ${check.host}:${check.port}`;
  const matches = matcher(check.expect);
  const payload = typeof check.send === 'string' ? Buffer.from(check.send, 'utf8') : Buffer.from(check.send);
  return probe(ctx, check.timeoutMs, what, (finish) => {
    const sock = dgram.createSocket(net.isIPv6(check.host) ? 'udp6' : 'udp4');
    let closed = false;
    sock.on('error', (err) => finish(false, `${what}: ${errText(err)}`, err));
    sock.on('message', (msg) => {
      if (matches(msg)) finish(true, `${what}: reply ok`);
      else finish(false, `${what}: reply ${preview(msg)} does not match ${describeExpect(check.expect!)}`);
    });
    const close = () => {
      closed = true;
      try {
        sock.close();
      } catch {
        // already closed
      }
    };
    try {
      sock.connect(check.port, check.host, () => {
        if (closed) return;
        try {
          sock.send(payload, (err) => {
            if (err) finish(false, `${what}: send failed: ${errText(err)}`, err);
          });
        } catch (err) {
          finish(false, `${what}: send failed: ${errText(err)}`, err);
        }
      });
    } catch (err) {
      close(); // a bad port throws before any handler could release the socket
      throw err;
    }
    return close;
  });
}

