import { parse as parseToml } from 'smol-toml';
import type { DockerClients, ExecClient } from '../adapters/docker/index.js';
import { pullsImages } from '../adapters/docker/inspectKindNodes.js';
import { KIND_LABELS } from '../plan/labels.js';
import { LoError } from '../errors/loError.js';
import { checkContainerdConfig, parseContainerdVersion, type Finding, type PullMode, type Version } from '../plan/containerdChecks.js';
import type { Plan } from '../plan/types.js';

export interface NodeContainerdReport {
  node: string;
  version: Version;
  mode: PullMode;
  because: string;
  findings: Finding[];
}

/**
 * What one node's containerd really runs with (`containerd --version`, `containerd config dump`, the
 * hosts.toml files it reads), checked for the known silent bypasses. Shared by `lo why` and `lo doctor`.
 * `hostsFiles`: certs.d directory -> hosts.toml text, as read in the node; default: every file lo planned.
 */
export async function nodeContainerd(
  exec: ExecClient,
  node: string,
  plan: Plan,
  hostsFiles?: Record<string, string>,
): Promise<NodeContainerdReport> {
  const [versionOut, dumpOut] = await Promise.all([
    exec.exec(node, ['containerd', '--version']),
    exec.exec(node, ['containerd', 'config', 'dump'], { timeoutMs: 20_000 }),
  ]);
  const version = parseContainerdVersion(versionOut.stdout);
  if (!version)
    throw new LoError(
      'E_STEP',
      `cannot tell the containerd version of node ${node}: ${versionOut.stderr.trim() || versionOut.stdout.trim()}`,
    );
  let dump: Record<string, unknown>;
  try {
    dump = parseToml(dumpOut.stdout) as Record<string, unknown>;
  } catch (err) {
    throw new LoError('E_STEP', `\`containerd config dump\` on node ${node} did not give TOML: ${(err as Error).message}`, { cause: err });
  }
  const files = hostsFiles ?? (await readPlannedHostsFiles(exec, node, plan));
  const { mode, because, findings } = checkContainerdConfig({
    version,
    dump,
    nodeCertsDir: plan.containerd.nodeCertsDir,
    p2pEnabled: plan.p2p.enabled,
    hostsFiles: files,
  });
  return { node, version, mode, because, findings };
}

/** The hosts.toml files lo planned, as the node reads them; a missing one is a finding of its own. */
async function readPlannedHostsFiles(exec: ExecClient, node: string, plan: Plan): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const h of plan.containerd.hosts) {
    const r = await exec.exec(node, ['cat', `${plan.containerd.nodeCertsDir}/${h.host}/hosts.toml`]);
    if (r.exitCode === 0) files[h.host] = r.stdout;
  }
  return files;
}

/** A kind cluster's nodes that pull images (kind's labels; the HA load balancer is left out), control planes first. */
export async function kindNodes(
  docker: Pick<DockerClients, 'containers'>,
  cluster: string,
): Promise<Array<{ name: string; role: string; running: boolean }>> {
  const found = await docker.containers.list([`${KIND_LABELS.cluster}=${cluster}`]);
  return found
    .map((c) => ({ name: c.name, role: c.labels[KIND_LABELS.role] ?? 'unknown', running: c.running }))
    .filter((n) => pullsImages(n.role))
    .sort((a, b) => (a.role === b.role ? a.name.localeCompare(b.name) : a.role === 'control-plane' ? -1 : 1));
}
