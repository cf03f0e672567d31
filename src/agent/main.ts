import { Command, CommanderError } from 'commander';
import { ExitCode, LoError } from '../errors/loError.js';
import { addAgentOptions, type AgentOptions } from './options.js';
import { AGENT_DESCRIPTION } from './description.js';
import { runAgent } from './run.js';

/**
 * The agent image's entry (dist/bundle/agent/agent.mjs, scripts/bundle.js): `p2p agent <options>`, the command
 * line the plan writes (src/plan/planP2P.ts), parsed with the same option table as `lo p2p agent`, without the
 * rest of the CLI. Returns the exit code: 2 for bad input, 5 when the agent failed to start. The process's argv,
 * environment and stderr are injected by the bundle's entry (scripts/bundle.js), as src/cli/main.ts's are.
 */
export async function agentMain(argv: string[], env: NodeJS.ProcessEnv, stderr: { write(s: string): unknown }): Promise<number> {
  const logErr = (line: string): void => void stderr.write(`${line}\n`);
  const program = new Command('lo').configureOutput({ writeErr: (s) => void stderr.write(s) }).exitOverride();
  const agent = program.command('p2p').command('agent').description(AGENT_DESCRIPTION);
  try {
    addAgentOptions(agent, env).action((f: AgentOptions) => runAgent(f, logErr));
    await program.parseAsync(argv);
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' ? ExitCode.ok : ExitCode.badInput;
    if (err instanceof LoError) {
      logErr(`error: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`);
      return err.exitCode;
    }
    logErr(`error: lo p2p agent: ${(err as Error).stack ?? String(err)}`);
    return ExitCode.stepFailed;
  }
}
