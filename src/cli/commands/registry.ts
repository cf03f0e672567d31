import type { Command } from 'commander';
import type { Ora } from 'ora';
import { printActions } from '../printActions.js';
import type { RegistryDeps, StatusResult } from '../../usecases/registry.js';
import { parseSize } from '../../spec/size.js';
import { commonDeps, lockWait, specOptions, WAIT_FLAG, type GlobalOpts, type CliContext } from '../context.js';
import { drawsSpinner, type OutStream, type Output } from '../output.js';

// Loaded when the command runs, not when it is registered: `lo --help` registers every command.
const usecases = (): Promise<typeof import('../../usecases/registry.js')> => import('../../usecases/registry.js');

interface Flags {
  json?: boolean;
  dryRun?: boolean;
  shared?: boolean;
  maxSize?: string;
  wait?: boolean;
}

/** A spinner on stderr for people; silent for --json and when stderr is not a terminal. */
async function progress(stream: OutStream, json: boolean): Promise<{ deps: Pick<RegistryDeps, 'onProgress'>; spinner: Ora | null }> {
  if (json || !drawsSpinner(stream)) return { deps: {}, spinner: null };
  const spinner = (await import('../progress.js')).startSpinner(stream); // ora loads only for a terminal
  return { deps: { onProgress: (step) => (spinner.text = step) }, spinner };
}

async function run<T>(
  ctx: CliContext,
  cmd: Command,
  flags: Flags,
  domain: string | undefined,
  fn: (deps: RegistryDeps, opts: ReturnType<typeof specOptions>) => Promise<T>,
): Promise<T> {
  const g = cmd.optsWithGlobals<GlobalOpts>();
  const { deps, spinner } = await progress(ctx.out.io.stderr, Boolean(flags.json));
  try {
    // observeShared from commonDeps is lenient (for `lo plan`); the registry core replaces it with its own.
    const result = await fn({ ...commonDeps(ctx), env: ctx.env, log: ctx.log, ...lockWait(flags.wait), ...deps }, specOptions(domain, g));
    spinner?.stop();
    return result;
  } catch (err) {
    spinner?.stop();
    throw err;
  }
}

export function registerRegistry(program: Command, ctx: CliContext): void {
  const { printJson, printLine } = ctx.out;
  const registry = program.command('registry').description('Run the build, cache and mirror registries on Docker (no cluster)');

  registry
    .command('up')
    .description('Create or reconcile the networks, TLS material, config files, certs.d tree, volumes and registry containers of the plan')
    .argument('[domain]', 'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml', 'lok8s.dev')
    .option('--dry-run', 'print what would be created or recreated, change nothing')
    .option(...WAIT_FLAG)
    .option('--json', 'print the actions as one JSON document')
    .action(async (domain: string, flags: Flags, cmd: Command) => {
      const r = await run(ctx, cmd, flags, domain, async (deps, opts) =>
        (await usecases()).registryUp(opts, { ...deps, dryRun: Boolean(flags.dryRun) }),
      );
      if (flags.json)
        return printJson({
          project: r.plan.project.name,
          dryRun: r.dryRun,
          changed: r.actions.some((a) => a.action !== 'noop'),
          actions: r.actions,
        });
      printActions(ctx.out, r.actions, r.dryRun);
    });

  registry
    .command('status')
    .description("Show each registry's container, address, network, state and catalog (read over the registry API, TLS verified)")
    .argument('[domain]', 'cluster domain', 'lok8s.dev')
    .option('--shared', 'also show the shared mirrors')
    .option('--json', 'print one JSON document')
    .action(async (domain: string, flags: Flags, cmd: Command) => {
      const r = await run(ctx, cmd, flags, domain, async (deps, opts) =>
        (await usecases()).registryStatus(opts, { ...deps, shared: Boolean(flags.shared) }),
      );
      if (flags.json) return printJson(r);
      printStatus(ctx.out, r);
    });

  registry
    .command('gc')
    .description(
      "Free mirror cache space: remove least recently used repositories until each mirror fits spec.registries.cache.maxSize, then run the registry's garbage collector",
    )
    .argument('[domain]', 'cluster domain', 'lok8s.dev')
    .option('--shared', 'also the shared mirrors')
    .option('--max-size <size>', 'budget per mirror for this run (e.g. 10GiB), instead of spec.registries.cache.maxSize')
    .option('--dry-run', 'say what would be removed, change nothing')
    .option(...WAIT_FLAG)
    .option('--json', 'print one JSON document')
    .action(async (domain: string, flags: Flags, cmd: Command) => {
      // Bad input is refused before Docker is touched.
      const maxSizeBytes = flags.maxSize === undefined ? undefined : parseSize(flags.maxSize, '--max-size');
      const r = await run(ctx, cmd, flags, domain, async (deps, opts) =>
        (await usecases()).registryGc(opts, {
          ...deps,
          shared: Boolean(flags.shared),
          dryRun: Boolean(flags.dryRun),
          ...(maxSizeBytes !== undefined ? { maxSizeBytes } : {}),
        }),
      );
      if (flags.json) return printJson(r);
      if (r.mirrors.length === 0) printLine('no mirrors to collect (shared mirrors need --shared)');
      for (const m of r.mirrors) {
        if (m.skipped) {
          printLine(`${m.name}: skipped (${m.skipped})`);
          continue;
        }
        const budget = m.budgetBytes === null ? 'no budget' : `budget ${formatBytes(m.budgetBytes)}`;
        const verb = m.dryRun ? 'would remove' : 'removed';
        printLine(
          `${m.name}: ${formatBytes(m.bytesBefore)} -> ${formatBytes(m.bytesAfter)} (${budget}); ${verb} ${m.removed.length ? m.removed.join(', ') : 'nothing'}; freed ${formatBytes(m.freedBytes)} in ${(m.ms / 1000).toFixed(1)} s`,
        );
      }
    });

  registry
    .command('down')
    .description("Stop and remove the project's registry containers (volumes are kept)")
    .argument('[domain]', 'cluster domain', 'lok8s.dev')
    .option('--shared', 'also the shared mirrors on the shared network')
    .option('--dry-run', 'print what would be removed, change nothing')
    .option(...WAIT_FLAG)
    .option('--json', 'print the actions as one JSON document')
    .action(async (domain: string, flags: Flags, cmd: Command) => {
      const r = await run(ctx, cmd, flags, domain, async (deps, opts) =>
        (await usecases()).registryDown(opts, { ...deps, shared: Boolean(flags.shared), dryRun: Boolean(flags.dryRun) }),
      );
      if (flags.json) return printJson(r);
      printActions(ctx.out, r.actions, Boolean(r.dryRun));
    });

  registry
    .command('clean')
    .description("Remove the project's build, cache and private mirror containers and their volumes")
    .argument('[domain]', 'cluster domain', 'lok8s.dev')
    .option('--shared', 'also the shared mirrors, their volumes, and the shared network when nothing else is attached')
    .option('--dry-run', 'print what would be removed, change nothing')
    .option(...WAIT_FLAG)
    .option('--json', 'print the actions as one JSON document')
    .action(async (domain: string, flags: Flags, cmd: Command) => {
      const r = await run(ctx, cmd, flags, domain, async (deps, opts) =>
        (await usecases()).registryClean(opts, { ...deps, shared: Boolean(flags.shared), dryRun: Boolean(flags.dryRun) }),
      );
      if (flags.json) return printJson(r);
      printActions(ctx.out, r.actions, Boolean(r.dryRun));
    });
}

export function printStatus(out: Output, s: StatusResult): void {
  const { printLine } = out;
  printLine(`project ${s.project}${s.shared ? ' (with shared mirrors)' : ''}`);
  const rows = s.registries.map((r) => [
    r.role === 'mirror' ? `${r.name} (${r.registry})` : r.name,
    r.containerName,
    // The address the container really has (the plan's until it exists), as in --json.
    r.endpoint.replace(/\/\/[^/:]+/, `//${r.address}`),
    r.network,
    r.state,
    formatBytes(r.diskBytes),
    [
      r.health === 'running'
        ? `catalog: ${r.catalog!.length ? r.catalog!.join(', ') : '(empty)'}`
        : `${r.health}${r.error ? ` (${r.error})` : ''}`,
      ...(r.offline
        ? [`SERVING OFFLINE from its replica (:${r.replica!.port})${r.upstreamReachable === false ? ' (upstream unreachable)' : ''}`]
        : r.replica && r.replica.health !== 'running'
          ? [`replica ${r.replica.health}`]
          : []),
    ].join('; '),
  ]);
  const head = ['REGISTRY', 'CONTAINER', 'ADDRESS', 'NETWORK', 'STATE', 'DISK', 'CATALOG'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [head, ...rows]) printLine(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

/** 1536 -> "1.5 KiB"; null or negative (unknown) -> "-". */
export function formatBytes(n: number | null): string {
  if (n === null || n < 0) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
