import chalk from 'chalk';
import type { Command } from 'commander';
import { ExitCode } from '../../errors/loError.js';
import type { Hop, WhyResult } from '../../usecases/why.js';
import { commonDeps, specOptions, type CliContext, type GlobalOpts } from '../context.js';
import type { Output } from '../output.js';

interface Flags {
  json?: boolean;
  node?: string;
  upstream?: boolean;
}

const ROLE: Record<Hop['role'], string> = {
  p2p: 'P2P agent',
  mirror: 'mirror',
  replica: 'read-only replica of mirror',
  build: 'build registry',
  cache: 'cache registry',
  endpoint: 'endpoint',
  upstream: 'upstream',
};

function describe(h: Hop): string {
  const what = `${ROLE[h.role]}${h.name ? ` ${h.name}` : ''}`;
  const time = h.ms !== undefined ? `${h.ms} ms` : '';
  switch (h.outcome) {
    case 'answered':
      return `${chalk.green('answered')} ${h.status}${h.cache ? `, cache ${h.cache}` : ''}${h.role === 'p2p' ? ', P2P hit' : ''}  ${time}  (${what})`;
    case 'miss':
      return `${chalk.yellow('miss')} 404${h.role === 'p2p' ? ' (no peer has it)' : ''}  ${time}  (${what})`;
    case 'error':
      return `${chalk.red('error')} ${h.error ?? ''}  ${time}  (${what})`;
    default:
      return `${chalk.dim(h.outcome)}${h.error ? ` (${h.error})` : ''}  (${what})`;
  }
}

function print(out: Output, r: WhyResult): void {
  const { printLine } = out;
  printLine(`image     ${r.normalized}`);
  printLine(
    `node      ${r.node}, containerd ${r.containerd.version}, CRI pull via ${r.containerd.pullMode === 'transfer' ? 'the transfer service' : 'local pull'} (${r.containerd.because})`,
  );
  printLine(`certs.d   ${r.certsDir.file ?? `no hosts.toml (looked for ${r.certsDir.tried.join(', ')}): default endpoint only`}`);
  printLine('hosts, in the order containerd tries them:');
  for (const h of r.hops) printLine(`  ${h.index}. ${h.origin.padEnd(32)} ${describe(h)}`);
  if (r.answeredBy) {
    const h = r.hops[r.answeredBy.index - 1]!;
    printLine(`answered by ${ROLE[h.role]}${h.name ? ` ${h.name}` : ''} (${h.origin})${r.digest ? `, digest ${r.digest}` : ''}`);
  } else printLine(chalk.red('no host answered: a pull of this reference fails on this node'));
  for (const f of r.findings) {
    const mark = f.severity === 'fail' ? chalk.red('✖') : f.severity === 'warn' ? chalk.yellow('!') : chalk.cyan('i');
    printLine(`${mark} ${f.message}`);
    if (f.fix) printLine(`  fix: ${f.fix}`);
  }
}

export function registerWhy(program: Command, ctx: CliContext): void {
  const { printJson } = ctx.out;
  program
    .command('why')
    .description(
      'Show how a node resolves an image: the certs.d entry, every host in order, which answered (P2P, mirror cache hit or miss), time per hop, the digest, and known bypasses',
    )
    .argument('<image>', 'image reference, e.g. nginx:1.27 or docker.io/library/nginx@sha256:…')
    .argument('[domain]', 'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml', 'lok8s.dev')
    .option('--node <name>', 'node to ask (default: the first control-plane node)')
    .option('--no-upstream', "don't try the registry's own endpoint (the internet); report it as skipped")
    .option('--json', 'print the result as one JSON document')
    .action(async (image: string, domain: string, flags: Flags, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const planDeps = commonDeps(ctx);
      // Loaded when the command runs: `lo --help` registers every command.
      const [{ connectClients }, { loadPlan }, { why }] = await Promise.all([
        import('../../adapters/docker/index.js'),
        import('../../usecases/plan.js'),
        import('../../usecases/why.js'),
      ]);
      const r = await why(
        { image, ...(flags.node ? { node: flags.node } : {}), noUpstream: flags.upstream === false },
        {
          loadPlan: async () => (await loadPlan(specOptions(domain, g), { ...planDeps, strict: false })).plan,
          connect: () => connectClients({ env: ctx.env, log: ctx.log }),
        },
      );
      if (flags.json) printJson(r);
      else print(ctx.out, r);
      if (!r.answeredBy || r.findings.some((f) => f.severity === 'fail')) ctx.setExitCode(ExitCode.failure);
    });
}
