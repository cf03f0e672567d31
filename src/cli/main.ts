import { Command, CommanderError } from 'commander';
import { ExitCode } from '../errors/loError.js';
import { LO_VERSION } from '../version.js';
import { createOutput, type CliIo } from './output.js';
import type { CliContext } from './context.js';
import { createLog, debugEnabled, silentLog } from '../runtime/log.js';

type Register = (program: Command, ctx: CliContext) => void;

/**
 * Command modules, loaded only when needed: `lo registry up` must not pay for libp2p or execa at start-up
 * (the benchmark compares a no-op run with one `docker ps`).
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  plan: async () => (await import('./commands/plan.js')).registerPlan,
  provision: async () => (await import('./commands/provision.js')).registerProvision,
  destroy: async () => (await import('./commands/destroy.js')).registerDestroy,
  doctor: async () => (await import('./commands/doctor.js')).registerDoctor,
  registry: async () => (await import('./commands/registry.js')).registerRegistry,
  registries: async () => (await import('./commands/registries.js')).registerRegistries,
  p2p: async () => (await import('./commands/p2p.js')).registerP2P,
  trust: async () => (await import('./commands/trust.js')).registerTrust,
  why: async () => (await import('./commands/why.js')).registerWhy,
  images: async () => (await import('./commands/images.js')).registerImages,
};

/** The program with every command, or only `commandName`'s when it names one (help lists them all). */
export async function buildProgram(commandName?: string, ctx: CliContext = defaultContext(process.env)): Promise<Command> {
  const { stdout, stderr } = ctx.out.io;
  const program = new Command('lo')
    // help and usage errors go to the injected streams too (commands inherit this)
    .configureOutput({ writeOut: (s) => void stdout.write(s), writeErr: (s) => void stderr.write(s) })
    .description(
      'Local-cluster registry provisioner for kind: shared pull-through mirrors, build and cache registries, TLS, containerd hosts.toml and a P2P node mirror.',
    )
    .version(LO_VERSION)
    .option('-c, --config <file>', 'read this spec file instead of clusters/<domain>/cluster.lok8s.yaml')
    .option('--verbose', 'log every Docker, kind and kubectl call on stderr (also: LO_DEBUG=1)')
    .showHelpAfterError()
    .exitOverride();
  const names = commandName && COMMANDS[commandName] ? [commandName] : Object.keys(COMMANDS);
  for (const register of await Promise.all(names.map((n) => COMMANDS[n]!()))) register(program, ctx);
  return program;
}

/** The process's own streams: the only place lo touches process.stdout, process.stderr and process.stdin. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
}

/** The context main hands the commands: environment, streams, debug log on stderr when asked for. */
export function defaultContext(env: NodeJS.ProcessEnv, verbose = false, io: CliIo = processIo()): CliContext {
  let code: number | undefined;
  return {
    env,
    out: createOutput(io),
    log: debugEnabled(env, verbose) ? createLog({ write: (line) => io.stderr.write(line) }) : silentLog,
    setExitCode: (c) => {
      code = c;
      void code;
    },
  };
}

/** First non-option word of argv (skipping the value of --config), i.e. the command name. */
function commandNameOf(argv: string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c' || a === '--config') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Runs the CLI and returns the exit code (0 ok, 1 failure, 2 bad input, see README). The environment and the
 * streams are injected here, once; tests pass their own.
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, io: CliIo = processIo()): Promise<number> {
  const json = argv.includes('--json');
  // The debug log exists before commander parses: --verbose is read from argv (and declared on the program).
  let code: number = ExitCode.ok;
  const ctx: CliContext = {
    ...defaultContext(env, argv.includes('--verbose'), io),
    setExitCode: (c) => {
      code = c;
    },
  };
  try {
    const program = await buildProgram(commandNameOf(argv), ctx);
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
      // commander already printed the usage error on stderr; scripts asking for JSON also get one document.
      if (json)
        ctx.out.printJson({ error: { code: 'E_USAGE', message: err.message.replace(/^error: /, ''), exitCode: ExitCode.badInput } });
      return ExitCode.badInput;
    }
    return ctx.out.reportError(err, json);
  }
}
