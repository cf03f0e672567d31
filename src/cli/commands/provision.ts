import chalk from 'chalk';
import type { Command } from 'commander';
import type { ProvisionResult } from '../../usecases/provision.js';
import { printStepActions } from '../printActions.js';
import { commonDeps, lockWait, specOptions, WAIT_FLAG, type GlobalOpts, type CliContext } from '../context.js';
import type { Output } from '../output.js';

export function registerProvision(program: Command, ctx: CliContext): void {
  const { printJson } = ctx.out;
  program
    .command('provision')
    .description(
      'Create everything for one project: networks, TLS, registries, containerd certs.d, the kind cluster, node networks and registry ConfigMaps (idempotent; a re-run changes nothing)',
    )
    .argument('[domain]', 'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml', 'lok8s.dev')
    .option('--dry-run', 'observe, compare with the plan and print the actions a run would take; change nothing')
    .option('--json', 'print the result (cluster, registries, steps and their actions) as one JSON document')
    .option(...WAIT_FLAG)
    .action(async (domain: string, opts: { json?: boolean; dryRun?: boolean; wait?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      // Loaded when the command runs: `lo --help` registers every command.
      const [{ provision }, { provisionDeps }, { oraReporter }] = await Promise.all([
        import('../../usecases/provision.js'),
        import('../../usecases/provisionDeps.js'),
        import('../progress.js'),
      ]);
      const deps = provisionDeps({
        spec: specOptions(domain, g),
        plan: commonDeps(ctx),
        env: ctx.env,
        log: ctx.log,
        reporter: oraReporter(ctx.out.io.stderr),
        ...lockWait(opts.wait),
      });
      const result = await provision(deps, { dryRun: Boolean(opts.dryRun) });
      if (opts.json) printJson(result);
      else if (result.dryRun) printProvisionDiff(ctx.out, result);
      else printProvisionSummary(ctx.out, result);
    });
}

/** The dry-run diff: per step, what a run would do (unchanged objects counted). */
export function printProvisionDiff(out: Output, r: ProvisionResult): void {
  const changes = r.steps.some((s) => s.actions.some((a) => a.action !== 'noop'));
  printStepActions(out, `dry run: lo provision would ${changes ? 'do' : 'change nothing'}`, r.steps, true);
}

export function printProvisionSummary(out: Output, r: ProvisionResult): void {
  const { printLine } = out;
  const c = r.cluster;
  printLine(`${chalk.green('✔')} cluster ${chalk.bold(c.name)} ready on network ${c.network}${r.changed ? '' : ' (nothing changed)'}`);
  printLine(`  nodes       ${c.nodes.join(', ')}`);
  printLine(`  kubeconfig  ${c.kubeconfig}   (export KUBECONFIG=${c.kubeconfig})`);
  printLine('');
  printLine('registries');
  for (const reg of r.registries) {
    const what = reg.role === 'mirror' ? `${reg.registry} <- ${reg.upstream}` : `${reg.hostnames.join(', ')}${reg.push ? ' (push)' : ''}`;
    printLine(
      `  ${reg.role.padEnd(6)} ${reg.name.padEnd(12)} ${`${reg.scheme}://${reg.address}`.padEnd(24)} ${(reg.shared ? 'shared' : 'project').padEnd(7)} ${what}`,
    );
  }
  printLine('');
  printLine('push local builds to the build registry, use them in pods by name:');
  printLine(`  ${r.push.push}`);
  printLine(`  image: ${r.push.image}`);
  const mirrored = r.registries.filter((x) => x.role === 'mirror').map((x) => x.registry);
  if (mirrored.length) printLine(`pulls of ${mirrored.join(', ')} images go through the mirrors automatically.`);
}
