/**
 * Small loopback socket helpers for the agent's load and health tests. Every wait is bounded: a
 * test that would hang fails with a message instead.
 */
import { once } from 'node:events';
import net from 'node:net';

/** A TCP server on loopback that keeps its accepted sockets so tests can count and close them. */
export async function tcpServer(host = '127.0.0.1', port = 0): Promise<{ server: net.Server; port: number; accepted: Set<net.Socket>; close: () => Promise<void> }> {
  const accepted = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted.add(s);
    s.on('error', () => {});
    s.on('close', () => accepted.delete(s));
  });
  server.listen({ host, port });
  await once(server, 'listening');
  const addr = server.address() as net.AddressInfo;
  return {
    server,
    port: addr.port,
    accepted,
    close: async () => {
      for (const s of accepted) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Open `n` client connections to host:port and resolve when all are connected. */
export async function openClients(host: string, port: number, n: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host, port });
    s.on('error', () => {});
    socks.push(s);
  }
  await Promise.all(socks.map((s) => once(s, 'connect')));
  return socks;
}

/** Whether this machine can listen on ::1 (some CI sandboxes have no IPv6 on loopback). */
export async function hasIPv6Loopback(): Promise<boolean> {
  const s = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen({ host: '::1', port: 0 }, () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

/**
 * A loopback address of this test file's own, so that files running in parallel cannot reach each
 * other's servers: a test that closes a port and then probes it must not hit a server another
 * file just opened on the same port number. Linux routes all of 127.0.0.0/8 to lo; where only
 * 127.0.0.1 works (macOS), fall back to it.
 */
export async function ownLoopback(preferred: string): Promise<string> {
  const s = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen({ host: preferred, port: 0 }, () => resolve());
    });
    return preferred;
  } catch {
    return '127.0.0.1';
  } finally {
    s.close();
  }
}
