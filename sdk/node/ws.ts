/**
 * The /v1/watch connector of the Node entry, over the `ws` package: the bearer token goes in the
 * upgrade's `authorization` header (and in the hello, as from every client), frames over
 * `maxPayload` are refused by the socket, a refused upgrade's HTTP status is reported, and the
 * heartbeat uses protocol-level pings (sdk/core/discovery/websocket.ts says what a W3C socket
 * does instead).
 */
import tls from 'node:tls';
import WebSocket from 'ws';
import type { WatchConnector } from '../core/discovery/websocket.js';

/** What a Node client trusts for wss:// agents besides Node's own CAs: PEM certificates (join's `ca`). */
export type TrustedCa = string | Buffer | Array<string | Buffer>;

/**
 * The connector, trusting `ca` (PEM) for wss:// agents when given, in addition to Node's default
 * CAs (and NODE_EXTRA_CA_CERTS): an agent on a private CA (`peerlb agent --tls-cert`).
 */
export function wsConnectorWith(tls: { ca?: TrustedCa } = {}): WatchConnector {
  return (url, opts, h) => connectWs(url, opts, h, tls.ca);
}

export const wsConnector: WatchConnector = (url, opts, h) => connectWs(url, opts, h, undefined);

function connectWs(url: string, opts: Parameters<WatchConnector>[1], h: Parameters<WatchConnector>[2], ca: TrustedCa | undefined): ReturnType<WatchConnector> {
  const ws = new WebSocket(url, {
    ...(ca === undefined ? {} : { ca: withDefaultCas(ca) }),
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
}

/**
 * `ca` replaces Node's CA list for the connection: Node's bundled roots are put back, so that a
 * `ca` adds to what is trusted rather than narrowing it to the private CA.
 */
export function withDefaultCas(ca: TrustedCa): Array<string | Buffer> {
  return [...tls.rootCertificates, ...(Array.isArray(ca) ? ca : [ca])];
}
