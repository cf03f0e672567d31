import { Command, CommanderError } from 'commander';
import { ExitCode } from '../errors/LoError.js';
import { LO_VERSION } from '../version.js';
import { registerPlan } from './commands/plan.js';
import { registerDestroy } from './commands/destroy.js';
import { registerDoctor } from './commands/doctor.js';
import { registerProvision } from './commands/provision.js';
import { registerRegistry } from './commands/registry.js';
import { registerP2P } from './commands/p2p.js';
import { registerTrust } from './commands/trust.js';
import { printJson, reportError } from './output.js';

export function buildProgram(): Command {
  const program = new Command('lo')
    .description('Local-cluster registry provisioner for kind: shared pull-through mirrors, build and cache registries, TLS, containerd hosts.toml and a P2P node mirror.')
    .version(LO_VERSION)
    .option('-c, --config <file>', 'read this spec file instead of clusters/<domain>/cluster.lok8s.yaml')
    .showHelpAfterError()
    .exitOverride();
  registerPlan(program);
  registerProvision(program);
  registerDestroy(program);
  registerDoctor(program);
  registerRegistry(program);
  registerP2P(program);
  registerTrust(program);
  return program;
}

/** Runs the CLI and returns the exit code (0 ok, 1 failure, 2 bad input, see README). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    // A command that printed its result but must fail (e.g. `lo doctor` with a failed check) sets process.exitCode.
    const code = process.exitCode;
    process.exitCode = undefined;
    return typeof code === 'number' ? code : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
      // commander already printed the usage error on stderr; scripts asking for JSON also get one document.
      if (json) printJson({ error: { code: 'E_USAGE', message: err.message.replace(/^error: /, ''), exitCode: ExitCode.badInput } });
      return ExitCode.badInput;
    }
    return reportError(err, json);
  }
}
