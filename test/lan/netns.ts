/**
 * A LAN on one machine: every host is a network namespace with one veth to a bridge, and the bridge
 * lives in its own namespace, so nothing here touches an interface of the namespace the tests run
 * in (the root namespace, or the fresh one of `unshare -n` in CI). Addresses are in 198.18.0.0/15
 * (RFC 2544 benchmarking range) only; multicast (mDNS) is routed onto the host's veth only.
 *
 *   ns  plbl-<pid>-br   bridge br0, ports p1..pN
 *   ns  plbl-<pid>-hI   lo + veth v0 = 198.18.0.I/24, peer pI in the bridge namespace
 *
 * Names carry the test process's pid, so parallel runs cannot collide, and a later run can tell
 * the leftovers of a crashed run (its pid is gone) from a live one. Everything started here —
 * namespaces and processes (by PID) — is ended by destroy(), also from a process 'exit' hook.
 * Deleting a namespace deletes its veth ends, which deletes the pair.
 *
 * Loss and delay, in the first way this kernel allows:
 *   1. `tc … netem` (CONFIG_NET_SCH_NETEM);
 *   2. without netem (the Firecracker VMs this was written on have none): NFQUEUE. An iptables rule
 *      on each host's OUTPUT to its link queues every packet to nfq-delay.c, a small C program
 *      (compiled here at first use: gcc + libnetfilter-queue-dev, which .ci/run installs) running
 *      in that host's namespace, which drops the chosen share and releases the rest after the
 *      delay. No bypass: if it dies, the link goes dark rather than silently unimpaired;
 *   3. loss only, made in the kernel by a classic-BPF classifier (`ld rand`, cls_bpf) sending the
 *      chosen share of packets to an HTB class whose queue holds nothing (pfifo limit 0).
 * impair() says which it did.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { onLines } from '../support/lines.js';

const run = promisify(execFile);
export const PREFIX = 'plbl-';

/** Why the LAN suite cannot run here, or undefined when it can. */
export function lanUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'network namespaces need root (run as root, or in CI)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 not found: apt-get install iproute2';
  }
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killNsProcs(ns: string): void {
  try {
    const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
    for (const p of out.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  } catch {
    /* namespace gone */
  }
}

/**
 * Remove what a crashed earlier run of this harness left: namespaces named plbl-<pid>-… whose pid
 * no longer runs (the processes inside them were started by that run, and are ended by PID).
 */
export function cleanLeftovers(prefix: string = PREFIX): string[] {
  let list = '';
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 });
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${prefix}(\\d+)-`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    killNsProcs(name);
    try {
      execFileSync('ip', ['netns', 'del', name], { timeout: 5000 });
      removed.push(name);
    } catch {
      /* already gone */
    }
  }
  return removed;
}

/** A fixed, locally administered MAC for host i (static ARP). */
function hostMac(i: number): string {
  return `02:c6:12:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
}

export interface Host {
  index: number;
  ns: string;
  ip: string;
  /** The host's end of its link (inside ns). */
  dev: string;
  /** The bridge's end of its link (inside the bridge namespace). */
  port: string;
}

export interface Proc {
  name: string;
  host: Host;
  child: ChildProcess;
  pid: number;
  /** Complete stdout lines seen so far (the programs here speak JSON lines). */
  lines: string[];
  /** Complete stderr lines (agents log JSON there), the last 5000. */
  errLines: string[];
  exited: Promise<number | null>;
}

/**
 * The NFQUEUE delay program, compiled once per source version into the temp directory. Throws with
 * what is missing when it cannot be built (no gcc, no libnetfilter-queue-dev).
 */
export function nfqDelayBinary(): string {
  const src = fileURLToPath(new URL('./nfq-delay.c', import.meta.url));
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const bin = join(tmpdir(), `peerlb-nfq-delay-${hash}`);
  if (existsSync(bin)) return bin;
  const tmp = `${bin}.${process.pid}`;
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', tmp, src, '-lnetfilter_queue'], { stdio: 'pipe', timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`cannot build nfq-delay (apt-get install gcc libc6-dev libnetfilter-queue-dev): ${e.stderr?.toString().trim() || e.message}`);
  }
  renameSync(tmp, bin);
  return bin;
}

export interface Impairment {
  kind: 'netem' | 'nfqueue' | 'bpf-loss';
  loss: number;
  delayMs: number;
  note: string;
}

export class Lan {
  readonly id: string;
  readonly bridgeNs: string;
  readonly hosts: Host[] = [];
  readonly procs = new Set<Proc>();
  private namespaces: string[] = [];
  private delayProcs = new Map<Host, Proc>();
  private exitHook = () => this.destroySync();

  /** `prefix`: of the namespace names (a run that must not share names with another harness's). */
  constructor(prefix: string = PREFIX) {
    this.id = `${prefix}${process.pid}`;
    this.bridgeNs = `${this.id}-br`;
  }

  /**
   * `staticArp`: give every host a fixed MAC and every other host a permanent neighbour entry. The
   * kernel's ARP table is one for all namespaces, and only 1024 entries (gc_thresh3) that it may
   * collect: N hosts that all talk to each other need N² of them, and past the limit a host that
   * starts talking cannot resolve anyone ("neighbour table overflow", its SYNs never leave) —
   * at 30 hosts, with whatever else runs on the machine. Permanent entries are not counted.
   */
  async create(count: number, opts: { staticArp?: boolean } = {}): Promise<void> {
    process.on('exit', this.exitHook);
    await this.ns(this.bridgeNs);
    await this.exec(this.bridgeNs, 'ip', 'link', 'set', 'lo', 'up');
    await this.exec(this.bridgeNs, 'ip', 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    await this.exec(this.bridgeNs, 'ip', 'link', 'set', 'br0', 'up');
    for (let i = 1; i <= count; i++) {
      const host: Host = { index: i, ns: `${this.id}-h${i}`, ip: `198.18.0.${i}`, dev: 'v0', port: `p${i}` };
      await this.ns(host.ns);
      // Created directly in the two namespaces: the pair never exists in ours.
      const mac = opts.staticArp ? ['address', hostMac(i)] : [];
      await run('ip', ['link', 'add', host.dev, ...mac, 'netns', host.ns, 'type', 'veth', 'peer', 'name', host.port, 'netns', this.bridgeNs]);
      await this.exec(this.bridgeNs, 'ip', 'link', 'set', host.port, 'master', 'br0');
      await this.exec(this.bridgeNs, 'ip', 'link', 'set', host.port, 'up');
      await this.exec(host.ns, 'ip', 'link', 'set', 'lo', 'up');
      await this.exec(host.ns, 'ip', 'addr', 'add', `${host.ip}/24`, 'dev', host.dev);
      await this.exec(host.ns, 'ip', 'link', 'set', host.dev, 'up');
      // mDNS (224.0.0.251) leaves through the LAN link, and only that one exists here anyway.
      await this.exec(host.ns, 'ip', 'route', 'add', '224.0.0.0/4', 'dev', host.dev);
      this.hosts.push(host);
    }
    if (opts.staticArp) {
      for (const h of this.hosts) {
        const cmds = this.hosts.filter((o) => o !== h).map((o) => `neigh replace ${o.ip} lladdr ${hostMac(o.index)} dev ${h.dev} nud permanent`);
        await new Promise<void>((resolve, reject) => {
          const p = spawn('ip', ['-n', h.ns, '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
          let err = '';
          p.stderr.on('data', (d: Buffer) => (err += d.toString()));
          p.on('error', reject);
          p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ip -batch neigh in ${h.ns}: ${err.trim()}`))));
          p.stdin.end(cmds.join('\n') + '\n');
        });
      }
    }
  }

  private async ns(name: string): Promise<void> {
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
  }

  exec(ns: string, cmd: string, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: 10_000 });
  }

  /** Start a program in a host's namespace. `ip netns exec` execs it, so the PID is the program's. */
  spawn(host: Host, name: string, argv: string[], env: NodeJS.ProcessEnv = {}): Proc {
    const child = spawn('ip', ['netns', 'exec', host.ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const p: Proc = {
      name,
      host,
      child,
      pid: child.pid ?? -1,
      lines: [],
      errLines: [],
      exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    };
    this.procs.add(p);
    onLines(child.stdout!, (line) => p.lines.push(line));
    onLines(child.stderr!, (line) => {
      p.errLines.push(line);
      if (p.errLines.length > 5000) p.errLines.shift();
    });
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** kill(2) one process we started, by PID, and wait for it to exit (bounded). */
  async kill(p: Proc, signal: NodeJS.Signals = 'SIGKILL', waitMs = 10_000): Promise<void> {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    try {
      process.kill(p.pid, signal);
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, waitMs);
    await p.exited;
    clearTimeout(t);
  }

  /** Take a host's link down (from the bridge side: the host sees its carrier go) or up. */
  async link(host: Host, up: boolean): Promise<void> {
    await this.exec(this.bridgeNs, 'ip', 'link', 'set', host.port, up ? 'up' : 'down');
  }

  /**
   * Loss and delay on the egress of every host's link: each direction of each host↔bridge link
   * drops `loss` of its packets and delays the rest by `delayMs`, so a request/reply between two
   * hosts loses 1 − (1 − loss)² of its round trips and takes 2 × delayMs longer.
   */
  async impair(loss: number, delayMs: number): Promise<Impairment> {
    const results: Impairment[] = [];
    for (const h of this.hosts) results.push(await this.impairHost(h, loss, delayMs));
    return results[0]!;
  }

  private async impairHost(h: Host, loss: number, delayMs: number): Promise<Impairment> {
    try {
      await this.exec(h.ns, 'tc', 'qdisc', 'add', 'dev', h.dev, 'root', 'netem', 'loss', `${loss * 100}%`, 'delay', `${delayMs}ms`);
      return { kind: 'netem', loss, delayMs, note: `netem loss ${loss * 100}% delay ${delayMs}ms` };
    } catch {
      /* no netem in this kernel: fall through */
    }
    const whyNot = await this.impairNfqueue(h, loss, delayMs).catch((err: Error) => err.message);
    if (whyNot === undefined)
      return { kind: 'nfqueue', loss, delayMs, note: `no netem in this kernel: loss ${loss * 100}% and delay ${delayMs} ms by NFQUEUE (nfq-delay.c)` };
    // ld rand (SKF_AD_OFF + SKF_AD_RANDOM = 0xfffff038); jgt #(1 − loss)·2^32 → match (−1 = classid 1:20)
    const threshold = Math.floor((1 - loss) * 2 ** 32);
    const bytecode = `4,32 0 0 4294963256,37 1 0 ${threshold},6 0 0 0,6 0 0 4294967295`;
    const dev = h.dev;
    await this.exec(h.ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10', 'r2q', '100000');
    await this.exec(h.ns, 'tc', 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10gbit');
    await this.exec(h.ns, 'tc', 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '10gbit');
    await this.exec(h.ns, 'tc', 'qdisc', 'add', 'dev', dev, 'parent', '1:20', 'handle', '20:', 'pfifo', 'limit', '0');
    await this.exec(h.ns, 'tc', 'filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'all', 'prio', '1', 'bpf', 'bytecode', bytecode, 'classid', '1:20');
    return {
      kind: 'bpf-loss',
      loss,
      delayMs: 0,
      note: `no netem in this kernel and no NFQUEUE delay (${whyNot}): loss ${loss * 100}% by cls_bpf (ld rand) into a pfifo limit 0, NO delay (asked ${delayMs} ms)`,
    };
  }

  /** Start nfq-delay in the host's namespace, then queue the link's egress to it. */
  private async impairNfqueue(h: Host, loss: number, delayMs: number): Promise<undefined> {
    const bin = nfqDelayBinary();
    const p = this.spawn(h, `nfq-delay@h${h.index}`, [bin, '0', String(delayMs), String(loss), String(h.index)]);
    const t0 = Date.now();
    while (!p.lines.some((l) => l.startsWith('ready'))) {
      if (p.child.exitCode !== null || Date.now() - t0 > 5000) {
        await this.kill(p, 'SIGKILL', 1000);
        throw new Error(`nfq-delay did not start: ${p.errLines.slice(-3).join(' ') || 'no output'}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    this.delayProcs.set(h, p);
    try {
      await this.exec(h.ns, 'iptables', '-w', '-A', 'OUTPUT', '-o', h.dev, '-j', 'NFQUEUE', '--queue-num', '0');
    } catch (err) {
      this.delayProcs.delete(h);
      await this.kill(p, 'SIGKILL', 1000);
      throw new Error(`iptables -j NFQUEUE failed (apt-get install iptables; kernel needs NETFILTER_XT_TARGET_NFQUEUE): ${(err as Error).message.split('\n')[0]}`);
    }
    return undefined;
  }

  /** Packets the loss emulation dropped on a host's link so far. */
  async dropped(host: Host): Promise<number> {
    const p = this.delayProcs.get(host);
    if (p) {
      const last = [...p.errLines].reverse().find((l) => l.startsWith('nfq-delay '));
      return Number(/dropped=(\d+)/.exec(last ?? '')?.[1] ?? 0);
    }
    const { stdout } = await this.exec(host.ns, 'tc', '-s', 'qdisc', 'show', 'dev', host.dev);
    return [...stdout.matchAll(/dropped (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  }

  async unimpair(): Promise<void> {
    for (const h of this.hosts) {
      await this.exec(h.ns, 'tc', 'qdisc', 'del', 'dev', h.dev, 'root').catch(() => {});
      const p = this.delayProcs.get(h);
      if (!p) continue;
      // Rule first (a queue without its reader drops), then the reader: SIGTERM releases what it holds.
      await this.exec(h.ns, 'iptables', '-w', '-F', 'OUTPUT').catch(() => {});
      await this.kill(p, 'SIGTERM', 3000);
      this.delayProcs.delete(h);
    }
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.procs].map((p) => this.kill(p, 'SIGKILL', 2000)));
    this.destroySync();
  }

  /** Synchronous, for the 'exit' hook: kill our processes by PID, delete our namespaces. */
  destroySync(): void {
    for (const p of this.procs) {
      try {
        if (p.child.exitCode === null && p.child.signalCode === null) process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const ns of this.namespaces.reverse()) {
      if (!existsSync(`/run/netns/${ns}`)) continue;
      killNsProcs(ns); // only ever processes this harness started in its own namespace
      try {
        execFileSync('ip', ['netns', 'del', ns], { timeout: 5000 });
      } catch {
        /* gone */
      }
    }
    this.namespaces = [];
    process.off('exit', this.exitHook);
  }
}
