/**
 * What the browser reports of an agent it found: a BrowsedInstance, made from an Announcement
 * (records.ts), and the key that says whether one changed (an 'update'). Pure.
 */
import net from 'node:net';
import type { Announcement } from './records.js';
import type { TxtFields } from './txt.js';
import { copyEndpoints } from '../core/protocol.js';

/** One agent found by mDNS: what its records say, ready for the SDK's view. */
export interface BrowsedInstance extends TxtFields {
  /** The node id (TXT `node`): the server's id in the SDK's view. */
  id: string;
  /** The SRV target's address (A preferred over AAAA). */
  host: string;
  agentPort: number;
  /** `ws://host:port` of the agent (`ws://[v6]:port` for IPv6); `wss://` when its TXT says `tls=1`. */
  agentUrl: string;
  /** The DNS-SD instance name, e.g. `n1._peerlb._tcp.local`. */
  instance: string;
  /** When the TXT has a `sig=`: it and the bytes it must sign (sdk/core/signing.ts), for clients that verify. */
  signature?: { sig: string; data: Buffer };
}

/** Why an instance went: its records said goodbye (§10.1), or they expired. */
export type DownReason = 'goodbye' | 'expired';

export function toBrowsed(a: Announcement): BrowsedInstance {
  const b: BrowsedInstance = {
    id: a.node,
    node: a.node,
    service: a.service,
    host: a.host,
    agentPort: a.agentPort,
    weight: a.weight,
    health: a.health,
    loadBucket: a.loadBucket,
    agentUrl: agentUrlOf(a.host, a.agentPort, a.agentTls === true),
    instance: a.instance,
  };
  if (a.agentTls) b.agentTls = true;
  if (a.signature) b.signature = a.signature;
  copyEndpoints(a, b);
  if (a.zone !== undefined) b.zone = a.zone;
  return b;
}

/** Equal keys: nothing a listener sees changed. */
export const instanceKey = (i: BrowsedInstance): string =>
  JSON.stringify([i.node, i.service, i.host, i.agentPort, i.udpPort, i.tcpPort, i.wsPort, i.wsPath, i.wsTls, i.agentTls, i.weight, i.zone, i.health, i.loadBucket, i.signature?.sig]);

/** How an agent found by mDNS is dialed: ws://, or wss:// when it announces TLS; IPv6 in brackets. */
export function agentUrlOf(host: string, port: number, tls: boolean): string {
  return `${tls ? 'wss' : 'ws'}://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}
