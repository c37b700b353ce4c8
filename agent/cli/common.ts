/**
 * What every `peerlb` subcommand shares: one-line errors naming the option (exit code 2), fetch
 * error text, tables.
 */
import { AGENT_OPTION_SPECS } from '../options.js';
import { BadOptionError, PeerlbError } from '../../sdk/core/errors.js';

/**
 * The CLI names options by their flags (`--udp`, `--health-udp-send`), not by the option paths of
 * startAgent (`udpPort`, `health.send`), except for those the config file set (`fromFile`): there the
 * user wrote the path.
 */
export function flagMessage(err: BadOptionError, fromFile: (path: string) => boolean = () => false): string {
  const flagOf = (p: string): string | undefined => {
    const spec = AGENT_OPTION_SPECS.find((x) => x.path === p.replace(/\[\d+\]$/, ''));
    return spec && !fromFile(spec.path) ? `--${spec.flag}` : undefined;
  };
  const option = flagOf(err.option) ?? err.option;
  let problem = err.message.slice(`option "${err.option}" `.length);
  // Option paths named in the text (`no udpPort is set`), longest first: `health.send` before `send`.
  // Only paths that cannot be plain words of the text: camelCase or dotted (`udpPort`, `health.send`, not `host`).
  const paths = AGENT_OPTION_SPECS.map((x) => x.path)
    .filter((x) => /[A-Z.]/.test(x))
    .sort((a, b) => b.length - a.length);
  // A key the config file set is wrong: the text speaks of the file's keys (a "did you mean" names
  // the key to write there, not a flag).
  if (problem.startsWith('is not an option') && fromFile(err.option.replace(/\[\d+\]$/, ''))) return `option "${option}" ${problem}`;
  problem = problem.replace(new RegExp(`(?<![\\w.-])(${paths.map((x) => x.replace(/\./g, '\\.')).join('|')})(?![\\w-])`, 'g'), (m) => flagOf(m) ?? m);
  return `option "${option}" ${problem}`;
}

export function fail(err: unknown, code = 2, fromFile?: (path: string) => boolean): never {
  const msg =
    err instanceof BadOptionError
      ? `${flagMessage(err, fromFile)} [${err.code}]`
      : err instanceof PeerlbError
        ? `${err.message} [${err.code}]`
        : err instanceof Error
          ? err.message
          : String(err);
  process.stderr.write(`peerlb: ${msg}\n`);
  process.exit(code);
}

/** Why a fetch failed: the system error (ECONNREFUSED, ENOTFOUND…) under undici's "fetch failed". */
export function fetchError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'no answer in time';
  if (e?.cause?.code) return `${e.cause.code}${e.cause.message && !e.cause.message.includes(e.cause.code) ? ` (${e.cause.message})` : ''}`;
  return e?.cause?.message ?? e?.message ?? String(err);
}

export function getPath(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((cur, k) => (cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined), o);
}

export function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write([line(head), ...rows.map(line)].join('\n') + '\n');
}


/** A `--mdns-port` value: a port 1..65535, or undefined when not given. */
export function portFlag(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) fail(new Error(`--mdns-port must be a port (1..65535), got ${JSON.stringify(v)}`));
  return n;
}
