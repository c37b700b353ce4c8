/**
 * The agent's logs: one JSON object per line (pino) on stderr when it is not a terminal, with
 * levels, messages and fields; `--log-level` / PEERLB_LOG_LEVEL filter; readable lines (pino-pretty)
 * when stderr is a terminal — through `script`, which gives the agent a real pseudo-terminal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../agent/log.js';
import { ownLoopback } from '../../support/net.js';
import { CLI, cleanEnv, exited, getJson, startCliAgent, stopCliAgents, tcpServerOn, until, type OpsAgent } from '../../support/ops.js';

const H = await ownLoopback('127.0.0.34');
const procs: OpsAgent[] = [];
const others: ChildProcess[] = [];
const servers: net.Server[] = [];

afterAll(async () => {
  for (const p of others) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await exited(p);
    }
  }
  await stopCliAgents(procs);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
}, 20_000);

/** Lines of everything the agent wrote to stderr so far (the last one only if complete). */
const lines = (a: { stderr: string[] }) => a.stderr.join('').split('\n').slice(0, -1).filter((l) => l !== '');

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

async function freePort(): Promise<number> {
  const s = await tcpServerOn(H);
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('JSON log lines when stderr is not a terminal', () => {
  it('every line is a JSON object with level, time, pid, name and msg; lifecycle lines carry their fields', async () => {
    const t0 = Date.now();
    const a = await startCliAgent(procs, 'log-a', H, { extra: ['--zone', 'r1'] });
    const b = await startCliAgent(procs, 'log-b', H, { join: [a.url] });
    await until(() => a.logs.some((l) => l.msg === 'member changed' && l.member === 'log-b'), 10_000, 'log-a logs log-b joining');
    const all = lines(a);
    expect(all.length).toBeGreaterThanOrEqual(4);
    for (const line of all) {
      const j = JSON.parse(line) as Record<string, unknown>; // throws on anything else
      expect(typeof j).toBe('object');
      expect(LEVELS[j.level as number], line).toBeDefined();
      expect(j.level, line).toBeGreaterThanOrEqual(30); // default level info
      expect(j.time as number).toBeGreaterThanOrEqual(t0 - 1000);
      expect(j.time as number).toBeLessThanOrEqual(Date.now());
      expect(j.pid).toBe(a.proc.pid);
      expect(j.name).toBe('peerlb');
      expect(typeof j.msg).toBe('string');
    }
    const started = a.logs.find((l) => l.msg === 'agent started')!;
    expect(started).toMatchObject({ level: 30, node: 'log-a', service: 'game', tcp: a.tcpPort, url: `ws://${H}:${a.port}` });
    const cfg = a.logs.find((l) => l.msg === 'configuration')!;
    expect(cfg).toMatchObject({ level: 30, config: { zone: 'r1', node: 'log-a', logLevel: 'info' } });
    // No keyring: a warning, at warn level.
    expect(a.logs.find((l) => String(l.msg).startsWith('cluster is open'))).toMatchObject({ level: 40 });
    expect(a.logs.find((l) => l.msg === 'member changed' && l.member === 'log-b')).toMatchObject({ level: 30, status: 'alive', node: 'log-a' });
    // Debug lines ('member joined' from the gossip layer) are filtered at the default level.
    expect(a.logs.some((l) => (l.level as number) < 30)).toBe(false);
    expect(b.logs.some((l) => l.msg === 'member joined')).toBe(false);
  });

  it('--log-level debug adds the debug lines', async () => {
    const a = procs.find((p) => p.node === 'log-a')!;
    const c = await startCliAgent(procs, 'log-c', H, { join: [a.url], extra: ['--log-level', 'debug'] });
    await until(() => c.logs.some((l) => l.msg === 'member joined'), 10_000, "a debug 'member joined' line on log-c");
    expect(c.logs.find((l) => l.msg === 'member joined')).toMatchObject({ level: 20, node: 'log-c' });
    expect(c.logs.find((l) => l.msg === 'agent started')).toMatchObject({ level: 30 });
    for (const line of lines(c)) JSON.parse(line);
  });

  it('--log-level warn keeps warnings and drops info, through a whole start and SIGTERM drain', async () => {
    const server = await tcpServerOn(H);
    servers.push(server);
    const port = await freePort();
    const p = spawn(
      process.execPath,
      [CLI, 'agent', '--service', 'game', '--node', 'log-w', '--host', H, '--port', String(port), '--tcp', String((server.address() as net.AddressInfo).port), '--drain-timeout', '100', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() },
    );
    others.push(p);
    const out = { stderr: [] as string[], stdout: [] as string[] };
    p.stderr!.on('data', (d: Buffer) => out.stderr.push(d.toString()));
    p.stdout!.on('data', (d: Buffer) => out.stdout.push(d.toString()));
    await until(async () => (await getJson<{ node: string }>(`http://${H}:${port}/v1/health`)).node === 'log-w', 10_000, 'log-w answering');
    p.kill('SIGTERM');
    expect(await exited(p)).toBe(0);
    const all = lines(out).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(all.filter((l) => String(l.msg).startsWith('cluster is open')).map((l) => l.level)).toEqual([40]);
    expect(all.filter((l) => (l.level as number) < 40)).toEqual([]);
    expect(out.stdout.join('')).toBe(''); // logs go to stderr only
  });

  it('PEERLB_LOG_LEVEL=silent writes nothing at all', async () => {
    const server = await tcpServerOn(H);
    servers.push(server);
    const port = await freePort();
    const p = spawn(process.execPath, [CLI, 'agent', '--service', 'game', '--node', 'log-s', '--host', H, '--port', String(port), '--tcp', String((server.address() as net.AddressInfo).port), '--drain-timeout', '100'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...cleanEnv(), PEERLB_LOG_LEVEL: 'silent' },
    });
    others.push(p);
    let text = '';
    p.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    p.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    await until(async () => (await getJson<{ node: string }>(`http://${H}:${port}/v1/health`)).node === 'log-s', 10_000, 'log-s answering');
    p.kill('SIGTERM');
    expect(await exited(p)).toBe(0);
    expect(text).toBe('');
  });
});

describe('readable lines on a terminal', () => {
  it('createLogger picks pino-pretty for a TTY destination and JSON otherwise', () => {
    const sink = (tty: boolean) => {
      const chunks: string[] = [];
      const w = new Writable({
        write(c: Buffer, _e, cb) {
          chunks.push(c.toString());
          cb();
        },
      }) as Writable & { isTTY?: boolean };
      if (tty) w.isTTY = true;
      return { w, text: () => chunks.join('') };
    };
    const plain = sink(false);
    createLogger({ destination: plain.w }).info({ answer: 42 }, 'hello there');
    const j = JSON.parse(plain.text().trim()) as Record<string, unknown>;
    expect(j).toMatchObject({ level: 30, name: 'peerlb', msg: 'hello there', answer: 42 });

    const tty = sink(true);
    createLogger({ destination: tty.w }).warn({ answer: 42 }, 'hello there');
    const text = tty.text().replace(/\x1b\[[0-9;]*m/g, '');
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(peerlb\): hello there\n\s+answer: 42\n$/);
    expect(tty.text()).toMatch(/\x1b\[/); // coloured
  });

  it.skipIf(!existsSync('/usr/bin/script'))('a real agent on a pseudo-terminal (script) writes pino-pretty lines, not JSON', async () => {
    const server = await tcpServerOn(H);
    servers.push(server);
    const cmd = [process.execPath, CLI, 'agent', '--service', 'game', '--node', 'log-tty', '--host', H, '--port', '0', '--tcp', String((server.address() as net.AddressInfo).port)]
      .map((s) => `'${s}'`)
      .join(' ');
    // `exec` makes the agent script's own child, so it can be stopped by its PID.
    const p = spawn('/usr/bin/script', ['-qfec', `exec ${cmd}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...cleanEnv(), SHELL: '/bin/sh', TERM: 'dumb' } });
    others.push(p);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(() => /agent started/.test(out), 15_000, `'agent started' on the terminal (got ${JSON.stringify(out.slice(0, 500))})`);
    } finally {
      // Stop the agent itself by its PID (script's child), then script ends with it.
      let child: number | undefined;
      try {
        child = Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || undefined;
      } catch {
        /* already gone */
      }
      if (child) process.kill(child, 'SIGKILL');
      const done = await Promise.race([exited(p), new Promise((r) => setTimeout(() => r('timeout'), 5000))]);
      if (done === 'timeout') p.kill('SIGKILL');
    }
    const text = out.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');
    const started = text.split('\n').find((l) => l.includes('agent started'))!;
    expect(started).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(peerlb\): agent started/);
    expect(text).toMatch(/WARN \(peerlb\): cluster is open/);
    expect(text).toMatch(/\n\s+node: "log-tty"\n/); // fields on their own indented lines
    for (const l of text.split('\n')) expect(l.trim().startsWith('{"level"'), l).toBe(false);
  });
});
