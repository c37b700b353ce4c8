/**
 * The agent checks its own server and says whether clients should pick it: the checker
 * (rise/fall, scheduling on the clock) in agent/health/checker.ts, the tcp/udp probes in
 * agent/health/probes.ts, the defaults both they and the option schema use in agent/health/defaults.ts.
 */
export * from './checker.js';
export * from './probes.js';
export * from './defaults.js';
