/**
 * The observer process of the 30-host LAN run (lan-thirty.ts), on a host of its own: it holds one
 * `/v1/events` WebSocket to every observed agent (reconnecting while it is closed) and polls
 * their `/metrics`, and writes what it sees to stdout as JSON lines:
 *
 *   {"ev":"m","t":…,"a":agentIndex,"n":node,"s":status,"i":incarnation}   a member's state changed in a's view
 *   {"ev":"e","t":at,"a":…,"k":kind,"n":node}                             an event of a's feed (its own `at`)
 *   {"ev":"x","t":…,"a":…,"bytesOut":…,"p99":s,"max":s}                    a's /metrics
 *   {"ev":"ready"}                                                          every feed connected once
 *
 *   node dist/test/bench/lan-observer.js '{"agents":["http://198.18.0.1:7946",…],"metricsEveryMs":5000,"runMs":900000}'
 *
 * Bounded: exits after runMs or on SIGTERM.
 */
import http from 'node:http';
import WebSocket from 'ws';

interface Config {
  agents: string[];
  metricsEveryMs?: number;
  runMs?: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const out = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const timers: NodeJS.Timeout[] = [];
const sockets = new Set<WebSocket>();
let stopping = false;

interface MemberMsg {
  node: string;
  status: string;
  incarnation: number;
}

const connected = new Set<number>();
function watch(a: number, url: string): void {
  if (stopping) return;
  const last = new Map<string, string>();
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/events`);
  sockets.add(ws);
  const seen = (m: MemberMsg) => {
    const key = `${m.status}/${m.incarnation}`;
    if (last.get(m.node) === key) return;
    last.set(m.node, key);
    out({ ev: 'm', t: Date.now(), a, n: m.node, s: m.status, i: m.incarnation });
  };
  ws.on('message', (data) => {
    let msg: { type: string; members?: MemberMsg[]; member?: MemberMsg; event?: { at: number; kind: string; node: string } };
    try {
      msg = JSON.parse(String(data)) as typeof msg;
    } catch {
      return;
    }
    if (msg.type === 'members') {
      for (const m of msg.members ?? []) seen(m);
      if (!connected.has(a)) {
        connected.add(a);
        if (connected.size === cfg.agents.length) out({ ev: 'ready' });
      }
    } else if (msg.type === 'member' && msg.member) seen(msg.member);
    else if (msg.type === 'event' && msg.event) out({ ev: 'e', t: msg.event.at, a, k: msg.event.kind, n: msg.event.node });
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    sockets.delete(ws);
    if (!stopping) timers.push(setTimeout(() => watch(a, url), 250));
  });
}

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

function scrape(a: number, url: string): void {
  const req = http.get(`${url}/metrics`, { timeout: 3000 }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (body += d));
    res.on('end', () =>
      out({
        ev: 'x',
        t: Date.now(),
        a,
        bytesOut: metric(body, 'peerlb_gossip_bytes_sent_total'),
        p99: metric(body, 'peerlb_event_loop_delay_p99_seconds'),
        max: metric(body, 'peerlb_event_loop_delay_max_seconds'),
        probeTimeout: metric(body, 'peerlb_probe_timeout_seconds'),
        awareness: metric(body, 'peerlb_local_health_score'),
      }),
    );
  });
  req.on('timeout', () => req.destroy());
  req.on('error', () => {});
}

cfg.agents.forEach((url, a) => watch(a, url));
timers.push(
  setInterval(() => cfg.agents.forEach((url, a) => scrape(a, url)), cfg.metricsEveryMs ?? 5000),
);
const stop = () => {
  stopping = true;
  for (const t of timers) clearTimeout(t);
  for (const ws of sockets) ws.terminate();
  process.exit(0);
};
process.on('SIGTERM', stop);
setTimeout(stop, cfg.runMs ?? 900_000).unref();
