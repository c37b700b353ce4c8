/**
 * An in-memory mDNS link on a ManualClock, for announcer and browser tests that must not sleep.
 * Every packet is encoded to bytes and decoded again with dns-packet, exactly as multicast-dns
 * does, so handlers see what they would see from a socket; bytes that do not decode become
 * 'warning' events. (One decoded object is shared by the receivers: neither the announcer nor
 * the browser modifies what it receives.) Multicast reaches every attached socket, the sender included (loopback);
 * unicast reaches the socket with that address and port.
 */
import { EventEmitter } from 'node:events';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet } from 'dns-packet';
import type { ManualClock } from '../../sdk/core/clock.js';
import type { Random } from '../../sdk/core/random.js';
import type { MdnsRinfo, MdnsSocket } from '../../sdk/mdns/socket.js';

/** A decoded packet: dns-packet always fills the four sections when decoding. */
export type Full = DecodedPacket & Required<Pick<DecodedPacket, 'questions' | 'answers' | 'authorities' | 'additionals'>>;

export interface Sent {
  at: number;
  from: MdnsRinfo;
  /** undefined: multicast. */
  to: MdnsRinfo | undefined;
  bytes: Buffer;
  packet: Full;
}

export class FakeMdnsSocket extends EventEmitter implements MdnsSocket {
  attached = true;
  destroyed = false;
  constructor(
    private readonly net: FakeMdnsNet,
    readonly address: string,
    readonly port: number,
  ) {
    super();
  }

  send(packet: Packet, rinfo?: MdnsRinfo | null, cb?: (err?: Error | null) => void): void {
    const bytes = dnsPacket.encode(packet);
    if (this.attached && !this.destroyed) this.net.deliver(bytes, { address: this.address, port: this.port }, rinfo ?? undefined);
    queueMicrotask(() => cb?.(null));
  }

  destroy(cb?: () => void): void {
    this.destroyed = true;
    this.attached = false;
    queueMicrotask(() => cb?.());
  }

  /** Leave the link without a word (a kill -9 or a cut cable). */
  cut(): void {
    this.attached = false;
  }
}

export class FakeMdnsNet {
  readonly sockets: FakeMdnsSocket[] = [];
  readonly log: Sent[] = [];

  constructor(
    readonly clock: ManualClock,
    private readonly opts: { latencyMs?: number } = {},
  ) {}

  socket(address = '10.0.0.1', port = 5353): FakeMdnsSocket {
    const s = new FakeMdnsSocket(this, address, port);
    this.sockets.push(s);
    return s;
  }

  /** Deliver raw bytes, as if `from` had sent them. Decoded once, as each multicast-dns socket would. */
  deliver(bytes: Buffer, from: MdnsRinfo, to: MdnsRinfo | undefined): void {
    let packet: DecodedPacket | undefined;
    let error: unknown;
    try {
      packet = dnsPacket.decode(bytes);
    } catch (err) {
      error = err;
    }
    if (packet) this.log.push({ at: this.clock.now(), from, to, bytes, packet: packet as Full });
    const targets = this.sockets.filter((s) => s.attached && (to === undefined || (s.address === to.address && s.port === to.port)));
    this.clock.setTimeout(() => {
      for (const s of targets) {
        if (!s.attached) continue;
        if (packet) s.emit('packet', packet, { address: from.address, port: from.port, family: 'IPv4', size: bytes.length });
        else s.emit('warning', error);
      }
    }, this.opts.latencyMs ?? 0);
  }

  /** Packets sent from `address` (any port), optionally only responses or queries. */
  sentBy(address: string, type?: 'query' | 'response'): Sent[] {
    return this.log.filter((s) => s.from.address === address && (type === undefined || s.packet.type === type));
  }
}

/** A Random that always returns `v` (probe delays, jitter). */
export const fixedRandom = (v: number): Random => ({ next: () => v, int: (n: number) => Math.floor(v * n) });

/** Mutate bytes: flip, overwrite, insert, delete or truncate, `n` times. */
export function mutate(bytes: Buffer, random: Random, n = 1 + random.int(4)): Buffer {
  let b = Buffer.from(bytes);
  for (let i = 0; i < n; i++) {
    const pos = random.int(Math.max(1, b.length));
    switch (random.int(5)) {
      case 0:
        if (b.length) b[pos] = b[pos]! ^ (1 << random.int(8));
        break;
      case 1:
        if (b.length) b[pos] = random.int(256);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, pos), Buffer.from([random.int(256)]), b.subarray(pos)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos + 1)]);
        break;
      default:
        b = b.subarray(0, pos);
    }
  }
  return b;
}

/** Random bytes of a random length up to `max`. */
export function garbage(random: Random, max = 600): Buffer {
  const b = Buffer.alloc(random.int(max));
  for (let i = 0; i < b.length; i++) b[i] = random.int(256);
  return b;
}
