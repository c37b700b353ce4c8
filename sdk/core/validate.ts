/**
 * One validation module for every option set and decoder (SDK join options, agent options and
 * config file, health checks, wire decoders). Each check takes the option's name, so the error
 * says which setting is wrong and what it accepts: validation happens once, at the edge
 * (ARCHITECTURE.md, "Practices"). Runtime-neutral: no Node built-ins.
 */
import { BadOptionError } from './errors.js';

/** A number in min..max (an integer when `integer`); `def` when absent. */
export function num(option: string, v: unknown, def: number, min: number, max: number, integer = false): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v)))
    throw new BadOptionError(option, `must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** An integer in min..max; `def` (possibly undefined) when absent. */
export function int<D extends number | undefined>(option: string, v: unknown, def: D, min: number, max: number): number | D {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
    throw new BadOptionError(option, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v as number;
}

/** A non-empty string of at most `max` characters, or undefined when absent. */
export function str(option: string, v: unknown, max = 255): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new BadOptionError(option, `must be a non-empty string of at most ${max} chars`);
  return v;
}

/** true or false; `def` when absent. */
export function bool(option: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw new BadOptionError(option, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** One of `names`; `def` when absent. */
export function oneOf<T extends string, D extends T | undefined>(option: string, v: unknown, names: readonly T[], def: D): T | D {
  if (v === undefined) return def;
  if (typeof v !== 'string' || !(names as readonly string[]).includes(v))
    throw new BadOptionError(option, `must be one of ${names.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** A plain object ({} when absent). */
export function obj(option: string, v: unknown): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadOptionError(option, 'must be an object');
  return v as Record<string, unknown>;
}

/** An object with these methods (an injected clock, random source, socket factory...). */
export function methods(option: string, v: unknown, names: readonly string[]): void {
  if (v === undefined) return;
  const o = v as Record<string, unknown> | null;
  if (typeof v !== 'object' || o === null || names.some((n) => typeof o[n] !== 'function'))
    throw new BadOptionError(option, `must be an object with ${names.map((n) => `${n}()`).join(', ')}`);
}

/** A TCP/UDP port 1..65535, or undefined when absent. */
export function port(option: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) throw new BadOptionError(option, `must be a port number 1..65535, got ${JSON.stringify(v)}`);
  return v as number;
}

/** Edit distance of two short strings, case-insensitive (for "did you mean"). */
export function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest of `names` to `key`, if one is near enough to be a typo of it. */
export function nearest(key: string, names: readonly string[]): string | undefined {
  return names
    .filter((n) => distance(key, n) <= Math.max(1, Math.floor(n.length / 3)))
    .sort((a, b) => distance(key, a) - distance(key, b))[0];
}

/**
 * Refuse keys of `o` that are not in `names`, naming them all (a typo such as
 * `outlier.consecutiveFailure` would otherwise be ignored, and its default silently used).
 */
export function onlyKnown(prefix: string, o: Record<string, unknown>, names: readonly string[]): void {
  const unknown = Object.keys(o).filter((k) => !names.includes(k));
  if (unknown.length === 0) return;
  const path = (k: string) => (prefix ? `${prefix}.${k}` : k);
  const first = unknown[0]!;
  const near = nearest(first, names);
  const others = unknown.slice(1, 6).map((k) => JSON.stringify(path(k)));
  throw new BadOptionError(
    path(first),
    `is not an option${near ? ` (did you mean "${path(near)}"?)` : ''}${others.length ? `; nor ${others.length === 1 ? 'is' : 'are'} ${others.join(', ')}${unknown.length > 6 ? ', …' : ''}` : ''}. Known${prefix ? ` in ${prefix}` : ''}: ${names.join(', ')}`,
  );
}
