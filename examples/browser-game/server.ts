/**
 * The browser game's server: a WebSocket server (the `ws` package) that tells each socket which
 * server it reached (`{"server":"<name>"}`) and echoes what it gets. A page reaches it through
 * `cluster.websocket()`; its peerlb agent (`peerlb agent --ws <port> --health ws`) announces it.
 *
 *   node dist/examples/browser-game/server.js --name g1 [--host 127.0.0.1] [--port 0]
 *
 * Prints `{"ready":true,"name":…,"port":…}` once listening; SIGTERM/SIGINT closes it and exits 0.
 */
import http from 'node:http';
import type net from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

export interface BrowserGameServer {
  port: number;
  close(): Promise<void>;
}

export async function startBrowserGameServer(o: { host: string; port: number; name: string }): Promise<BrowserGameServer> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  // Caps: 16 KiB per message, 1,000 sockets in total (an outsider's sockets are bounded).
  const wss = new WebSocketServer({ server, maxPayload: 16 * 1024 });
  wss.on('connection', (ws) => {
    if (wss.clients.size > 1000) return ws.close(1013, 'full');
    ws.on('error', () => {});
    ws.send(JSON.stringify({ server: o.name }));
    ws.on('message', (m) => ws.send(m));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  const { values } = parseArgs({ options: { name: { type: 'string', default: 'g1' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } } });
  const s = await startBrowserGameServer({ host: values.host, port: Number(values.port), name: values.name });
  process.stdout.write(`${JSON.stringify({ ready: true, name: values.name, port: s.port })}\n`);
  const stop = () => void s.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
