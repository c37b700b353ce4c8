// A WebSocket "game server" for tests: `node ws-game-server.mjs <port> <path> [cert.pem key.pem]`
// listens on 127.0.0.1:<port> (0: any free port), over TLS (wss) when given a certificate and key,
// takes upgrades on <path> only (others get 400 from ws), echoes messages, and prints
// `listening <port>` on stdout once up. Tests end it by PID.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { WebSocketServer } from 'ws';

const [port = '0', path = '/', cert, key] = process.argv.slice(2);
const server = cert && key ? https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }) : http.createServer();
server.on('request', (_req, res) => res.writeHead(426).end());
const wss = new WebSocketServer({ server, path, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (m) => ws.send(m));
});
server.on('error', (err) => {
  process.stderr.write(`ws-game-server: ${err.message}\n`);
  process.exit(1);
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
