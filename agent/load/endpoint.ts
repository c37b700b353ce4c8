/** Moved to agent/endpoints/load.ts (issue 14); kept so existing imports resolve. */
export * from '../endpoints/load.js';
