/** The Origin gate of /v1/watch and /v1/events (agent/admission.ts, issue 15), pure: no sockets. */
import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { OriginGate, originAllowed, ownOrigin, parseOrigin } from '../../../agent/admission.js';

const own = ownOrigin('127.0.0.1', '127.0.0.1', 7946, true);
const allowed = new Set(['https://game.example', 'http://10.0.0.9:8080']);

describe('parseOrigin', () => {
  it('takes scheme://host[:port] and normalizes it as browsers send it', () => {
    expect(parseOrigin('https://Game.Example')).toBe('https://game.example');
    expect(parseOrigin('https://game.example:443')).toBe('https://game.example');
    expect(parseOrigin('https://game.example/')).toBe('https://game.example');
    expect(parseOrigin('http://[::1]:8080')).toBe('http://[::1]:8080');
  });

  it('refuses what is not an origin, saying what one is', () => {
    for (const bad of ['game.example', 'https://game.example/lobby', 'https://game.example?x=1', 'https://u:p@game.example', 'ftp://game.example', 'null', '', 5, 'https://' + 'a'.repeat(3000)]) {
      const r = parseOrigin(bad);
      expect(typeof r, JSON.stringify(bad)).toBe('object');
      expect((r as { problem: string }).problem).toMatch(/must be an origin, http\(s\):\/\/host\[:port\] with no path/);
    }
  });
});

describe('originAllowed', () => {
  it('without allowOrigin, every origin passes (as before issue 15)', () => {
    expect(originAllowed('https://evil.example', undefined, own)).toBe(true);
  });

  it('no Origin header (not a browser) passes', () => {
    expect(originAllowed(undefined, allowed, own)).toBe(true);
  });

  it('a listed origin passes, also as a browser may spell it; its neighbours do not', () => {
    expect(originAllowed('https://game.example', allowed, own)).toBe(true);
    expect(originAllowed('https://game.example:443', allowed, own)).toBe(true);
    expect(originAllowed('http://10.0.0.9:8080', allowed, own)).toBe(true);
    for (const o of ['https://evil.example', 'http://game.example', 'https://game.example:8443', 'https://sub.game.example', 'https://game.example.evil.example', 'null', 'not a url', 'https://game.example, https://evil.example'])
      expect(originAllowed(o, allowed, own), o).toBe(false);
  });

  it("the agent's own origin passes: its host and bind at its port and scheme, and loopback names when it listens on loopback", () => {
    expect(originAllowed('https://127.0.0.1:7946', allowed, own)).toBe(true);
    expect(originAllowed('https://localhost:7946', allowed, own)).toBe(true);
    expect(originAllowed('https://127.0.0.2:7946', allowed, own)).toBe(true);
    expect(originAllowed('https://[::1]:7946', allowed, own)).toBe(true);
    // Another port, or the other scheme: another origin.
    expect(originAllowed('https://127.0.0.1:7947', allowed, own)).toBe(false);
    expect(originAllowed('http://127.0.0.1:7946', allowed, own)).toBe(false);
  });

  it('an agent on a LAN address: its own address is its origin, loopback names are not', () => {
    const lan = ownOrigin('10.0.0.5', '10.0.0.5', 7946, false);
    expect(originAllowed('http://10.0.0.5:7946', allowed, lan)).toBe(true);
    expect(originAllowed('http://localhost:7946', allowed, lan)).toBe(false);
    expect(originAllowed('http://10.0.0.6:7946', allowed, lan)).toBe(false);
    // Bound to every address: loopback is its own too, the unspecified address is no host.
    const any = ownOrigin('10.0.0.5', '0.0.0.0', 7946, false);
    expect(any.hosts).toEqual(['10.0.0.5']);
    expect(originAllowed('http://localhost:7946', allowed, any)).toBe(true);
    expect(originAllowed('http://0.0.0.0:7946', allowed, any)).toBe(false);
  });

  it('IPv6 hosts compare as addresses, not as text', () => {
    const v6 = ownOrigin('fd00:0:0:0:0:0:0:5', 'fd00::5', 7946, true);
    expect(originAllowed('https://[fd00::5]:7946', allowed, v6)).toBe(true);
  });
});

describe('OriginGate', () => {
  const fakeSocket = () => {
    const s = { written: '', ended: false, on: () => s, end: (t: string) => ((s.written += t), (s.ended = true)), destroy: () => {} };
    return s;
  };
  const req = (origin?: string) => ({ headers: origin === undefined ? {} : { origin } }) as unknown as IncomingMessage;

  it('refuses an unlisted origin with 403 and the reason before the endpoint sees it, and counts it', () => {
    let list: ReadonlySet<string> | undefined = allowed;
    const gate = new OriginGate(() => list, () => own);
    const seen: string[] = [];
    const h = gate.wrap('watch', (r) => seen.push(String(r.headers.origin)));
    const s = fakeSocket();
    h(req('https://evil.example'), s as unknown as Duplex, Buffer.alloc(0));
    expect(s.written).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(s.written).toMatch(/origin "https:\/\/evil\.example" may not open this endpoint: it is not in the agent's allowOrigin \(--allow-origin\)/);
    expect(seen).toEqual([]);
    expect(gate.refused).toEqual({ watch: 1 });
    h(req('https://game.example'), fakeSocket() as unknown as Duplex, Buffer.alloc(0));
    h(req(), fakeSocket() as unknown as Duplex, Buffer.alloc(0));
    expect(seen).toEqual(['https://game.example', 'undefined']);
    // The list is read per upgrade (a reload changes it).
    list = undefined;
    h(req('https://evil.example'), fakeSocket() as unknown as Duplex, Buffer.alloc(0));
    expect(seen).toHaveLength(3);
    expect(gate.refused).toEqual({ watch: 1 });
  });

  it('quotes a hostile Origin, bounded', () => {
    const gate = new OriginGate(() => allowed, () => own);
    const s = fakeSocket();
    gate.wrap('events', () => {})(req('x'.repeat(5000) + '\r\nset-cookie: a'), s as unknown as Duplex, Buffer.alloc(0));
    const body = s.written.split('\r\n\r\n')[1]!;
    expect(body.length).toBeLessThan(400);
    expect(body).not.toMatch(/\r\nset-cookie/);
  });
});
