/**
 * Servers that say who they are: a TCP server that writes its name on connect, and a UDP server
 * that answers every datagram with its name. Loopback only; close() ends everything.
 */
import net from 'node:net';
import dgram from 'node:dgram';

export interface NamedServer {
  name: string;
  tcpPort: number;
  udpPort: number;
  tcpAccepted: number;
  udpReceived: number;
  close(): Promise<void>;
}

export async function namedServer(name: string, host = '127.0.0.1'): Promise<NamedServer> {
  const socks = new Set<net.Socket>();
  const s: NamedServer = { name, tcpPort: 0, udpPort: 0, tcpAccepted: 0, udpReceived: 0, close: async () => {} };
  const tcp = net.createServer((c) => {
    s.tcpAccepted++;
    socks.add(c);
    c.on('error', () => {});
    c.on('close', () => socks.delete(c));
    c.write(name + '\n');
  });
  await new Promise<void>((r) => tcp.listen(0, host, () => r()));
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    s.udpReceived++;
    udp.send(`${name} ${msg.toString()}`, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => udp.bind(0, host, () => r()));
  s.tcpPort = (tcp.address() as net.AddressInfo).port;
  s.udpPort = udp.address().port;
  s.close = async () => {
    for (const c of socks) c.destroy();
    await Promise.all([new Promise<void>((r) => tcp.close(() => r())), new Promise<void>((r) => udp.close(() => r()))]);
  };
  return s;
}

/** Read the first line a TCP server sends. */
export function firstLine(sock: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    sock.once('error', reject);
  });
}
