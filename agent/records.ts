/**
 * Pure record views: what this agent announces (gossip meta, mDNS info) and serves (/v1/watch
 * records, /v1/members rows, the health check it runs), derived from its resolved options and
 * state. No I/O, no clock reads: the caller passes `now` and the times it heard of each member.
 */
import type { ResolvedAgentOptions } from './options.js';
import type { Member, MemberMeta } from './gossip/membership.js';
import { gossipAddrPort } from './gossip/messages.js';
import type { AnnounceInfo } from './mdns/announcer.js';
import type { HealthCheck, HealthCheckerOptions } from './health/index.js';
import { copyEndpoints, type Endpoints, type Health, type LoadReport, type LoadSource, type ServerRecord } from '../sdk/core/protocol.js';

/** One row of `/v1/members` and `peerlb members --json`. */
export interface MemberInfo extends Endpoints {
  node: string;
  host: string;
  port: number;
  addr: string;
  status: 'alive' | 'suspect' | 'dead' | 'left';
  health: Health;
  incarnation: number;
  service: string;
  weight: number;
  zone?: string;
  load: LoadReport | null;
  /** Time since this agent last heard news of the member (its load or state), ms. */
  ageMs: number;
  /**
   * What `load.utilization` is: 'reported' (by the server), 'capacity' (active / capacity), 'cpu'
   * (host CPU: the server reported none and has no capacity), 'none' — as the member's own agent
   * said with the figure (gossiped with it; the same as `load.source`). Absent when that agent
   * did not say (an agent of an older release) or there is no load yet.
   */
  loadSource?: LoadSource;
}

/** Alive or suspect: a member clients may still be sent to. */
export function isLive(m: Member): boolean {
  return m.status === 'alive' || m.status === 'suspect';
}

/** This agent's own member meta (what gossip carries of it). */
export function memberMeta(o: ResolvedAgentOptions, health: Health): MemberMeta {
  const m: MemberMeta = { id: o.node, service: o.service, host: o.host, weight: o.weight, health };
  copyEndpoints(o, m);
  if (o.zone !== undefined) m.zone = o.zone;
  return m;
}

/** What the mDNS announcer says of this agent's server. */
export function announceInfo(o: ResolvedAgentOptions, agentPort: number, health: Health, load: LoadReport | undefined): AnnounceInfo {
  const info: AnnounceInfo = {
    node: o.node,
    service: o.service,
    host: o.host,
    agentPort,
    weight: o.weight,
    health,
    loadBucket: Math.max(0, Math.min(10, Math.round((load?.utilization ?? 0) * 10))),
  };
  // The announcer moves the TXT bucket with hysteresis from the figure itself (mdns/load-bucket.ts).
  if (load) info.utilization = load.utilization;
  copyEndpoints(o, info);
  if (o.zone !== undefined) info.zone = o.zone;
  // Clients that find this agent by mDNS dial it at wss:// (TXT tls=1).
  if (o.tls !== undefined) info.agentTls = true;
  return info;
}

/**
 * A record for /v1/watch: with the signature the member's own agent made (sig, sigv in its meta,
 * from gossip), unchanged, or none. This agent never signs another member's record. The load's
 * age grows by the time since this agent heard it (`heardAt`, clock ms).
 */
export function serverRecord(m: Member, heardAt: number | undefined, now: number): ServerRecord {
  const rec: ServerRecord = { ...m.meta, id: m.node, agent: m.addr };
  if (m.load) rec.load = { ...m.load, ageMs: Math.round((m.load.ageMs ?? 0) + (heardAt === undefined ? 0 : now - heardAt)) };
  return rec;
}

/** A /v1/members row. `loadSource`: for this agent's own member, what its tracker says; else what gossip said. */
export function memberInfo(m: Member, heardAt: number | undefined, now: number, loadSource: LoadSource | undefined): MemberInfo {
  const rec = serverRecord(m, heardAt, now);
  const info: MemberInfo = {
    node: m.node,
    host: m.meta.host,
    // The decoder only lets gossip URLs through; should anything else ever get here, it shows
    // as port 0 instead of throwing inside a 'change' listener (that is, a socket's handler).
    port: gossipAddrPort(m.addr) ?? 0,
    addr: m.addr,
    status: m.status,
    health: m.meta.health,
    incarnation: m.incarnation,
    service: m.meta.service,
    weight: m.meta.weight,
    load: rec.load ?? null,
    ageMs: heardAt === undefined ? 0 : Math.round(now - heardAt),
  };
  if (m.meta.udpPort !== undefined) info.udpPort = m.meta.udpPort;
  if (m.meta.tcpPort !== undefined) info.tcpPort = m.meta.tcpPort;
  if (m.meta.wsPort !== undefined) {
    info.wsPort = m.meta.wsPort;
    info.wsPath = m.meta.wsPath ?? '/';
    info.wsTls = m.meta.wsTls === true;
  }
  if (m.meta.zone !== undefined) info.zone = m.meta.zone;
  if (loadSource !== undefined) info.loadSource = loadSource;
  return info;
}

/** The ws:// URLs of the live agents (the watch snapshot's `agents`). */
export function agentUrls(members: readonly Member[]): string[] {
  return members.filter(isLive).map((m) => m.addr);
}

/** The health check the options ask for, as the checker takes it; undefined for `none`. */
export function healthCheckFor(o: ResolvedAgentOptions): { check: HealthCheck; opts: HealthCheckerOptions } | undefined {
  const h = o.health;
  const host = o.host;
  switch (h.type) {
    case 'tcp':
      return { check: { type: 'tcp', host, port: o.tcpPort!, timeoutMs: h.timeoutMs }, opts: { intervalMs: h.intervalMs, rise: h.rise, fall: h.fall } };
    case 'ws':
      return {
        check: { type: 'ws', host, port: o.wsPort!, path: o.wsPath ?? '/', tls: o.wsTls, timeoutMs: h.timeoutMs },
        opts: { intervalMs: h.intervalMs, rise: h.rise, fall: h.fall },
      };
    case 'udp':
      return {
        check: { type: 'udp', host, port: o.udpPort!, send: h.send, expect: h.expect, timeoutMs: h.timeoutMs },
        opts: { intervalMs: h.intervalMs, rise: h.rise, fall: h.fall },
      };
    case 'ttl':
      return { check: { type: 'ttl', ttlMs: h.ttlMs }, opts: { intervalMs: h.intervalMs, rise: h.rise, fall: h.fall } };
    default:
      return undefined;
  }
}
