/**
 * The agent's option schema: every option once, with its config path, CLI flag, environment
 * variable, type, range, default and doc (AGENT_OPTION_SPECS). The resolver (agent/options.ts:
 * resolveAgentOptions, mergeAgentConfig), the CLI (agent/cli/agent.ts, commander and `--help`) and
 * the README's options table (agent/options-table.ts, checked by test/unit/agent/options-table.test.ts)
 * all read it; nothing else states a default or a range.
 */
import type { KeyObject } from 'node:crypto';
import { DEFAULT_WEIGHT, MAX_WEIGHT } from '../sdk/core/protocol.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { DEFAULT_FALL, DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_RISE, HEALTH_RANGES } from './health/defaults.js';

/** How the agent checks its own server. */
export type HealthSpec =
  | { type: 'tcp'; intervalMs?: number; timeoutMs?: number; rise?: number; fall?: number }
  | { type: 'ws'; intervalMs?: number; timeoutMs?: number; rise?: number; fall?: number }
  | { type: 'udp'; send: string; expect?: string; intervalMs?: number; timeoutMs?: number; rise?: number; fall?: number }
  | { type: 'ttl'; ttlMs: number; intervalMs?: number; rise?: number; fall?: number }
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
  /** The server's WebSocket port (browser clients). An agent needs at least one of udpPort, tcpPort, wsPort. */
  wsPort?: number;
  /** The server's WebSocket path, with wsPort. Default '/'. */
  wsPath?: string;
  /** With wsPort: the server speaks wss (TLS). Default false. */
  wsTls?: boolean;
  /** The agent's own port (gossip, /v1/watch, /metrics, dashboard, /v1/load). Default 7946 (Serf's). */
  port?: number;
  /** Seed agents to join, ws://host:port (wss://host:port with `tls`: a cluster is all-TLS or not). */
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
  // -- TLS and origins (issue 15) --
  /**
   * Serve the agent's port over TLS: https and wss on the one port, gossip included (peers are
   * dialed at wss://). `cert` and `key`: PEM files (or the PEM text itself); `ca`: a PEM file of
   * CAs trusted, besides the system's, when dialing wss:// peers. A cluster is all-TLS or not.
   */
  tls?: { cert: string; key: string; ca?: string };
  /** Origins (scheme://host[:port]) whose pages may open /v1/watch and /v1/events; others get 403. The agent's own origin, and clients sending no Origin, always may. */
  allowOrigin?: string[];
  // -- DNS (issue 16) --
  /** Answer DNS (UDP and TCP) for the zone `domain` from this agent's view; off unless `port` is given. See agent/dns/. */
  dns?: DnsOptions;
}

/** The agent's DNS interface (issue 16). */
export interface DnsOptions {
  /** UDP and TCP port (Consul uses 8600); 0: any free port (tests). */
  port: number;
  /** Address to listen on. Default: the agent's `bind`. */
  bind?: string;
  /** The zone answered, e.g. 'peerlb.' (the default). */
  domain?: string;
  /** Most servers in one answer. Default 3. */
  answers?: number;
  /** TTL of the answers, seconds (0: not cached). Default 1. */
  ttl?: number;
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
  /** UDP DNS responses per second to one source address, on average, and its burst (issue 16: response-rate limiting). Default 2000/s, burst 4000. */
  dnsRate: number;
  dnsBurst: number;
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
  dnsRate: 2000,
  dnsBurst: 4000,
});

export type ResolvedAgentOptions = Required<
  Omit<AgentOptions, 'mdns' | 'zone' | 'udpPort' | 'tcpPort' | 'wsPort' | 'wsPath' | 'capacity' | 'keyFile' | 'token' | 'keyring' | 'signingKey' | 'signingKeyFile' | 'limits' | 'tls' | 'allowOrigin' | 'dns'>
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
  wsPort: number | undefined;
  /** '/' when wsPort is set and no path was given; undefined without wsPort. */
  wsPath: string | undefined;
  capacity: number | undefined;
  keyFile: string | undefined;
  token: string | undefined;
  /** TLS (issue 15): the files (or PEM texts) as given; the agent reads them (agent/tls.ts). */
  tls: { cert: string; key: string; ca: string | undefined } | undefined;
  /** Allowed origins, each normalized as URL.origin gives it (undefined: any origin). */
  allowOrigin: string[] | undefined;
  /** DNS (issue 16): undefined when off; `domain` lower case with its final dot. */
  dns: { port: number; bind: string; domain: string; answers: number; ttl: number } | undefined;
};

/**
 * Every option of startAgent, which is what a config file may hold ("keys as in startAgent"): also
 * those with no flag or variable (signingKey, limits.slowPeerMs…; nested keys are checked by
 * resolveAgentOptions). Typed so that an option added to AgentOptions and not here fails to build.
 */
export const AGENT_OPTION_KEYS: Readonly<Record<keyof AgentOptions, true>> = {
  service: true,
  node: true,
  host: true,
  bind: true,
  udpPort: true,
  tcpPort: true,
  wsPort: true,
  wsPath: true,
  wsTls: true,
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
  tls: true,
  allowOrigin: true,
  dns: true,
};

type Kind = 'string' | 'int' | 'list' | 'ip' | 'enum' | 'bool';

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

/**
 * The health timeout's default, in words: it follows the interval (defaultProbeTimeoutMs), 500 ms
 * at the default 1 s. (Until issue 14 the resolver applied a fixed 500 while the checker halved the
 * interval: `--health-interval 200` ran with a 500 ms timeout.)
 */
export const HEALTH_TIMEOUT_DEFAULT = `half of --health-interval (${DEFAULT_HEALTH_INTERVAL_MS / 2})`;

/** Every agent option, in the order `peerlb agent --help` lists them. */
export const AGENT_OPTION_SPECS: readonly OptionSpec[] = [
  { path: 'service', flag: 'service', env: 'PEERLB_SERVICE', kind: 'string', describe: 'service name (RFC 6335: 1-15 letters, digits, hyphens); required' },
  { path: 'node', flag: 'node', env: 'PEERLB_NODE', kind: 'string', describe: 'node id, unique in the cluster', default: 'the host name' },
  { path: 'host', flag: 'host', env: 'PEERLB_HOST', kind: 'ip', describe: 'address clients and peers use to reach this host', default: '127.0.0.1' },
  { path: 'bind', flag: 'bind', env: 'PEERLB_BIND', kind: 'ip', describe: 'address the agent listens on', default: 'the --host address' },
  { path: 'udpPort', flag: 'udp', env: 'PEERLB_UDP', kind: 'int', min: 1, max: 65535, describe: "the server's UDP port" },
  { path: 'tcpPort', flag: 'tcp', env: 'PEERLB_TCP', kind: 'int', min: 1, max: 65535, describe: "the server's TCP port" },
  // The server's WebSocket endpoint (issue 15), kept in its own block.
  { path: 'wsPort', flag: 'ws', env: 'PEERLB_WS', kind: 'int', min: 1, max: 65535, describe: "the server's WebSocket port (browser clients); an agent needs --udp, --tcp or --ws" },
  { path: 'wsPath', flag: 'ws-path', env: 'PEERLB_WS_PATH', kind: 'string', default: '/', describe: "the server's WebSocket path, with --ws: starts with /, printable ASCII without spaces, at most 248 chars (one mDNS TXT string)" },
  { path: 'wsTls', flag: 'ws-tls', env: 'PEERLB_WS_TLS', kind: 'bool', default: 'false', describe: 'with --ws: the server speaks wss (TLS); a flag, or true/false in the variable and the file' },
  { path: 'port', flag: 'port', env: 'PEERLB_PORT', kind: 'int', min: 0, max: 65535, default: 7946, describe: "the agent's port: gossip, /v1/watch, /metrics, dashboard, /v1/load" },
  { path: 'join', flag: 'join', env: 'PEERLB_JOIN', kind: 'list', describe: 'seed agents to join, ws://host:port (wss:// with --tls-cert; repeat or comma-separate)' },
  { path: 'mdns.interface', flag: 'mdns-interface', env: 'PEERLB_MDNS_INTERFACE', kind: 'ip', describe: 'announce over mDNS on this interface (IPv4); off when not given' },
  { path: 'mdns.port', flag: 'mdns-port', env: 'PEERLB_MDNS_PORT', kind: 'int', min: 1, max: 65535, default: '5353 (RFC 6762)', describe: 'mDNS UDP port, with --mdns-interface (tests use another one)' },
  { path: 'weight', flag: 'weight', env: 'PEERLB_WEIGHT', kind: 'int', min: 1, max: MAX_WEIGHT, default: DEFAULT_WEIGHT, describe: 'relative capacity of the server' },
  { path: 'zone', flag: 'zone', env: 'PEERLB_ZONE', kind: 'string', describe: 'zone (rack, room) of the server' },
  { path: 'capacity', flag: 'capacity', env: 'PEERLB_CAPACITY', kind: 'int', min: 1, max: 1e9, describe: 'sessions/connections the server takes at most; utilization = active / capacity' },
  { path: 'loadIntervalMs', flag: 'load-interval', env: 'PEERLB_LOAD_INTERVAL', kind: 'int', min: 50, max: 3_600_000, default: 1000, describe: 'load publish interval, ms (also at once on a large change)' },
  { path: 'health.type', flag: 'health', env: 'PEERLB_HEALTH', kind: 'enum', choices: ['tcp', 'udp', 'ws', 'ttl', 'none'], describe: 'health check of the server (ws: a WebSocket open to the --ws endpoint)', default: 'tcp when --tcp is set, else none' },
  { path: 'health.intervalMs', flag: 'health-interval', env: 'PEERLB_HEALTH_INTERVAL', kind: 'int', min: HEALTH_RANGES.intervalMs[0], max: HEALTH_RANGES.intervalMs[1], default: DEFAULT_HEALTH_INTERVAL_MS, describe: 'health check interval, ms (for a ttl check: how often a missing report counts as a further failure)' },
  { path: 'health.timeoutMs', flag: 'health-timeout', env: 'PEERLB_HEALTH_TIMEOUT', kind: 'int', min: HEALTH_RANGES.timeoutMs[0], max: HEALTH_RANGES.timeoutMs[1], default: HEALTH_TIMEOUT_DEFAULT, describe: 'health check timeout, ms' },
  { path: 'health.rise', flag: 'health-rise', env: 'PEERLB_HEALTH_RISE', kind: 'int', min: HEALTH_RANGES.rise[0], max: HEALTH_RANGES.rise[1], default: DEFAULT_RISE, describe: 'successes before healthy (HAProxy rise; 1 for a ttl check unless given)' },
  { path: 'health.fall', flag: 'health-fall', env: 'PEERLB_HEALTH_FALL', kind: 'int', min: HEALTH_RANGES.fall[0], max: HEALTH_RANGES.fall[1], default: DEFAULT_FALL, describe: 'failures before unhealthy (HAProxy fall; 1 for a ttl check unless given)' },
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
  // -- TLS and origins (issue 15) --
  { path: 'tls.cert', flag: 'tls-cert', env: 'PEERLB_TLS_CERT', kind: 'string', describe: 'PEM certificate (chain) file: the agent port serves https and wss, gossip included, with --tls-key; re-read on SIGHUP' },
  { path: 'tls.key', flag: 'tls-key', env: 'PEERLB_TLS_KEY', kind: 'string', describe: 'PEM private key file of --tls-cert' },
  { path: 'tls.ca', flag: 'tls-ca', env: 'PEERLB_TLS_CA', kind: 'string', describe: 'PEM file of CAs trusted, besides the system ones, when dialing wss:// peers' },
  { path: 'allowOrigin', flag: 'allow-origin', env: 'PEERLB_ALLOW_ORIGIN', kind: 'list', describe: "origins (https://host:port) whose pages may open /v1/watch and /v1/events, others get 403 (none given: any origin); the agent's own origin and clients sending no Origin always may" },
  // -- end of TLS and origins --
  // -- DNS (issue 16) --
  { path: 'dns.port', flag: 'dns-port', env: 'PEERLB_DNS_PORT', kind: 'int', min: 0, max: 65535, describe: 'answer DNS (UDP and TCP) for --dns-domain on this port from the live view (Consul uses 8600); off when not given' },
  { path: 'dns.bind', flag: 'dns-bind', env: 'PEERLB_DNS_BIND', kind: 'ip', default: 'the --bind address', describe: 'address the DNS interface listens on, with --dns-port' },
  { path: 'dns.domain', flag: 'dns-domain', env: 'PEERLB_DNS_DOMAIN', kind: 'string', default: 'peerlb.', describe: 'the zone answered: <service>.<domain>, _<service>._tcp.<domain>, <node>.node.<domain>' },
  { path: 'dns.answers', flag: 'dns-answers', env: 'PEERLB_DNS_ANSWERS', kind: 'int', min: 1, max: 1000, default: 3, describe: 'most servers in one DNS answer, chosen by load per query' },
  { path: 'limits.dnsRate', flag: 'dns-rate', env: 'PEERLB_DNS_RATE', kind: 'int', min: 1, max: 100_000_000, default: DEFAULT_AGENT_LIMITS.dnsRate, describe: 'UDP DNS answers per second to one source address (then every 2nd is sent truncated, the rest dropped)' },
  { path: 'limits.dnsBurst', flag: 'dns-burst', env: 'PEERLB_DNS_BURST', kind: 'int', min: 1, max: 100_000_000, default: DEFAULT_AGENT_LIMITS.dnsBurst, describe: 'burst of UDP DNS answers to one source address' },
  { path: 'dns.ttl', flag: 'dns-ttl', env: 'PEERLB_DNS_TTL', kind: 'int', min: 0, max: 3600, default: 1, describe: 'TTL of DNS answers, seconds (0: not cached)' },
  // -- end of DNS --
  { path: 'logLevel', flag: 'log-level', env: 'PEERLB_LOG_LEVEL', kind: 'enum', choices: LOG_LEVELS, default: 'info', describe: 'log level' },
];

/** The spec of the option at `path` (a dotted AgentOptions path). Throws for a path not in the table (a programming error). */
export function optionSpec(path: string): OptionSpec {
  const s = SPEC_BY_PATH.get(path);
  if (!s) throw new Error(`no option spec for ${path}`);
  return s;
}

const SPEC_BY_PATH = new Map(AGENT_OPTION_SPECS.map((s) => [s.path, s]));

/** The keys of a nested option object (health, mdns, limits), as the table lists them. */
export function nestedKeys(prefix: string): string[] {
  return AGENT_OPTION_SPECS.filter((s) => s.path.startsWith(prefix + '.')).map((s) => s.path.slice(prefix.length + 1));
}
