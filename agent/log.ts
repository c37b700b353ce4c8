import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';

// pino-pretty (and its dependencies) is loaded only when pretty output is asked for: an agent
// logging JSON to a collector never pays its start-up memory (issue 18, a lean agent).
const require = createRequire(import.meta.url);

export type { Logger };
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Structured JSON logs (pino). When the output is a terminal, lines are made readable by
 * pino-pretty in the same thread (no transport worker), otherwise one JSON object per line for
 * log collectors.
 */
export function createLogger(opts: { level?: LogLevel; name?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const dest = opts.destination ?? process.stderr;
  const wantPretty = opts.pretty ?? Boolean((dest as NodeJS.WriteStream).isTTY);
  const base = { level: opts.level ?? 'info', name: opts.name ?? 'peerlb' };
  if (wantPretty) {
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ colorize: true, sync: true, destination: dest, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(base, dest);
}
