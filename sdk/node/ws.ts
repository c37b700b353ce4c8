/**
 * The /v1/watch connector of the Node entry, over the `ws` package: the bearer token goes in the
 * upgrade's `authorization` header (and in the hello, as from every client), frames over
 * `maxPayload` are refused by the socket, a refused upgrade's HTTP status is reported, and the
 * heartbeat uses protocol-level pings (sdk/core/discovery/websocket.ts says what a W3C socket
 * does instead).
 */
import WebSocket from 'ws';
import type { WatchConnector } from '../core/discovery/websocket.js';

export const wsConnector: WatchConnector = (url, opts, h) => {
  const ws = new WebSocket(url, {
    maxPayload: opts.maxPayload,
    handshakeTimeout: opts.connectTimeoutMs,
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : undefined,
  });
  ws.binaryType = 'nodebuffer';
  ws.on('open', () => h.open());
  ws.on('pong', () => h.pong());
  ws.on('unexpected-response', (_req, res) => {
    h.refused(res.statusCode ?? 0, res.statusMessage);
    res.resume();
    ws.terminate();
  });
  ws.on('message', (data: Buffer, isBinary) => h.message(isBinary ? data : data.toString('utf8')));
  ws.on('error', (err) => h.error(err));
  ws.on('close', () => h.close());
  return {
    send: (bytes) => ws.send(bytes),
    ping: () => ws.ping(),
    terminate: () => ws.terminate(),
  };
};
