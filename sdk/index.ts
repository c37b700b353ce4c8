/**
 * peerlb/sdk — the client half of peerlb: discover a service's servers and pick one directly for
 * every UDP send or TCP connect. See README.md.
 */
export { join, Cluster, type ClusterEvents, type ServerStats } from './cluster.js';
export type { JoinOptions, StaticServer, DiscoveryOptions, MdnsDiscoveryOptions } from './options.js';
export type { Server, ServerView } from './server.js';
export type { ConnectOptions } from './tcp.js';
export { UdpClient, type UdpOptions, type UdpEvents } from './udp.js';
export { STRATEGY_NAMES, type StrategyName } from './pickers/index.js';
export type { DiscoverySource, DiscoverySink } from './discovery/source.js';
export { createFeed, type Feed } from './discovery/feed.js';
export { hashKey, type Key } from './hash.js';
export * from './errors.js';
export { PROTOCOL_VERSION, type ServerRecord, type LoadReport, type LoadSource, type Health } from './protocol.js';
