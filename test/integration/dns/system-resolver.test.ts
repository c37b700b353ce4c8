/**
 * The agent as the system resolver: inside a mount namespace (`unshare -m`) a temporary resolv.conf
 * is bind-mounted over /etc/resolv.conf, naming an agent on port 53 of a loopback address, so
 * glibc (getent, python3's socket.getaddrinfo) resolves `game.peerlb` through the agent. Then
 * the balance: 200 fresh resolutions, each followed by a TCP connect to the first address, spread
 * over four servers of equal weight, and a server reporting 4× the load gets at most half its
 * fair share. Needs root (mount namespaces, port 53): skipped without it, failing on CI.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ON_CI } from '../../support/ci.js';
import { dig, digSection, spawnDnsAgent, stopDnsAgents, type DnsAgent } from '../../support/dns.js';
import { until } from '../../support/until.js';

const run = promisify(execFile);
const ROOT = process.getuid?.() === 0;
if (!ROOT) console.warn(ON_CI ? 'system resolver test: not root — required on CI' : 'system resolver test: not root (mount namespace, port 53) — skipped');

const DNS_ADDR = '127.0.9.53';
const HOSTS = ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4'];
let agents: DnsAgent[] = [];
let dir = '';
let resolvConf = '';

/** Run a command in a new mount namespace whose /etc/resolv.conf names the agent. */
function inMountNs(cmd: string[], timeoutMs = 60_000): Promise<string> {
  const script = `mount --bind "${resolvConf}" /etc/resolv.conf && exec "$@"`;
  return run('unshare', ['-m', '--', 'sh', '-c', script, 'sh', ...cmd], { timeout: timeoutMs, maxBuffer: 1 << 20 }).then((r) => r.stdout);
}

// One process, 200 fresh resolutions (glibc keeps no cache; no nscd in the namespace) and a TCP
// connect to the first address of each, held until the end (so the servers' measured load counts
// them) or closed at once ('close': the load is what the servers report).
const CLIENTS_PY = `
import socket, sys, time
ports = dict(p.split('=') for p in sys.argv[2].split(','))
socks = []
for i in range(int(sys.argv[1])):
    ai = socket.getaddrinfo('game.peerlb', None, socket.AF_INET, socket.SOCK_STREAM)
    host = ai[0][4][0]
    s = socket.create_connection((host, int(ports[host])), timeout=5)
    if sys.argv[3] == 'hold': socks.append(s)
    else: s.close()
    print(host, flush=True)
    time.sleep(0.02)
for s in socks: s.close()
`;

describe.skipIf(!ROOT && !ON_CI)('the agent as the system resolver', () => {
  beforeAll(async () => {
    if (!ROOT) throw new Error('needs root (unshare -m, port 53)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerlb-dns-'));
    resolvConf = path.join(dir, 'resolv.conf');
    fs.writeFileSync(resolvConf, `nameserver ${DNS_ADDR}\noptions attempts:2 timeout:2\n`);
    fs.writeFileSync(path.join(dir, 'clients.py'), CLIENTS_PY);
    const common = ['--capacity', '60', '--load-interval', '100'];
    const first = await spawnDnsAgent('sys-1', { host: HOSTS[0]!, dnsPort: 53, dnsBind: DNS_ADDR, extra: [...common, '--dns-answers', '1'] });
    agents = [first];
    for (let i = 1; i < HOSTS.length; i++) agents.push(await spawnDnsAgent(`sys-${i + 1}`, { host: HOSTS[i]!, join: [first.url], extra: common }));
    await until(async () => digSection(await dig(53, ['game.peerlb', 'A', '+tcp'], DNS_ADDR), 'ANSWER').length === 1 && (await members()).length === 4, 20_000, 'four healthy members');
  }, 60_000);

  afterAll(async () => {
    await stopDnsAgents(agents);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function members(): Promise<Array<{ node: string; health: string; status: string; load: { sessions: number } | null }>> {
    const r = await fetch(`http://${HOSTS[0]}:${agents[0]!.port}/v1/members`);
    const all = (await r.json()) as Array<{ node: string; health: string; status: string; load: { sessions: number } | null }>;
    return all.filter((m) => m.status === 'alive' && m.health === 'healthy');
  }

  async function clients(n: number, hold: 'hold' | 'close'): Promise<Map<string, number>> {
    const ports = agents.map((a) => `${a.host}=${a.tcpPort}`).join(',');
    const out = await inMountNs(['python3', path.join(dir, 'clients.py'), String(n), ports, hold], 120_000);
    // Each line: the address a client connected to (create_connection succeeded; it raises otherwise).
    // Counted from the clients, not the servers: the agents' TCP health probes connect too.
    const chosen = out.trim().split('\n');
    expect(chosen.length).toBe(n);
    const got = new Map(agents.map((a) => [a.host, chosen.filter((h) => h === a.host).length]));
    console.info(`dns balance: ${JSON.stringify(Object.fromEntries(got))}`);
    return got;
  }

  it('getent ahosts game.peerlb returns a server through the agent', async () => {
    const out = await inMountNs(['getent', 'ahosts', 'game.peerlb']);
    const addrs = new Set(out.trim().split('\n').map((l) => l.split(/\s+/)[0]));
    expect(addrs.size).toBe(1);
    expect(HOSTS).toContain([...addrs][0]);
    // Outside the namespace the host's own resolv.conf is untouched.
    expect(fs.readFileSync('/etc/resolv.conf', 'utf8')).not.toContain(DNS_ADDR);
  });

  it('200 clients resolving and connecting: max/mean connections per server ≤ 1.25 over four equal servers', async () => {
    const got = await clients(200, 'hold');
    const counts = [...got.values()];
    expect(counts.reduce((s, c) => s + c, 0)).toBe(200);
    const max = Math.max(...counts);
    expect(max / 50, `connections per server: ${JSON.stringify(Object.fromEntries(got))}`).toBeLessThanOrEqual(1.25);
  }, 180_000);

  it('a server reporting 4× the load gets at most half its fair share', async () => {
    // The load the SDK's estimate compares: sessions (besides connections); 4x on the first server.
    const loads = [40, 10, 10, 10];
    const put = () =>
      Promise.all(agents.map((a, i) => fetch(`http://${a.host}:${a.port}/v1/load`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sessions: loads[i] }) })));
    await put();
    // Reports stay fresh for 3 load intervals: renewed while the clients run.
    const renew = setInterval(() => void put().catch(() => {}), 100);
    try {
      await until(async () => (await members()).find((m) => m.node === 'sys-1')?.load?.sessions === 40 && (await members()).filter((m) => m.load?.sessions === 10).length === 3, 20_000, 'the reported loads in the view');
      const got = await clients(200, 'close');
      expect(got.get(HOSTS[0]!), `connections per server: ${JSON.stringify(Object.fromEntries(got))}`).toBeLessThanOrEqual(25);
    } finally {
      clearInterval(renew);
    }
  }, 180_000);
});
