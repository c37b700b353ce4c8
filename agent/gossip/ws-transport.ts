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
 *  - A socket that closes, or cannot be opened, is reported through onPeerClosed: a hint.
 *  - Limits: `maxPayload` on both sides (a larger wire frame closes that socket with 1009, as ws
 *    does); frames over `maxFrameBytes` are dropped and counted, before sealing on the way out and
 *    after opening on the way in.
 *  - `seal` (optional): applied to every frame out, `open` to every frame in; `open` returning
 *    undefined (wrong key, tampered) drops the frame and counts it.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Transport } from './transport.js';

export interface FrameSealer {
  seal(b: Uint8Array): Uint8Array;
  /** The plain frame, or undefined when it does not open (dropped and counted). */
  open(b: Uint8Array): Uint8Array | undefined;
}

export interface WsTransportOptions {
  /** This agent's address, ws://host:port, as peers reach it. */
  addr: string;
  /** Largest plain frame sent or accepted. */
  maxFrameBytes: number;
  seal?: FrameSealer;
  /** Bytes a peer's socket may have pending before frames to it are dropped. Default: maxFrameBytes (at least one frame always fits an empty socket). */
  maxPendingBytes?: number;
  /** Give up opening a socket after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Path of the gossip endpoint on peers. Default /v1/gossip. */
  path?: string;
  /** Most peers with an open or opening socket. Default 4096. */
  maxPeers?: number;
}

export interface WsTransportCounters {
  framesOut: number;
  bytesOut: number;
  framesIn: number;
  bytesIn: number;
  connects: number;
  connectFailures: number;
  inboundAccepted: number;
  dropped: {
    /** Over maxFrameBytes (out or in), or a wire frame over maxPayload (the socket closed). */
    tooLarge: number;
    /** The peer's socket had too many bytes pending. */
    slow: number;
    /** `open` refused it. */
    unsealed: number;
    /** Queued on a socket that closed before it opened, or sent after close(). */
    closed: number;
    /** Not a ws:// or wss:// address, or too many peers. */
    badAddr: number;
    /** A text frame where binary was expected. */
    notBinary: number;
  };
}

export interface WsTransport extends Transport {
  /** For the agent's HTTP server: take an upgrade request on /v1/gossip. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  counters(): WsTransportCounters;
}

/** Bytes a seal may add (nonce, tag, key id) beyond maxFrameBytes on the wire. */
export const SEAL_ALLOWANCE_BYTES = 1024;
/** Header in which an agent tells the peer it connects to where it can be reached. */
export const ADDR_HEADER = 'x-peerlb-addr';
/** Grace for close frames to flush before sockets are destroyed on close(). */
const CLOSE_GRACE_MS = 250;

interface Peer {
  ws: WebSocket;
  queue: Uint8Array[];
  queuedBytes: number;
  hinted: boolean;
}

export function createWsTransport(opts: WsTransportOptions): WsTransport {
  const maxFrame = opts.maxFrameBytes;
  const maxPayload = maxFrame + (opts.seal ? SEAL_ALLOWANCE_BYTES : 0);
  const maxPending = opts.maxPendingBytes ?? maxFrame;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const path = opts.path ?? '/v1/gossip';
  const maxPeers = opts.maxPeers ?? 4096;
  const seal = opts.seal;

  const c: WsTransportCounters = {
    framesOut: 0,
    bytesOut: 0,
    framesIn: 0,
    bytesIn: 0,
    connects: 0,
    connectFailures: 0,
    inboundAccepted: 0,
    dropped: { tooLarge: 0, slow: 0, unsealed: 0, closed: 0, badAddr: 0, notBinary: 0 },
  };
  const frameHandlers: ((from: string, frame: Uint8Array) => void)[] = [];
  const closeHandlers: ((addr: string) => void)[] = [];
  const peers = new Map<string, Peer>();
  const inbound = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false, clientTracking: false });
  wss.on('error', () => {});
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

  const receive = (from: string, data: RawData, isBinary: boolean) => {
    if (closed) return;
    if (!isBinary) {
      c.dropped.notBinary++;
      return;
    }
    const raw = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
    c.framesIn++;
    c.bytesIn += raw.length;
    let frame: Uint8Array | undefined = raw;
    if (seal) {
      try {
        frame = seal.open(raw);
      } catch {
        frame = undefined;
      }
      if (!frame) {
        c.dropped.unsealed++;
        return;
      }
    }
    if (frame.length > maxFrame) {
      c.dropped.tooLarge++;
      return;
    }
    for (const h of frameHandlers) h(from, frame);
  };

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
    c.connects++;
    const ws = new WebSocket(url, {
      maxPayload,
      perMessageDeflate: false,
      handshakeTimeout: connectTimeoutMs,
      headers: { [ADDR_HEADER]: opts.addr },
    });
    ws.binaryType = 'nodebuffer';
    const peer: Peer = { ws, queue: [], queuedBytes: 0, hinted: false };
    peers.set(to, peer);
    let opened = false;
    ws.on('open', () => {
      opened = true;
      for (const f of peer.queue) write(peer, f);
      peer.queue = [];
      peer.queuedBytes = 0;
    });
    ws.on('message', (data, isBinary) => receive(to, data, isBinary));
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') c.dropped.tooLarge++;
    });
    ws.on('close', () => {
      if (!opened) c.connectFailures++;
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
        const wire = seal ? seal.seal(frame) : frame;
        let peer = peers.get(to);
        if (!peer || peer.ws.readyState === WebSocket.CLOSING || peer.ws.readyState === WebSocket.CLOSED) peer = connect(to);
        if (!peer) return;
        if (peer.ws.readyState === WebSocket.CONNECTING) {
          if (peer.queuedBytes > 0 && peer.queuedBytes + wire.length > maxPending) {
            c.dropped.slow++;
            return;
          }
          peer.queue.push(wire);
          peer.queuedBytes += wire.length;
          return;
        }
        const pending = peer.ws.bufferedAmount;
        if (pending > 0 && pending + wire.length > maxPending) {
          c.dropped.slow++;
          return;
        }
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
      const claimed = req.headers[ADDR_HEADER];
      const peerAddr = typeof claimed === 'string' && claimed.length <= 2048 && gossipUrl(claimed) ? claimed : undefined;
      const from = peerAddr ?? `inbound:${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      try {
        wss.handleUpgrade(req, socket, head, (ws) => {
          if (closed) {
            ws.terminate();
            return;
          }
          c.inboundAccepted++;
          inbound.add(ws);
          ws.binaryType = 'nodebuffer';
          ws.on('message', (data, isBinary) => receive(from, data, isBinary));
          ws.on('error', (err: Error & { code?: string }) => {
            if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') c.dropped.tooLarge++;
          });
          ws.on('close', () => {
            inbound.delete(ws);
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
      const sockets = [...[...peers.values()].map((p) => p.ws), ...inbound];
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
