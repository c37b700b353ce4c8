/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for tests: every line must be
 * a HELP, a TYPE, a comment, a blank line or a sample, or parsing throws naming the line. Samples
 * are grouped into their metric family (histogram `_bucket`/`_sum`/`_count` under the histogram's
 * name) and each family's shape is checked: a TYPE before its samples, at most one HELP and TYPE,
 * counter values ≥ 0, histogram buckets cumulative with `le="+Inf"` equal to `_count`.
 */

export type PromType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  help?: string;
  type: PromType;
  samples: PromSample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const HELP_RE = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);

function unescape(s: string, quotes: boolean): string {
  return s.replace(quotes ? /\\([\\"n])/g : /\\([\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(v: string, line: number): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) throw new Error(`line ${line}: bad sample value ${JSON.stringify(v)}`);
  return Number(v);
}

function parseLabels(body: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = new RegExp(`\\s*(${LABEL})="((?:[^"\\\\]|\\\\.)*)"\\s*(,|$)`, 'y');
  let i = 0;
  while (i < body.length) {
    re.lastIndex = i;
    const m = re.exec(body);
    if (!m) throw new Error(`line ${line}: bad labels {${body}}`);
    if (m[1]! in labels) throw new Error(`line ${line}: label ${m[1]} repeated`);
    labels[m[1]!] = unescape(m[2]!, true);
    i = re.lastIndex;
    if (m[3] === '' && i < body.length) throw new Error(`line ${line}: bad labels {${body}}`);
  }
  return labels;
}

function familyOf(sample: string, families: Map<string, PromFamily>): PromFamily | undefined {
  const f = families.get(sample);
  if (f) return f;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const g = families.get(sample.slice(0, -suffix.length));
    if (g && (g.type === 'histogram' || g.type === 'summary')) return g;
  }
  return undefined;
}

/** Parse a whole exposition; throws on the first line that is not valid. */
export function parseProm(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const helps = new Map<string, string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, idx) => {
    const n = idx + 1;
    if (raw.trim() === '') return;
    let m: RegExpExecArray | null;
    if ((m = HELP_RE.exec(raw))) {
      if (helps.has(m[1]!)) throw new Error(`line ${n}: second HELP for ${m[1]}`);
      helps.set(m[1]!, unescape(m[2]!, false));
      const f = families.get(m[1]!);
      if (f) f.help = helps.get(m[1]!);
      return;
    }
    if ((m = TYPE_RE.exec(raw))) {
      if (families.has(m[1]!)) throw new Error(`line ${n}: second TYPE for ${m[1]}`);
      families.set(m[1]!, { name: m[1]!, help: helps.get(m[1]!), type: m[2] as PromType, samples: [] });
      return;
    }
    if (raw.startsWith('#')) {
      if (/^# (HELP|TYPE)\b/.test(raw)) throw new Error(`line ${n}: malformed ${raw}`);
      return; // a plain comment
    }
    if (!(m = SAMPLE_RE.exec(raw))) throw new Error(`line ${n}: not a sample: ${JSON.stringify(raw)}`);
    const f = familyOf(m[1]!, families);
    if (!f) throw new Error(`line ${n}: sample ${m[1]} before any TYPE of its family`);
    const s: PromSample = { name: m[1]!, labels: m[2] === undefined ? {} : parseLabels(m[2], n), value: parseValue(m[3]!, n) };
    if (f.type === 'counter' && !(s.value >= 0)) throw new Error(`line ${n}: counter ${s.name} is ${s.value}`);
    f.samples.push(s);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** Buckets per label set (without `le`): ascending `le`, cumulative counts, +Inf == _count. */
function checkHistogram(f: PromFamily): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>();
  const key = (labels: Record<string, string>) =>
    JSON.stringify(Object.entries(labels).filter(([k]) => k !== 'le').sort(([a], [b]) => a.localeCompare(b)));
  for (const s of f.samples) {
    const g = groups.get(key(s.labels)) ?? { buckets: [] };
    groups.set(key(s.labels), g);
    if (s.name === `${f.name}_bucket`) {
      if (s.labels.le === undefined) throw new Error(`${f.name}: bucket without le`);
      g.buckets.push([parseValue(s.labels.le, 0), s.value]);
    } else if (s.name === `${f.name}_count`) g.count = s.value;
    else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else throw new Error(`${f.name}: unexpected sample ${s.name} in a histogram`);
  }
  for (const [k, g] of groups) {
    if (g.count === undefined || g.sum === undefined) throw new Error(`${f.name}${k}: missing _count or _sum`);
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new Error(`${f.name}${k}: no le="+Inf" bucket last`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${f.name}${k}: le not ascending`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${f.name}${k}: buckets not cumulative`);
    }
    if (last[1] !== g.count) throw new Error(`${f.name}${k}: +Inf bucket ${last[1]} != _count ${g.count}`);
  }
}

/** The one sample of `name` whose labels include `labels`; throws if none or several. */
export function sample(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number {
  const found = [...families.values()]
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`);
  return found[0]!.value;
}
