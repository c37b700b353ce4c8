/**
 * SDK test fixtures: server records and a Balancer fed by a Feed on a ManualClock, for tests that
 * drive the balancer directly (the layer under `join`).
 */
import type net from 'node:net';
import { Balancer } from '../../sdk/core/balancer/index.js';
import { ManualClock } from '../../sdk/core/clock.js';
import { createFeed, type Feed } from '../../sdk/core/discovery/feed.js';
import { resolveOptions, type JoinOptions } from '../../sdk/core/options.js';
import type { ServerRecord } from '../../sdk/core/protocol.js';
import { XorShiftRandom } from '../../sdk/core/random.js';
import { ServerState, type Server } from '../../sdk/core/server.js';
import { connectWithFailover, type ConnectOptions } from '../../sdk/node/tcp.js';
import { UdpClient, type UdpOptions } from '../../sdk/node/udp.js';
import { hashKey, type Key } from '../../sdk/core/hash.js';
import { startTcpServer, startUdpServer, type TcpTestServer, type UdpTestServer } from './servers.js';
import { until } from './until.js';

export function rec(id: string, over: Partial<ServerRecord> = {}): ServerRecord {
  return { id, service: 'game', host: '127.0.0.1', tcpPort: 1, udpPort: 1, weight: 100, health: 'healthy', ...over };
}

export function states(n: number, over: (i: number) => Partial<ServerRecord> = () => ({})): ServerState[] {
  return Array.from({ length: n }, (_, i) => new ServerState(rec(`s${i}`, over(i))));
}

export interface TestBalancer {
  b: Balancer;
  feed: Feed;
  clock: ManualClock;
  /** Count of each id over `n` picks (keyless unless `key(i)` is given). */
  tally(n: number, key?: (i: number) => number): Map<string, number>;
  close(): void;
}

export function testBalancer(records: ServerRecord[], opts: Partial<JoinOptions> = {}, seed = 1): TestBalancer {
  const clock = (opts.clock as ManualClock | undefined) ?? new ManualClock();
  const o = resolveOptions({ service: 'game', discovery: { servers: [] }, ...opts });
  const b = new Balancer(o, clock, opts.random ?? new XorShiftRandom(seed));
  const feed = createFeed(records);
  feed.start(b);
  b.markSeeded();
  return {
    b,
    feed,
    clock,
    tally(n, key) {
      const m = new Map<string, number>();
      for (const s of b.list()) m.set(s.id, 0);
      for (let i = 0; i < n; i++) {
        const s = b.pick(key ? key(i) : -1)!;
        m.set(s.id, (m.get(s.id) ?? 0) + 1);
      }
      return m;
    },
    close: () => b.close(),
  };
}

// ------------------------------------------------------------------------- real servers + cluster


export interface TestServer {
  id: string;
  tcp: TcpTestServer;
  udp: UdpTestServer;
  record(over?: Partial<ServerRecord>): ServerRecord;
}

/** `n` servers on 127.0.0.1, each a TCP and a UDP echo server (ids a, b, c, …). */
export async function startServers(n: number, opts: { greet?: boolean } = {}): Promise<TestServer[]> {
  const out: TestServer[] = [];
  for (let i = 0; i < n; i++) {
    const id = n <= 26 ? String.fromCharCode(97 + i) : `s${i}`;
    const tcp = await startTcpServer({ id, greet: opts.greet });
    const udp = await startUdpServer({ id });
    out.push({ id, tcp, udp, record: (over = {}) => rec(id, { tcpPort: tcp.port, udpPort: udp.port, ...over }) });
  }
  return out;
}

export async function closeServers(servers: TestServer[]): Promise<void> {
  await Promise.all(servers.flatMap((s) => [s.tcp.close(), s.udp.close()]));
}

/** Accepted TCP connections per server id. */
export const acceptedBy = (servers: TestServer[]) => Object.fromEntries(servers.map((s) => [s.id, s.tcp.accepted]));
/** UDP datagrams received per server id. */
export const receivedBy = (servers: TestServer[]) => Object.fromEntries(servers.map((s) => [s.id, s.udp.received]));

/**
 * The Cluster surface the tests use (pick, connect, udp, events, close) over a Balancer fed by a
 * Feed on a ManualClock. `join` cannot be imported until sdk/mdns/browser.ts lands; this
 * is the same composition join makes (Balancer + connectWithFailover + UdpClient).
 */
export interface TestCluster extends TestBalancer {
  pick(opts?: { key?: Key }): Server | undefined;
  connect(opts?: ConnectOptions): Promise<net.Socket>;
  udp(opts?: UdpOptions): UdpClient;
}

export function testCluster(records: ServerRecord[], opts: Partial<JoinOptions> = {}, seed = 1): TestCluster {
  const tb = testBalancer(records, opts, seed);
  const udps: UdpClient[] = [];
  return {
    ...tb,
    pick(o) {
      const s = tb.b.pick(o?.key === undefined ? -1 : hashKey(o.key));
      if (s) tb.b.countPick(s);
      return s;
    },
    connect(o = {}) {
      return connectWithFailover(tb.b, o.key === undefined ? -1 : hashKey(o.key), o, 'game');
    },
    udp(o) {
      const u = new UdpClient(tb.b, o);
      udps.push(u);
      return u;
    },
    close() {
      tb.close();
      for (const u of udps) void u.close();
    },
  };
}

export interface UdpReply {
  /** The server the SDK named in the `message` event. */
  server: string | undefined;
  /** The server id the reply itself carries (what the server says it is). */
  from: string;
  /** The server `send` returned. */
  sentTo: string | undefined;
}

/**
 * Send one datagram per entry of `keys` (undefined = keyless) and collect every echo reply, in
 * windows of `window` datagrams so loopback socket buffers never overflow; a window whose replies do
 * not all come within 2 s is resent once, then the call fails. Returns the replies by index.
 */
export async function udpRound(u: UdpClient, keys: readonly (Key | undefined)[], window = 100): Promise<UdpReply[]> {
  const replies: (UdpReply | undefined)[] = new Array(keys.length);
  const sentTo: (string | undefined)[] = new Array(keys.length);
  const onMessage = (msg: Buffer, server: Server | undefined) => {
    const s = msg.toString();
    const bar = s.indexOf('|');
    const i = Number(s.slice(bar + 1));
    replies[i] = { server: server?.id, from: s.slice(0, bar), sentTo: sentTo[i] };
  };
  u.on('message', onMessage);
  try {
    for (let start = 0; start < keys.length; start += window) {
      const end = Math.min(keys.length, start + window);
      for (let attempt = 0; ; attempt++) {
        for (let i = start; i < end; i++) {
          if (replies[i]) continue;
          const k = keys[i];
          sentTo[i] = u.send(String(i), k === undefined ? undefined : { key: k })?.id;
        }
        const missing = () => {
          let m = 0;
          for (let i = start; i < end; i++) if (!replies[i]) m++;
          return m;
        };
        await until(() => missing() === 0, 2000, 'the replies of this window', 2).catch(() => {});
        if (missing() === 0) break;
        if (attempt === 1) throw new Error(`udpRound: no reply to ${missing()} datagrams of window ${start}`);
      }
    }
  } finally {
    u.off('message', onMessage);
  }
  return replies as UdpReply[];
}

export function countBy<T>(xs: readonly T[], f: (x: T) => string | undefined): Record<string, number> {
  const m: Record<string, number> = {};
  for (const x of xs) {
    const k = f(x) ?? '(none)';
    m[k] = (m[k] ?? 0) + 1;
  }
  return m;
}
