/**
 * `peerlb agent`: run an agent beside a server. Its options are the schema's (agent/options-schema.ts):
 * one flag per option, with the environment variable and default in `--help`.
 */
import { Option, type Command } from 'commander';
import { AGENT_OPTION_SPECS, mergeAgentConfig } from '../options.js';
import { camel, fail, getPath } from './common.js';

/** The `--help` text of one option: what it is, its variable, choices and default. */
export function optionHelp(spec: (typeof AGENT_OPTION_SPECS)[number]): string {
  let help = `${spec.describe} [env ${spec.env}]`;
  if (spec.choices) help += ` (${spec.choices.join(' | ')})`;
  // Defaults are shown in the text, not set through commander: a flag must be absent unless typed,
  // or it would override the environment and the config file.
  if (spec.path !== 'service') help += ` (default: ${spec.default ?? 'none'})`;
  return help;
}

/** Register `peerlb agent` on `program`. */
export function registerAgent(program: Command): void {
  const agentCmd = program
    .command('agent')
    .description('run an agent beside a server: announce it, gossip with other agents, check its health')
    .option('--config <file>', 'JSON config file (flags > PEERLB_* env vars > file > defaults) (default: none)');
  for (const spec of AGENT_OPTION_SPECS) {
    // A bool option is a bare flag (`--ws-tls`); commander gives it true, passed on as 'true'.
    const arg = spec.kind === 'bool' ? '' : spec.kind === 'list' ? ` <${spec.flag}...>` : ` <${spec.kind === 'int' ? 'n' : 'value'}>`;
    agentCmd.addOption(new Option(`--${spec.flag}${arg}`, optionHelp(spec)));
  }
  agentCmd.action(async (flags: Record<string, string | string[] | undefined>) => {
    // commander camel-cases flags; the specs use the dashed names.
    const byFlag: Record<string, string | string[] | undefined> = {};
    for (const spec of AGENT_OPTION_SPECS) {
      const v = flags[camel(spec.flag)] as string | string[] | boolean | undefined;
      byFlag[spec.flag] = v === true ? 'true' : v === false ? undefined : v;
    }
    const configFile = flags.config as string | undefined;
    const load = () => mergeAgentConfig({ file: configFile, env: process.env, flags: byFlag });
    /** Whether the config file set this option (then messages name it as the file does). */
    const fromFile = (path: string): boolean => {
      if (!configFile) return false;
      try {
        return getPath(mergeAgentConfig({ file: configFile }), path) !== undefined;
      } catch {
        return false;
      }
    };
    let agent;
    try {
      const { startAgent } = await import('../index.js');
      agent = await startAgent(load());
    } catch (err) {
      fail(err, 2, fromFile);
    }
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      agent.log.info({ signal }, 'draining before exit');
      try {
        await agent.drain();
        await agent.stop();
      } finally {
        process.exit(0);
      }
    };
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGHUP', () => {
      try {
        agent.reload(load());
      } catch (err) {
        agent.log.error({ err: (err as Error).message }, 'reload refused; keeping the running configuration');
      }
    });
  });
}
