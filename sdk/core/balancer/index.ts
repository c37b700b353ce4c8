/**
 * The balancer: one idea per file in this folder; balancer.ts is the façade the cluster and the
 * Node adapters use.
 */
export { Balancer, TICK_MS, type BalancerEvents } from './balancer.js';
export { Lease, Deadlines, attemptBudget, timeoutError, type LeaseOptions, type LeaseState } from './lease.js';
