// The browser game's page script, bundled for the browser by esbuild from `peerlb/sdk` (the
// package's `browser` export condition: the runtime-neutral core, no Node built-ins).
// A few simulated players each join a game server: the page joins the cluster through an agent's
// /v1/watch, each player opens a WebSocket to its pick with cluster.websocket({ key }), and the
// page draws which server each one landed on (the server says its name in its first message).
import { join } from 'peerlb/sdk';

const PLAYERS = 8;

async function main() {
  performance.mark('game:script');
  // The agents' URLs, written into the page by the server that serves it (run.ts): no extra request.
  const config = JSON.parse(document.querySelector('#peerlb-config').textContent);
  const cluster = await join({ service: 'game', discovery: { agents: config.agents }, strategy: 'p2c' });
  performance.mark('game:joined');
  const players = [];
  for (let i = 1; i <= PLAYERS; i++) {
    const player = `player-${i}`;
    const ws = await cluster.websocket({ key: player });
    // Page load (navigation start) → the first open game socket, ms: what test/bench/browser.ts times.
    globalThis.firstSocketMs ??= performance.now();
    const server = await new Promise((resolve) => ws.addEventListener('message', (ev) => resolve(JSON.parse(ev.data).server), { once: true }));
    players.push({ player, server, url: ws.url });
    draw(players);
  }
  document.querySelector('#status').textContent = `${players.length} players on ${new Set(players.map((p) => p.server)).size} of ${cluster.servers().length} servers`;
  globalThis.gameResult = { players, servers: cluster.servers().map((s) => s.id) };
}

function draw(players) {
  const rows = players.map((p) => `<tr><td>${p.player}</td><td>${p.server}</td><td><code>${p.url}</code></td></tr>`);
  document.querySelector('#players').innerHTML = rows.join('');
}

main().catch((err) => {
  globalThis.gameError = String(err);
  document.querySelector('#status').textContent = `error: ${err}`;
});
