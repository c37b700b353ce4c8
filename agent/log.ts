import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

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
  if (wantPretty) return pino(base, pretty({ colorize: true, sync: true, destination: dest, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }));
  return pino(base, dest);
}
