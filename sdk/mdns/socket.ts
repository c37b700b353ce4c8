/**
 * The mDNS link: the part of `multicast-dns` the announcer and the browser use, as an interface
 * so tests can inject an in-memory network; the one place that creates a real socket; and waiting
 * for it to open and to close, on an injected clock.
 */
import makeMdns from 'multicast-dns';
import type { Packet } from 'dns-packet';
import { systemClock, type Clock } from '../core/clock.js';
import { MDNS_PORT } from './packet.js';

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

/** How long waitReady waits for the socket to bind, by default. */
export const READY_TIMEOUT_MS = 5000;
/** How long closeSocket waits for the socket to close before it gives up waiting. */
export const CLOSE_TIMEOUT_MS = 1000;

/**
 * A multicast-dns socket that joins 224.0.0.251 and sends multicast on the one interface given
 * by its IPv4 address (never all interfaces, which is the library's default). The socket binds
 * 0.0.0.0:5353 with SO_REUSEADDR so several agents and clients share the port on one host, and
 * keeps multicast loopback on so they hear each other. `port` is for tests that must stay off
 * the shared 5353 (RFC 6762 §3 fixes mDNS to 5353).
 */
export function createMdnsSocket(iface: string, port = MDNS_PORT): MdnsSocket {
  return makeMdns({ interface: iface, port, bind: '0.0.0.0', loopback: true, reuseAddr: true }) as unknown as MdnsSocket;
}

/** Resolve when the socket is bound, reject on a bind error or after `timeoutMs` on `clock`. */
export function waitReady(sock: MdnsSocket, timeoutMs = READY_TIMEOUT_MS, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clock.clearTimeout(timer);
      sock.removeListener('ready', onReady);
      sock.removeListener('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onError = (err: Error) => done(err);
    const timer = clock.setTimeout(() => done(new Error(`mDNS socket not ready after ${timeoutMs} ms`)), timeoutMs);
    timer.unref?.();
    sock.on('ready', onReady);
    sock.on('error', onError);
  });
}

/**
 * Destroy a socket and resolve once it has closed, or after `timeoutMs` on `clock` if it never
 * says so. A late 'error' from the closing socket is swallowed: it must not become an uncaught
 * 'error' event.
 */
export function closeSocket(sock: MdnsSocket, clock: Clock = systemClock, timeoutMs = CLOSE_TIMEOUT_MS): Promise<void> {
  sock.on('error', () => {});
  return new Promise<void>((resolve) => {
    const t = clock.setTimeout(resolve, timeoutMs);
    t.unref?.();
    sock.destroy(() => {
      clock.clearTimeout(t);
      resolve();
    });
  });
}
