import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ensureSwarmKey } from '../../agent/swarmKey.js';
import { AGENT_DESCRIPTION } from '../../agent/description.js';
import { addAgentOptions, type AgentOptions } from '../../agent/options.js';

export function registerP2P(program: Command, ctx: CliContext): void {
  const { logErr, printJson, printLine } = ctx.out;
  const p2p = program
    .command('p2p')
    .description('P2P node mirror: every node serves what its containerd holds to the others (see docs/p2p.md)');

  const agentCmd = p2p.command('agent').description(AGENT_DESCRIPTION);
  // The options come from one table (src/agent/options.ts), which also builds the agent command line in the plan.
  addAgentOptions(agentCmd, ctx.env).action(async (f: AgentOptions) => {
    // libp2p and gRPC load only for the agent itself (the agent image runs the same runAgent: src/agent/main.ts).
    const { runAgent } = await import('../../agent/run.js');
    await runAgent(f, logErr);
  });

  p2p
    .command('key')
    .description('Create the cluster swarm key at <file> (0600) unless it exists')
    .argument('<file>', 'where to write the key')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const { created } = await ensureSwarmKey(file);
      if (o.json) printJson({ path: file, created });
      else printLine(`${created ? 'created' : 'kept'} ${file}`);
    });
}
