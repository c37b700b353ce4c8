#!/usr/bin/env node
/**
 * The `peerlb` command: run an agent, list members, try picks, make keys.
 * Every problem with what the user typed ends in one line naming the option, and exit code 2.
 * The subcommands are in agent/cli/ (agent, members, pick, keygen; common.ts what they share).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { fail } from './cli/common.js';
import { registerAgent } from './cli/agent.js';
import { registerMembers } from './cli/members.js';
import { registerPick } from './cli/pick.js';
import { registerKeygen } from './cli/keygen.js';

export { flagMessage } from './cli/common.js';

/** The package's version: package.json is two levels up from dist/agent/cli.js (and from agent/cli.ts). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const program = new Command();
program
  .name('peerlb')
  .description('Load balancing for TCP and UDP clusters with no central balancer.')
  .version(packageVersion(), '-V, --version', 'print the version')
  // Usage errors (unknown option, missing value or required option, unknown command) end in one
  // line naming the flag and exit code 2, as every other problem with what the user typed.
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(`peerlb: ${str.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`) });

registerAgent(program);
registerMembers(program);
registerPick(program);
registerKeygen(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // --help and --version end here too, with their own exit code 0; usage errors were printed
    // (one line, by outputError above).
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  fail(err);
});
