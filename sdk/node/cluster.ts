/**
 * The Node entry's cluster: the runtime-neutral one (sdk/core/cluster.ts) given Node's transports —
 * the `ws` watch connector, the node:crypto verifier and KeyObject keys, the system resolver for
 * static host names, mDNS discovery, TCP connect with failover and UDP — and Node's types on
 * `connect` (a net.Socket) and `udp` (a UdpClient).
 */
import type net from 'node:net';
import { EventEmitter } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { Emitter } from '../core/emitter.js';
import { Cluster as CoreCluster, join as coreJoin, type ClusterAdapters, type ClusterEvents } from '../core/cluster.js';
import type { JoinOptions as CoreJoinOptions } from '../core/options.js';
import { connectWithFailover, type ConnectOptions } from './tcp.js';
import { UdpClient, type UdpOptions } from './udp.js';
import { MdnsDiscovery } from './mdns-discovery.js';
import { keyObjectOf, nodePublicKey, nodeVerifier } from './signing.js';
import { systemResolver } from './resolve.js';
import { wsConnector, wsConnectorWith, withDefaultCas, type TrustedCa } from './ws.js';
import { BadOptionError } from '../core/errors.js';
import { msgpackWatchCodec } from '../core/msgpack.js';
import { WebSocket } from 'ws';
import type { WebSocketConstructor } from '../core/discovery/websocket.js';
import type { WebSocketOptions } from '../core/websocket-connect.js';

export interface JoinOptions extends CoreJoinOptions {
  /**
   * Verify announcements with the cluster's Ed25519 public key (what `peerlb keygen --public`
   * prints, PEM, base64 of the SPKI DER, hex, or a KeyObject; sdk/node/signing.ts parsePublicKey):
   * servers from mDNS or agents that are not signed by their own agent with it are ignored
   * and reported through the 'rejected' event. Static lists and custom sources are not checked.
   */
  verify?: { publicKey: string | KeyObject };
  /**
   * PEM certificate(s) to trust for wss:// agents (/v1/watch, from `discovery.agents` or found by
   * mDNS) and wss:// servers (`cluster.websocket()`), in addition to Node's bundled root CAs: a
   * private CA, or an agent's self-signed `--tls-cert`. Node only (a browser trusts what it trusts).
   */
  ca?: TrustedCa;
}

/** Node's transports for the core cluster. */
export const nodeAdapters: ClusterAdapters = {
  watch: wsConnector,
  // Binary msgpack frames: smaller than the core's default JSON text, and Node ships the codec anyway.
  watchCodec: msgpackWatchCodec,
  // For cluster.websocket(): the `ws` package's WebSocket has the W3C surface (addEventListener).
  WebSocket: WebSocket as unknown as WebSocketConstructor,
  verifier: nodeVerifier,
  parsePublicKey: nodePublicKey,
  resolve: systemResolver,
  mdns: (o) => new MdnsDiscovery({ ...o, verify: o.verify ? keyObjectOf(o.verify) : undefined }),
  connect: (balancer, key, opts, service) => connectWithFailover(balancer, key, opts as ConnectOptions, service),
  udp: (balancer, opts) => new UdpClient(balancer, opts as UdpOptions | undefined),
};

/** A live view of a service's servers and the way to reach them. Made by `join`. */
export class Cluster extends CoreCluster {
  /**
   * Node's rejection handler for async listeners (EventEmitter.captureRejectionSymbol): when set,
   * a listener's rejected promise is passed to it (sdk/core/emitter.ts).
   */
  declare [EventEmitter.captureRejectionSymbol]?: <K>(error: Error, event: K | keyof ClusterEvents, ...args: K extends keyof ClusterEvents ? ClusterEvents[K] : never) => void;

  /** A TCP connection to a picked server, with failover to others on refusal, reset or timeout. */
  override connect(opts: ConnectOptions = {}): Promise<net.Socket> {
    return super.connect(opts) as Promise<net.Socket>;
  }

  /**
   * A WebSocket (the `ws` package's) already open to a picked server, with failover to others on
   * error, close or timeout (see the core Cluster's websocket()).
   */
  override websocket(opts: WebSocketOptions = {}): Promise<WebSocket> {
    return super.websocket(opts) as Promise<unknown> as Promise<WebSocket>;
  }

  /** A UDP socket that picks a server per datagram (or per key); replies say which server sent them. */
  override udp(opts?: UdpOptions): UdpClient {
    return super.udp(opts) as UdpClient;
  }
}

/*
 * In Node, a Cluster is a Node EventEmitter, as it was before the core moved to its own emitter:
 * `cluster instanceof EventEmitter`, the MaxListenersExceededWarning, `EventEmitter.captureRejections`,
 * `errorMonitor` and the statics (`Cluster.once`, `Cluster.defaultMaxListeners`) all behave as
 * Node's, because the methods are Node's. The core's Emitter is the prototype of the core classes;
 * here Node's EventEmitter goes beneath it (for instanceof and the statics) and Node's methods go
 * onto the Node Cluster (they keep their state in the instance, created on first use).
 */
Object.setPrototypeOf(Emitter.prototype, EventEmitter.prototype);
Object.setPrototypeOf(Emitter, EventEmitter);
for (const key of Reflect.ownKeys(EventEmitter.prototype)) {
  if (key === 'constructor') continue;
  Object.defineProperty(Cluster.prototype, key, Reflect.getOwnPropertyDescriptor(EventEmitter.prototype, key)!);
}

/**
 * Join a service: discover its servers and keep a live view of them.
 *
 *   const cluster = await join({ service: 'game', discovery: { mdns: { interface: '127.0.0.1' } } });
 *
 * Resolves with a settled view, so that the first picks spread over the servers there are (not
 * all onto the first one heard of): a static list at once; agents after the first full snapshot;
 * mDNS once the first query round has had its answers (RFC 6762 §5.2: one second) or, with a
 * watch subscription, after that agent's first snapshot, whichever comes first; a custom source
 * when its `settled()` resolves (without one, at its first server). Never later than
 * `waitForServersMs`. Rejects with a BadOptionError naming the option that is wrong.
 */
export async function join(options: JoinOptions): Promise<Cluster> {
  if (options === null || typeof options !== 'object' || !('ca' in options)) return (await coreJoin(options, nodeAdapters, (o, s, b, a) => new Cluster(o, s, b, a))) as Cluster;
  const { ca, ...rest } = options;
  const isPem = (c: unknown) => (typeof c === 'string' && c.length > 0) || (Buffer.isBuffer(c) && c.length > 0);
  if (ca !== undefined && !(isPem(ca) || (Array.isArray(ca) && ca.length > 0 && ca.every(isPem))))
    throw new BadOptionError('ca', 'must be a PEM certificate (a non-empty string or Buffer) or a non-empty array of them');
  return (await coreJoin(rest, ca === undefined ? nodeAdapters : caAdapters(ca), (o, s, b, a) => new Cluster(o, s, b, a))) as Cluster;
}

/** Node's adapters with `ca` trusted by the watch connector and by cluster.websocket()'s sockets. */
function caAdapters(ca: TrustedCa): ClusterAdapters {
  const trusted = withDefaultCas(ca);
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca: trusted });
    }
  }
  return { ...nodeAdapters, watch: wsConnectorWith({ ca }), WebSocket: TrustingWebSocket as unknown as WebSocketConstructor };
}
