import type { Command } from 'commander';
import type { Plan } from '../../plan/types.js';
import type { Output } from '../output.js';
import { escapeControl } from '../../errors/loError.js';
import { commonDeps, specOptions, type GlobalOpts, type CliContext } from '../context.js';

export function registerPlan(program: Command, ctx: CliContext): void {
  const { printJson } = ctx.out;
  program
    .command('plan')
    .description('Print the networks, registries, addresses, certificate names and files provisioning would create (changes nothing)')
    .argument('[domain]', 'cluster domain: reads clusters/<domain>/cluster.lok8s.yaml', 'lok8s.dev')
    .option('--json', 'print the plan as one JSON document (stable; see docs/plan-json.md)')
    .option('--hosts', 'also print every containerd hosts.toml')
    // Show --config (a global option) in `lo plan --help` too, so the help names every option that applies.
    .configureHelp({ showGlobalOptions: true })
    .action(async (domain: string, opts: { json?: boolean; hosts?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      // Loaded when the command runs: `lo --help` registers every command.
      const { loadPlan } = await import('../../usecases/plan.js');
      const { plan } = await loadPlan(specOptions(domain, g), commonDeps(ctx));
      if (opts.json) printJson(plan);
      else printPlan(ctx.out, plan, Boolean(opts.hosts));
    });
}

export function printPlan(out: Output, plan: Plan, withHosts: boolean): void {
  // Every value here may come from the user (spec file path, names, URLs, $LO_STATE_DIR, $CAROOT): control
  // characters (line breaks included) are escaped, so a value can neither write terminal escapes nor fake lines.
  const printLine = (text: string): void => out.printLine(escapeControl(text));
  const p = plan.project;
  printLine(`project ${p.name}  domain ${p.domain}  slot ${p.slot ?? '-'}  spec ${p.file}`);
  printLine('');
  printLine('networks');
  for (const n of plan.networks) printLine(`  ${n.role.padEnd(8)} ${n.name.padEnd(18)} ${n.subnet.padEnd(17)} bridge ${n.bridgeName}`);
  printLine('');
  printLine('registries');
  for (const r of plan.registries) {
    const what = r.role === 'mirror' ? `${r.registry} <- ${r.upstream}` : `${r.hostnames.join(', ')} (push)`;
    printLine(`  ${r.role.padEnd(6)} ${r.containerName.padEnd(28)} ${r.endpoint.padEnd(24)} ${r.scope.padEnd(7)} ${what}`);
  }
  printLine('');
  printLine(`tls ${plan.tls.enabled ? 'on' : 'off'}${plan.tls.enabled ? `  CA ${plan.tls.caCertPath}` : ''}`);
  if (plan.tls.enabled) printLine(`  names ${plan.tls.subjectNames.join(' ')}`);
  printLine('');
  printLine(`containerd certs.d ${plan.containerd.certsDir} (${plan.containerd.hosts.length} hosts.toml)`);
  for (const line of endpointLines(plan)) printLine(line);
  if (withHosts) {
    for (const h of plan.containerd.hosts) {
      printLine(`--- ${h.host}/hosts.toml`);
      for (const line of h.content.trimEnd().split('\n')) printLine(line);
    }
  }
  printLine('');
  const c = plan.cluster;
  const p2p = plan.p2p.enabled ? 'on' : plan.p2p.forwardOnly ? 'off (agents forward rewrites only)' : 'off';
  printLine(`cluster ${c.name}  ${c.image}  nodes ${c.nodes.map((n) => n.name).join(', ')}  p2p ${p2p}`);
  printLine(`  kind config ${c.kindConfigPath}`);
  printLine(`  configmaps  ${plan.configMaps.map((m) => `${m.metadata.namespace}/${m.metadata.name}`).join(', ')}`);
  for (const a of plan.p2p.agents) printLine(`  p2p agent   ${a.containerName}  peers ${a.options.peers?.join(', ') || '(none)'}`);
}

/** `spec.registries.hosts` as containerd will use it: each endpoint in order, with what it carries (never a secret). */
export function endpointLines(plan: Plan): string[] {
  return plan.containerd.endpoints.flatMap((e) => [
    `  endpoints for ${e.registry === '*' ? '"*" (every other registry, certs.d/_default)' : e.registry}:`,
    ...e.endpoints.map((x, i) => {
      const what = [
        x.capabilities.join(','),
        ...(x.overridePath ? ['override_path'] : []),
        ...(x.ca ? ['ca'] : []),
        ...(x.clientCertificate ? ['client certificate'] : []),
        ...(x.skipVerify ? ['SKIP_VERIFY (certificate not checked)'] : []),
        ...x.headers,
      ];
      return `    ${i + 1}. ${x.url}  ${what.join('; ')}`;
    }),
    ...e.rewrites.map(
      (r, i) =>
        `    rewrite ${i + 1}. ${JSON.stringify(r.pattern)} -> ${JSON.stringify(r.replacement)}  (by the node agent, the first rule that changes the name wins)`,
    ),
    `    then ${e.defaultEndpoint === null ? 'nothing (default endpoint disabled)' : e.defaultEndpoint === 'per registry' ? "each registry's own endpoint" : e.defaultEndpoint}`,
  ]);
}
