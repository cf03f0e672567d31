import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { ExitCode, LoError } from '../../errors/loError.js';
import { commonDeps, lockWait, specOptions, WAIT_FLAG, type GlobalOpts, type CliContext } from '../context.js';
import type { CliIo } from '../output.js';
import { printStepActions, summarizeActions } from '../printActions.js';

async function confirm(io: CliIo, question: string): Promise<boolean> {
  const rl = createInterface({ input: io.stdin, output: io.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function registerDestroy(program: Command, ctx: CliContext): void {
  const { printJson } = ctx.out;
  program
    .command('destroy')
    .description(
      "Delete the project's kind cluster and its registries (build, cache, private mirrors); shared mirrors stay for other projects",
    )
    .argument('[domain]', 'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml', 'lok8s.dev')
    .option('--volumes', "also remove the registries' volumes (pushed images and cached layers)")
    .option('--dry-run', 'print what would be removed, change nothing (no confirmation needed)')
    .option('-y, --yes', 'do not ask for confirmation (needed when stdin is not a terminal)')
    .option('--json', 'print what was removed as one JSON document')
    .option(...WAIT_FLAG)
    .action(
      async (
        domain: string,
        opts: { volumes?: boolean; yes?: boolean; json?: boolean; dryRun?: boolean; wait?: boolean },
        cmd: Command,
      ) => {
        const g = cmd.optsWithGlobals<GlobalOpts>();
        const spec = specOptions(domain, g);
        const what = `the kind cluster and registries of ${g.config ?? domain}${opts.volumes ? ', with their volumes' : ' (volumes kept)'}`;
        if (!opts.yes && !opts.dryRun) {
          if (!ctx.out.io.stdin.isTTY) {
            throw new LoError('E_USAGE', `lo destroy would delete ${what}; refusing without confirmation`, {
              hint: 'pass --yes to confirm when not running in a terminal',
              exitCode: ExitCode.badInput,
            });
          }
          if (!(await confirm(ctx.out.io, `Delete ${what}? [y/N] `))) {
            ctx.out.logErr('nothing deleted');
            return;
          }
        }
        // Loaded when the command runs: `lo --help` registers every command.
        const [{ destroy }, { destroyDeps }, { oraReporter }] = await Promise.all([
          import('../../usecases/destroy.js'),
          import('../../usecases/provisionDeps.js'),
          import('../progress.js'),
        ]);
        const r = await destroy(
          destroyDeps({
            spec,
            plan: commonDeps(ctx),
            env: ctx.env,
            log: ctx.log,
            reporter: oraReporter(ctx.out.io.stderr),
            ...lockWait(opts.wait),
          }),
          {
            volumes: Boolean(opts.volumes),
            dryRun: Boolean(opts.dryRun),
          },
        );
        if (opts.json) return printJson(r);
        const removed = r.steps.flatMap((s) => s.actions);
        if (r.dryRun) {
          const todo = removed.some((x) => x.action !== 'noop');
          return printStepActions(ctx.out, `dry run: lo destroy would ${todo ? 'remove' : 'remove nothing'}`, r.steps, true);
        }
        const title = `destroyed project ${r.project}: ${summarizeActions(removed) || 'nothing was there'}; shared mirrors kept`;
        printStepActions(ctx.out, title, r.steps, false);
      },
    );
}
