import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import chalk from 'chalk';
import { ExitCode, LoError } from '../../errors/loError.js';
import type { TrustReport } from '../../adapters/trust/check.js';
import { commonDeps, specOptions, type GlobalOpts, type CliContext } from '../context.js';
import type { Output } from '../output.js';

interface TrustFlags {
  yes?: boolean;
  uninstall?: boolean;
  check?: boolean;
  json?: boolean;
}

export function registerTrust(program: Command, ctx: CliContext): void {
  const { logErr, printJson, printLine } = ctx.out;
  program
    .command('trust')
    .description(
      "Install lo's CA (mkcert-compatible, in $CAROOT) into the system trust store and Docker's certs.d " +
        'for the build and cache registries, so docker push verifies TLS',
    )
    .argument(
      '[domain]',
      'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml (its build/cache addresses get a Docker certs.d entry)',
    )
    .option('-y, --yes', 'apply without asking (needed when stdin is not a terminal)')
    .option('--check', 'only report what is and is not trusted; exit code 1 when something is missing')
    .option(
      '--uninstall',
      'remove what lo trust added for this CA (system store file, Docker certs.d entries holding it); the CA stays in $CAROOT',
    )
    .option('--json', 'print one JSON document (the trust report, or the result)')
    .action(async (domain: string | undefined, flags: TrustFlags, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      // Loaded when the command runs: `lo --help` registers every command.
      const [{ loadPlan }, { checkTrust }, { trustCa, untrustCa }] = await Promise.all([
        import('../../usecases/plan.js'),
        import('../../adapters/trust/check.js'),
        import('../../usecases/trust.js'),
      ]);
      const { plan } = await loadPlan(specOptions(domain, g), commonDeps(ctx));
      const d = { processEnv: ctx.env, ...(domain ? { domain } : {}) };
      if (flags.check) {
        const r = await checkTrust(plan, d);
        if (flags.json) printJson(r);
        else printReport(ctx.out, r);
        if (!r.trusted) ctx.setExitCode(ExitCode.failure);
        return;
      }
      const confirm = async (r: TrustReport): Promise<boolean> => {
        logErr('lo trust will:');
        for (const i of r.items.filter((x) => x.change)) logErr(`  - ${i.change}`);
        if (flags.yes) return true;
        if (!ctx.out.io.stdin.isTTY) {
          throw new LoError('E_USAGE', 'lo trust needs confirmation but stdin is not a terminal', {
            exitCode: ExitCode.badInput,
            hint: `pass --yes to apply: ${flags.uninstall ? r.command.replace(' --yes', ' --uninstall --yes') : r.command}`,
          });
        }
        const rl = createInterface({ input: ctx.out.io.stdin, output: ctx.out.io.stderr });
        try {
          return /^y(es)?$/i.test((await rl.question('Apply these changes? [y/N] ')).trim());
        } finally {
          rl.close();
        }
      };
      if (flags.uninstall) {
        const u = await untrustCa(plan, { ...d, confirm });
        if (flags.json) printJson(u);
        else if (u.declined) printLine('nothing changed');
        else if (u.removed.length === 0) printLine('nothing to remove: this host has no trust entries lo added for this CA');
        else for (const id of u.removed) printLine(`removed ${id}`);
        return;
      }
      const result = await trustCa(plan, { ...d, confirm });
      if (flags.json) {
        printJson(result);
        return;
      }
      if (!result.after.tls) printLine('TLS is off for this project (spec.registries.tls: false); nothing to trust');
      else if (result.declined) printLine('nothing changed');
      else if (result.changed.length === 0) printLine(`already trusted: ${result.after.ca.name} (${result.after.items.length} items)`);
      else {
        printLine(`trusted ${result.after.ca.name} (sha256 ${result.after.ca.fingerprint})`);
        for (const id of result.changed) printLine(`  changed ${id}`);
      }
    });
}

function printReport(out: Output, r: TrustReport): void {
  const { printLine } = out;
  if (!r.tls) {
    printLine('TLS is off for this project (spec.registries.tls: false); nothing to trust');
    return;
  }
  printLine(`CA ${r.ca.certPath}${r.ca.exists ? `  ${r.ca.name}  sha256 ${r.ca.fingerprint}` : '  (not created yet)'}`);
  for (const i of r.items) {
    const state = i.state === 'trusted' ? chalk.green(i.state.padEnd(9)) : chalk.red(i.state.padEnd(9));
    printLine(`  ${state} ${i.kind.padEnd(7)} ${i.target}`);
  }
  if (!r.trusted) printLine(`run: ${r.command}`);
}
