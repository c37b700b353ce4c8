import os from 'node:os';
import net from 'node:net';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { BadOptionError, ConfigError } from '../sdk/core/errors.js';
import { checkServiceName } from '../sdk/core/options.js';
import { LIMITS, wsPathProblem } from '../sdk/core/protocol.js';
import { TXT_KEYS } from '../sdk/mdns/txt.js';
import { int, obj, oneOf, onlyKnown, str } from '../sdk/core/validate.js';
import { LOG_LEVELS } from './log.js';
import type { KeyObject } from 'node:crypto';
import { MAX_KEYS, parseKey } from './gossip/keyring.js';
import { parsePrivateKey } from '../sdk/node/signing.js';
import { DEFAULT_TTL_FALL, DEFAULT_TTL_RISE, defaultProbeTimeoutMs } from './health/defaults.js';
import { resolveTls, seedSchemeProblem } from './tls.js';
import { MAX_ALLOWED_ORIGINS, parseOrigin } from './admission.js';
import {
  AGENT_OPTION_KEYS,
  AGENT_OPTION_SPECS,
  nestedKeys,
  optionSpec,
  type AgentLimits,
  type AgentOptions,
  type HealthSpec,
  type OptionSpec,
  type ResolvedAgentOptions,
} from './options-schema.js';

export * from './options-schema.js';

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
    case 'bool':
      // A bare CLI flag comes as 'true' (agent/cli/agent.ts).
      if (/^(true|1|yes)$/i.test(str.trim())) return true;
      if (/^(false|0|no)$/i.test(str.trim())) return false;
      throw new BadOptionError(name, `must be true or false, got ${JSON.stringify(str)}`);
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

/** An integer option, with the range and default the schema gives it (undefined when it has none). */
function specInt(path: string, v: unknown, def?: number): number | undefined {
  const spec = optionSpec(path);
  return int(path, v, def ?? (typeof spec.default === 'number' ? spec.default : undefined), spec.min!, spec.max!);
}

/** An enum option, with the choices and default the schema gives it. */
function specEnum<T extends string>(path: string, v: unknown): T {
  const spec = optionSpec(path);
  return oneOf(path, v, spec.choices as readonly T[], spec.default as T);
}

/** An IP literal (the runtime-neutral validate.ts cannot check one: node:net does). */
function ip(option: string, v: unknown, def: string): string {
  if (v === undefined) return def;
  if (typeof v !== 'string' || net.isIP(v) === 0) throw new BadOptionError(option, `must be an IPv4 or IPv6 address, got ${JSON.stringify(v)}`);
  return v;
}

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
  const node = str('node', input.node) ?? os.hostname();
  // ≤ 63 chars: the node id becomes a DNS label of the mDNS instance name (RFC 1035 §2.3.4).
  if (!/^[\w.\-:@]{1,63}$/.test(node)) throw new BadOptionError('node', `must be 1–63 letters, digits and . - _ : @, got ${JSON.stringify(node)}`);
  const host = ip('host', input.host, '127.0.0.1');
  const bind = ip('bind', input.bind, host);
  const udpPort = specInt('udpPort', input.udpPort);
  const tcpPort = specInt('tcpPort', input.tcpPort);
  const { wsPort, wsPath, wsTls } = resolveWs(input);
  if (udpPort === undefined && tcpPort === undefined && wsPort === undefined)
    throw new BadOptionError('udpPort', 'or tcpPort or wsPort must be given: the agent announces a server');
  const port = specInt('port', input.port)!;
  const tls = resolveTls(input.tls);
  const join = input.join ?? [];
  if (!Array.isArray(join)) throw new BadOptionError('join', 'must be a list of ws:// (wss:// with tls) URLs');
  join.forEach((u, i) => {
    if (typeof u !== 'string' || !/^wss?:\/\/[^/\s]+:\d+\/?$/.test(u)) throw new BadOptionError(`join[${i}]`, `must be ws://host:port (wss://host:port with tls), got ${JSON.stringify(u)}`);
    // A cluster is all-TLS or not (agent/tls.ts).
    const problem = seedSchemeProblem(u, tls !== undefined);
    if (problem) throw new BadOptionError(`join[${i}]`, problem);
  });
  const allowOrigin = resolveAllowOrigin(input.allowOrigin);
  let mdns: { interface: string; port?: number } | false = false;
  if (input.mdns) {
    if (typeof input.mdns !== 'object') throw new BadOptionError('mdns', 'must be an object { interface, port? } or false');
    onlyKnown('mdns', input.mdns as Record<string, unknown>, nestedKeys('mdns'));
    const iface = input.mdns.interface;
    if (typeof iface !== 'string' || net.isIPv4(iface) === false) throw new BadOptionError('mdns.interface', `must be an IPv4 address, got ${JSON.stringify(iface)}`);
    mdns = { interface: iface };
  }
  const weight = specInt('weight', input.weight)!;
  const zone = str('zone', input.zone);
  // The zone is announced over mDNS as the TXT string `zone=<zone>`, at most 255 bytes (RFC 6763
  // §6.1). Refused here, naming the option, rather than by the announcer after the agent is up
  // (or half-way through a reload).
  const zoneTxtBytes = zone === undefined ? 0 : Buffer.byteLength(`zone=${zone}`, 'utf8');
  if (zoneTxtBytes > LIMITS.maxTxtStringBytes)
    throw new BadOptionError('zone', `must be at most ${LIMITS.maxTxtStringBytes - 5} bytes in UTF-8 (mDNS announces it as "zone=…", at most ${LIMITS.maxTxtStringBytes} bytes), got ${zoneTxtBytes - 5}`);
  const capacity = specInt('capacity', input.capacity);
  const loadIntervalMs = specInt('loadIntervalMs', input.loadIntervalMs)!;
  const drainTimeoutMs = specInt('drainTimeoutMs', input.drainTimeoutMs)!;
  const gossipProfile = specEnum<'lan' | 'local'>('gossipProfile', input.gossipProfile);
  const logLevel = specEnum<(typeof LOG_LEVELS)[number]>('logLevel', input.logLevel);
  const health = resolveHealth(input.health, tcpPort, udpPort, wsPort);
  const keyFile = str('keyFile', input.keyFile, 4096);
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
  const signingKeyFile = str('signingKeyFile', input.signingKeyFile, 4096);
  let signingKey: KeyObject | undefined;
  if (input.signingKey !== undefined) {
    if (signingKeyFile !== undefined) throw new BadOptionError('signingKey', 'and signingKeyFile are both set: give one');
    try {
      signingKey = parsePrivateKey(input.signingKey, 'signingKey');
    } catch (err) {
      throw new BadOptionError('signingKey', (err as Error).message.replace(/^signingKey: /, ''));
    }
  }
  if (mdns && input.mdns && input.mdns.port !== undefined) mdns.port = specInt('mdns.port', input.mdns.port);
  const lim = obj('limits', input.limits);
  onlyKnown('limits', lim, nestedKeys('limits'));
  const limits = Object.fromEntries(nestedKeys('limits').map((k) => [k, specInt(`limits.${k}`, lim[k])!])) as unknown as AgentLimits;
  return {
    service,
    node,
    host,
    bind,
    udpPort,
    tcpPort,
    wsPort,
    wsPath,
    wsTls,
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
    token: str('token', input.token, 1024),
    logLevel,
    tls,
    allowOrigin,
    dns: resolveDns(input.dns, bind),
  };
}

/** dns (issue 16): undefined without a port; the domain as lower-case labels with the final dot. */
function resolveDns(v: unknown, bind: string): ResolvedAgentOptions['dns'] {
  if (v === undefined || v === null) return undefined;
  const d = obj('dns', v);
  onlyKnown('dns', d, nestedKeys('dns'));
  if (d.port === undefined) {
    if (Object.keys(d).length) throw new BadOptionError(Object.keys(d).map((k) => `dns.${k}`).join(', '), 'is set but dns.port is not: give the DNS port too');
    return undefined;
  }
  const port = specInt('dns.port', d.port)!;
  const domainIn = d.domain ?? optionSpec('dns.domain').default;
  if (typeof domainIn !== 'string') throw new BadOptionError('dns.domain', 'must be a domain name such as peerlb.');
  const domain = domainIn.toLowerCase().replace(/\.?$/, '.');
  // RFC 1035 §2.3.1 labels (letters, digits, hyphens; 1-63 chars), at most 253 chars in all.
  if (domain.length > 254 || !/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+$/.test(domain))
    throw new BadOptionError('dns.domain', `must be a domain name of letters, digits and hyphens, such as peerlb., got ${JSON.stringify(domainIn.slice(0, 64))}`);
  return { port, bind: ip('dns.bind', d.bind, bind), domain, answers: specInt('dns.answers', d.answers)!, ttl: specInt('dns.ttl', d.ttl)! };
}

/** allowOrigin: a list of origins (admission.ts: parseOrigin), normalized; undefined when not given. */
function resolveAllowOrigin(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_ALLOWED_ORIGINS)
    throw new BadOptionError('allowOrigin', `must be a list of 1..${MAX_ALLOWED_ORIGINS} origins, http(s)://host[:port]`);
  return [
    ...new Set(
      v.map((s, i) => {
        const o = parseOrigin(s);
        if (typeof o !== 'string') throw new BadOptionError(`allowOrigin[${i}]`, o.problem);
        return o;
      }),
    ),
  ];
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

const TXT_WS_PATH_KEY = TXT_KEYS.wsPath;

/** The server's WebSocket endpoint: a path or TLS without a port is refused (it would announce nothing). */
function resolveWs(input: AgentOptions): { wsPort: number | undefined; wsPath: string | undefined; wsTls: boolean } {
  const wsPort = specInt('wsPort', input.wsPort);
  if (input.wsPath !== undefined) {
    const problem = wsPathProblem(input.wsPath);
    if (problem) throw new BadOptionError('wsPath', `${problem}, got ${JSON.stringify(String(input.wsPath).slice(0, 64))}`);
    // Announced over mDNS as the TXT string `wspath=<path>`, at most 255 bytes (RFC 6763 §6.1):
    // refused here, naming the option, as the zone is (a record itself may carry 255 chars).
    const max = LIMITS.maxTxtStringBytes - `${TXT_WS_PATH_KEY}=`.length;
    if ((input.wsPath as string).length > max) throw new BadOptionError('wsPath', `must be at most ${max} chars (mDNS announces it as "${TXT_WS_PATH_KEY}=…", at most ${LIMITS.maxTxtStringBytes} bytes), got ${(input.wsPath as string).length}`);
  }
  if (input.wsTls !== undefined && typeof input.wsTls !== 'boolean') throw new BadOptionError('wsTls', `must be true or false, got ${JSON.stringify(input.wsTls)}`);
  if (wsPort === undefined && (input.wsPath !== undefined || input.wsTls !== undefined))
    throw new BadOptionError(input.wsPath !== undefined ? 'wsPath' : 'wsTls', 'is set but wsPort is not: give the WebSocket port too');
  return { wsPort, wsPath: wsPort === undefined ? undefined : (input.wsPath ?? optionSpec('wsPath').default as string), wsTls: input.wsTls === true };
}

function resolveHealth(h: unknown, tcpPort: number | undefined, udpPort: number | undefined, wsPort: number | undefined): HealthSpec {
  // No health options at all: the same defaults as when some are given (they are the ones --help shows).
  if (h === undefined) h = {};
  if (typeof h !== 'object' || h === null) throw new BadOptionError('health', 'must be an object with a type');
  const o = h as Record<string, unknown>;
  onlyKnown('health', o, nestedKeys('health'));
  const type = o.type ?? (tcpPort !== undefined ? 'tcp' : 'none');
  const intervalMs = specInt('health.intervalMs', o.intervalMs)!;
  const common = {
    intervalMs,
    // Half the interval unless given: the checker's own default, stated once (health/defaults.ts).
    timeoutMs: specInt('health.timeoutMs', o.timeoutMs, defaultProbeTimeoutMs(intervalMs))!,
    rise: specInt('health.rise', o.rise)!,
    fall: specInt('health.fall', o.fall)!,
  };
  switch (type) {
    case 'tcp':
      if (tcpPort === undefined) throw new BadOptionError('health.type', "is 'tcp' but no tcpPort is set");
      return { type: 'tcp', ...common };
    case 'ws':
      if (wsPort === undefined) throw new BadOptionError('health.type', "is 'ws' but no wsPort is set");
      return { type: 'ws', ...common };
    case 'udp': {
      if (udpPort === undefined) throw new BadOptionError('health.type', "is 'udp' but no udpPort is set");
      const send = str('health.send', o.send, 1024);
      if (send === undefined) throw new BadOptionError('health.send', "is required for a 'udp' health check");
      return { type: 'udp', send, expect: str('health.expect', o.expect, 1024), ...common };
    }
    case 'ttl': {
      const ttlMs = specInt('health.ttlMs', o.ttlMs);
      if (ttlMs === undefined) throw new BadOptionError('health.ttlMs', "is required for a 'ttl' health check");
      // Interval, rise and fall apply to a ttl check too (its rise and fall default to 1).
      return { type: 'ttl', ttlMs, intervalMs, rise: specInt('health.rise', o.rise, DEFAULT_TTL_RISE)!, fall: specInt('health.fall', o.fall, DEFAULT_TTL_FALL)! };
    }
    case 'none':
      return { type: 'none' };
    default:
      throw new BadOptionError('health.type', `must be tcp, udp, ws, ttl or none, got ${JSON.stringify(type)}`);
  }
}
