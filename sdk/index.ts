/**
 * peerlb/sdk — the client half of peerlb: discover a service's servers and pick one directly for
 * every UDP send or TCP connect. See README.md. The Node entry: the runtime-neutral core
 * (sdk/core/, also `peerlb/sdk/core`) with Node's transports (sdk/node/).
 */
export { join, Cluster, type JoinOptions } from './node/cluster.js';
export { type ClusterEvents, type ServerStats } from './core/cluster.js';
export type { StaticServer, DiscoveryOptions, MdnsDiscoveryOptions } from './core/options.js';
export type { Server, ServerView } from './core/server.js';
export type { ConnectOptions } from './node/tcp.js';
export type { WebSocketOptions } from './core/websocket-connect.js';
export { UdpClient, type UdpOptions, type UdpEvents } from './node/udp.js';
export { STRATEGY_NAMES, type StrategyName } from './core/pickers/index.js';
export type { DiscoverySource, DiscoverySink } from './core/discovery/source.js';
export { createFeed, type Feed } from './core/discovery/feed.js';
export { hashKey, type Key } from './core/hash.js';
export * from './core/errors.js';
export { SEAT_MARK_MS, type ReserveOptions, type Reservation, type FetchLike } from './core/seats.js';
export { PROTOCOL_VERSION, type ServerRecord, type LoadReport, type LoadSeats, type LoadSource, type Health } from './core/protocol.js';
