import type { ClusterSpec } from '../../spec/types.js';
import { LABELS, MANAGED_BY, SHARED_PROJECT } from '../../plan/labels.js';
import type { ObservedMirror, ObservedShared } from '../../plan/types.js';
import { EMPTY_OBSERVED } from '../../plan/types.js';
import type { DockerClients } from './index.js';

/**
 * What runs on the spec's shared network now: lo's shared mirrors (found by label, running or stopped, at
 * their configured addresses) and every other address in use there, so the planner keeps running mirrors
 * where they are and gives new ones free addresses.
 */
export async function observeShared(docker: Pick<DockerClients, 'containers' | 'networks'>, spec: ClusterSpec): Promise<ObservedShared> {
  if (!spec.registries.shared.enabled) return EMPTY_OBSERVED;
  const netName = spec.registries.shared.network.name;
  const [containers, network] = await Promise.all([
    docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${SHARED_PROJECT}`]),
    docker.networks.inspect(netName),
  ]);
  const mirrors: ObservedMirror[] = [];
  // A mirror's address is held by its read-only replica (the proxy shares the replica's network namespace);
  // mirrors lo created before replicas existed hold it themselves.
  for (const c of containers.filter((x) => x.labels[LABELS.role] === 'mirror' || x.labels[LABELS.role] === 'replica')) {
    const onNet = c.networks[netName];
    const name = c.labels[LABELS.mirror];
    const url = c.labels[LABELS.upstream];
    if (!onNet?.ip || !name || !url || mirrors.some((m) => m.name === name)) continue;
    const scheme = c.labels[LABELS.scheme];
    mirrors.push({
      name,
      ip: onNet.ip,
      url,
      ...(c.labels[LABELS.registry] ? { registry: c.labels[LABELS.registry] } : {}),
      ...(scheme === 'http' || scheme === 'https' ? { scheme } : {}),
      ...(c.labels[LABELS.createdBy] ? { project: c.labels[LABELS.createdBy] } : {}),
      ...(c.labels[LABELS.credentials] !== undefined ? { credentials: c.labels[LABELS.credentials] } : {}),
    });
  }
  const mirrorIps = new Set(mirrors.map((m) => m.ip));
  const usedAddresses = (network?.containers ?? []).map((c) => c.ip).filter((ip): ip is string => !!ip && !mirrorIps.has(ip));
  return { mirrors, usedAddresses };
}
