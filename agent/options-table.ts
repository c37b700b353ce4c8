/**
 * The README's table of agent options, generated from the option schema (agent/options-schema.ts)
 * so it cannot drift from what the resolver, the CLI and `--help` do. The README holds it between
 * OPTIONS_TABLE_BEGIN and OPTIONS_TABLE_END; test/unit/agent/options-table.test.ts fails when it differs.
 *
 *   node dist/agent/options-table.js README.md     # rewrite the table in place
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AGENT_OPTION_SPECS, type OptionSpec } from './options-schema.js';

export const OPTIONS_TABLE_BEGIN = '<!-- agent options: generated from agent/options-schema.ts by agent/options-table.ts; do not edit -->';
export const OPTIONS_TABLE_END = '<!-- end of agent options -->';

function typeOf(s: OptionSpec): string {
  switch (s.kind) {
    case 'int':
      return `integer ${s.min}..${s.max}`;
    case 'enum':
      return s.choices!.map((c) => `\`${c}\``).join(' \\| ');
    case 'list':
      return 'list';
    case 'ip':
      return 'IP address';
    case 'bool':
      return 'boolean';
    default:
      return 'string';
  }
}

const cell = (t: string) => t.replace(/\|/g, '\\|');
const fmt = (v: string | number | undefined) => (v === undefined ? '' : typeof v === 'number' ? String(v) : cell(v));

/** The table (markdown), one row per option in `--help` order. */
export function agentOptionsTable(specs: readonly OptionSpec[] = AGENT_OPTION_SPECS): string {
  const rows = specs.map((s) => `| \`${s.path}\` | \`--${s.flag}\` | \`${s.env}\` | ${typeOf(s)} | ${s.path === 'service' ? 'required' : fmt(s.default)} | ${cell(s.describe)} |`);
  return ['| config key | flag | environment | type | default | what |', '| --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/** `readme` with its generated table replaced by the current one. Throws when the markers are missing. */
export function withOptionsTable(readme: string): string {
  const a = readme.indexOf(OPTIONS_TABLE_BEGIN);
  const b = readme.indexOf(OPTIONS_TABLE_END);
  if (a < 0 || b < a) throw new Error('README has no generated options table (markers missing)');
  return readme.slice(0, a + OPTIONS_TABLE_BEGIN.length) + '\n' + agentOptionsTable() + '\n' + readme.slice(b);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2] ?? 'README.md';
  writeFileSync(file, withOptionsTable(readFileSync(file, 'utf8')));
  process.stdout.write(`${file}: agent options table written (${AGENT_OPTION_SPECS.length} options)\n`);
}
