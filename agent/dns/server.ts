/**
 * The agent's DNS interface (issue 16): UDP and TCP on one port (RFC 1035 §4.2, RFC 7766), for
 * the zone only, authoritative, never recursive. Each query is decoded by dns-packet (a packet it
 * cannot decode is counted and dropped), answered by answer.ts from the view as it is at that
 * moment (so a draining or dead server is out of the next answer), and sent. UDP answers pass the
 * response-rate limiter (rate-limit.ts); TCP connections are capped in all and per address, and
 * closed when idle. Loaded lazily by agent/lifecycle.ts, only with --dns-port.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type DecodedPacket } from 'dns-packet';
import { Counter, type Registry } from 'prom-client';
import type { Clock } from '../../sdk/core/clock.js';
import type { ServerRecord } from '../../sdk/core/protocol.js';
import type { Logger } from '../log.js';
import { answerQuery, TCP_MAX_SIZE, type AnswerConfig, type Chooser } from './answer.js';
import { ResponseRateLimiter } from './rate-limit.js';

export interface DnsLimits {
  /** UDP responses per second per source (token bucket), and its burst. */
  rate: number;
  burst: number;
  /** Over the rate, every slip-th response goes out truncated, the rest are dropped. */
  slip: number;
  /** Sources the rate limiter remembers at most. */
  maxSources: number;
  /** TCP connections at once, in all and from one address. */
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** A TCP connection with no complete query for this long is closed (RFC 7766 §6.2.3), ms. */
  idleMs: number;
}

export const DEFAULT_DNS_LIMITS: Readonly<DnsLimits> = Object.freeze({
  rate: 2000,
  burst: 4000,
  slip: 2,
  maxSources: 10_000,
  maxConnections: 256,
  maxConnectionsPerAddress: 16,
  idleMs: 10_000,
});

export interface DnsServerOptions {
  port: number;
  bind: string;
  /** Read per query: a reload may change it. */
  config: () => AnswerConfig;
  /** The live view, read per query. */
  records: () => readonly ServerRecord[];
  choose: Chooser;
  registry: Registry;
  log: Logger;
  clock: Clock;
  limits?: Partial<DnsLimits>;
}

/** Query types counted by name in the metrics; any other is 'other' (the label set stays bounded). */
const COUNTED_QTYPES = new Set(['A', 'AAAA', 'SRV', 'SOA', 'NS', 'ANY', 'TXT', 'PTR', 'CNAME', 'MX', 'HTTPS', 'SVCB', 'none']);

export class DnsServer {
  port = 0;
  private udp!: dgram.Socket;
  private tcp!: net.Server;
  private readonly conns = new Set<net.Socket>();
  private readonly perAddress = new Map<string, number>();
  private readonly limiter: ResponseRateLimiter;
  private readonly limits: DnsLimits;
  private readonly queries: Counter<'qtype' | 'rcode' | 'transport'>;
  private readonly rateLimited: Counter<'action'>;
  private readonly malformed: Counter<'transport'>;
  private readonly tcpRefused: Counter<'reason'>;
  /** Plain counts beside the metrics, for tests and logs. */
  readonly counters = { queries: 0, malformed: 0, slipped: 0, dropped: 0, truncated: 0, tcpRefused: 0 };

  constructor(private readonly o: DnsServerOptions) {
    this.limits = { ...DEFAULT_DNS_LIMITS, ...o.limits };
    this.limiter = new ResponseRateLimiter({ rate: this.limits.rate, burst: this.limits.burst, slip: this.limits.slip, maxSources: this.limits.maxSources, clock: o.clock });
    const registers = [o.registry];
    this.queries = new Counter({ name: 'peerlb_dns_queries_total', help: 'DNS queries answered, by query type, rcode and transport (truncated UDP answers have rcode "truncated").', labelNames: ['qtype', 'rcode', 'transport'], registers });
    this.rateLimited = new Counter({ name: 'peerlb_dns_rate_limited_total', help: 'UDP DNS responses held back by the per-source rate limit: slipped (sent truncated) or dropped.', labelNames: ['action'], registers });
    this.malformed = new Counter({ name: 'peerlb_dns_malformed_total', help: 'DNS messages that could not be decoded (dropped; a TCP connection is closed).', labelNames: ['transport'], registers });
    this.tcpRefused = new Counter({ name: 'peerlb_dns_tcp_refused_total', help: 'DNS TCP connections refused or closed by a cap: total, per_address, idle, oversize.', labelNames: ['reason'], registers });
  }

  async start(): Promise<number> {
    const family = net.isIPv6(this.o.bind) ? 'udp6' : 'udp4';
    // Port 0 (tests): UDP takes a free port and TCP the same; another process may hold it on TCP, so a few tries.
    for (let attempt = 0; ; attempt++) {
      this.udp = dgram.createSocket({ type: family, reuseAddr: false });
      this.udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo));
      this.udp.on('error', (err) => this.o.log.warn({ err }, 'dns udp socket error'));
      await new Promise<void>((resolve, reject) => {
        this.udp.once('error', reject);
        this.udp.bind(this.o.port, this.o.bind, () => {
          this.udp.off('error', reject);
          resolve();
        });
      });
      const port = this.udp.address().port;
      this.tcp = net.createServer((s) => this.onTcp(s));
      try {
        await new Promise<void>((resolve, reject) => {
          this.tcp.once('error', reject);
          this.tcp.listen(port, this.o.bind, () => {
            this.tcp.off('error', reject);
            resolve();
          });
        });
        this.tcp.on('error', (err) => this.o.log.warn({ err }, 'dns tcp server error'));
        this.port = port;
        return port;
      } catch (err) {
        this.udp.close();
        if (this.o.port !== 0 || attempt >= 4) throw err;
      }
    }
  }

  private answer(msg: Buffer, transport: 'udp' | 'tcp'): { response: Buffer; query: DecodedPacket } | 'malformed' | 'ignore' {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      this.counters.malformed++;
      this.malformed.inc({ transport });
      return 'malformed';
    }
    // A response sent to us (QR set) gets none back: answering would make loops between servers.
    if (query.type === 'response') return 'ignore';
    let r;
    try {
      r = answerQuery({ query, transport, records: this.o.records(), config: this.o.config(), choose: this.o.choose });
    } catch (err) {
      // A decoded packet answer.ts did not expect (e.g. a name dns-packet gives back odd): counted as malformed.
      this.counters.malformed++;
      this.malformed.inc({ transport });
      this.o.log.debug({ err }, 'dns query not answered');
      return 'malformed';
    }
    this.counters.queries++;
    if (r.truncated) this.counters.truncated++;
    this.countQuery(COUNTED_QTYPES.has(r.qtype) ? r.qtype : 'other', r.truncated ? 'truncated' : r.rcode, transport);
    return { response: r.response, query };
  }

  /** The query counter's children, by label values (prom-client hashes the labels on every inc otherwise). */
  private readonly queryChildren = new Map<string, { inc(): void }>();
  private countQuery(qtype: string, rcode: string, transport: string): void {
    const key = `${qtype} ${rcode} ${transport}`;
    let c = this.queryChildren.get(key);
    if (!c) this.queryChildren.set(key, (c = this.queries.labels({ qtype, rcode, transport })));
    c.inc();
  }

  private onUdp(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    // Rate decision first: a flood costs a map lookup, not a decode.
    const decision = this.limiter.check(rinfo.address);
    if (decision === 'drop') {
      this.counters.dropped++;
      this.rateLimited.inc({ action: 'drop' });
      return;
    }
    const out = this.answer(msg, 'udp');
    if (out === 'malformed' || out === 'ignore') return;
    let response = out.response;
    if (decision === 'slip') {
      this.counters.slipped++;
      this.rateLimited.inc({ action: 'slip' });
      response = slipResponse(out.query);
    }
    this.udp.send(response, rinfo.port, rinfo.address);
  }

  private onTcp(s: net.Socket): void {
    const addr = s.remoteAddress ?? '?';
    const mine = this.perAddress.get(addr) ?? 0;
    s.on('error', () => {});
    if (this.conns.size >= this.limits.maxConnections || mine >= this.limits.maxConnectionsPerAddress) {
      const reason = this.conns.size >= this.limits.maxConnections ? 'total' : 'per_address';
      this.counters.tcpRefused++;
      this.tcpRefused.inc({ reason });
      s.destroy();
      return;
    }
    this.conns.add(s);
    this.perAddress.set(addr, mine + 1);
    s.once('close', () => {
      this.conns.delete(s);
      const n = (this.perAddress.get(addr) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(addr);
      else this.perAddress.set(addr, n);
    });
    s.setTimeout(this.limits.idleMs, () => {
      this.tcpRefused.inc({ reason: 'idle' });
      s.destroy();
    });
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      // Every complete length-prefixed message in the buffer (RFC 7766 §8: several per connection, pipelined).
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const out = this.answer(msg, 'tcp');
        if (out === 'malformed') {
          s.destroy();
          return;
        }
        if (out === 'ignore') continue;
        const head = Buffer.alloc(2);
        head.writeUInt16BE(out.response.length);
        s.write(Buffer.concat([head, out.response]));
      }
      // A message is at most 65535 bytes plus its length: more unparsed bytes than that cannot happen.
      if (buf.length > TCP_MAX_SIZE + 2) {
        this.tcpRefused.inc({ reason: 'oversize' });
        s.destroy();
      }
    });
  }

  /** Sockets open, and what the limiter tracks (tests, logs). */
  stats(): { tcpConnections: number; rateSources: number } {
    return { tcpConnections: this.conns.size, rateSources: this.limiter.size };
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
      new Promise<void>((r) => {
        try {
          this.udp.close(() => r());
        } catch {
          r();
        }
      }),
    ]);
  }
}

/** A slipped response: the header and question only, TC set (BIND RRL's slip), so a genuine client retries over TCP. */
function slipResponse(q: DecodedPacket): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: q.id ?? 0,
    flags: (1 << 15) | dnsPacket.TRUNCATED_RESPONSE | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED),
    questions: (q.questions ?? []).slice(0, 1),
  });
}

export async function startDnsServer(o: DnsServerOptions): Promise<DnsServer> {
  const s = new DnsServer(o);
  await s.start();
  return s;
}
