import os from 'node:os';
import net from 'node:net';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { BadOptionError, ConfigError } from '../sdk/core/errors.js';
import { checkServiceName } from '../sdk/core/options.js';
import { DEFAULT_WEIGHT, LIMITS, MAX_WEIGHT } from '../sdk/core/protocol.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import type { KeyObject } from 'node:crypto';
import { MAX_KEYS, parseKey } from './gossip/keyring.js';
import { parsePrivateKey } from '../sdk/node/signing.js';

/** How the agent checks its own server. */
export type HealthSpec =
  | { type: 'tcp'; intervalMs?: number; timeoutMs?: number; rise?: number; fall?: number }
  | { type: 'udp'; send: string; expect?: string; intervalMs?: number; timeoutMs?: number; rise?: number; fall?: number }
  | { type: 'ttl'; ttlMs: number }
  | { type: 'none' };

/** Options of `startAgent` (and, flattened, of `peerlb agent`). */
export interface AgentOptions {
  service: string;
  /** Node id, unique in the cluster. Default: the host name. */
  node?: string;
  /** Address clients and peers use to reach this host (IP literal). Default 127.0.0.1. */
  host?: string;
  /** Address the agent listens on. Default: `host`. */
  bind?: string;
  udpPort?: number;
  tcpPort?: number;
  /** The agent's own port (gossip, /v1/watch, /metrics, dashboard, /v1/load). Default 7946 (Serf's). */
  port?: number;
  /** Seed agents to join, ws://host:port. */
  join?: string[];
  /** Announce over mDNS on this interface (IPv4 address). Off when not given. `port`: for tests (default 5353). */
  mdns?: { interface: string; port?: number } | false;
  weight?: number;
  zone?: string;
  /** Max sessions/connections the server takes; with it, utilization = active / capacity. */
  capacity?: number;
  /** Load publish interval, ms. Default 1000. */
  loadIntervalMs?: number;
  health?: HealthSpec;
  /** Longest wait for the server's connections to finish on drain, ms. Default 30000. */
  drainTimeoutMs?: number;
  /** Gossip timing profile. Default 'lan'. */
  gossipProfile?: 'lan' | 'local';
  /** Path of a keyring file (see `peerlb keygen`); reloaded on SIGHUP / `agent.reload`. */
  keyFile?: string;
  /** The keyring itself, base64 keys, the first primary (instead of keyFile). */
  keyring?: string[];
  /** Ed25519 private key (PEM, or base64 of the 32-byte seed) signing this agent's own mDNS TXT and server record (sdk/core/signing.ts). */
  signingKey?: string;
  /** File holding signingKey (`peerlb keygen --signing`). */
  signingKeyFile?: string;
  /** Limits; see AgentLimits. */
  limits?: Partial<AgentLimits>;
  /** Token clients must present to /v1/watch and /v1/events. */
  token?: string;
  logLevel?: LogLevel;
}

/** What the agent accepts from the network, at most. */
export interface AgentLimits {
  /** Largest gossip frame (plain), bytes. Default 1 MiB. */
  maxFrameBytes: number;
  /** Most members remembered. Default 10 000. */
  maxMembers: number;
  /** Most /v1/watch subscribers at once. Default 1024. */
  maxSubscribers: number;
  /** Unsent bytes a gossip peer's or a subscriber's socket may hold; past it frames are dropped (gossip) or the subscriber is cut off. Default 4 MiB. */
  maxPendingBytes: number;
  /** A gossip peer over maxPendingBytes this long is cut off. Default 5000 ms. */
  slowPeerMs: number;
  /** Authentication failures from one identity (IP and the agent address it claims) within authFailureWindowMs before its connections are refused for authBlockMs; the whole IP after 4 times as many. Default 20 in 10 s, 30 s. */
  authFailures: number;
  authFailureWindowMs: number;
  authBlockMs: number;
  /** Sealed frames whose timestamp is further than this from our clock are refused as replays. Default 30 000 ms. */
  replayWindowMs: number;
  /** Sockets open on the agent's port at once, of every kind (kept below the open-file limit). Default 8192. */
  maxConnections: number;
  /** Sockets open on the agent's port from one IP (Consul's http_max_conns_per_client). Default 512. */
  maxConnectionsPerAddress: number;
  /** /v1/watch subscribers (after their hello) from one IP. Default 256. */
  maxSubscribersPerAddress: number;
  /** Unsent bytes across all /v1/watch subscribers; past it the stalled ones are cut first. Default 64 MiB. */
  maxWatchPendingBytes: number;
  /** New /v1/watch sockets (hellos) per second from one IP, on average; bursts of helloBurst. Default 20/s, burst 50. */
  helloRate: number;
  helloBurst: number;
  /** Inbound /v1/gossip sockets in all, and from one IP. Default 4096 and 256. */
  maxGossipSockets: number;
  maxGossipSocketsPerAddress: number;
}

export const DEFAULT_AGENT_LIMITS: Readonly<AgentLimits> = Object.freeze({
  maxFrameBytes: 1 << 20,
  maxMembers: 10_000,
  maxSubscribers: 1024,
  maxPendingBytes: 4 << 20,
  slowPeerMs: 5000,
  authFailures: 20,
  authFailureWindowMs: 10_000,
  authBlockMs: 30_000,
  replayWindowMs: 30_000,
  maxConnections: 8192,
  maxConnectionsPerAddress: 512,
  maxSubscribersPerAddress: 256,
  maxWatchPendingBytes: 64 << 20,
  helloRate: 20,
  helloBurst: 50,
  maxGossipSockets: 4096,
  maxGossipSocketsPerAddress: 256,
});

export type ResolvedAgentOptions = Required<
  Omit<AgentOptions, 'mdns' | 'zone' | 'udpPort' | 'tcpPort' | 'capacity' | 'keyFile' | 'token' | 'keyring' | 'signingKey' | 'signingKeyFile' | 'limits'>
> & {
  mdns: { interface: string; port?: number } | false;
  /** Decoded keys (from `keyring`; a keyFile is read by the agent). */
  keyring: Buffer[] | undefined;
  signingKey: KeyObject | undefined;
  signingKeyFile: string | undefined;
  limits: AgentLimits;
  zone: string | undefined;
  udpPort: number | undefined;
  tcpPort: number | undefined;
  capacity: number | undefined;
  keyFile: string | undefined;
  token: string | undefined;
};

/**
 * Every option of startAgent, which is what a config file may hold ("keys as in startAgent"): also
 * those with no flag or variable (signingKey, limits.slowPeerMs…; nested keys are checked by
 * resolveAgentOptions). Typed so that an option added to AgentOptions and not here fails to build.
 */
const AGENT_OPTION_KEYS: Readonly<Record<keyof AgentOptions, true>> = {
  service: true,
  node: true,
  host: true,
  bind: true,
  udpPort: true,
  tcpPort: true,
  port: true,
  join: true,
  mdns: true,
  weight: true,
  zone: true,
  capacity: true,
  loadIntervalMs: true,
  health: true,
  drainTimeoutMs: true,
  gossipProfile: true,
  keyFile: true,
  keyring: true,
  signingKey: true,
  signingKeyFile: true,
  limits: true,
  token: true,
  logLevel: true,
};

type Kind = 'string' | 'int' | 'list' | 'ip' | 'enum';

/** One option as the CLI, the environment and config files know it. */
export interface OptionSpec {
  /** Dotted path in AgentOptions. */
  path: string;
  flag: string;
  env: string;
  kind: Kind;
  choices?: readonly string[];
  min?: number;
  max?: number;
  default?: string | number;
  describe: string;
}

/** Every agent option, in the order `peerlb agent --help` lists them. */
export const AGENT_OPTION_SPECS: readonly OptionSpec[] = [
  { path: 'service', flag: 'service', env: 'PEERLB_SERVICE', kind: 'string', describe: 'service name (RFC 6335: 1-15 letters, digits, hyphens); required' },
  { path: 'node', flag: 'node', env: 'PEERLB_NODE', kind: 'string', describe: 'node id, unique in the cluster', default: 'the host name' },
  { path: 'host', flag: 'host', env: 'PEERLB_HOST', kind: 'ip', describe: 'address clients and peers use to reach this host', default: '127.0.0.1' },
  { path: 'bind', flag: 'bind', env: 'PEERLB_BIND', kind: 'ip', describe: 'address the agent listens on', default: 'the --host address' },
  { path: 'udpPort', flag: 'udp', env: 'PEERLB_UDP', kind: 'int', min: 1, max: 65535, describe: "the server's UDP port" },
  { path: 'tcpPort', flag: 'tcp', env: 'PEERLB_TCP', kind: 'int', min: 1, max: 65535, describe: "the server's TCP port" },
  { path: 'port', flag: 'port', env: 'PEERLB_PORT', kind: 'int', min: 0, max: 65535, default: 7946, describe: "the agent's port: gossip, /v1/watch, /metrics, dashboard, /v1/load" },
  { path: 'join', flag: 'join', env: 'PEERLB_JOIN', kind: 'list', describe: 'seed agents to join, ws://host:port (repeat or comma-separate)' },
  { path: 'mdns.interface', flag: 'mdns-interface', env: 'PEERLB_MDNS_INTERFACE', kind: 'ip', describe: 'announce over mDNS on this interface (IPv4); off when not given' },
  { path: 'mdns.port', flag: 'mdns-port', env: 'PEERLB_MDNS_PORT', kind: 'int', min: 1, max: 65535, default: '5353 (RFC 6762)', describe: 'mDNS UDP port, with --mdns-interface (tests use another one)' },
  { path: 'weight', flag: 'weight', env: 'PEERLB_WEIGHT', kind: 'int', min: 1, max: MAX_WEIGHT, default: DEFAULT_WEIGHT, describe: 'relative capacity of the server' },
  { path: 'zone', flag: 'zone', env: 'PEERLB_ZONE', kind: 'string', describe: 'zone (rack, room) of the server' },
  { path: 'capacity', flag: 'capacity', env: 'PEERLB_CAPACITY', kind: 'int', min: 1, max: 1e9, describe: 'sessions/connections the server takes at most; utilization = active / capacity' },
  { path: 'loadIntervalMs', flag: 'load-interval', env: 'PEERLB_LOAD_INTERVAL', kind: 'int', min: 50, max: 3_600_000, default: 1000, describe: 'load publish interval, ms (also at once on a large change)' },
  { path: 'health.type', flag: 'health', env: 'PEERLB_HEALTH', kind: 'enum', choices: ['tcp', 'udp', 'ttl', 'none'], describe: 'health check of the server', default: 'tcp when --tcp is set, else none' },
  { path: 'health.intervalMs', flag: 'health-interval', env: 'PEERLB_HEALTH_INTERVAL', kind: 'int', min: 10, max: 3_600_000, default: 1000, describe: 'health check interval, ms' },
  { path: 'health.timeoutMs', flag: 'health-timeout', env: 'PEERLB_HEALTH_TIMEOUT', kind: 'int', min: 1, max: 600_000, default: 500, describe: 'health check timeout, ms' },
  { path: 'health.rise', flag: 'health-rise', env: 'PEERLB_HEALTH_RISE', kind: 'int', min: 1, max: 100, default: 2, describe: 'successes before healthy (HAProxy rise)' },
  { path: 'health.fall', flag: 'health-fall', env: 'PEERLB_HEALTH_FALL', kind: 'int', min: 1, max: 100, default: 3, describe: 'failures before unhealthy (HAProxy fall)' },
  { path: 'health.send', flag: 'health-udp-send', env: 'PEERLB_HEALTH_UDP_SEND', kind: 'string', describe: 'udp check: payload to send' },
  { path: 'health.expect', flag: 'health-udp-expect', env: 'PEERLB_HEALTH_UDP_EXPECT', kind: 'string', describe: 'udp check: expected reply (prefix); any reply when not given' },
  { path: 'health.ttlMs', flag: 'health-ttl', env: 'PEERLB_HEALTH_TTL', kind: 'int', min: 10, max: 3_600_000, describe: 'ttl check: healthy while load reports arrive within this many ms' },
  { path: 'drainTimeoutMs', flag: 'drain-timeout', env: 'PEERLB_DRAIN_TIMEOUT', kind: 'int', min: 0, max: 86_400_000, default: 30_000, describe: "longest wait for the server's connections to finish on drain, ms" },
  { path: 'gossipProfile', flag: 'gossip-profile', env: 'PEERLB_GOSSIP_PROFILE', kind: 'enum', choices: ['lan', 'local'], default: 'lan', describe: 'gossip timing profile' },
  { path: 'keyFile', flag: 'key-file', env: 'PEERLB_KEY_FILE', kind: 'string', describe: 'keyring file sealing agent-to-agent frames (peerlb keygen); reloaded on SIGHUP' },
  { path: 'keyring', flag: 'keyring', env: 'PEERLB_KEYRING', kind: 'list', describe: 'keyring as base64 keys, primary first (prefer --key-file: flags show in ps)' },
  { path: 'signingKeyFile', flag: 'signing-key-file', env: 'PEERLB_SIGNING_KEY_FILE', kind: 'string', describe: 'Ed25519 key signing mDNS and /v1/watch announcements (peerlb keygen --signing)' },
  { path: 'limits.maxFrameBytes', flag: 'max-frame-bytes', env: 'PEERLB_MAX_FRAME_BYTES', kind: 'int', min: 4096, max: 16 << 20, default: DEFAULT_AGENT_LIMITS.maxFrameBytes, describe: 'largest gossip frame accepted, bytes' },
  { path: 'limits.maxMembers', flag: 'max-members', env: 'PEERLB_MAX_MEMBERS', kind: 'int', min: 1, max: 10_000, default: DEFAULT_AGENT_LIMITS.maxMembers, describe: 'most members remembered' },
  { path: 'limits.maxSubscribers', flag: 'max-subscribers', env: 'PEERLB_MAX_SUBSCRIBERS', kind: 'int', min: 0, max: 1_000_000, default: DEFAULT_AGENT_LIMITS.maxSubscribers, describe: 'most /v1/watch subscribers' },
  { path: 'limits.maxPendingBytes', flag: 'max-pending-bytes', env: 'PEERLB_MAX_PENDING_BYTES', kind: 'int', min: 65_536, max: 1 << 30, default: DEFAULT_AGENT_LIMITS.maxPendingBytes, describe: 'unsent bytes per socket before a peer is slow' },
  { path: 'limits.slowPeerMs', flag: 'slow-peer', env: 'PEERLB_SLOW_PEER', kind: 'int', min: 10, max: 3_600_000, default: DEFAULT_AGENT_LIMITS.slowPeerMs, describe: 'a peer over --max-pending-bytes this long is cut off, ms' },
  { path: 'limits.authFailures', flag: 'auth-failure-limit', env: 'PEERLB_AUTH_FAILURE_LIMIT', kind: 'int', min: 1, max: 1_000_000_000, default: DEFAULT_AGENT_LIMITS.authFailures, describe: 'authentication failures per identity (IP and claimed agent address; 4x that per IP) within --auth-failure-window before its connections are refused' },
  { path: 'limits.authFailureWindowMs', flag: 'auth-failure-window', env: 'PEERLB_AUTH_FAILURE_WINDOW', kind: 'int', min: 1, max: 3_600_000, default: DEFAULT_AGENT_LIMITS.authFailureWindowMs, describe: 'window in which --auth-failure-limit failures block an IP, ms' },
  { path: 'limits.authBlockMs', flag: 'auth-block', env: 'PEERLB_AUTH_BLOCK', kind: 'int', min: 0, max: 86_400_000, default: DEFAULT_AGENT_LIMITS.authBlockMs, describe: 'how long a blocked IP is refused, ms' },
  { path: 'limits.replayWindowMs', flag: 'replay-window', env: 'PEERLB_REPLAY_WINDOW', kind: 'int', min: 100, max: 3_600_000, default: DEFAULT_AGENT_LIMITS.replayWindowMs, describe: 'sealed frames whose timestamp is further off than this are refused, ms' },
  { path: 'limits.maxConnections', flag: 'max-connections', env: 'PEERLB_MAX_CONNECTIONS', kind: 'int', min: 16, max: 1_000_000, default: DEFAULT_AGENT_LIMITS.maxConnections, describe: 'sockets open on the agent port at once (kept below the open-file limit)' },
  { path: 'limits.maxConnectionsPerAddress', flag: 'max-connections-per-ip', env: 'PEERLB_MAX_CONNECTIONS_PER_IP', kind: 'int', min: 1, max: 1_000_000, default: DEFAULT_AGENT_LIMITS.maxConnectionsPerAddress, describe: 'sockets open on the agent port from one IP' },
  { path: 'limits.maxSubscribersPerAddress', flag: 'max-subscribers-per-ip', env: 'PEERLB_MAX_SUBSCRIBERS_PER_IP', kind: 'int', min: 1, max: 1_000_000, default: DEFAULT_AGENT_LIMITS.maxSubscribersPerAddress, describe: '/v1/watch subscribers from one IP' },
  { path: 'limits.maxWatchPendingBytes', flag: 'max-watch-pending-bytes', env: 'PEERLB_MAX_WATCH_PENDING_BYTES', kind: 'int', min: 65_536, max: 1 << 30, default: DEFAULT_AGENT_LIMITS.maxWatchPendingBytes, describe: 'unsent bytes across all /v1/watch subscribers; stalled ones are cut first' },
  { path: 'limits.helloRate', flag: 'hello-rate', env: 'PEERLB_HELLO_RATE', kind: 'int', min: 1, max: 1_000_000, default: DEFAULT_AGENT_LIMITS.helloRate, describe: 'new /v1/watch sockets per second from one IP (then 429)' },
  { path: 'limits.helloBurst', flag: 'hello-burst', env: 'PEERLB_HELLO_BURST', kind: 'int', min: 1, max: 1_000_000, default: DEFAULT_AGENT_LIMITS.helloBurst, describe: 'burst of new /v1/watch sockets from one IP' },
  { path: 'limits.maxGossipSockets', flag: 'max-gossip-sockets', env: 'PEERLB_MAX_GOSSIP_SOCKETS', kind: 'int', min: 1, max: 1_000_000, default: DEFAULT_AGENT_LIMITS.maxGossipSockets, describe: 'inbound /v1/gossip sockets at once' },
  { path: 'limits.maxGossipSocketsPerAddress', flag: 'max-gossip-sockets-per-ip', env: 'PEERLB_MAX_GOSSIP_SOCKETS_PER_IP', kind: 'int', min: 1, max: 1_000_000, default: DEFAULT_AGENT_LIMITS.maxGossipSocketsPerAddress, describe: 'inbound /v1/gossip sockets from one IP' },
  { path: 'token', flag: 'token', env: 'PEERLB_TOKEN', kind: 'string', describe: 'token clients must present to /v1/watch and /v1/events' },
  { path: 'logLevel', flag: 'log-level', env: 'PEERLB_LOG_LEVEL', kind: 'enum', choices: LOG_LEVELS, default: 'info', describe: 'log level' },
];

function setPath(o: Record<string, unknown>, path: string, v: unknown): void {
  const parts = path.split('.');
  let cur = o;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts.at(-1)!] = v;
}

/** Convert a string (flag or env value) to the option's type, or throw naming the option. */
export function coerce(spec: OptionSpec, raw: string | string[], source: string): unknown {
  const name = `${source === 'env' ? spec.env : '--' + spec.flag}`;
  const str = Array.isArray(raw) ? raw.join(',') : raw;
  switch (spec.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(str.trim())) throw new BadOptionError(name, `must be an integer, got ${JSON.stringify(str)}`);
      const n = Number(str);
      // Range checked here too, so that the message names the flag or variable the user typed.
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max))
        throw new BadOptionError(name, `must be an integer in ${spec.min ?? '-∞'}..${spec.max ?? '∞'}, got ${JSON.stringify(str)}`);
      return n;
    }
    case 'list':
      return (Array.isArray(raw) ? raw : [raw]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
    case 'enum':
      if (!spec.choices!.includes(str)) throw new BadOptionError(name, `must be one of ${spec.choices!.join(', ')}, got ${JSON.stringify(str)}`);
      return str;
    case 'ip':
      if (net.isIP(str) === 0) throw new BadOptionError(name, `must be an IPv4 or IPv6 address, got ${JSON.stringify(str)}`);
      return str;
    default:
      return str;
  }
}

/**
 * Merge the sources of agent configuration, later ones winning: defaults < config file < PEERLB_*
 * environment variables < command-line flags. Returns plain AgentOptions, not yet validated.
 */
export function mergeAgentConfig(parts: { file?: string; env?: NodeJS.ProcessEnv; flags?: Record<string, string | string[] | undefined> }): AgentOptions {
  const out: Record<string, unknown> = {};
  if (parts.file) {
    let text: string;
    try {
      text = readFileSync(parts.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${parts.file}: ${(err as Error).message}`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config file ${parts.file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`config file ${parts.file} must hold a JSON object`);
    for (const k of Object.keys(json)) if (!Object.hasOwn(AGENT_OPTION_KEYS, k)) throw new ConfigError(`config file ${parts.file}: unknown option "${k}"`);
    Object.assign(out, structuredClone(json));
  }
  for (const spec of AGENT_OPTION_SPECS) {
    const v = parts.env?.[spec.env];
    if (v !== undefined && v !== '') setPath(out, spec.path, coerce(spec, v, 'env'));
  }
  for (const spec of AGENT_OPTION_SPECS) {
    const v = parts.flags?.[spec.flag];
    if (v !== undefined) setPath(out, spec.path, coerce(spec, v, 'flag'));
  }
  return out as unknown as AgentOptions;
}

function int(option: string, v: unknown, def: number | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
    throw new BadOptionError(option, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v as number;
}

function ip(option: string, v: unknown, def: string): string {
  if (v === undefined) return def;
  if (typeof v !== 'string' || net.isIP(v) === 0) throw new BadOptionError(option, `must be an IPv4 or IPv6 address, got ${JSON.stringify(v)}`);
  return v;
}

function optStr(option: string, v: unknown, max = 255): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new BadOptionError(option, `must be a non-empty string of at most ${max} chars`);
  return v;
}

/**
 * A nested option object holds only the keys it knows: a typo (`health.intervalMS`) is an error
 * naming it, not a setting silently left at its default.
 */
function onlyKeys(option: string, o: object, allowed: readonly string[]): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) throw new BadOptionError(`${option}.${k}`, `is not an option of ${option} (known: ${allowed.join(', ')})`);
}

const HEALTH_KEYS = ['type', 'intervalMs', 'timeoutMs', 'rise', 'fall', 'send', 'expect', 'ttlMs'] as const;

/** Validate agent options once, at the edge, naming the option that is wrong. */
export function resolveAgentOptions(input: AgentOptions): ResolvedAgentOptions {
  if (typeof input !== 'object' || input === null) throw new BadOptionError('options', 'must be an object');
  // Unknown keys are refused, as in config files: a typo is not a setting silently left at its default.
  for (const k of Object.keys(input)) {
    if (Object.hasOwn(AGENT_OPTION_KEYS, k)) continue;
    if (k === 'log' || k === 'clock' || k === 'random')
      throw new BadOptionError(k, `is not an agent option: it goes in the second argument, startAgent(options, { ${k}: … })`);
    throw new BadOptionError(k, `is not an agent option (known: ${Object.keys(AGENT_OPTION_KEYS).join(', ')})`);
  }
  const service = checkServiceName('service', input.service);
  const node = optStr('node', input.node) ?? os.hostname();
  // ≤ 63 chars: the node id becomes a DNS label of the mDNS instance name (RFC 1035 §2.3.4).
  if (!/^[\w.\-:@]{1,63}$/.test(node)) throw new BadOptionError('node', `must be 1–63 letters, digits and . - _ : @, got ${JSON.stringify(node)}`);
  const host = ip('host', input.host, '127.0.0.1');
  const bind = ip('bind', input.bind, host);
  const udpPort = int('udpPort', input.udpPort, undefined, 1, 65535);
  const tcpPort = int('tcpPort', input.tcpPort, undefined, 1, 65535);
  if (udpPort === undefined && tcpPort === undefined) throw new BadOptionError('udpPort', 'or tcpPort must be given: the agent announces a server');
  const port = int('port', input.port, 7946, 0, 65535)!;
  const join = input.join ?? [];
  if (!Array.isArray(join)) throw new BadOptionError('join', 'must be a list of ws:// URLs');
  join.forEach((u, i) => {
    if (typeof u !== 'string' || !/^ws:\/\/[^/\s]+:\d+\/?$/.test(u)) throw new BadOptionError(`join[${i}]`, `must be ws://host:port, got ${JSON.stringify(u)}`);
  });
  let mdns: { interface: string; port?: number } | false = false;
  if (input.mdns) {
    if (typeof input.mdns !== 'object') throw new BadOptionError('mdns', 'must be an object { interface, port? } or false');
    onlyKeys('mdns', input.mdns, ['interface', 'port']);
    const iface = input.mdns.interface;
    if (typeof iface !== 'string' || net.isIPv4(iface) === false) throw new BadOptionError('mdns.interface', `must be an IPv4 address, got ${JSON.stringify(iface)}`);
    mdns = { interface: iface };
  }
  const weight = int('weight', input.weight, DEFAULT_WEIGHT, 1, MAX_WEIGHT)!;
  const zone = optStr('zone', input.zone);
  // The zone is announced over mDNS as the TXT string `zone=<zone>`, at most 255 bytes (RFC 6763
  // §6.1). Refused here, naming the option, rather than by the announcer after the agent is up
  // (or half-way through a reload).
  const zoneTxtBytes = zone === undefined ? 0 : Buffer.byteLength(`zone=${zone}`, 'utf8');
  if (zoneTxtBytes > LIMITS.maxTxtStringBytes)
    throw new BadOptionError('zone', `must be at most ${LIMITS.maxTxtStringBytes - 5} bytes in UTF-8 (mDNS announces it as "zone=…", at most ${LIMITS.maxTxtStringBytes} bytes), got ${zoneTxtBytes - 5}`);
  const capacity = int('capacity', input.capacity, undefined, 1, 1e9);
  const loadIntervalMs = int('loadIntervalMs', input.loadIntervalMs, 1000, 50, 3_600_000)!;
  const drainTimeoutMs = int('drainTimeoutMs', input.drainTimeoutMs, 30_000, 0, 86_400_000)!;
  const gossipProfile = input.gossipProfile ?? 'lan';
  if (gossipProfile !== 'lan' && gossipProfile !== 'local') throw new BadOptionError('gossipProfile', "must be 'lan' or 'local'");
  const logLevel = input.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new BadOptionError('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
  const health = resolveHealth(input.health, tcpPort, udpPort);
  const keyFile = optStr('keyFile', input.keyFile, 4096);
  let keyring: Buffer[] | undefined;
  if (input.keyring !== undefined) {
    if (keyFile !== undefined) throw new BadOptionError('keyring', 'and keyFile are both set: give one');
    if (!Array.isArray(input.keyring) || input.keyring.length === 0) throw new BadOptionError('keyring', 'must be a non-empty list of base64 keys');
    keyring = input.keyring.map((k, i) => {
      try {
        return parseKey(k, `keyring[${i}]`);
      } catch (err) {
        throw new BadOptionError(`keyring[${i}]`, (err as Error).message.replace(/^keyring\[\d+\]: /, ''));
      }
    });
    if (keyring.length > MAX_KEYS) throw new BadOptionError('keyring', `holds more than ${MAX_KEYS} keys`);
  }
  const signingKeyFile = optStr('signingKeyFile', input.signingKeyFile, 4096);
  let signingKey: KeyObject | undefined;
  if (input.signingKey !== undefined) {
    if (signingKeyFile !== undefined) throw new BadOptionError('signingKey', 'and signingKeyFile are both set: give one');
    try {
      signingKey = parsePrivateKey(input.signingKey, 'signingKey');
    } catch (err) {
      throw new BadOptionError('signingKey', (err as Error).message.replace(/^signingKey: /, ''));
    }
  }
  if (mdns && input.mdns && input.mdns.port !== undefined) mdns.port = int('mdns.port', input.mdns.port, undefined, 1, 65535);
  const lim = (input.limits ?? {}) as Partial<Record<keyof AgentLimits, unknown>>;
  if (typeof lim !== 'object' || lim === null) throw new BadOptionError('limits', 'must be an object');
  const d = DEFAULT_AGENT_LIMITS;
  onlyKeys('limits', lim, Object.keys(d));
  const limits: AgentLimits = {
    maxFrameBytes: int('limits.maxFrameBytes', lim.maxFrameBytes, d.maxFrameBytes, 4096, 16 << 20)!,
    maxMembers: int('limits.maxMembers', lim.maxMembers, d.maxMembers, 1, 10_000)!,
    maxSubscribers: int('limits.maxSubscribers', lim.maxSubscribers, d.maxSubscribers, 0, 1_000_000)!,
    maxPendingBytes: int('limits.maxPendingBytes', lim.maxPendingBytes, d.maxPendingBytes, 65_536, 1 << 30)!,
    slowPeerMs: int('limits.slowPeerMs', lim.slowPeerMs, d.slowPeerMs, 10, 3_600_000)!,
    authFailures: int('limits.authFailures', lim.authFailures, d.authFailures, 1, 1_000_000_000)!,
    authFailureWindowMs: int('limits.authFailureWindowMs', lim.authFailureWindowMs, d.authFailureWindowMs, 1, 3_600_000)!,
    authBlockMs: int('limits.authBlockMs', lim.authBlockMs, d.authBlockMs, 0, 86_400_000)!,
    replayWindowMs: int('limits.replayWindowMs', lim.replayWindowMs, d.replayWindowMs, 100, 3_600_000)!,
    maxConnections: int('limits.maxConnections', lim.maxConnections, d.maxConnections, 16, 1_000_000)!,
    maxConnectionsPerAddress: int('limits.maxConnectionsPerAddress', lim.maxConnectionsPerAddress, d.maxConnectionsPerAddress, 1, 1_000_000)!,
    maxSubscribersPerAddress: int('limits.maxSubscribersPerAddress', lim.maxSubscribersPerAddress, d.maxSubscribersPerAddress, 1, 1_000_000)!,
    maxWatchPendingBytes: int('limits.maxWatchPendingBytes', lim.maxWatchPendingBytes, d.maxWatchPendingBytes, 65_536, 1 << 30)!,
    helloRate: int('limits.helloRate', lim.helloRate, d.helloRate, 1, 1_000_000)!,
    helloBurst: int('limits.helloBurst', lim.helloBurst, d.helloBurst, 1, 1_000_000)!,
    maxGossipSockets: int('limits.maxGossipSockets', lim.maxGossipSockets, d.maxGossipSockets, 1, 1_000_000)!,
    maxGossipSocketsPerAddress: int('limits.maxGossipSocketsPerAddress', lim.maxGossipSocketsPerAddress, d.maxGossipSocketsPerAddress, 1, 1_000_000)!,
  };
  return {
    service,
    node,
    host,
    bind,
    udpPort,
    tcpPort,
    port,
    join,
    mdns,
    weight,
    zone,
    capacity,
    loadIntervalMs,
    health,
    drainTimeoutMs,
    gossipProfile,
    keyFile,
    keyring,
    signingKey,
    signingKeyFile,
    limits,
    token: optStr('token', input.token, 1024),
    logLevel,
  };
}

/**
 * Refuse an address that is not on this host, the way the kernel does for `host`/`bind` (a UDP
 * bind to it, port 0, closed at once): EADDRNOTAVAIL becomes a BadOptionError naming `option`.
 */
export async function checkLocalAddress(option: string, addr: string): Promise<void> {
  const sock = dgram.createSocket(net.isIPv6(addr) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, addr, () => resolve());
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BadOptionError(option, code === 'EADDRNOTAVAIL' ? `is ${addr}, which is not an address of this host` : `is ${addr}, which cannot be used: ${code ?? (err as Error).message}`);
  } finally {
    try {
      sock.close();
    } catch {
      // never bound
    }
  }
}

function resolveHealth(h: unknown, tcpPort: number | undefined, udpPort: number | undefined): HealthSpec {
  // No health options at all: the same defaults as when some are given (they are the ones --help shows).
  if (h === undefined) h = {};
  if (typeof h !== 'object' || h === null) throw new BadOptionError('health', 'must be an object with a type');
  const o = h as Record<string, unknown>;
  onlyKeys('health', o, HEALTH_KEYS);
  const type = o.type ?? (tcpPort !== undefined ? 'tcp' : 'none');
  const common = {
    intervalMs: int('health.intervalMs', o.intervalMs, 1000, 10, 3_600_000),
    timeoutMs: int('health.timeoutMs', o.timeoutMs, 500, 1, 600_000),
    rise: int('health.rise', o.rise, 2, 1, 100),
    fall: int('health.fall', o.fall, 3, 1, 100),
  };
  switch (type) {
    case 'tcp':
      if (tcpPort === undefined) throw new BadOptionError('health.type', "is 'tcp' but no tcpPort is set");
      return { type: 'tcp', ...common };
    case 'udp': {
      if (udpPort === undefined) throw new BadOptionError('health.type', "is 'udp' but no udpPort is set");
      const send = optStr('health.send', o.send, 1024);
      if (send === undefined) throw new BadOptionError('health.send', "is required for a 'udp' health check");
      return { type: 'udp', send, expect: optStr('health.expect', o.expect, 1024), ...common };
    }
    case 'ttl': {
      const ttlMs = int('health.ttlMs', o.ttlMs, undefined, 10, 3_600_000);
      if (ttlMs === undefined) throw new BadOptionError('health.ttlMs', "is required for a 'ttl' health check");
      return { type: 'ttl', ttlMs };
    }
    case 'none':
      return { type: 'none' };
    default:
      throw new BadOptionError('health.type', `must be tcp, udp, ttl or none, got ${JSON.stringify(type)}`);
  }
}
