/**
 * peerlb/agent — the sidecar that runs beside each server process. See README.md.
 *
 *   const agent = await startAgent({ service: 'game', node: 'n1', host: '10.0.0.5', udpPort: 7001, port: 7946,
 *                                    join: ['ws://10.0.0.4:7946'], mdns: { interface: '10.0.0.5' } });
 *   agent.report({ sessions: 12, utilization: 0.4 });
 *   await agent.drain(); await agent.stop();
 *
 * Where things live: the lifecycle (start/stop/drain order) in agent/lifecycle.ts; the pure record
 * views in agent/records.ts; reload planning in agent/reload.ts; the route table in agent/routes.ts
 * and its endpoints in agent/endpoints/; the option schema in agent/options-schema.ts.
 */
export { resolveAgentOptions, mergeAgentConfig, AGENT_OPTION_SPECS, type AgentOptions, type HealthSpec, type DnsOptions } from './options.js';
export { createLogger, type Logger } from './log.js';
export { Agent, startAgent, type AgentEvents, type StartAgentExtras } from './lifecycle.js';
export type { MemberInfo } from './records.js';
export type { AgentSeats, ReserveResult, TicketResult, SeatStats, SeatRefusal, ReserveRefusal, TicketRefusal } from './seats/index.js';
