/**
 * How the /v1/watch client (agents.ts) reaches an agent: a connector opens one WebSocket and
 * reports what happens on it through handlers. The runtime-neutral one here takes any W3C
 * `WebSocket` constructor (a browser's, Deno's, Bun's, Node ≥ 22's global, or the `ws` package's,
 * which has the W3C surface too); the Node entry uses sdk/node/ws.ts, which speaks to `ws`
 * directly for what a W3C socket cannot do (request headers, a payload cap, the HTTP status of a
 * refused upgrade, protocol-level pings).
 */
import type { Clock, TimerHandle } from '../clock.js';

export interface WatchConnectOptions {
  /** Bearer token, when the agents need one. A W3C socket cannot send headers: it goes in the hello (agents accept it there). */
  token?: string;
  /** Largest frame accepted (where the socket can enforce it; the decoder checks it in any case). */
  maxPayload: number;
  /** Give the attempt up when the socket is not open within this time. */
  connectTimeoutMs: number;
  clock: Clock;
}

export interface WatchHandlers {
  open(): void;
  /** A frame: binary ones as bytes, text ones as a string. */
  message(data: Uint8Array | string): void;
  /** A protocol-level pong (only from connections with `ping`). */
  pong(): void;
  /** The agent answered the upgrade with an HTTP status (where the runtime can see it). */
  refused(status: number, statusText: string | undefined): void;
  error(err: Error): void;
  /** The socket is closed (once, after which no other handler is called). */
  close(): void;
}

export interface WatchConnection {
  /** A frame: bytes as a binary frame, a string as a text frame. */
  send(data: Uint8Array | string): void;
  /**
   * A protocol-level ping, where the runtime has one (Node's `ws`): the heartbeat then uses it and
   * `pong`. Without it the client sends `ping` frames and the agent answers `pong` frames.
   */
  ping?(): void;
  /** Close at once, without waiting for the closing handshake; `close` follows. */
  terminate(): void;
}

export type WatchConnector = (url: string, opts: WatchConnectOptions, handlers: WatchHandlers) => WatchConnection;

/** The W3C WebSocket surface the connector uses. */
export interface W3CWebSocket {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => W3CWebSocket;

/** The runtime's global `WebSocket`, if it has one. */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/**
 * A connector over a W3C `WebSocket` constructor (default: the global one). Binary frames are read
 * as ArrayBuffers. The connect timeout runs on the given clock; `terminate` reports the close at
 * once (in a microtask) rather than wait for a closing handshake a stalled agent never answers.
 */
export function webSocketConnector(WS: WebSocketConstructor | undefined = globalWebSocket()): WatchConnector {
  return (url, opts, h) => {
    if (!WS) throw new Error('this runtime has no global WebSocket: pass a WebSocket constructor (join(options, { WebSocket }))');
    const ws = new WS(url);
    ws.binaryType = 'arraybuffer';
    let done = false;
    let timer: TimerHandle | undefined = opts.clock.setTimeout(() => {
      timer = undefined;
      if (done) return;
      h.error(new Error(`agent ${url}: not open within ${opts.connectTimeoutMs} ms`));
      terminate();
    }, opts.connectTimeoutMs);
    timer.unref?.();
    const finish = () => {
      if (done) return;
      done = true;
      opts.clock.clearTimeout(timer);
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      h.close();
    };
    const terminate = () => {
      try {
        ws.close();
      } catch {
        // Closing a socket that failed: nothing to do.
      }
      if (!done) queueMicrotask(finish);
    };
    ws.onopen = () => {
      if (done) return;
      opts.clock.clearTimeout(timer);
      timer = undefined;
      h.open();
    };
    ws.onmessage = (ev) => {
      if (done) return;
      const d = ev.data;
      if (d instanceof ArrayBuffer) h.message(new Uint8Array(d));
      else if (ArrayBuffer.isView(d)) h.message(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      else if (typeof d === 'string') h.message(d);
    };
    ws.onerror = () => {
      if (!done) h.error(new Error(`agent ${url}: WebSocket error`));
    };
    ws.onclose = finish;
    return {
      send(bytes) {
        // OPEN only: a send while closing is dropped (the close handler follows).
        if (!done && ws.readyState === 1) ws.send(bytes);
      },
      terminate,
    };
  };
}
