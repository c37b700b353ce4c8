/**
 * The public types of ws-transport.ts (moved out of it to keep that file in bounds): its options,
 * its warnings and its counters.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../sdk/core/clock.js';
import type { AuthFailureLimit } from './auth-limiter.js';
import type { FrameSealer } from './sealing.js';
import type { Transport } from './transport.js';

export interface WsTransportOptions {
  /** This agent's address, ws://host:port, as peers reach it. */
  addr: string;
  /** Largest plain frame sent or accepted. */
  maxFrameBytes: number;
  seal?: FrameSealer;
  /** For the hello deadlines, the rate limit's windows and the slow-peer window. Default: the system clock. */
  clock?: Clock;
  /** Bytes a peer's socket may have pending before frames to it are dropped. Default: maxFrameBytes (at least one frame always fits an empty socket). */
  maxPendingBytes?: number;
  /** Give up opening a socket after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Path of the gossip endpoint on peers. Default /v1/gossip. */
  path?: string;
  /** Most peers with an open or opening socket, and most inbound sockets. Default 4096. */
  maxPeers?: number;
  /** Most inbound sockets from one IP (agents on one host share it). Default 256. */
  maxPeersPerAddress?: number;
  /** Inbound sockets that have not delivered a frame yet: in all, and per IP. Default 256 and 32. */
  maxWaiting?: number;
  maxWaitingPerAddress?: number;
  /** An inbound socket must deliver a frame (with `seal`: an authentic one) within this time. Default authTimeoutMs. */
  firstFrameTimeoutMs?: number;
  /** With `seal`: rate limit on failing (unauthenticated) connections per remote IP. */
  authFailures?: Partial<AuthFailureLimit>;
  /** With `seal`: an inbound socket must deliver an authentic frame within this time. Default 10 000 ms. */
  authTimeoutMs?: number;
  /** A peer over maxPendingBytes for this long is cut off. Default 5000 ms. */
  slowPeerMs?: number;
  /** Told of failures worth a log line (the agent rate-limits them); must not throw. */
  onWarning?: (w: TransportWarning) => void;
  /**
   * Options of a dial to a wss:// peer, read at each dial (a reload may change them): the CAs
   * trusted (undefined: Node's defaults). The scheme of `addr` is the cluster's: a peer of the
   * other scheme (ws:// from a wss:// agent, or the reverse) is not dialed (a cluster is all-TLS
   * or not; agent/tls.ts).
   */
  dialTls?: () => { ca?: (string | Buffer)[] | undefined };
}

/**
 * What went wrong with a peer, for the agent's log:
 *  - `connect-failed`: a socket to `peer` could not be opened (`error`: ECONNREFUSED, a timeout, an HTTP status);
 *  - `auth-rejected`: `peer` closed our socket because our frames fail to authenticate there (wrong or missing key);
 *  - `peer-not-sealing`: `peer` gave no challenge, so it has no key: nothing is sent to it;
 *  - `auth-failed`: frames from `peer` (its claimed address, else ip:port) fail to authenticate here;
 *  - `scheme-mismatch`: `peer` is of the other scheme (ws:// vs wss://): it is not dialed.
 */
export interface TransportWarning {
  kind: 'connect-failed' | 'auth-rejected' | 'peer-not-sealing' | 'auth-failed' | 'scheme-mismatch';
  peer: string;
  error?: string;
}

export interface WsTransportCounters {
  framesOut: number;
  bytesOut: number;
  framesIn: number;
  bytesIn: number;
  connects: number;
  connectFailures: number;
  inboundAccepted: number;
  /** Upgrades refused: the remote IP is blocked after authentication failures (429), or too many inbound sockets (503). */
  inboundRefused: number;
  /** Of those: refused for the IP's share of inbound or waiting sockets (429). */
  inboundAddressRefused: number;
  /** Inbound sockets closed: no first frame in time (open clusters; sealed ones count authCutoffs), or to make room for another IP's (fair share). */
  firstFrameTimeouts: number;
  inboundEvicted: number;
  /** Sockets cut off: authentication failed or timed out. */
  authCutoffs: number;
  /** Sockets cut off: the peer stayed over maxPendingBytes for slowPeerMs. */
  slowCutoffs: number;
  dropped: {
    /** Over maxFrameBytes (out or in), or a wire frame over maxPayload (the socket closed). */
    tooLarge: number;
    /** The peer's socket had too many bytes pending. */
    slow: number;
    /** `open` refused it: not authentic (wrong key, tampered, unsealed). */
    unsealed: number;
    /** `open` refused it: authentic but replayed, or its timestamp is out of the window. */
    replay: number;
    /** Queued on a socket that closed before it opened, or sent after close(). */
    closed: number;
    /** Not a ws:// or wss:// address, one of the other scheme than this agent's, or too many peers. */
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
