/**
 * The dashboard served at `/` on the agent's port: one self-contained page (no build step, no
 * external assets) fed live by `/v1/events`. Members with status and health, live load bars with
 * a short history, zones, and recent events.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>peerlb</title>
<style>
  :root { --bg:#0f1419; --fg:#e6e1cf; --dim:#5c6773; --ok:#7fd962; --warn:#ffb454; --bad:#f07178; --bar:#39bae6; }
  body { background:var(--bg); color:var(--fg); font:14px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; margin:24px; }
  h1 { font-size:18px; margin:0 0 4px; } .sub { color:var(--dim); margin-bottom:16px; }
  table { border-collapse:collapse; width:100%; } th, td { text-align:left; padding:6px 10px; border-bottom:1px solid #1f2630; }
  th { color:var(--dim); font-weight:normal; }
  .alive { color:var(--ok); } .suspect { color:var(--warn); } .dead, .left { color:var(--bad); }
  .healthy { color:var(--ok); } .draining { color:var(--warn); } .unhealthy { color:var(--bad); }
  .bar { display:inline-block; width:160px; height:10px; background:#1f2630; vertical-align:middle; }
  .bar > span { display:block; height:100%; background:var(--bar); }
  svg { vertical-align:middle; } #events { margin-top:20px; color:var(--dim); } #events b { color:var(--fg); font-weight:normal; }
  #conn { float:right; } #conn.up { color:var(--ok); } #conn.down { color:var(--bad); }
</style>
</head>
<body>
<span id="conn" class="down">connecting…</span>
<h1>peerlb cluster</h1>
<div class="sub" id="sub"></div>
<table>
  <thead><tr><th>node</th><th>address</th><th>status</th><th>health</th><th>zone</th><th>load</th><th>history</th><th>sessions</th><th>conns</th><th>inc</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<div id="events"><div>recent events</div><div id="ev"></div></div>
<script>
const members = new Map(); const history = new Map(); let events = [];
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'})[c]);
function put(m) {
  members.set(m.node, m);
  const h = history.get(m.node) || []; h.push(m.load ? m.load.utilization : 0); if (h.length > 60) h.shift(); history.set(m.node, h);
}
function spark(h) {
  if (!h || h.length < 2) return '';
  const pts = h.map((v, i) => (i * 100 / 59).toFixed(1) + ',' + (20 - Math.min(1, v) * 20).toFixed(1)).join(' ');
  return '<svg width="100" height="20"><polyline fill="none" stroke="#39bae6" stroke-width="1.5" points="' + pts + '"/></svg>';
}
function render() {
  const rows = [...members.values()].sort((a, b) => a.node.localeCompare(b.node)).map((m) => {
    const u = m.load ? m.load.utilization : 0;
    return '<tr data-node="' + esc(m.node) + '" data-status="' + esc(m.status) + '"><td>' + esc(m.node) + '</td><td>' + esc(m.host) + ':' + esc(m.udpPort ?? m.tcpPort) +
      '</td><td class="' + esc(m.status) + '">' + esc(m.status) + '</td><td class="' + esc(m.health) + '">' + esc(m.health) + '</td><td>' + esc(m.zone ?? '-') +
      '</td><td><span class="bar"><span style="width:' + Math.round(Math.min(1, u) * 100) + '%"></span></span> ' + u.toFixed(2) +
      '</td><td>' + spark(history.get(m.node)) + '</td><td>' + esc(m.load ? m.load.sessions : '-') + '</td><td>' + esc(m.load ? m.load.connections : '-') + '</td><td>' + esc(m.incarnation) + '</td></tr>';
  });
  document.getElementById('rows').innerHTML = rows.join('');
  const alive = [...members.values()].filter((m) => m.status === 'alive').length;
  document.getElementById('sub').textContent = members.size + ' members, ' + alive + ' alive';
  document.getElementById('ev').innerHTML = events.slice(-15).reverse().map((e) =>
    '<div>' + new Date(e.at).toLocaleTimeString() + ' <b>' + esc(e.kind) + '</b> ' + esc(e.node) + (e.detail ? ' — ' + esc(e.detail) : '') + '</div>').join('');
}
function connect() {
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/events');
  const conn = document.getElementById('conn');
  ws.onopen = () => { conn.textContent = 'live'; conn.className = 'up'; };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === 'members') { members.clear(); msg.members.forEach(put); events = msg.events || []; }
    else if (msg.type === 'member') put(msg.member);
    else if (msg.type === 'event') events.push(msg.event);
    render();
  };
  ws.onclose = () => { conn.textContent = 'disconnected, retrying'; conn.className = 'down'; setTimeout(connect, 1000); };
}
connect();
</script>
</body>
</html>
`;
