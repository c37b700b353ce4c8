/** Moved to agent/endpoints/events.ts (issue 14); kept so existing imports resolve. */
export * from './endpoints/events.js';
