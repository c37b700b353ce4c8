/**
 * peerlb/sdk/core — the runtime-neutral client: no Node built-ins, no `ws`, no mDNS library, so it
 * runs in browsers, Deno, Bun and Node alike. Discovery over agents' /v1/watch (a W3C WebSocket:
 * `globalThis.WebSocket` by default), static lists of addresses, or your own source; the live view,
 * `pick()` and every picker; signatures checked with WebCrypto. TCP `connect`, `udp`, mDNS
 * discovery and host names in static lists need Node's transports: use `peerlb/sdk` there (here
 * they are an UnsupportedError naming the option).
 */
export {
  join,
  Cluster,
  MAX_BUFFERED_REJECTIONS,
  type ClusterAdapters,
  type ClusterEvents,
  type ClusterFactory,
  type MdnsSourceOptions,
  type ServerStats,
  type UdpLike,
} from './cluster.js';
export type { JoinOptions, StaticServer, DiscoveryOptions, MdnsDiscoveryOptions, PublicKeyObject, PublicKeyParser } from './options.js';
export type { Server, ServerView } from './server.js';
export type { WebSocketOptions, GameWebSocket, GameWebSocketConstructor } from './websocket-connect.js';
export { STRATEGY_NAMES, type StrategyName } from './pickers/index.js';
export type { DiscoverySource, DiscoverySink } from './discovery/source.js';
export { createFeed, type Feed } from './discovery/feed.js';
export { AgentWatch, type AgentWatchOptions } from './discovery/agents.js';
export type { WatchCodec } from './discovery/codec.js';
export { jsonWatchCodec } from './discovery/json-codec.js';
// msgpack.ts is the only core module that imports msgpackr: a bundle that does not use these
// drops it (package.json marks sdk/core free of side effects).
export { decodeWatchServerFrame, encodeWatchFrame, msgpackWatchCodec } from './msgpack.js';
export {
  webSocketConnector,
  globalWebSocket,
  type W3CWebSocket,
  type WebSocketConstructor,
  type WatchConnector,
  type WatchConnection,
  type WatchConnectOptions,
  type WatchHandlers,
} from './discovery/websocket.js';
export type { HostResolver } from './discovery/static.js';
export { hashKey, type Key } from './hash.js';
export * from './errors.js';
export { SEAT_MARK_MS, type ReserveOptions, type Reservation, type FetchLike } from './seats.js';
export {
  PROTOCOL_VERSION,
  WATCH_PATH,
  MAX_WATCH_FRAME_BYTES,
  parseWatchServerFrame,
  parseAgentUrl,
  parseUsableServerRecord,
  type ServerRecord,
  type LoadReport,
  type LoadSeats,
  type LoadSource,
  type Health,
  type WatchServerFrame,
  type WatchClientFrame,
  type WatchPingFrame,
} from './protocol.js';
export { webCryptoVerifier, parsePublicKeyText, recordSigningBytes, mdnsSigningBytes, type PublicKey, type SignatureVerifier, type RejectReason } from './signing.js';
export { systemClock, ManualClock, type Clock, type TimerHandle } from './clock.js';
export { XorShiftRandom, type Random } from './random.js';
export { Emitter, type EventMap } from './emitter.js';
