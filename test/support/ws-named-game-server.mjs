// A WebSocket "game server" that says which one it is, for the browser game test:
// `node ws-named-game-server.mjs <host> <port> <name> [cert.pem key.pem]` listens on host:port
// (0: any free port), over TLS (wss) when given a certificate and key, takes upgrades on any path,
// sends `server <name>` to each socket once it is open, echoes messages, and prints `listening <port>`
// on stdout once up and, for every socket it accepts, `open browser` when the upgrade had an Origin
// (a page's socket) or `open other` (an agent's health check): the test counts sockets at the server.
// Tests end it by PID (kill -9 included).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { WebSocketServer } from 'ws';

const [host = '127.0.0.1', port = '0', name = 'server', cert, key] = process.argv.slice(2);
const server = cert && key ? https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }) : http.createServer();
server.on('request', (_req, res) => res.writeHead(426).end());
const wss = new WebSocketServer({ server, maxPayload: 64 * 1024 });
wss.on('connection', (ws, req) => {
  process.stdout.write(req.headers.origin ? 'open browser\n' : 'open other\n');
  ws.on('error', () => {});
  ws.send(`server ${name}`);
  ws.on('message', (m) => ws.send(m));
});
server.on('error', (err) => {
  process.stderr.write(`ws-named-game-server: ${err.message}\n`);
  process.exit(1);
});
server.listen(Number(port), host, () => process.stdout.write(`listening ${server.address().port}\n`));
