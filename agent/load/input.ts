/**
 * What a server may tell its agent about its own load, and the one validator for it, shared by
 * `agent.report()` (in-process) and `PUT /v1/load` (endpoint.ts) so both accept exactly the same
 * values and word their errors the same way.
 */
import { PeerlbError } from '../../sdk/core/errors.js';

/** A server's own figures. All optional; a report carries at least one. */
export interface LoadInput {
  /** Sessions the server holds (UDP game sessions, streams, …): an integer ≥ 0. */
  sessions?: number;
  /** Connections the server counts itself (overrides the measured count while fresh). */
  connections?: number;
  /** The server's own utilization, 0..1 (1 = full). */
  utilization?: number;
}

export const LOAD_FIELDS = ['sessions', 'connections', 'utilization'] as const;
export type LoadField = (typeof LOAD_FIELDS)[number];

/** Largest count accepted; the same bound the wire decoder applies (sdk/core/protocol.ts `isCount`). */
export const MAX_COUNT = 1e9;

/** A load report with a bad value. `field` names it (undefined when the report as a whole is wrong). */
export class InvalidLoadError extends PeerlbError {
  readonly field: string | undefined;
  constructor(field: string | undefined, message: string) {
    super('PEERLB_ERR_BAD_OPTION', message);
    this.field = field;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v); // JSON.stringify would print NaN as null
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 40)}…` : s;
  } catch {
    return typeof v;
  }
}

/**
 * Check a load report and return a clean copy. Throws InvalidLoadError naming the field when a
 * value is missing its type or range, when a field is unknown (a typo such as `session` would
 * otherwise be ignored without a word), or when no field is given at all.
 */
export function parseLoadInput(v: unknown): LoadInput {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new InvalidLoadError(undefined, `a load report must be an object with ${LOAD_FIELDS.join(', ')}; got ${describe(v)}`);
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!(LOAD_FIELDS as readonly string[]).includes(key))
      throw new InvalidLoadError(key, `unknown load field "${key.slice(0, 40)}" (expected ${LOAD_FIELDS.join(', ')})`);
  }
  const out: LoadInput = {};
  for (const f of ['sessions', 'connections'] as const) {
    const x = o[f];
    if (x === undefined) continue;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > MAX_COUNT)
      throw new InvalidLoadError(f, `load field "${f}" must be an integer in 0..${MAX_COUNT}, got ${describe(x)}`);
    out[f] = x;
  }
  const u = o.utilization;
  if (u !== undefined) {
    if (typeof u !== 'number' || !(u >= 0 && u <= 1))
      throw new InvalidLoadError('utilization', `load field "utilization" must be a number in 0..1, got ${describe(u)}`);
    out.utilization = u;
  }
  if (Object.keys(out).length === 0)
    throw new InvalidLoadError(undefined, `a load report needs at least one of ${LOAD_FIELDS.join(', ')}`);
  return out;
}
