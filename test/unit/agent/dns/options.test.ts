/** The dns option (issue 16) through resolveAgentOptions: off by default, defaults, the domain's form. */
import { describe, expect, it } from 'vitest';
import { resolveAgentOptions } from '../../../../agent/options.js';
import { planReload } from '../../../../agent/reload.js';

const base = { service: 'game', node: 'n1', tcpPort: 7000, bind: '127.0.0.1' };

describe('dns options', () => {
  it('off unless a port is given; with one, the defaults of the schema', () => {
    expect(resolveAgentOptions(base).dns).toBeUndefined();
    expect(resolveAgentOptions({ ...base, dns: { port: 8600 } }).dns).toEqual({ port: 8600, bind: '127.0.0.1', domain: 'peerlb.', answers: 3, ttl: 1 });
  });

  it('the domain lower-cased with its final dot; a bad one named', () => {
    expect(resolveAgentOptions({ ...base, dns: { port: 53, domain: 'Svc.Example' } }).dns!.domain).toBe('svc.example.');
    expect(() => resolveAgentOptions({ ...base, dns: { port: 53, domain: 'bad_label.' } })).toThrow('dns.domain');
    expect(() => resolveAgentOptions({ ...base, dns: { port: 53, domain: '' } })).toThrow('dns.domain');
  });

  it('dns fields without the port are refused, naming them; unknown keys too', () => {
    expect(() => resolveAgentOptions({ ...base, dns: { ttl: 5 } as never })).toThrow('dns.ttl');
    expect(() => resolveAgentOptions({ ...base, dns: { port: 53, recursion: true } as never })).toThrow('recursion');
    expect(() => resolveAgentOptions({ ...base, dns: { port: 53, bind: 'localhost' } })).toThrow('dns.bind');
  });

  it('ttl 0 is allowed; a reload that changes dns names it as needing a restart', () => {
    const cur = resolveAgentOptions({ ...base, dns: { port: 8600, ttl: 0 } });
    expect(cur.dns!.ttl).toBe(0);
    expect(planReload(cur, resolveAgentOptions({ ...base, dns: { port: 8600, ttl: 5 } }), false).needsRestart).toEqual(['dns']);
  });
});
