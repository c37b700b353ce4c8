/**
 * cluster.websocket() (sdk/core/websocket-connect.ts) over a fake W3C WebSocket on a ManualClock:
 * failover within attempts, the open timeout on the clock, abort, active counts back to 0 on every
 * path, key affinity, servers without a ws endpoint skipped, outcomes feeding ejection. No sockets.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { join, type Cluster } from '../../../../sdk/core/cluster.js';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { AbortedError, AllAttemptsFailedError, NoServersError, UnsupportedError } from '../../../../sdk/core/errors.js';
import type { ServerRecord } from '../../../../sdk/core/protocol.js';
import type { DiscoverySource } from '../../../../sdk/core/discovery/source.js';
import type { WebSocketConstructor } from '../../../../sdk/core/discovery/websocket.js';

type Behaviour = 'open' | 'error' | 'hang';
type Listener = (ev: unknown) => void;

/** A W3C WebSocket whose handshake outcome the test sets per URL; events are dispatched in microtasks. */
class FakeWS {
  static behaviour = new Map<string, Behaviour>();
  static made: FakeWS[] = [];
  readyState = 0;
  closeCalls = 0;
  private readonly ls = new Map<string, Set<Listener>>();
  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWS.made.push(this);
    const b = FakeWS.behaviour.get(url) ?? 'open';
    queueMicrotask(() => {
      if (this.readyState !== 0) return;
      if (b === 'open') {
        this.readyState = 1;
        this.fire('open', {});
      } else if (b === 'error') {
        this.readyState = 3;
        this.fire('error', { message: 'ECONNREFUSED' });
        this.fire('close', { code: 1006 });
      }
    });
  }
  addEventListener(t: string, l: Listener): void {
    let s = this.ls.get(t);
    if (!s) this.ls.set(t, (s = new Set()));
    s.add(l);
  }
  removeEventListener(t: string, l: Listener): void {
    this.ls.get(t)?.delete(l);
  }
  listeners(): number {
    let n = 0;
    for (const s of this.ls.values()) n += s.size;
    return n;
  }
  close(): void {
    this.closeCalls++;
    if (this.readyState >= 2) return;
    const connecting = this.readyState === 0;
    this.readyState = 2;
    queueMicrotask(() => {
      this.readyState = 3;
      // A browser fails a connecting socket that is closed: error, then close.
      if (connecting) this.fire('error', {});
      this.fire('close', { code: connecting ? 1006 : 1000 });
    });
  }
  /** The server ends an open socket. */
  drop(): void {
    this.readyState = 3;
    this.fire('close', { code: 1001 });
  }
  private fire(t: string, ev: unknown): void {
    for (const l of [...(this.ls.get(t) ?? [])]) l(ev);
  }
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

function rec(id: string, ws: Partial<Pick<ServerRecord, 'wsPort' | 'wsPath' | 'wsTls'>> | undefined, host = '127.0.0.1'): ServerRecord {
  return { id, service: 'game', host, tcpPort: 7000, weight: 100, health: 'healthy', ...(ws ?? {}) };
}

let cluster: Cluster | undefined;
let clock: ManualClock;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
  FakeWS.behaviour.clear();
  FakeWS.made = [];
  vi.unstubAllGlobals();
});

async function start(records: ServerRecord[], extra: Record<string, unknown> = {}, WebSocket: unknown = FakeWS): Promise<Cluster> {
  clock = new ManualClock(1000);
  const source: DiscoverySource = {
    start: (sink) => sink.reset(records),
    close: () => undefined,
  };
  cluster = await join(
    { service: 'game', discovery: { source }, clock, random: new XorShiftRandom(7), ...extra },
    WebSocket === 'none' ? {} : { WebSocket: WebSocket as WebSocketConstructor },
  );
  return cluster;
}

const three = () => [rec('a', { wsPort: 9001 }), rec('b', { wsPort: 9002 }), rec('c', { wsPort: 9003 })];
const activeSum = (c: Cluster) => c.stats().reduce((n, s) => n + s.active, 0);

describe('cluster.websocket()', () => {
  it('builds wsUrl from wsPort, wsPath and wsTls (IPv6 in brackets)', async () => {
    const c = await start([rec('a', { wsPort: 9001 }), rec('b', { wsPort: 443, wsPath: '/play', wsTls: true }, '::1'), rec('c', undefined)]);
    const urls = Object.fromEntries(c.servers().map((s) => [s.id, s.wsUrl]));
    expect(urls).toEqual({ a: 'ws://127.0.0.1:9001/', b: 'wss://[::1]:443/play', c: undefined });
  });

  it('resolves with an open socket that counts as one connection until it closes', async () => {
    const c = await start(three());
    const ws = (await c.websocket({ protocols: ['game.v1'] })) as unknown as FakeWS;
    expect(ws.readyState).toBe(1);
    expect(ws.protocols).toEqual(['game.v1']);
    const id = c.servers().find((s) => s.wsUrl === ws.url)!.id;
    expect(c.stats().find((s) => s.id === id)!.active).toBe(1);
    expect(activeSum(c)).toBe(1);
    ws.close();
    await flush();
    expect(activeSum(c)).toBe(0);
    expect(ws.listeners()).toBe(0);
    // A close from the server side releases it too.
    const ws2 = (await c.websocket()) as unknown as FakeWS;
    expect(activeSum(c)).toBe(1);
    ws2.drop();
    expect(activeSum(c)).toBe(0);
  });

  it('cluster.close() closes the sockets it opened that are still open, releasing their leases; one opened during close is closed too', async () => {
    const c = await start(three());
    const open = (await Promise.all([c.websocket(), c.websocket(), c.websocket({ key: 'p1' })])) as unknown as FakeWS[];
    const closedByUser = (await c.websocket()) as unknown as FakeWS;
    closedByUser.close();
    await flush();
    expect(activeSum(c)).toBe(3);
    FakeWS.behaviour.set('ws://127.0.0.1:9001/', 'hang');
    FakeWS.behaviour.set('ws://127.0.0.1:9002/', 'hang');
    FakeWS.behaviour.set('ws://127.0.0.1:9003/', 'hang');
    const pending = c.websocket().catch((e: unknown) => e);
    await flush();
    const hanging = FakeWS.made.at(-1)!;
    await c.close();
    cluster = undefined;
    for (const ws of open) expect(ws.closeCalls).toBe(1);
    expect(closedByUser.closeCalls).toBe(1); // not closed again
    await flush();
    for (const ws of open) {
      expect(ws.readyState).toBe(3);
      expect(ws.listeners()).toBe(0);
    }
    expect(activeSum(c)).toBe(1); // only the open in flight
    // The open in flight: its socket opens after close() and is closed, the call rejects.
    hanging.readyState = 1;
    (hanging as unknown as { fire(t: string, ev: unknown): void }).fire('open', {});
    expect(String(await pending)).toMatch(/closed/);
    await flush();
    expect(hanging.readyState).toBe(3);
    expect(activeSum(c)).toBe(0);
  });

  it('fails over to another server on error, within attempts, each server once', async () => {
    const c = await start(three());
    FakeWS.behaviour.set('ws://127.0.0.1:9001/', 'error');
    FakeWS.behaviour.set('ws://127.0.0.1:9002/', 'error');
    for (let i = 0; i < 10; i++) {
      FakeWS.made = [];
      const ws = (await c.websocket({ attempts: 3 })) as unknown as FakeWS;
      expect(ws.url).toBe('ws://127.0.0.1:9003/');
      const urls = FakeWS.made.map((w) => w.url);
      expect(new Set(urls).size).toBe(urls.length); // no server twice
      expect(urls.at(-1)).toBe('ws://127.0.0.1:9003/');
      ws.close();
      await flush();
    }
    expect(activeSum(c)).toBe(0);
    const failures = Object.fromEntries(c.stats().map((s) => [s.id, s.failures]));
    expect(failures.c).toBe(0);
    expect(failures.a! + failures.b!).toBeGreaterThan(0);
  });

  it('gives up after attempts with each attempt listed', async () => {
    const c = await start(three());
    for (const p of [9001, 9002, 9003]) FakeWS.behaviour.set(`ws://127.0.0.1:${p}/`, 'error');
    const err = await c.websocket({ attempts: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllAttemptsFailedError);
    const attempts = (err as AllAttemptsFailedError).attempts;
    expect(attempts).toHaveLength(2);
    expect(FakeWS.made).toHaveLength(2);
    expect(attempts.map((a) => a.address)).toEqual(FakeWS.made.map((w) => w.url));
    expect(attempts[0]!.error).toBe('ECONNREFUSED');
    await flush();
    expect(activeSum(c)).toBe(0);
  });

  it('times out an open on the cluster clock and tries another', async () => {
    const c = await start(three());
    for (const p of [9001, 9002, 9003]) FakeWS.behaviour.set(`ws://127.0.0.1:${p}/`, 'hang');
    let settled: unknown;
    const p = c.websocket({ timeoutMs: 500, attempts: 2 }).then(
      () => (settled = 'resolved'),
      (e: unknown) => (settled = e),
    );
    await flush();
    expect(FakeWS.made).toHaveLength(1);
    expect(activeSum(c)).toBe(1);
    clock.advance(400);
    await flush();
    expect(FakeWS.made).toHaveLength(1); // not yet
    clock.advance(120); // past 500 ms (+ the 10 ms sweep)
    await flush();
    expect(FakeWS.made).toHaveLength(2);
    expect(FakeWS.made[0]!.closeCalls).toBe(1); // the timed-out socket is closed
    expect(activeSum(c)).toBe(1);
    expect(settled).toBeUndefined();
    clock.advance(520);
    await p;
    expect(settled).toBeInstanceOf(AllAttemptsFailedError);
    expect((settled as AllAttemptsFailedError).attempts.map((a) => a.error)).toEqual(['ETIMEDOUT', 'ETIMEDOUT']);
    await flush();
    expect(activeSum(c)).toBe(0);
    for (const w of FakeWS.made) expect(w.listeners()).toBe(0);
    // The timeouts are failures: each counted on its server, with a slow RTT sample.
    const failed = c.stats().filter((s) => s.failures > 0);
    expect(failed).toHaveLength(2);
    for (const s of failed) expect(s.rttMs).toBeGreaterThanOrEqual(500);
  });

  it('aborts with an AbortedError, closing the pending socket, with no failure counted', async () => {
    const c = await start(three());
    for (const p of [9001, 9002, 9003]) FakeWS.behaviour.set(`ws://127.0.0.1:${p}/`, 'hang');
    const ac = new AbortController();
    const p = c.websocket({ signal: ac.signal });
    await flush();
    expect(activeSum(c)).toBe(1);
    ac.abort('player left');
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(FakeWS.made).toHaveLength(1);
    expect(FakeWS.made[0]!.closeCalls).toBe(1);
    await flush();
    expect(activeSum(c)).toBe(0);
    expect(c.stats().every((s) => s.failures === 0)).toBe(true);
    // Already aborted: no socket at all.
    const err2 = await c.websocket({ signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(AbortedError);
    expect(FakeWS.made).toHaveLength(1);
  });

  it('a key keeps its server across reconnects while it is eligible, as pick({ key }) does', async () => {
    const c = await start([...three(), rec('d', { wsPort: 9004 }), rec('e', { wsPort: 9005 })]);
    const seen = new Set<string>();
    for (const key of ['alice', 'bob', 'carol', 'dave', 'eve', 'frank']) {
      const expected = c.pick({ key })!.wsUrl;
      for (let i = 0; i < 5; i++) {
        const ws = (await c.websocket({ key })) as unknown as FakeWS;
        expect(ws.url).toBe(expected);
        ws.close();
        await flush();
      }
      seen.add(expected!);
    }
    expect(seen.size).toBeGreaterThan(1);
    // Its server failing: the key goes elsewhere for that open, and back once the server opens again.
    const home = c.pick({ key: 'alice' })!.wsUrl!;
    FakeWS.behaviour.set(home, 'error');
    const away = (await c.websocket({ key: 'alice' })) as unknown as FakeWS;
    expect(away.url).not.toBe(home);
    away.close();
    FakeWS.behaviour.delete(home);
    const back = (await c.websocket({ key: 'alice' })) as unknown as FakeWS;
    expect(back.url).toBe(home);
    back.close();
    await flush();
    expect(activeSum(c)).toBe(0);
  });

  it('never opens a server without a ws endpoint, and skipping one uses no attempt', async () => {
    const c = await start([rec('a', { wsPort: 9001 }), rec('b', { wsPort: 9002 }), rec('x', undefined), rec('y', undefined), rec('z', undefined)]);
    const keys = Array.from({ length: 40 }, (_, i) => `player-${i}`);
    for (let i = 0; i < 80; i++) {
      const ws = (await c.websocket({ attempts: 1, key: i % 2 === 0 ? keys[i / 2]! : undefined })) as unknown as FakeWS;
      expect(['ws://127.0.0.1:9001/', 'ws://127.0.0.1:9002/']).toContain(ws.url);
      ws.close();
    }
    // One ws server refusing, attempts 2: the other one, never x, y or z.
    FakeWS.behaviour.set('ws://127.0.0.1:9001/', 'error');
    for (let i = 0; i < 20; i++) {
      const ws = (await c.websocket({ attempts: 2 })) as unknown as FakeWS;
      expect(ws.url).toBe('ws://127.0.0.1:9002/');
      ws.close();
    }
    await flush();
    expect(FakeWS.made.every((w) => w.url.startsWith('ws://127.0.0.1:900'))).toBe(true);
    expect(activeSum(c)).toBe(0);
  });

  it('in a view where some servers have no ws endpoint, a key still keeps one server across reconnects', async () => {
    const c = await start([rec('a', { wsPort: 9001 }), rec('b', { wsPort: 9002 }), rec('c', { wsPort: 9003 }), rec('x', undefined), rec('y', undefined), rec('z', undefined)]);
    const homes = new Set<string>();
    for (let k = 0; k < 30; k++) {
      const urls = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const ws = (await c.websocket({ key: `player-${k}`, attempts: 1 })) as unknown as FakeWS;
        urls.add(ws.url);
        ws.close();
        await flush();
      }
      expect(urls.size).toBe(1);
      homes.add([...urls][0]!);
    }
    expect(homes.size).toBe(3); // the keys spread over the three ws servers
    expect(activeSum(c)).toBe(0);
  });

  it('no server with a ws endpoint: a NoServersError, no socket', async () => {
    const c = await start([rec('x', undefined), rec('y', undefined)]);
    await expect(c.websocket()).rejects.toBeInstanceOf(NoServersError);
    expect(FakeWS.made).toHaveLength(0);
    expect(activeSum(c)).toBe(0);
  });

  it('failed opens feed outlier ejection', async () => {
    const c = await start(three(), { outlier: { consecutiveFailures: 3 } });
    FakeWS.behaviour.set('ws://127.0.0.1:9001/', 'error');
    const ejected: string[] = [];
    c.on('eject', (s) => ejected.push(s.id));
    for (let i = 0; i < 30 && ejected.length === 0; i++) {
      const ws = (await c.websocket({ key: 'k' + i })) as unknown as FakeWS;
      ws.close();
      await flush();
    }
    expect(ejected).toEqual(['a']);
    // Ejected: no longer picked.
    FakeWS.made = [];
    for (let i = 0; i < 20; i++) ((await c.websocket()) as unknown as FakeWS).close();
    expect(FakeWS.made.some((w) => w.url === 'ws://127.0.0.1:9001/')).toBe(false);
  });

  it('bad options and a runtime with no WebSocket are clear errors', async () => {
    const c = await start(three());
    await expect(c.websocket({ attempts: 0 })).rejects.toThrow(/attempts/);
    await expect(c.websocket({ timeoutMs: -1 })).rejects.toThrow(/timeoutMs/);
    await expect(c.websocket({ protocols: [1 as unknown as string] })).rejects.toThrow(/protocols/);
    await c.close();
    vi.stubGlobal('WebSocket', undefined);
    const c2 = await start(three(), {}, 'none');
    await expect(c2.websocket()).rejects.toBeInstanceOf(UnsupportedError);
    await c2.close();
    await expect(c2.websocket()).rejects.toThrow(/closed/);
  });
});
