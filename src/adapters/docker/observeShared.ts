import type { ClusterSpec } from '../../spec/types.js';
import { foreignOwnerOf, LABELS, MANAGED_BY, SHARED_PROJECT } from '../../plan/labels.js';
import { projectIdOf } from '../../plan/planNetworks.js';
import type { ObservedMirror, ObservedProjectMirror, ObservedShared } from '../../plan/types.js';
import { EMPTY_OBSERVED } from '../../plan/types.js';
import type { DockerClients } from './index.js';

/**
 * What runs on the spec's shared network now: lo's shared mirrors (found by label, running or stopped, at
 * their configured addresses) and every other address in use there, so the planner keeps running mirrors
 * where they are and gives new ones free addresses.
 */
export async function observeShared(docker: Pick<DockerClients, 'containers' | 'networks'>, spec: ClusterSpec): Promise<ObservedShared> {
  if (!spec.registries.shared.enabled) return { ...EMPTY_OBSERVED, projectMirrors: await observeProjectMirrors(docker, spec) };
  const netName = spec.registries.shared.network.name;
  const [containers, network] = await Promise.all([
    docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${SHARED_PROJECT}`]),
    docker.networks.inspect(netName),
  ]);
  const mirrors: ObservedMirror[] = [];
  // A mirror's one container holds its address. lo's earlier two-container mirrors (until `lo registry up`
  // migrates them) hold it in their read-only replica (the proxy shares the replica's network namespace). The labels that say what the mirror is
  // (upstream, credentials, upstream CA, creator) are read from the proxy when there is one: a replica is not recreated
  // when only its proxy's upstream changes, so its copies of them may be older.
  const onThisNet = new Set(containers.filter((x) => x.networks[netName]).map((x) => `container:${x.id}`));
  const proxies = new Map(
    containers
      .filter((x) => x.labels[LABELS.role] === 'mirror' && (x.networks[netName] || onThisNet.has(x.networkMode)))
      .map((x) => [x.labels[LABELS.mirror], x]),
  );
  for (const c of containers.filter((x) => x.labels[LABELS.role] === 'mirror' || x.labels[LABELS.role] === 'replica')) {
    const onNet = c.networks[netName];
    const name = c.labels[LABELS.mirror];
    const labels = (name !== undefined ? proxies.get(name) : undefined)?.labels ?? c.labels;
    const url = labels[LABELS.upstream];
    if (!onNet?.ip || !name || !url || mirrors.some((m) => m.name === name)) continue;
    const scheme = labels[LABELS.scheme];
    mirrors.push({
      name,
      ip: onNet.ip,
      url,
      ...(labels[LABELS.registry] ? { registry: labels[LABELS.registry] } : {}),
      ...(scheme === 'http' || scheme === 'https' ? { scheme } : {}),
      ...(labels[LABELS.createdBy] ? { project: labels[LABELS.createdBy] } : {}),
      ...(labels[LABELS.credentials] !== undefined ? { credentials: labels[LABELS.credentials] } : {}),
      ...(labels[LABELS.upstreamAccess] !== undefined ? { upstreamAccess: labels[LABELS.upstreamAccess] } : {}),
    });
  }
  const mirrorIps = new Set(mirrors.map((m) => m.ip));
  const usedAddresses = (network?.containers ?? []).map((c) => c.ip).filter((ip): ip is string => !!ip && !mirrorIps.has(ip));
  return { mirrors, usedAddresses };
}

/**
 * With shared mirrors off: this project's mirror containers (by labels; another project's of the same
 * metadata.name are left out), so a mirror made under an earlier naming scheme keeps its name and volume.
 */
async function observeProjectMirrors(docker: Pick<DockerClients, 'containers'>, spec: ClusterSpec): Promise<ObservedProjectMirror[]> {
  const id = projectIdOf(spec);
  const found = await docker.containers.list([
    `${LABELS.managedBy}=${MANAGED_BY}`,
    `${LABELS.project}=${spec.name}`,
    `${LABELS.role}=mirror`,
  ]);
  return found
    .filter((c) => c.labels[LABELS.mirror] && foreignOwnerOf(id, c.labels) === null)
    .map((c) => ({ name: c.labels[LABELS.mirror]!, containerName: c.name }))
    .sort((a, b) => a.containerName.localeCompare(b.containerName));
}
