import type { Command } from 'commander';
import { commonDeps, specOptions, type GlobalOpts, type CliContext } from '../context.js';

// Loaded when the command runs, not when it is registered: `lo --help` registers every command.
const usecases = (): Promise<typeof import('../../usecases/registriesIO.js')> => import('../../usecases/registriesIO.js');

interface ExportFlags {
  format?: string;
  out?: string;
  caFile?: string;
  json?: boolean;
}

export function registerRegistries(program: Command, ctx: CliContext): void {
  const { logErr, printJson, printLine } = ctx.out;
  const registries = program
    .command('registries')
    .description("K3s registries.yaml in and out: import into the spec, export lo's registries");

  registries
    .command('export')
    .description(
      "Describe lo's registries for other clients: a K3s/k3d registries.yaml (k3s), a certs.d tree for a host containerd (containerd), or the host Docker engine's registry-mirrors and certs.d steps (docker)",
    )
    .argument('[domain]', 'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml', 'lok8s.dev')
    .option('--format <format>', 'k3s, containerd or docker', 'k3s')
    .option(
      '--out <path>',
      'write here instead of printing: a directory (k3s: registries.yaml + lo-ca.crt; containerd: the certs.d tree, required; docker: daemon.json + certs.d/), or a file (k3s)',
    )
    .option('--ca-file <path>', `k3s: where the nodes find lo's CA (default /etc/rancher/k3s/lo-ca.crt)`)
    .option('--json', 'print one JSON document')
    .action(async (domain: string, flags: ExportFlags, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await (
        await usecases()
      ).registriesExport(
        specOptions(domain, g),
        {
          format: (flags.format ?? 'k3s') as 'k3s',
          ...(flags.out !== undefined ? { out: flags.out } : {}),
          ...(flags.caFile !== undefined ? { caFile: flags.caFile } : {}),
        },
        commonDeps(ctx),
      );
      if (flags.json) return printJson(r);
      if (r.text) printLine(r.text.trimEnd());
      for (const w of r.written) printLine(`wrote ${w.path} (${w.mode})`);
      for (const n of r.notes) logErr(`note ${n}`);
    });

  registries
    .command('import')
    .description(
      'Read a K3s registries.yaml and print the equivalent spec.registries (or merge it into the spec file with --write, comments kept); credentials become variables to set, never copied',
    )
    .argument('<file>', 'the K3s registries.yaml')
    .argument('[domain]', 'cluster domain (with --write): writes clusters/<domain>/cluster.lok8s.yaml', 'lok8s.dev')
    .option('--write', 'merge into the spec file instead of printing')
    .option('--json', 'print one JSON document')
    .action(async (file: string, domain: string, flags: { write?: boolean; json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await (await usecases()).registriesImport(specOptions(domain, g), { file, write: Boolean(flags.write) });
      if (flags.json) return printJson(r);
      if (!r.written) {
        printLine(r.text.trimEnd());
        return;
      }
      const hosts = Object.keys(r.hosts);
      printLine(`merged spec.registries.hosts ${hosts.length ? hosts.join(', ') : '(nothing)'} into ${r.written.file}`);
      if (r.written.replaced.length) printLine(`replaced the entries for ${r.written.replaced.join(', ')}`);
      for (const m of r.written.mirrors) {
        if (m.set.length) printLine(`mirror ${m.mirror} (upstream ${m.host}): set ${m.set.join(', ')}`);
        for (const s of m.skipped) printLine(`mirror ${m.mirror}: left ${s}`);
      }
      for (const e of r.env) printLine(`set ${e.name}: ${e.holds} (line ${e.line})`);
      for (const n of r.notes) printLine(`left out line ${n.line}: ${n.path}: ${n.message}`);
    });
}
