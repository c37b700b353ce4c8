/**
 * Host names in a static server list are resolved once, at join, by the system resolver (Node's
 * adapter, sdk/node/resolve.ts): a name service is I/O, so these live here, not in the unit project.
 */
import { describe, expect, it } from 'vitest';
import { BadOptionError } from '../../../sdk/core/errors.js';
import { join } from '../../../sdk/index.js';

describe('static server hosts, resolved at join', () => {
  it('a host name is resolved once, at join: the view holds its address', async () => {
    const c = await join({ service: 'game', discovery: { servers: ['localhost:7000', { host: 'localhost', udpPort: 7001, id: 'named' }] } });
    try {
      const view = c.servers();
      expect(view.map((s) => s.id)).toEqual(['localhost:7000', 'named']);
      for (const s of view) expect(['127.0.0.1', '::1']).toContain(s.host);
    } finally {
      await c.close();
    }
  });

  it('a host name that does not resolve fails join, naming the entry', async () => {
    const err = await join({ service: 'game', discovery: { servers: ['127.0.0.1:1', 'no-such-host.invalid:7000'] }, connectTimeoutMs: 3000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BadOptionError);
    expect((err as BadOptionError).option).toBe('discovery.servers[1]');
  });
});
