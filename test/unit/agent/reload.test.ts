/** Reload planning (agent/reload.ts), pure: what a new configuration changes. */
import { describe, expect, it } from 'vitest';
import { planReload } from '../../../agent/reload.js';
import { resolveAgentOptions } from '../../../agent/options.js';

const cur = resolveAgentOptions({ service: 'game', node: 'n1', tcpPort: 7000, weight: 10 });

describe('planReload', () => {
  it('weight and zone change live, other options are named as needing a restart', () => {
    const next = resolveAgentOptions({ service: 'game', node: 'n1', tcpPort: 7000, weight: 20, zone: 'r1', capacity: 5, port: 8000 });
    const plan = planReload(cur, next, false);
    expect(plan.changed).toEqual(['weight', 'zone']);
    expect(plan.needsRestart.sort()).toEqual(['capacity', 'port']);
    expect(plan.opts).toMatchObject({ weight: 20, zone: 'r1', capacity: undefined, port: 7946 });
    expect(cur.weight).toBe(10); // the running options are not touched
  });

  it('nothing changed: nothing to do', () => {
    expect(planReload(cur, resolveAgentOptions({ service: 'game', node: 'n1', tcpPort: 7000, weight: 10 }), false)).toEqual({ opts: cur, changed: [], needsRestart: [] });
  });

  it('a sealing agent takes keyFile/keyring as reloadable; one that does not names them', () => {
    const next = resolveAgentOptions({ service: 'game', node: 'n1', tcpPort: 7000, weight: 10, keyFile: '/k' });
    expect(planReload(cur, next, true)).toMatchObject({ changed: [], needsRestart: [], opts: { keyFile: '/k' } });
    expect(planReload(cur, next, false)).toMatchObject({ needsRestart: ['keyFile'], opts: { keyFile: undefined } });
  });
});
