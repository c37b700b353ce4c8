/**
 * A TCP streaming server: every connection gets a byte stream (fixed-size chunks at a fixed rate)
 * until the client closes. The client may first send "HELLO <stream-id>\n"; the server answers
 * "OK <server-name>\n" and then streams. Its load is the number of open streams, which its agent
 * measures from /proc/net/tcp without any help.
 */
import net from 'node:net';

export interface StreamServerOptions {
  host?: string;
  port?: number;
  name: string;
  chunkBytes?: number;
  /** Chunks per second per stream. Default 20. */
  chunkRate?: number;
}

export interface StreamServer {
  port: number;
  streams(): number;
  counters: { accepted: number; bytesOut: number };
  close(): Promise<void>;
}

export function startStreamServer(opts: StreamServerOptions): Promise<StreamServer> {
  const chunk = Buffer.alloc(opts.chunkBytes ?? 1024, 0x61);
  const socks = new Set<net.Socket>();
  const counters = { accepted: 0, bytesOut: 0 };
  const server = net.createServer((sock) => {
    counters.accepted++;
    socks.add(sock);
    let timer: NodeJS.Timeout | undefined;
    let greeted = false;
    const startStreaming = () => {
      timer ??= setInterval(() => {
        if (sock.writableLength > 1 << 20) return; // slow reader: skip, don't buffer without bound
        sock.write(chunk);
        counters.bytesOut += chunk.length;
      }, 1000 / (opts.chunkRate ?? 20));
    };
    sock.setNoDelay(true);
    sock.on('data', (d) => {
      if (greeted) return;
      greeted = true;
      if (d.toString().startsWith('HELLO ')) sock.write(`OK ${opts.name}\n`);
      startStreaming();
    });
    // Clients that never say hello still get their stream after a short while.
    const idle = setTimeout(startStreaming, 200);
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(idle);
      if (timer) clearInterval(timer);
      socks.delete(sock);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as net.AddressInfo).port,
        streams: () => socks.size,
        counters,
        close: () =>
          new Promise<void>((r) => {
            for (const s of socks) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
