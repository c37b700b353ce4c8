/**
 * The announcer's sending side: responses with our records on the link (the cache-flush bit on
 * unique ones when multicast, §10.2), split to fit a packet (§17), when each record was last
 * multicast (the §6 one-second rule reads it), and which records we sent recently, so that their
 * echo by multicast loopback is not taken for another host's (§9). Timers on the injected clock.
 */
import dnsPacket from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';
import type { Clock } from '../../sdk/core/clock.js';
import type { OwnedRecord } from '../../sdk/mdns/records.js';
import { recordKey, rrsetKey } from '../../sdk/mdns/keys.js';
import { splitPacket } from '../../sdk/mdns/packet.js';
import type { MdnsRinfo, MdnsSocket } from '../../sdk/mdns/socket.js';

/** §6: a record is not multicast again "until at least one second has elapsed". Also the update rate limit. */
export const MIN_MULTICAST_INTERVAL_MS = 1000;
/** How long a record we sent counts as ours when it comes back by multicast loopback. */
export const OWN_ECHO_MS = 10_000;
/** How long stop() waits for the goodbye to leave the socket. */
export const GOODBYE_SEND_TIMEOUT_MS = 1000;
/** Records remembered as sent before expired ones are swept. */
const MAX_OWN_SENT = 512;

/** Rate-limit key: the RRset for a unique record (a changing TXT is one record), the record itself for a shared one. */
export function rateKey(r: OwnedRecord): string {
  return r.unique ? rrsetKey(r.rr) : recordKey(r.rr);
}

export interface SenderDeps {
  clock: Clock;
  /** The socket now (undefined before start): nothing is sent without one. */
  socket(): MdnsSocket | undefined;
  /** Counted here: packets sent, failed sends. */
  stats: { packetsOut: number; errors: number };
}

export class ResponseSender {
  /** rate key → when it was last multicast. */
  readonly lastMulticast = new Map<string, number>();
  /** record key → until when an echo of it is ours. */
  private readonly ownSent = new Map<string, number>();

  constructor(private readonly d: SenderDeps) {}

  /** A response with our records: cache-flush bit on unique ones when multicast (§10.2). */
  sendResponse(answers: readonly (OwnedRecord | Answer)[], additionals: readonly OwnedRecord[], to: MdnsRinfo | undefined): void {
    const now = this.d.clock.now();
    const wire = (x: OwnedRecord | Answer): Answer => {
      if ('rr' in x) {
        if (to === undefined) this.lastMulticast.set(rateKey(x), now);
        return { ...x.rr, flush: x.unique && to === undefined } as Answer;
      }
      return x;
    };
    this.sendPacket({ type: 'response', id: 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: answers.map(wire), additionals: additionals.map(wire) }, to);
  }

  /** Any message, multicast without `to`; split to fit a packet. */
  sendPacket(packet: Packet, to: MdnsRinfo | undefined): void {
    const sock = this.d.socket();
    if (!sock) return;
    const s = this.d.stats;
    this.noteOwn(packet);
    for (const p of splitPacket(packet)) {
      try {
        sock.send(p, to ?? null, (err) => {
          if (err) s.errors++;
        });
        s.packetsOut++;
      } catch {
        s.errors++;
      }
    }
  }

  /** Multicast a message and resolve once every packet has left the socket, or after GOODBYE_SEND_TIMEOUT_MS. */
  sendAndWait(sock: MdnsSocket, packet: Packet): Promise<void> {
    const s = this.d.stats;
    const clock = this.d.clock;
    this.noteOwn(packet);
    const parts = splitPacket(packet);
    return new Promise<void>((resolve) => {
      let left = parts.length;
      const t = clock.setTimeout(resolve, GOODBYE_SEND_TIMEOUT_MS);
      t.unref?.();
      const one = (err?: Error | null) => {
        if (err) s.errors++;
        if (--left === 0) {
          clock.clearTimeout(t);
          resolve();
        }
      };
      for (const p of parts) {
        try {
          sock.send(p, null, one);
          s.packetsOut++;
        } catch {
          s.errors++;
          one();
        }
      }
    });
  }

  /** Did we send this record (recordKey) within OWN_ECHO_MS? */
  isOwn(key: string): boolean {
    const t = this.ownSent.get(key);
    return t !== undefined && t > this.d.clock.now();
  }

  private noteOwn(packet: Packet): void {
    const until = this.d.clock.now() + OWN_ECHO_MS;
    for (const list of [packet.answers, packet.authorities, packet.additionals])
      for (const rr of list ?? []) if ((rr as { ttl?: number }).ttl !== 0) this.ownSent.set(recordKey(rr as Answer), until);
    if (this.ownSent.size > MAX_OWN_SENT) {
      const now = this.d.clock.now();
      for (const [k, t] of this.ownSent) if (t <= now) this.ownSent.delete(k);
    }
  }
}
