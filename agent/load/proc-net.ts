/**
 * Established TCP connections on the server's port, read from Linux procfs.
 *
 * `/proc/net/tcp` and `/proc/net/tcp6` list every TCP socket of the agent's network namespace, one
 * per line (Documentation/networking/proc_net_tcp.rst):
 *
 *     sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
 *      0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 12345 …
 *
 * How the kernel prints them (net/ipv4/tcp_ipv4.c `get_tcp4_sock`, net/ipv6/tcp_ipv6.c
 * `get_tcp6_sock`):
 *  - an IPv4 address is the `__be32` printed with `%08X` as a native integer, so on a little-endian
 *    host 127.0.0.1 reads `0100007F`; on a big-endian host it reads `7F000001`;
 *  - an IPv6 address is its four 32-bit words, each printed the same way (`%08X%08X%08X%08X`), so
 *    `::1` reads `00000000000000000000000001000000` on little-endian hosts, and the IPv4-mapped
 *    `::ffff:127.0.0.1` (a dual-stack socket accepting IPv4) reads
 *    `0000000000000000FFFF00000100007F`;
 *  - ports went through `ntohs` first, so `%04X` shows them in natural order on every host;
 *  - `st` is the state from include/net/tcp_states.h: 01 ESTABLISHED, 0A LISTEN, 06 TIME_WAIT, …
 *
 * The parser is pure (text in, values out) and tested with fixture text; `countEstablished` adds
 * the file reading. Netlink sock_diag (what `ss` uses) is cheaper on hosts with 100k sockets, but
 * needs a native binding, which the design excludes.
 */
import { readFile } from 'node:fs/promises';
import { endianness as hostEndianness } from 'node:os';
import { BadOptionError, ConfigError } from '../../sdk/core/errors.js';
import { formatIp, isUnspecified, parseIp, sameIp, type IpBytes } from './addr.js';

/** TCP states as the kernel numbers them (include/net/tcp_states.h). */
export const TCP_STATE = {
  ESTABLISHED: 0x01,
  SYN_SENT: 0x02,
  SYN_RECV: 0x03,
  FIN_WAIT1: 0x04,
  FIN_WAIT2: 0x05,
  TIME_WAIT: 0x06,
  CLOSE: 0x07,
  CLOSE_WAIT: 0x08,
  LAST_ACK: 0x09,
  LISTEN: 0x0a,
  CLOSING: 0x0b,
  NEW_SYN_RECV: 0x0c,
} as const;

export type Endianness = 'LE' | 'BE';

/** One socket line of /proc/net/tcp{,6}, decoded. */
export interface TcpSocketEntry {
  /** 4 for a line of /proc/net/tcp, 6 for /proc/net/tcp6 (IPv4-mapped sockets included). */
  family: 4 | 6;
  /** Text form; IPv4-mapped addresses of tcp6 lines are written `::ffff:a.b.c.d`. */
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Kernel TCP state, see TCP_STATE. */
  state: number;
}

export interface ParseOptions {
  /** Byte order of the host that produced the text. Default: this host's (`os.endianness()`). */
  endianness?: Endianness;
}

// "  12: 0100007F:1F90 0100007F:C350 01 …": slot, local addr:port, remote addr:port, state.
const LINE = /^\s*\d+:\s+([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{2})(?:\s|$)/;

/**
 * Calls `fn` for every well-formed socket line with its raw hex fields. The header and malformed
 * lines (there should be none; a line cut short would be one) are skipped, never fatal: one odd
 * line must not stop the agent from counting all the others.
 */
function scan(text: string, fn: (local: string, lport: string, remote: string, rport: string, st: string) => void): void {
  let start = 0;
  const n = text.length;
  // Bounded: each iteration consumes at least one character.
  while (start < n) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    const m = LINE.exec(text.slice(start, end));
    if (m && m[1]!.length === m[3]!.length) fn(m[1]!, m[2]!, m[3]!, m[4]!, m[5]!);
    start = end + 1;
  }
}

/** Decode the kernel's hex address (8 or 32 hex digits) into 16 bytes, IPv4 as IPv4-mapped. */
export function decodeProcAddress(hex: string, endianness: Endianness = hostEndianness()): IpBytes | undefined {
  if (hex.length !== 8 && hex.length !== 32) return undefined;
  if (!/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  const out = new Uint8Array(16);
  const words = hex.length / 8;
  const at = words === 1 ? 12 : 0;
  if (words === 1) {
    out[10] = 0xff;
    out[11] = 0xff;
  }
  for (let w = 0; w < words; w++) {
    const v = parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    const b = [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
    // The word is the in-memory (network order) bytes read as a native integer: on little-endian
    // hosts its least significant byte is the first byte of the address.
    if (endianness === 'LE') b.reverse();
    out.set(b, at + w * 4);
  }
  return out;
}

/** Parse the whole text of /proc/net/tcp or /proc/net/tcp6. Pure; malformed lines are skipped. */
export function parseProcNetTcp(text: string, opts: ParseOptions = {}): TcpSocketEntry[] {
  const e = opts.endianness ?? hostEndianness();
  const out: TcpSocketEntry[] = [];
  if (typeof text !== 'string') return out;
  scan(text, (local, lport, remote, rport, st) => {
    const la = decodeProcAddress(local, e)!;
    const ra = decodeProcAddress(remote, e)!;
    const v6 = local.length === 32;
    out.push({
      family: v6 ? 6 : 4,
      localAddress: formatIp(la, v6),
      localPort: parseInt(lport, 16),
      remoteAddress: formatIp(ra, v6),
      remotePort: parseInt(rport, 16),
      state: parseInt(st, 16),
    });
  });
  return out;
}

export interface CountFilter {
  /**
   * Only sockets whose local address is this one (the address the server is bound to). Unset, or
   * a wildcard (`0.0.0.0`, `::`), counts every local address. `127.0.0.1` also matches the
   * IPv4-mapped `::ffff:127.0.0.1` of a dual-stack socket.
   */
  host?: string;
  endianness?: Endianness;
}

function checkPort(port: unknown): asserts port is number {
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
    throw new BadOptionError('port', `must be an integer in 1..65535, got ${JSON.stringify(port)}`);
}

function hostFilter(host: unknown): IpBytes | undefined {
  if (host === undefined) return undefined;
  const b = parseIp(host);
  if (!b) throw new BadOptionError('host', `must be an IPv4 or IPv6 address, got ${JSON.stringify(host)}`);
  return isUnspecified(b) ? undefined : b;
}

/**
 * Count ESTABLISHED sockets in one file's text whose *local* port is `port`. Only the local side
 * counts: on a host where clients and server share loopback, each connection appears twice (the
 * client's socket has the server port as its remote port) and only the server's half is load.
 */
export function countEstablishedIn(text: string, port: number, filter: CountFilter = {}): number {
  checkPort(port);
  const want = hostFilter(filter.host);
  const e = filter.endianness ?? hostEndianness();
  let count = 0;
  scan(text, (local, lport, _remote, _rport, st) => {
    if (parseInt(st, 16) !== TCP_STATE.ESTABLISHED || parseInt(lport, 16) !== port) return;
    if (want && !sameIp(decodeProcAddress(local, e)!, want)) return;
    count++;
  });
  return count;
}

export interface CountOptions {
  /** Where procfs is mounted; tests point it at fixture files. Default `/proc`. */
  procRoot?: string;
  /** See CountFilter.host. */
  host?: string;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Established TCP connections whose local port is `port`, over /proc/net/tcp and /proc/net/tcp6
 * of the agent's network namespace. A missing tcp6 file (kernel without IPv6) counts as none; a
 * missing or unreadable tcp file is a ConfigError (no procfs: not Linux, or a sandbox).
 * Bad `port` / `host` reject with BadOptionError.
 */
export async function countEstablished(port: number, opts: CountOptions = {}): Promise<number> {
  checkPort(port);
  const filter: CountFilter = { endianness: hostEndianness() };
  if (opts.host !== undefined) {
    hostFilter(opts.host);
    filter.host = opts.host;
  }
  const root = opts.procRoot ?? '/proc';
  let v4: string;
  try {
    v4 = await readFile(`${root}/net/tcp`, 'latin1');
  } catch (err) {
    throw new ConfigError(
      `cannot read ${root}/net/tcp to count connections (needs Linux procfs): ${(err as Error).message}`,
      { cause: err },
    );
  }
  let v6 = '';
  try {
    v6 = await readFile(`${root}/net/tcp6`, 'latin1');
  } catch (err) {
    if (!isMissing(err))
      throw new ConfigError(`cannot read ${root}/net/tcp6 to count connections: ${(err as Error).message}`, { cause: err });
  }
  return countEstablishedIn(v4, port, filter) + countEstablishedIn(v6, port, filter);
}
