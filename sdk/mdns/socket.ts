/**
 * The part of `multicast-dns` the announcer and the browser use, as an interface so tests can
 * inject an in-memory network, and the one place that creates a real socket.
 */
import makeMdns from 'multicast-dns';
import type { Packet } from 'dns-packet';

export interface MdnsRinfo {
  address: string;
  port: number;
}

/** A multicast-dns instance: emits 'packet' (decoded), 'warning' (undecodable), 'error', 'ready'. */
export interface MdnsSocket {
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
  /** Send a message: to 224.0.0.251:5353 without `rinfo`, unicast with it. */
  send(packet: Packet, rinfo?: MdnsRinfo | null, cb?: (err?: Error | null) => void): void;
  destroy(cb?: () => void): void;
}

/**
 * A multicast-dns socket that joins 224.0.0.251 and sends multicast on the one interface given
 * by its IPv4 address (never all interfaces, which is the library's default). The socket binds
 * 0.0.0.0:5353 with SO_REUSEADDR so several agents and clients share the port on one host, and
 * keeps multicast loopback on so they hear each other. `port` is for tests that must stay off
 * the shared 5353 (RFC 6762 §3 fixes mDNS to 5353).
 */
export function createMdnsSocket(iface: string, port = 5353): MdnsSocket {
  return makeMdns({ interface: iface, port, bind: '0.0.0.0', loopback: true, reuseAddr: true }) as unknown as MdnsSocket;
}

/** Resolve when the socket is bound, reject on a bind error or after `timeoutMs`. */
export function waitReady(sock: MdnsSocket, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.removeListener('ready', onReady);
      sock.removeListener('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onError = (err: Error) => done(err);
    const timer = setTimeout(() => done(new Error(`mDNS socket not ready after ${timeoutMs} ms`)), timeoutMs);
    timer.unref?.();
    sock.on('ready', onReady);
    sock.on('error', onError);
  });
}
