import { BadOptionError, ConfigError, type SignatureError } from './errors.js';
import { methods, num, obj, onlyKnown, port, str } from './validate.js';
import { parsePublicKeyText, type PublicKey } from './signing.js';
import { DEFAULT_WEIGHT, MAX_WEIGHT, ipFamily, parseAgentUrl, serverAddressProblem, type ServerRecord } from './protocol.js';
import { STRATEGY_NAMES, type StrategyName } from './pickers/index.js';
import type { Clock } from './clock.js';
import type { Random } from './random.js';
import type { DiscoverySource } from './discovery/source.js';

/** A static server: `"host:port"` (same port for TCP and UDP), `"tcp://host:port"`, `"udp://host:port"`, or an object. */
export type StaticServer =
  | string
  | { id?: string; host: string; udpPort?: number; tcpPort?: number; weight?: number; zone?: string };

export interface MdnsDiscoveryOptions {
  /** IPv4 address of the interface to query on. Tests and the demo pass '127.0.0.1'. */
  interface: string;
  /** Subscribe to a found agent's /v1/watch for live load and health (default true). */
  subscribe?: boolean;
  /** UDP port of the link (default 5353, RFC 6762 §3). For tests that must stay off the shared port. */
  port?: number;
}

/**
 * A key object as `verify.publicKey` takes it (Node's `KeyObject` is one): the core reads a public
 * Ed25519 one through `export({ format: 'der', type: 'spki' })`; the Node entry takes any KeyObject.
 */
export interface PublicKeyObject {
  readonly type: string;
  readonly asymmetricKeyType?: string;
  export(options: { format: 'der'; type: 'spki' }): Uint8Array;
}

/** Turns `verify.publicKey` into a key (throws ConfigError): sdk/core/signing.ts, or the Node entry's. */
export type PublicKeyParser = (input: unknown, where: string) => PublicKey;

export type DiscoveryOptions =
  | { servers: StaticServer[] }
  | { mdns: MdnsDiscoveryOptions }
  | { agents: string[] }
  | { source: DiscoverySource };

export interface JoinOptions {
  /** The service to balance over (RFC 6335 service name: 1–15 letters, digits, hyphens). */
  service: string;
  /** Where servers come from: a static list, mDNS, seed agents, or your own source. */
  discovery: DiscoveryOptions;
  /** Default `'p2c'`. */
  strategy?: StrategyName;
  /** This client's zone; with it, servers in the same zone are preferred (see `zoneAffinity`). */
  zone?: string;
  zoneAffinity?: {
    /** Spill to all zones when fewer than this share of local servers is eligible. Default 0.5. */
    minHealthyShare?: number;
    /** Spill when local load per weight exceeds this multiple of the other zones'. Default 1.5. */
    maxLoadRatio?: number;
    /** Spill when the local zone's mean reported utilization reaches this. Default 0.85. */
    maxUtilization?: number;
  };
  /** Slow start window for new and recovered servers, ms; 0 (default) disables it, as in nginx/Envoy. */
  slowStartMs?: number;
  /** Slow start curve: 1 is linear, higher ramps faster early (Envoy's aggression). Default 1. */
  slowStartAggression?: number;
  /** Floor of the slow start factor. Default 0.1. */
  slowStartMinShare?: number;
  outlier?: {
    /** Consecutive failures (connect refused/reset/timeout, reported failures) before ejection. Default 3. */
    consecutiveFailures?: number;
    /** First ejection length, doubled each time the server is ejected again. Default 5000 ms. */
    baseEjectionMs?: number;
    /** Longest ejection. Default 300000 ms (Envoy's max_ejection_time). */
    maxEjectionMs?: number;
    /** Never eject more than this share of servers. Default 0.5. */
    maxEjectedShare?: number;
  };
  /**
   * Panic threshold, 0..1: when the share of eligible (healthy, not ejected) servers falls below
   * it, or no server is eligible, picks go to all servers instead of failing (Envoy's panic mode).
   * Default 0: panic only when none is eligible.
   */
  panicThreshold?: number;
  /** Expected interval of load reports (ms, default 1000) and after how many a report expires (default 3). */
  reportIntervalMs?: number;
  reportExpireIntervals?: number;
  /** consistent-hash: bounded-load factor (e.g. 1.25); off by default. */
  hashBalanceFactor?: number;
  /** ewma: time constant of the peak EWMA in ms. Default 10000 (Finagle's decayTime). */
  ewmaDecayMs?: number;
  /** Default per-attempt connect timeout, ms. Default 2000. */
  connectTimeoutMs?: number;
  /** Default connect attempts (servers tried) per `connect`. Default 3. */
  connectAttempts?: number;
  /** How long `join` waits for a first server from mDNS or agents. Default 2000 ms. */
  waitForServersMs?: number;
  /** Bearer token sent to agents' /v1/watch when they require one. */
  token?: string;
  /**
   * Verify announcements with the cluster's Ed25519 public key (what `peerlb keygen --public`
   * prints, PEM, base64 of the SPKI DER, hex, or a KeyObject; sdk/core/signing.ts parsePublicKeyText):
   * servers from mDNS or agents that are not signed by their own agent with it are ignored
   * and reported through the 'rejected' event. Static lists and custom sources are not checked.
   */
  verify?: { publicKey: string | PublicKeyObject };
  /**
   * Called for every server ignored for its signature (as the 'rejected' event, once per server
   * and reason until it changes), from the start: also for those rejected while `join` is still
   * waiting, before a listener could be attached.
   */
  onRejected?: (err: SignatureError) => void;
  clock?: Clock;
  random?: Random;
}

export type ResolvedOptions = Required<
  Omit<JoinOptions, 'zone' | 'zoneAffinity' | 'outlier' | 'hashBalanceFactor' | 'token' | 'verify' | 'onRejected' | 'clock' | 'random'>
> & {
  /** The public key announcements must be signed with, when verifying. */
  verify: PublicKey | undefined;
  zone: string | undefined;
  zoneAffinity: Required<NonNullable<JoinOptions['zoneAffinity']>>;
  outlier: Required<NonNullable<JoinOptions['outlier']>>;
  hashBalanceFactor: number | undefined;
  token: string | undefined;
  onRejected: ((err: SignatureError) => void) | undefined;
};

export const DEFAULTS = {
  strategy: 'p2c' as StrategyName,
  zoneAffinity: { minHealthyShare: 0.5, maxLoadRatio: 1.5, maxUtilization: 0.85 },
  slowStartMs: 0,
  slowStartAggression: 1,
  slowStartMinShare: 0.1,
  outlier: { consecutiveFailures: 3, baseEjectionMs: 5000, maxEjectionMs: 300_000, maxEjectedShare: 0.5 },
  panicThreshold: 0,
  reportIntervalMs: 1000,
  reportExpireIntervals: 3,
  ewmaDecayMs: 10_000,
  connectTimeoutMs: 2000,
  connectAttempts: 3,
  waitForServersMs: 2000,
};

const SERVICE_RE = /^(?=.*[a-z])[a-z0-9](?:[a-z0-9]|-(?!-))*$/i;

/** RFC 6335 §5.1 service name: 1–15 chars, letters/digits/hyphens, a letter, no leading/trailing/double hyphen. */
export function checkServiceName(option: string, v: unknown): string {
  if (typeof v !== 'string' || v.length < 1 || v.length > 15 || !SERVICE_RE.test(v) || v.endsWith('-'))
    throw new BadOptionError(option, `must be a service name of 1–15 letters, digits and single hyphens (RFC 6335), got ${JSON.stringify(v)}`);
  return v;
}

const JOIN_KEYS = [
  'service', 'discovery', 'strategy', 'zone', 'zoneAffinity', 'slowStartMs', 'slowStartAggression', 'slowStartMinShare', 'outlier',
  'panicThreshold', 'reportIntervalMs', 'reportExpireIntervals', 'hashBalanceFactor', 'ewmaDecayMs', 'connectTimeoutMs',
  'connectAttempts', 'waitForServersMs', 'token', 'verify', 'onRejected', 'clock', 'random',
] as const satisfies readonly (keyof JoinOptions)[];

/** Validate `join` options once, at the edge, with a message that names the option. */
export function resolveOptions(input: unknown, parseKey: PublicKeyParser = parsePublicKeyText): ResolvedOptions {
  const o = obj('options', input);
  if (input === undefined) throw new BadOptionError('options', 'are required: join({ service, discovery })');
  onlyKnown('', o, JOIN_KEYS);
  const service = checkServiceName('service', o.service);
  const discovery = checkDiscovery(o.discovery);
  const strategy = o.strategy ?? DEFAULTS.strategy;
  if (typeof strategy !== 'string' || !(STRATEGY_NAMES as string[]).includes(strategy))
    throw new BadOptionError('strategy', `must be one of ${STRATEGY_NAMES.join(', ')}, got ${JSON.stringify(strategy)}`);
  const za = obj('zoneAffinity', o.zoneAffinity);
  onlyKnown('zoneAffinity', za, Object.keys(DEFAULTS.zoneAffinity));
  const ol = obj('outlier', o.outlier);
  onlyKnown('outlier', ol, Object.keys(DEFAULTS.outlier));
  const hbf = o.hashBalanceFactor === undefined ? undefined : num('hashBalanceFactor', o.hashBalanceFactor, 0, 1.0001, 100);
  const r: ResolvedOptions = {
    service,
    discovery,
    strategy: strategy as StrategyName,
    zone: str('zone', o.zone),
    zoneAffinity: {
      minHealthyShare: num('zoneAffinity.minHealthyShare', za.minHealthyShare, DEFAULTS.zoneAffinity.minHealthyShare, 0, 1),
      maxLoadRatio: num('zoneAffinity.maxLoadRatio', za.maxLoadRatio, DEFAULTS.zoneAffinity.maxLoadRatio, 1, 1000),
      maxUtilization: num('zoneAffinity.maxUtilization', za.maxUtilization, DEFAULTS.zoneAffinity.maxUtilization, 0, 100),
    },
    slowStartMs: num('slowStartMs', o.slowStartMs, DEFAULTS.slowStartMs, 0, 3_600_000),
    slowStartAggression: num('slowStartAggression', o.slowStartAggression, DEFAULTS.slowStartAggression, 0.01, 100),
    slowStartMinShare: num('slowStartMinShare', o.slowStartMinShare, DEFAULTS.slowStartMinShare, 0.001, 1),
    outlier: {
      consecutiveFailures: num('outlier.consecutiveFailures', ol.consecutiveFailures, DEFAULTS.outlier.consecutiveFailures, 1, 1000, true),
      baseEjectionMs: num('outlier.baseEjectionMs', ol.baseEjectionMs, DEFAULTS.outlier.baseEjectionMs, 1, 3_600_000),
      maxEjectionMs: num('outlier.maxEjectionMs', ol.maxEjectionMs, DEFAULTS.outlier.maxEjectionMs, 1, 86_400_000),
      maxEjectedShare: num('outlier.maxEjectedShare', ol.maxEjectedShare, DEFAULTS.outlier.maxEjectedShare, 0, 1),
    },
    panicThreshold: num('panicThreshold', o.panicThreshold, DEFAULTS.panicThreshold, 0, 1),
    reportIntervalMs: num('reportIntervalMs', o.reportIntervalMs, DEFAULTS.reportIntervalMs, 10, 3_600_000),
    reportExpireIntervals: num('reportExpireIntervals', o.reportExpireIntervals, DEFAULTS.reportExpireIntervals, 1.01, 1000),
    hashBalanceFactor: hbf,
    ewmaDecayMs: num('ewmaDecayMs', o.ewmaDecayMs, DEFAULTS.ewmaDecayMs, 1, 3_600_000),
    connectTimeoutMs: num('connectTimeoutMs', o.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 1, 600_000),
    connectAttempts: num('connectAttempts', o.connectAttempts, DEFAULTS.connectAttempts, 1, 100, true),
    waitForServersMs: num('waitForServersMs', o.waitForServersMs, DEFAULTS.waitForServersMs, 0, 600_000),
    token: str('token', o.token, 1024),
    verify: verifyKey(o.verify, parseKey),
    onRejected: o.onRejected as ResolvedOptions['onRejected'],
  };
  // Not kept in ResolvedOptions (join reads them directly), but checked here like every option.
  methods('clock', o.clock, ['now', 'setTimeout', 'clearTimeout']);
  methods('random', o.random, ['next', 'int']);
  if (o.onRejected !== undefined && typeof o.onRejected !== 'function') throw new BadOptionError('onRejected', 'must be a function (err) => void');
  return r;
}

function verifyKey(v: unknown, parseKey: PublicKeyParser): PublicKey | undefined {
  if (v === undefined) return undefined;
  const o = obj('verify', v);
  onlyKnown('verify', o, ['publicKey']);
  if (o.publicKey === undefined) throw new BadOptionError('verify.publicKey', 'is required: the Ed25519 public key announcements are signed with');
  try {
    return parseKey(o.publicKey, 'verify.publicKey');
  } catch (err) {
    throw new BadOptionError('verify.publicKey', `is not usable: ${err instanceof ConfigError ? err.message.replace(/^verify\.publicKey: /, '') : String(err)}`);
  }
}

function checkDiscovery(v: unknown): DiscoveryOptions {
  const d = obj('discovery', v);
  if (v === undefined)
    throw new BadOptionError('discovery', "is required: { servers: [...] }, { mdns: { interface: '127.0.0.1' } }, { agents: ['ws://…'] } or { source }");
  onlyKnown('discovery', d, ['servers', 'mdns', 'agents', 'source']);
  const keys = Object.keys(d).filter((k) => d[k] !== undefined);
  if (keys.length !== 1) throw new BadOptionError('discovery', 'must have exactly one of servers, mdns, agents, source');
  if (d.servers !== undefined) {
    if (!Array.isArray(d.servers)) throw new BadOptionError('discovery.servers', 'must be an array');
    d.servers.forEach((s, i) => parseStaticServer(s, `discovery.servers[${i}]`, 'x'));
    return { servers: d.servers as StaticServer[] };
  }
  if (d.mdns !== undefined) {
    const m = obj('discovery.mdns', d.mdns);
    onlyKnown('discovery.mdns', m, ['interface', 'subscribe', 'port']);
    if (typeof m.interface !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(m.interface))
      throw new BadOptionError('discovery.mdns.interface', "must be the IPv4 address of the interface to use, e.g. '127.0.0.1'");
    if (m.subscribe !== undefined && typeof m.subscribe !== 'boolean') throw new BadOptionError('discovery.mdns.subscribe', 'must be true or false');
    if (m.port !== undefined && (!Number.isInteger(m.port) || (m.port as number) < 1 || (m.port as number) > 65535))
      throw new BadOptionError('discovery.mdns.port', 'must be a port (1..65535)');
    const mdns: MdnsDiscoveryOptions = { interface: m.interface as string, subscribe: m.subscribe !== false };
    if (m.port !== undefined) mdns.port = m.port as number;
    return { mdns };
  }
  if (d.agents !== undefined) {
    if (!Array.isArray(d.agents) || d.agents.length === 0) throw new BadOptionError('discovery.agents', 'must be a non-empty array of ws:// URLs');
    // The same check as for agent URLs from the network: what passes is safe to hand to `new WebSocket`.
    d.agents.forEach((u, i) => {
      if (parseAgentUrl(u) === undefined)
        throw new BadOptionError(`discovery.agents[${i}]`, `must be a ws:// or wss:// URL with a host and a port in 1..65535 (no credentials, query or fragment), got ${JSON.stringify(u)}`);
    });
    return { agents: d.agents as string[] };
  }
  const src = d.source as DiscoverySource | undefined;
  if (!src || typeof src.start !== 'function' || typeof src.close !== 'function')
    throw new BadOptionError('discovery.source', 'must have start(sink) and close() methods');
  return { source: src };
}


/** RFC 1123 §2.1 host name: dot-separated labels of letters, digits and inner hyphens, ≤ 63 each, ≤ 253 in all. */
const HOST_NAME_RE = /^(?=.{1,253}\.?$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * A static server's host: an IP literal a server can have (not unspecified, multicast or
 * broadcast), or a host name, which `join` resolves once (discovery/static.ts): records in the
 * view always hold an address, so no send or connect does a DNS lookup.
 */
function staticHost(option: string, host: string): string {
  if (ipFamily(host) !== 0) {
    const problem = serverAddressProblem(host);
    if (problem) throw new BadOptionError(option, `${problem}, got ${JSON.stringify(host)}`);
    return host;
  }
  if (!HOST_NAME_RE.test(host)) throw new BadOptionError(option, `must be an IP address or a host name, got ${JSON.stringify(host.slice(0, 300))}`);
  return host;
}

/** Parse one static server entry into a record (throws BadOptionError naming the entry). Host names are resolved later, by join. */
export function parseStaticServer(s: unknown, option: string, service: string): ServerRecord {
  if (typeof s === 'string') {
    const m = /^(?:(tcp|udp):\/\/)?(\[[0-9a-f:.]+\]|[^\s:/[\]]+):(\d+)$/i.exec(s);
    if (!m) throw new BadOptionError(option, `must be "host:port", "tcp://host:port" or "udp://host:port", got ${JSON.stringify(s)}`);
    const host = staticHost(option, m[2]!.replace(/^\[|\]$/g, ''));
    const p = port(option, Number(m[3]))!;
    const scheme = m[1]?.toLowerCase();
    return {
      id: s,
      service,
      host,
      tcpPort: scheme === 'udp' ? undefined : p,
      udpPort: scheme === 'tcp' ? undefined : p,
      weight: DEFAULT_WEIGHT,
      health: 'healthy',
    };
  }
  const o = obj(option, s);
  onlyKnown(option, o, ['id', 'host', 'udpPort', 'tcpPort', 'weight', 'zone']);
  if (typeof o.host !== 'string' || o.host.length === 0) throw new BadOptionError(`${option}.host`, 'must be a host name or address');
  staticHost(`${option}.host`, o.host);
  const udpPort = port(`${option}.udpPort`, o.udpPort);
  const tcpPort = port(`${option}.tcpPort`, o.tcpPort);
  if (udpPort === undefined && tcpPort === undefined) throw new BadOptionError(option, 'needs a udpPort or a tcpPort');
  const weight = num(`${option}.weight`, o.weight, DEFAULT_WEIGHT, 1, MAX_WEIGHT, true);
  return {
    id: str(`${option}.id`, o.id) ?? `${o.host}:${tcpPort ?? udpPort}`,
    service,
    host: o.host,
    udpPort,
    tcpPort,
    weight,
    zone: str(`${option}.zone`, o.zone),
    health: 'healthy',
  };
}
