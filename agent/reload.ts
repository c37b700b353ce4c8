/**
 * Reload planning, pure: what a new configuration changes in a running agent. Weight and zone are
 * applied live (published with one incarnation step); the keyring too, when the agent seals
 * (key rotation by editing the key file); allowOrigin, and the TLS files while TLS stays on;
 * every other option that differs needs a restart and is only named. The agent (agent/lifecycle.ts) reads the key file, checks the records the plan
 * would announce, then applies it.
 */
import type { ResolvedAgentOptions } from './options.js';

export interface ReloadPlan {
  /** The options the agent runs with after the reload. */
  opts: ResolvedAgentOptions;
  /** What members see of us that changes ('weight', 'zone'); 'keyring' is added by the agent when the keys differ. */
  changed: string[];
  /** Options that differ but take a restart (not applied). */
  needsRestart: string[];
}

/** Options a reload applies without a restart. */
export const RELOADABLE = ['weight', 'zone'] as const;

/**
 * `current`: the running options; `next`: the new ones, resolved; `reloadsKeys`: whether the agent
 * seals frames (then keyFile / keyring are applied too, not named as needing a restart).
 */
export function planReload(current: ResolvedAgentOptions, next: ResolvedAgentOptions, reloadsKeys: boolean): ReloadPlan {
  // Issue 15: allowOrigin applies live; so do the TLS files while TLS stays on (the agent reads
  // them again: a renewed certificate at the same path); turning TLS on or off takes a restart.
  const reloadsTls = current.tls !== undefined && next.tls !== undefined;
  const opts: ResolvedAgentOptions = {
    ...current,
    weight: next.weight,
    zone: next.zone,
    allowOrigin: next.allowOrigin,
    ...(reloadsKeys ? { keyFile: next.keyFile, keyring: next.keyring } : {}),
    ...(reloadsTls ? { tls: next.tls } : {}),
  };
  const changed: string[] = [];
  if (next.weight !== current.weight) changed.push('weight');
  if (next.zone !== current.zone) changed.push('zone');
  const live = new Set<string>([...RELOADABLE, 'allowOrigin', ...(reloadsKeys ? ['keyFile', 'keyring'] : []), ...(reloadsTls ? ['tls'] : [])]);
  const needsRestart = (Object.keys(next) as Array<keyof ResolvedAgentOptions>).filter((k) => !live.has(k) && JSON.stringify(next[k]) !== JSON.stringify(current[k]));
  return { opts, changed, needsRestart };
}
