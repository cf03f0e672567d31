import chalk from 'chalk';
import type { Command } from 'commander';
import { ExitCode } from '../../errors/loError.js';
import { commonDeps, specOptions, type GlobalOpts, type CliContext } from '../context.js';

export function registerDoctor(program: Command, ctx: CliContext): void {
  const { printJson, printLine } = ctx.out;
  program
    .command('doctor')
    .description(
      'Check Docker, kind, kubectl, the CA and its trust, registry reachability and the cluster; each problem comes with a fix (exit 1 when a check fails)',
    )
    .argument('[domain]', 'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml', 'lok8s.dev')
    .option('--json', 'print the checks as one JSON document')
    .action(async (domain: string, opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      // commonDeps observes the shared network, falling back to "nothing observed" when Docker is down.
      // Loaded when the command runs: `lo --help` registers every command.
      const [{ doctor }, { doctorDeps }] = await Promise.all([
        import('../../usecases/doctor.js'),
        import('../../usecases/provisionDeps.js'),
      ]);
      const r = await doctor(doctorDeps({ spec: specOptions(domain, g), plan: commonDeps(ctx), env: ctx.env, log: ctx.log }));
      if (opts.json) printJson(r);
      else {
        const mark = { ok: chalk.green('✔'), warn: chalk.yellow('!'), fail: chalk.red('✖') } as const;
        for (const c of r.checks) {
          printLine(`${mark[c.status]} ${c.name.padEnd(20)} ${c.detail}`);
          if (c.fix) printLine(`  ${' '.repeat(20)} fix: ${c.fix}`);
        }
        printLine(r.ok ? 'all checks passed' : `${r.checks.filter((c) => c.status === 'fail').length} check(s) failed`);
      }
      if (!r.ok) ctx.setExitCode(ExitCode.failure);
    });
}
