/**
 * The balancer lives in sdk/core/balancer/ (one idea per file; balancer/balancer.ts is the façade).
 * This module keeps the import path the cluster, the Node adapters and the tests use.
 */
export { Balancer, TICK_MS, type BalancerEvents } from './balancer/balancer.js';
export { Lease, Deadlines, timeoutError, type LeaseOptions, type LeaseState } from './balancer/lease.js';
