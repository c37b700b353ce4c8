/**
 * The agent checks its own server and says whether clients should pick it: the checker
 * (rise/fall, scheduling on the clock) in agent/health/checker.ts, the tcp/udp probes in
 * agent/health/probes.ts, the defaults both they and the option schema use in agent/health/defaults.ts.
 */
export * from './health/checker.js';
export * from './health/probes.js';
export * from './health/defaults.js';
