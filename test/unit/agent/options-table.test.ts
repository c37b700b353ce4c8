/**
 * The README's options table is the one generated from the option schema (agent/options-table.ts),
 * and the schema is the one source of defaults and ranges: the resolver applies exactly them.
 * No sockets, no sleeps.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentOptionsTable, OPTIONS_TABLE_BEGIN, OPTIONS_TABLE_END, withOptionsTable } from '../../../agent/options-table.js';
import { AGENT_OPTION_SPECS, resolveAgentOptions } from '../../../agent/options.js';

const README = new URL('../../../README.md', import.meta.url);

describe('the README options table', () => {
  it('is the generated one (regenerate: npm run build && node dist/agent/options-table.js README.md)', () => {
    const readme = readFileSync(README, 'utf8');
    const a = readme.indexOf(OPTIONS_TABLE_BEGIN);
    const b = readme.indexOf(OPTIONS_TABLE_END);
    expect(a, 'README holds the generated table').toBeGreaterThan(0);
    expect(readme.slice(a + OPTIONS_TABLE_BEGIN.length, b).trim()).toBe(agentOptionsTable());
    expect(withOptionsTable(readme)).toBe(readme);
  });

  it('has one row per option with its flag, variable and default', () => {
    const lines = agentOptionsTable().split('\n').slice(2);
    expect(lines).toHaveLength(AGENT_OPTION_SPECS.length);
    AGENT_OPTION_SPECS.forEach((s, i) => {
      expect(lines[i]).toContain(`| \`${s.path}\` | \`--${s.flag}\` | \`${s.env}\` |`);
      if (typeof s.default === 'number') expect(lines[i]).toContain(` | ${s.default} | `);
    });
  });

  it('a change to the schema shows as a difference', () => {
    const changed = AGENT_OPTION_SPECS.map((s) => (s.path === 'weight' ? { ...s, default: 7 } : s));
    expect(agentOptionsTable(changed)).not.toBe(agentOptionsTable());
  });
});

describe('the resolver applies the schema', () => {
  function setPath(o: Record<string, unknown>, path: string, v: unknown): void {
    const parts = path.split('.');
    let cur = o;
    for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Record<string, unknown>;
    cur[parts.at(-1)!] = v;
  }
  const base = () => ({ service: 'game', tcpPort: 7000, udpPort: 7001 }) as Record<string, unknown>;

  it('every integer option: its range, and its numeric default when absent', () => {
    let checked = 0;
    for (const s of AGENT_OPTION_SPECS.filter((x) => x.kind === 'int')) {
      const with_ = (v: number) => {
        const o = base();
        if (s.path.startsWith('mdns.')) o.mdns = { interface: '127.0.0.1' };
        if (s.path.startsWith('dns.') && s.path !== 'dns.port') o.dns = { port: 8600 };
        if (s.path === 'health.ttlMs') o.health = { type: 'ttl' };
        setPath(o, s.path, v);
        return () => resolveAgentOptions(o as never);
      };
      expect(with_(s.min!), `${s.path} = min`).not.toThrow();
      expect(with_(s.max!), `${s.path} = max`).not.toThrow();
      expect(with_(s.min! - 1), `${s.path} < min`).toThrow(s.path);
      expect(with_(s.max! + 1), `${s.path} > max`).toThrow(s.path);
      checked++;
    }
    expect(checked).toBe(AGENT_OPTION_SPECS.filter((x) => x.kind === 'int').length);
    expect(checked).toBeGreaterThan(25);
  });
});
