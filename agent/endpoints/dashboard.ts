/**
 * The dashboard served at `/` on the agent's port: one self-contained page (no build step, no
 * external assets, no polling). Two WebSockets feed it:
 *
 * - `/v1/watch?format=json` — the same subscription the SDK uses (hello, snapshot, upsert, remove),
 *   sent as JSON text instead of msgpack so that a browser needs no decoder. It drives what clients
 *   see: servers, health, weight, zone and the live load bars with their short history. The JSON
 *   form was chosen over a second, dashboard-only server view so that the page shows exactly what
 *   a client would pick from, through the same code path and limits.
 * - `/v1/events` — what the watch deliberately leaves out: gossip status of every member (suspect,
 *   dead and left members are not pickable, so the watch only sends their removal), incarnations,
 *   and the recent events (join, suspect, dead, alive, drain, leave, health).
 *
 * A watch token, when the agent requires one, can be given as `/#token=…`.
 *
 * Each load bar says which figure it is — the watch record's `load.source`, gossiped with the
 * figure by the server's own agent (else the member info's `loadSource`): the server's report,
 * active/capacity, or host CPU — drawn striped and named, never passed off as the server's load.
 * `?` only where the server's agent did not say (an agent of an older release).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>peerlb</title>
<style>
  :root { --bg:#0f1419; --fg:#e6e1cf; --dim:#5c6773; --ok:#7fd962; --warn:#ffb454; --bad:#f07178; --bar:#39bae6; }
  body { background:var(--bg); color:var(--fg); font:14px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; margin:24px; }
  h1 { font-size:18px; margin:0 0 4px; } h2 { font-size:14px; color:var(--dim); font-weight:normal; margin:20px 0 6px; }
  .sub { color:var(--dim); margin-bottom:16px; }
  table { border-collapse:collapse; width:100%; } th, td { text-align:left; padding:6px 10px; border-bottom:1px solid #1f2630; }
  th { color:var(--dim); font-weight:normal; }
  .alive { color:var(--ok); } .suspect { color:var(--warn); } .dead, .left { color:var(--bad); }
  .healthy { color:var(--ok); } .draining { color:var(--warn); } .unhealthy { color:var(--bad); }
  tr[data-status="dead"], tr[data-status="left"] { opacity:.6; }
  .bar { display:inline-block; width:160px; height:10px; background:#1f2630; vertical-align:middle; }
  .bar > span { display:block; height:100%; background:var(--bar); }
  svg { vertical-align:middle; } #ev { color:var(--dim); } #ev b { color:var(--fg); font-weight:normal; }
  .conn { float:right; margin-left:16px; } .conn.up { color:var(--ok); } .conn.down { color:var(--bad); }
  .bar.cpu > span { background:repeating-linear-gradient(45deg, var(--dim) 0 4px, #2b333d 4px 8px); }
  .src { color:var(--dim); font-size:12px; } .legend { color:var(--dim); font-size:12px; margin-top:6px; }
</style>
</head>
<body>
<span id="conn-events" class="conn down">events: connecting…</span>
<span id="conn-watch" class="conn down">watch: connecting…</span>
<h1>peerlb cluster</h1>
<div class="sub" id="sub"></div>
<table>
  <thead><tr><th>node</th><th>address</th><th>status</th><th>health</th><th>zone</th><th>weight</th><th>load</th><th>history</th><th>sessions</th><th>conns</th><th>inc</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<div class="legend">load: the utilization clients pick by, tagged with what it is — <i>reported</i> (by the server),
<i>active/capacity</i>, or <i>host CPU</i> (striped: the server reported nothing and has no capacity, so this is the
machine's CPU, not the server's load). Other agents' servers are tagged <i>?</i>: gossip does not say which it is.</div>
<h2>zones</h2>
<table>
  <thead><tr><th>zone</th><th>servers</th><th>healthy</th><th>mean load</th></tr></thead>
  <tbody id="zones"></tbody>
</table>
<h2>recent events</h2>
<div id="ev"></div>
<script>
"use strict";
const HISTORY = 60;
const servers = new Map();   // id -> server record, from /v1/watch
const members = new Map();   // node -> { status, incarnation, addr, host, ... }, from /v1/events
const removed = new Map();   // id -> reason, from /v1/watch remove frames
const history = new Map();   // id -> utilization samples
let events = [];
let scheduled = false;
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'})[c]);
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const wsBase = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;

function putServer(s) {
  servers.set(s.id, s);
  removed.delete(s.id);
  if (s.load) {
    const h = history.get(s.id) || [];
    h.push(s.load.utilization);
    if (h.length > HISTORY) h.shift();
    history.set(s.id, h);
  }
}
function spark(h) {
  if (!h || h.length < 2) return '';
  const pts = h.map((v, i) => (100 - (h.length - 1 - i) * 100 / (HISTORY - 1)).toFixed(1) + ',' + (20 - Math.min(1, v) * 20).toFixed(1)).join(' ');
  return '<svg width="100" height="20"><polyline fill="none" stroke="#39bae6" stroke-width="1.5" points="' + pts + '"/></svg>';
}
function row(id) {
  const s = servers.get(id), m = members.get(id);
  const status = m ? m.status : removed.has(id) ? removed.get(id) : 'alive';
  const live = status === 'alive' || status === 'suspect';
  const host = s ? s.host : m ? m.host : '';
  const port = s ? (s.udpPort ?? s.tcpPort ?? s.wsPort) : m ? (m.udpPort ?? m.tcpPort ?? m.wsPort) : '';
  const health = live ? (s ? s.health : m ? m.health : '-') : '-'; // a dead or departed agent's last word on its server is stale
  const load = live && s ? s.load : undefined;
  const u = load ? load.utilization : 0;
  const src = (load && load.source) || (m && m.loadSource) || '?';
  const srcText = { reported: 'reported', capacity: 'active/capacity', cpu: 'host CPU', none: 'none' }[src] || '?';
  return { id, status, html: '<tr data-node="' + esc(id) + '" data-status="' + esc(status) + '"><td>' + esc(id) + '</td><td>' + esc(host) + ':' + esc(port) +
    '</td><td class="' + esc(status) + '">' + esc(status) + '</td><td class="' + esc(health) + '">' + esc(health) + '</td><td>' + esc((s && s.zone) || (m && m.zone) || '-') +
    '</td><td>' + esc(s ? s.weight : m ? m.weight : '-') +
    '</td><td class="load" data-src="' + esc(src) + '">' + (load ? '<span class="bar' + (src === 'cpu' ? ' cpu' : '') + '"><span style="width:' + Math.round(Math.min(1, u) * 100) + '%"></span></span> ' + u.toFixed(2) +
      ' <span class="src">' + esc(srcText) + '</span>' : '-') +
    '</td><td>' + (live ? spark(history.get(id)) : '') + '</td><td>' + esc(load ? load.sessions : '-') + '</td><td>' + esc(load ? load.connections : '-') +
    '</td><td>' + esc(m ? m.incarnation : '-') + '</td></tr>' };
}
function render() {
  scheduled = false;
  const ids = [...new Set([...servers.keys(), ...members.keys()])].sort();
  const rows = ids.map(row);
  document.getElementById('rows').innerHTML = rows.map((r) => r.html).join('');
  const alive = rows.filter((r) => r.status === 'alive').length;
  document.getElementById('sub').textContent = rows.length + ' members, ' + alive + ' alive, ' + servers.size + ' servers clients can pick';
  const zones = new Map();
  for (const s of servers.values()) {
    const z = zones.get(s.zone || '-') || { n: 0, healthy: 0, load: 0 };
    z.n++; if (s.health === 'healthy') z.healthy++; z.load += s.load ? s.load.utilization : 0;
    zones.set(s.zone || '-', z);
  }
  document.getElementById('zones').innerHTML = [...zones].sort((a, b) => a[0].localeCompare(b[0])).map(([name, z]) =>
    '<tr data-zone="' + esc(name) + '"><td>' + esc(name) + '</td><td>' + z.n + '</td><td>' + z.healthy + '</td><td>' + (z.load / z.n).toFixed(2) + '</td></tr>').join('');
  document.getElementById('ev').innerHTML = events.slice(-20).reverse().map((e) =>
    '<div data-kind="' + esc(e.kind) + '">' + esc(new Date(e.at).toLocaleTimeString()) + ' <b>' + esc(e.kind) + '</b> ' + esc(e.node) + (e.detail ? ' — ' + esc(e.detail) : '') + '</div>').join('');
}
function later() { if (!scheduled) { scheduled = true; setTimeout(render, 50); } }
function live(name, path, onOpen, onMessage) {
  const el = document.getElementById('conn-' + name);
  const ws = new WebSocket(wsBase + path);
  ws.onopen = () => { el.textContent = name + ': live'; el.className = 'conn up'; onOpen(ws); };
  ws.onmessage = (e) => { onMessage(JSON.parse(e.data)); later(); };
  ws.onclose = () => { el.textContent = name + ': disconnected, retrying'; el.className = 'conn down'; setTimeout(() => live(name, path, onOpen, onMessage), 1000); };
}
live('watch', '/v1/watch?format=json', (ws) => ws.send(JSON.stringify(Object.assign({ t: 'hello', v: 1 }, token ? { token } : {}))), (f) => {
  if (f.t === 'snapshot') { servers.clear(); removed.clear(); f.servers.forEach(putServer); }
  else if (f.t === 'upsert') putServer(f.server);
  else if (f.t === 'remove') { servers.delete(f.id); removed.set(f.id, f.reason); }
  else if (f.t === 'error') document.getElementById('conn-watch').textContent = 'watch: ' + f.code + ' ' + f.message;
});
live('events', '/v1/events', (ws) => { if (token) ws.send(JSON.stringify({ t: 'hello', v: 1, token })); }, (msg) => {
  if (msg.type === 'members') { members.clear(); msg.members.forEach((m) => members.set(m.node, m)); events = msg.events || []; }
  else if (msg.type === 'member') members.set(msg.member.node, msg.member);
  else if (msg.type === 'event') { events.push(msg.event); if (events.length > 200) events.shift(); }
});
</script>
</body>
</html>
`;

/** `GET /`: the page. */
export function serveDashboard(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(DASHBOARD_HTML);
}

/** `/favicon.ico`: nothing (a browser asks for it with every page). */
export function serveFavicon(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(204).end();
}
