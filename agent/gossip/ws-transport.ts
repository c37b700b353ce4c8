/**
 * The real gossip transport: binary WebSocket frames (`ws`) between agents.
 *
 * It does not own an HTTP server: the agent's one port serves /v1/gossip, /v1/watch, /metrics and
 * the dashboard, and its upgrade handler calls `handleUpgrade` for /v1/gossip.
 *
 *  - Outbound: one WebSocket per peer, opened on the first send, reused, and opened again on the
 *    next send after it closed. Frames wait while it connects. Each socket has a bound on pending
 *    bytes (queued + ws.bufferedAmount): past it, frames to that peer are dropped and counted, so a
 *    slow peer cannot make this agent buffer without end.
 *  - Inbound: the peer says its own address in the `x-peerlb-addr` header (its outbound socket
 *    comes from an ephemeral port), so that a close of its socket can be reported as a hint.
 *  - Replies: every frame is handed up with a `Via` that sends back on the socket it came in on
 *    (sealed with replyBinding), so that an answer never dials the address a frame claims.
 *  - A socket that closes, or cannot be opened, is reported through onPeerClosed: a hint.
 *  - Limits: `maxPayload` on both sides (a larger wire frame closes that socket with 1009, as ws
 *    does); frames over `maxFrameBytes` are dropped and counted, before sealing on the way out and
 *    after opening on the way in.
 *  - Binding (with `seal`): the accepting side puts 16 random bytes in the upgrade response
 *    (`x-peerlb-challenge`) and the dialer seals every frame on that socket with them as extra
 *    authenticated data (keyring.ts), so a frame captured on one socket opens on no other: a
 *    replay to another agent, or to the same agent on a new socket, fails authentication. Frames
 *    queued while a socket connects are sealed when it opens, with its challenge. A dialer that
 *    gets no valid challenge closes the socket (the peer is not sealing, or not peerlb).
 *  - `seal` (optional): applied to every frame out, `open` to every frame in; `open` returning
 *    undefined or { reject: 'auth' } (wrong key, tampered, not sealed) drops the frame, counts it
 *    and cuts that socket off (1008); { reject: 'replay' } drops and counts the frame only.
 *  - Rate limit on unauthenticated connections (with `seal`): each identity (remote IP and the
 *    address it claims in x-peerlb-addr) whose sockets fail authentication `authFailures.max`
 *    times within `authFailures.windowMs` has its upgrades refused (429) for
 *    `authFailures.blockMs`, and its unauthenticated sockets cut; the whole IP only after
 *    IP_FAILURE_FACTOR times as many failures, so a keyless process beside a genuine agent (same
 *    host or NAT) is blocked alone. An inbound socket that has not delivered one authentic frame
 *    within `authTimeoutMs` is closed.
 *  - Inbound sockets, sealed or open: at most maxPeers in all and maxPeersPerAddress from one IP,
 *    of which maxWaiting / maxWaitingPerAddress before their first frame, each with a fair share at
 *    the total (admission.ts: the oldest socket of the IP holding the most makes room); past an
 *    IP's share 429, past the total 503. A socket with no frame within firstFrameTimeoutMs closes.
 *  - Slow or stalled peers: a peer whose socket stays over maxPendingBytes for `slowPeerMs` is cut
 *    off (terminated, then reconnected on a later send); frames to it meanwhile are dropped.
 *  - TLS (issue 15): a wss:// agent dials wss:// peers (with `dialTls`: the CAs it trusts) and no
 *    ws:// one, a ws:// agent the reverse: a cluster is all-TLS or not, and a peer of the other
 *    scheme is a `scheme-mismatch` warning, its frames dropped (badAddr). A dial refused because
 *    the peer speaks TLS (x-peerlb-tls), or failing on TLS, says so in its connect-failed warning.
 *
 * Sealing is a layer around the sockets (sealing.ts), the rate limit and the hello deadlines are
 * in auth-limiter.ts; both, and the slow-peer window, run on the injected clock (`clock`). Only
 * the short grace for close frames to flush before a socket is destroyed stays on real time.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Via } from './transport.js';
import { AddressSlots, refuseSocket } from '../admission.js';
import { systemClock } from '../../sdk/core/clock.js';
import { AuthFailureLimiter, helloDeadlines, type AuthFailureLimit } from './auth-limiter.js';
import { CHALLENGE_HEADER, parseChallenge, plainLayer, replyBinding, sealingLayer } from './sealing.js';
import { TLS_REQUIRED_HEADER, tlsDialProblem } from '../tls.js';

export { DEFAULT_AUTH_FAILURE_LIMIT, type AuthFailureLimit } from './auth-limiter.js';
export { SEAL_ALLOWANCE_BYTES, CHALLENGE_HEADER, CHALLENGE_BYTES, parseChallenge, replyBinding, type FrameSealer } from './sealing.js';

export type { WsTransportOptions, TransportWarning, WsTransportCounters, WsTransport } from './ws-transport-types.js';
import type { WsTransportOptions, TransportWarning, WsTransportCounters, WsTransport } from './ws-transport-types.js';

/** Header in which an agent tells the peer it connects to where it can be reached. */
export const ADDR_HEADER = 'x-peerlb-addr';
/** Grace for close frames to flush before sockets are destroyed on close(). */
const CLOSE_GRACE_MS = 250;

interface Peer {
  ws: WebSocket;
  /** The challenge the accepting side gave this socket (with `seal`), once it is open. */
  binding: Buffer | undefined;
  /** Plain frames waiting for the socket to open (sealed then, with its binding). */
  queue: Uint8Array[];
  queuedBytes: number;
  hinted: boolean;
  /** Since when frames to it are dropped for being slow (undefined: it keeps up). */
  slowSince: number | undefined;
}

/** A socket frames arrive on, and whether it may deliver any more. */
interface Conn {
  ws: WebSocket;
  /** Remote IP of an inbound socket (for the rate limit). */
  ip: string | undefined;
  /** Who the socket says it is: its IP and the address it claims (x-peerlb-addr), for the rate limit. */
  identity: string | undefined;
  /** It delivered a frame (for the first-frame timeout and the waiting slots). */
  heard: boolean;
  authed: boolean;
  cut: boolean;
  /** What frames on this socket are sealed with (with `seal`). */
  binding: Buffer | undefined;
  /** What frames sent back on it are sealed with: replyBinding of an inbound socket's challenge. */
  replyBinding?: Buffer | undefined;
  /** This side opened it. */
  dialed?: boolean;
  /** Its reply handle, made once. */
  via?: Via;
}

export function createWsTransport(opts: WsTransportOptions): WsTransport {
  const maxFrame = opts.maxFrameBytes;
  const layer = opts.seal ? sealingLayer(opts.seal) : plainLayer;
  const sealed = layer.sealed;
  const clock = opts.clock ?? systemClock;
  const maxPayload = maxFrame + layer.allowance;
  const maxPending = opts.maxPendingBytes ?? maxFrame;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const path = opts.path ?? '/v1/gossip';
  const maxPeers = opts.maxPeers ?? 4096;
  const limiter = new AuthFailureLimiter(clock, opts.authFailures);
  const limit: Readonly<AuthFailureLimit> = limiter.limit;
  const authTimeoutMs = opts.authTimeoutMs ?? 10_000;
  const firstFrameMs = opts.firstFrameTimeoutMs ?? authTimeoutMs;
  const inboundSlots = new AddressSlots<Conn>(maxPeers, opts.maxPeersPerAddress ?? 256, (conn) => {
    c.inboundEvicted++;
    cut(conn, 'closed to make room: too many gossip sockets, and your address holds the most', false);
  });
  const waitingSlots = new AddressSlots<Conn>(opts.maxWaiting ?? 256, opts.maxWaitingPerAddress ?? 32, (conn) => {
    c.inboundEvicted++;
    inboundSlots.delete(conn);
    cut(conn, 'closed to make room: too many gossip sockets waiting for a first frame, and your address holds the most', false);
  });
  const slowPeerMs = opts.slowPeerMs ?? 5000;
  const warn = (w: TransportWarning): void => {
    try {
      opts.onWarning?.(w);
    } catch {
      /* a logger's problem is not the transport's */
    }
  };
  const c: WsTransportCounters = {
    framesOut: 0,
    bytesOut: 0,
    framesIn: 0,
    bytesIn: 0,
    connects: 0,
    connectFailures: 0,
    inboundAccepted: 0,
    inboundRefused: 0,
    inboundAddressRefused: 0,
    firstFrameTimeouts: 0,
    inboundEvicted: 0,
    authCutoffs: 0,
    slowCutoffs: 0,
    dropped: { tooLarge: 0, slow: 0, unsealed: 0, replay: 0, closed: 0, badAddr: 0, notBinary: 0 },
  };
  const frameHandlers: ((from: string, frame: Uint8Array, via?: Via) => void)[] = [];
  const closeHandlers: ((addr: string) => void)[] = [];
  const peers = new Map<string, Peer>();
  const inbound = new Map<WebSocket, Conn>();
  const wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false, clientTracking: false });
  wss.on('error', () => {});
  /** Upgrade request → the challenge this side gives that socket (sealed clusters). */
  const challenges = new WeakMap<IncomingMessage, Buffer>();
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    const b = challenges.get(req);
    if (b) headers.push(`${CHALLENGE_HEADER}: ${b.toString('base64')}`);
  });
  let closed = false;

  const hint = (addr: string) => {
    if (closed) return;
    for (const h of closeHandlers) {
      try {
        h(addr);
      } catch {
        /* a handler's bug must not break the socket's event loop */
      }
    }
  };

  /**
   * An authentication failure on `conn`: a strike for its identity and IP (auth-limiter.ts); when
   * one becomes blocked, its other sockets that never authenticated go too.
   */
  const strike = (conn: Pick<Conn, 'ip' | 'identity'>) => {
    const { ip, identity } = conn;
    const s = limiter.strike(ip, identity);
    if (s.identity) for (const o of inbound.values()) if (o.identity === identity && !o.authed) cut(o, 'too many authentication failures');
    if (s.ip) for (const o of inbound.values()) if (o.ip === ip && !o.authed) cut(o, 'too many authentication failures from this address');
  };

  /** Close an inbound socket (1008); `auth`: for an authentication failure or timeout (counted as authCutoffs). */
  const cut = (conn: Conn, why: string, auth = true) => {
    if (conn.cut) return;
    conn.cut = true;
    if (auth) c.authCutoffs++;
    try {
      conn.ws.close(1008, why);
    } catch {
      /* already closing */
    }
    const t = setTimeout(() => conn.ws.terminate(), CLOSE_GRACE_MS);
    t.unref();
  };

  const receive = (from: string, data: RawData, isBinary: boolean, conn: Conn) => {
    if (closed) return;
    if (conn.cut) {
      c.dropped.closed++;
      return;
    }
    if (!isBinary) {
      c.dropped.notBinary++;
      return;
    }
    const raw = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
    if (!conn.heard && (!sealed || conn.authed)) {
      conn.heard = true;
      waitingSlots.delete(conn);
    }
    c.framesIn++;
    c.bytesIn += raw.length;
    let frame: Uint8Array = raw;
    if (sealed) {
      const opened = layer.inbound(raw, conn.binding);
      if ('frame' in opened) {
        frame = opened.frame;
        conn.authed = true;
        if (!conn.heard) {
          conn.heard = true;
          waitingSlots.delete(conn);
        }
      } else if (opened.reject === 'replay') {
        c.dropped.replay++;
        return;
      } else {
        // Not authentic: the frame goes, and so does the socket; its IP earns a strike.
        c.dropped.unsealed++;
        if (!conn.cut) warn({ kind: 'auth-failed', peer: from });
        cut(conn, 'authentication failed');
        strike(conn);
        return;
      }
    }
    if (frame.length > maxFrame) {
      c.dropped.tooLarge++;
      return;
    }
    conn.via ??= { reply: (f) => reply(conn, f), dialed: conn.dialed === true };
    for (const h of frameHandlers) h(from, frame, conn.via);
  };

  /** A frame back on the socket `conn` (answers go where the question came from: no dial). */
  const reply = (conn: Conn, frame: Uint8Array) => {
    try {
      if (closed || conn.cut || conn.ws.readyState !== WebSocket.OPEN) {
        c.dropped.closed++;
        return;
      }
      if (frame.length > maxFrame) {
        c.dropped.tooLarge++;
        return;
      }
      const wire = layer.outbound(frame, conn.dialed ? dialBindings.get(conn) : conn.replyBinding);
      const pending = conn.ws.bufferedAmount;
      if (pending > 0 && pending + wire.length > maxPending) {
        c.dropped.slow++;
        return;
      }
      c.framesOut++;
      c.bytesOut += wire.length;
      conn.ws.send(wire, { binary: true }, () => {});
    } catch {
      c.dropped.closed++;
    }
  };
  /** The binding a dialer seals with on its own socket (the challenge itself). */
  const dialBindings = new WeakMap<Conn, Buffer>();

  /** The cluster's scheme: this agent's own (undefined: an address that is no URL, as some tests give). */
  const scheme = (() => {
    try {
      return new URL(opts.addr).protocol;
    } catch {
      return undefined;
    }
  })();

  const gossipUrl = (to: string): string | undefined => {
    try {
      const u = new URL(to);
      if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return undefined;
      return new URL(path, u).toString();
    } catch {
      return undefined;
    }
  };

  const connect = (to: string): Peer | undefined => {
    const url = gossipUrl(to);
    if (!url || peers.size >= maxPeers) {
      c.dropped.badAddr++;
      return undefined;
    }
    const isTls = url.startsWith('wss:');
    if (scheme !== undefined && isTls !== (scheme === 'wss:')) {
      c.dropped.badAddr++;
      warn({ kind: 'scheme-mismatch', peer: to, error: `this agent is ${scheme}//, the peer ${isTls ? 'wss' : 'ws'}://` });
      return undefined;
    }
    c.connects++;
    const ws = new WebSocket(url, {
      maxPayload,
      perMessageDeflate: false,
      handshakeTimeout: connectTimeoutMs,
      headers: { [ADDR_HEADER]: opts.addr },
      ...(isTls ? opts.dialTls?.() : undefined),
    });
    ws.binaryType = 'nodebuffer';
    const peer: Peer = { ws, binding: undefined, queue: [], queuedBytes: 0, hinted: false, slowSince: undefined };
    const conn: Conn = { ws, ip: undefined, identity: undefined, heard: true, authed: false, cut: false, binding: undefined, dialed: true };
    peers.set(to, peer);
    let opened = false;
    let lastError: string | undefined;
    let notSealing = false;
    ws.on('upgrade', (res: IncomingMessage) => {
      peer.binding = parseChallenge(res.headers[CHALLENGE_HEADER]);
      // Frames the accepting side sends back on this socket are sealed in the other direction.
      conn.binding = replyBinding(peer.binding);
      if (peer.binding) dialBindings.set(conn, peer.binding);
    });
    ws.on('open', () => {
      if (sealed && !peer.binding) {
        // Not a sealing peerlb agent: nothing we send there could open, nor should it.
        notSealing = true;
        warn({ kind: 'peer-not-sealing', peer: to });
        c.dropped.closed += peer.queue.length;
        peer.queue = [];
        peer.queuedBytes = 0;
        ws.terminate();
        return;
      }
      opened = true;
      try {
        for (const f of peer.queue) write(peer, layer.outbound(f, peer.binding));
      } catch {
        c.dropped.closed++;
      }
      peer.queue = [];
      peer.queuedBytes = 0;
    });
    ws.on('message', (data, isBinary) => receive(to, data, isBinary, conn));
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      // Not a WebSocket answer: say why when the peer said (its port speaks TLS), then give up the socket.
      lastError = res.headers[TLS_REQUIRED_HEADER]
        ? `the peer's port speaks TLS (${res.statusCode}): dial it at wss://; a cluster is all-TLS or not`
        : `Unexpected server response: ${res.statusCode}`;
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') c.dropped.tooLarge++;
      // The reason from an unexpected response stays (terminate() then reports "closed before established").
      if (lastError?.startsWith("the peer's port speaks TLS") || lastError?.startsWith('Unexpected server response')) return;
      lastError = tlsDialProblem(err) ?? (err.code && !err.code.startsWith('WS_ERR') ? err.code : err.message);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (!opened) c.connectFailures++;
      if (!opened && !notSealing && !closed) warn({ kind: 'connect-failed', peer: to, error: lastError ?? `closed (${code})` });
      else if (opened && code === 1008) warn({ kind: 'auth-rejected', peer: to, error: reason.toString('utf8').slice(0, 200) || 'closed (1008)' });
      if (peers.get(to) === peer) peers.delete(to);
      c.dropped.closed += peer.queue.length;
      peer.queue = [];
      peer.queuedBytes = 0;
      if (!peer.hinted) {
        peer.hinted = true;
        hint(to);
      }
    });
    return peer;
  };

  const write = (peer: Peer, frame: Uint8Array) => {
    c.framesOut++;
    c.bytesOut += frame.length;
    peer.ws.send(frame, { binary: true }, () => {
      /* errors surface as 'close' */
    });
  };

  const transport: WsTransport = {
    addr: opts.addr,

    send(to: string, frame: Uint8Array): void {
      try {
        if (closed) {
          c.dropped.closed++;
          return;
        }
        if (frame.length > maxFrame) {
          c.dropped.tooLarge++;
          return;
        }
        let peer = peers.get(to);
        if (!peer || peer.ws.readyState === WebSocket.CLOSING || peer.ws.readyState === WebSocket.CLOSED) peer = connect(to);
        if (!peer) return;
        if (peer.ws.readyState === WebSocket.CONNECTING) {
          if (peer.queuedBytes > 0 && peer.queuedBytes + frame.length > maxPending) {
            c.dropped.slow++;
            return;
          }
          peer.queue.push(Uint8Array.from(frame));
          peer.queuedBytes += frame.length;
          return;
        }
        const wire = layer.outbound(frame, peer.binding);
        const pending = peer.ws.bufferedAmount;
        if (pending > 0 && pending + wire.length > maxPending) {
          c.dropped.slow++;
          const now = clock.now();
          peer.slowSince ??= now;
          if (now - peer.slowSince >= slowPeerMs) {
            // Stalled or too slow for too long: cut it off; a later send opens a fresh socket.
            c.slowCutoffs++;
            peers.delete(to);
            peer.ws.terminate();
          }
          return;
        }
        peer.slowSince = undefined;
        write(peer, wire);
      } catch {
        // Best effort: a send never throws (a seal that throws, a socket in a bad state).
        c.dropped.closed++;
      }
    },

    onFrame(h) {
      frameHandlers.push(h);
    },

    onPeerClosed(h) {
      closeHandlers.push(h);
    },

    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      if (closed) {
        socket.destroy();
        return;
      }
      const ip = req.socket.remoteAddress;
      const claimed = req.headers[ADDR_HEADER];
      const peerAddr = typeof claimed === 'string' && claimed.length <= 2048 && gossipUrl(claimed) ? claimed : undefined;
      const identity = ip === undefined ? undefined : `${ip} ${peerAddr ?? '-'}`;
      if (sealed && limiter.blocked(ip, identity)) {
        c.inboundRefused++;
        refuseSocket(socket, '429 Too Many Requests', 'too many authentication failures from this address (and claimed agent address); try again later\n', { 'retry-after': Math.ceil(limit.blockMs / 1000) });
        return;
      }
      const key = ip ?? '?';
      const full = inboundSlots.check(key) ?? waitingSlots.check(key);
      if (full) {
        c.inboundRefused++;
        if (full === 'address') {
          c.inboundAddressRefused++;
          refuseSocket(socket, '429 Too Many Requests', `too many gossip connections from ${key}: at most ${inboundSlots.maxPerAddress}, of which ${waitingSlots.maxPerAddress} before their first frame\n`, { 'retry-after': 1 });
        } else refuseSocket(socket, '503 Service Unavailable', `too many gossip connections: at most ${maxPeers}\n`, { 'retry-after': 1 });
        return;
      }
      const from = peerAddr ?? `inbound:${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      const binding = layer.challenge();
      if (binding) challenges.set(req, binding);
      try {
        wss.handleUpgrade(req, socket, head, (ws) => {
          if (closed) {
            ws.terminate();
            return;
          }
          const conn: Conn = { ws, ip, identity, heard: false, authed: !sealed, cut: false, binding, replyBinding: replyBinding(binding) };
          if (inboundSlots.add(key, conn) || waitingSlots.add(key, conn)) {
            inboundSlots.delete(conn);
            c.inboundRefused++;
            ws.close(1013, 'too many gossip connections');
            setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
            return;
          }
          c.inboundAccepted++;
          inbound.set(ws, conn);
          ws.binaryType = 'nodebuffer';
          const cancelDeadlines = helloDeadlines({
            clock,
            sealed,
            authTimeoutMs,
            firstFrameTimeoutMs: firstFrameMs,
            state: () => conn,
            onAuthTimeout: () => {
              cut(conn, 'no authentic frame in time');
              strike(conn);
            },
            onFirstFrameTimeout: () => {
              c.firstFrameTimeouts++;
              cut(conn, 'no frame in time', false);
            },
          });
          ws.on('message', (data, isBinary) => receive(from, data, isBinary, conn));
          ws.on('error', (err: Error & { code?: string }) => {
            if (err.code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return;
            c.dropped.tooLarge++;
            // An oversized frame from a socket that never authenticated: a failure of its address.
            if (sealed && !conn.authed) strike(conn);
          });
          ws.on('close', () => {
            cancelDeadlines();
            inbound.delete(ws);
            inboundSlots.delete(conn);
            waitingSlots.delete(conn);
            if (peerAddr) hint(peerAddr);
          });
        });
      } catch {
        socket.destroy();
      }
    },

    counters(): WsTransportCounters {
      return { ...c, dropped: { ...c.dropped } };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const sockets = [...[...peers.values()].map((p) => p.ws), ...inbound.keys()];
      for (const p of peers.values()) {
        c.dropped.closed += p.queue.length;
        p.queue = [];
      }
      peers.clear();
      inbound.clear();
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === WebSocket.CLOSED) return resolve();
              const t = setTimeout(() => {
                ws.terminate();
                resolve();
              }, CLOSE_GRACE_MS);
              t.unref();
              ws.once('close', () => {
                clearTimeout(t);
                resolve();
              });
              try {
                if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
                else ws.close(1001, 'agent stopping');
              } catch {
                ws.terminate();
              }
            }),
        ),
      );
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  return transport;
}
