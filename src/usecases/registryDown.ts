import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { ContainerState, DockerClients } from '../adapters/docker/index.js';
import type { Action } from '../apply/types.js';
import { LABELS, MANAGED_BY, SHARED_PROJECT } from '../plan/labels.js';
import { foreignOwner } from '../apply/applyRegistries.js';
import type { Plan } from '../plan/types.js';
import { setup, whileLocked, type RegistryDeps } from './registrySetup.js';

export interface RemoveResult {
  project: string;
  actions: Action[];
  /** True when nothing was changed: the actions say what would be done. */
  dryRun?: boolean;
}

export interface RemoveOptions {
  /** Also the shared mirrors on the plan's shared network. */
  shared?: boolean;
  /** Observe and print the diff, change nothing. */
  dryRun?: boolean;
}

/**
 * The project's registry containers (by label) and, with `shared`, the shared mirrors on the plan's shared
 * network. A mirror is one container; lo's earlier two-container mirrors (not yet migrated by `lo registry
 * up`) are found too: the `-replica` holding the address and the proxy in its network namespace.
 */
export async function observeTargets(docker: DockerClients, plan: Plan, shared: boolean): Promise<ContainerState[]> {
  const own = await docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${plan.project.name}`]);
  // Another project of the same metadata.name (another spec directory) keeps its containers; unlabelled ones are adopted.
  const projectRegistries = own.filter(
    (c) => ['build', 'cache', 'mirror', 'replica'].includes(c.labels[LABELS.role] ?? '') && foreignOwner(plan, c.labels) === null,
  );
  const net = plan.networks.find((n) => n.role === 'shared')?.name;
  if (!shared || !net) return projectRegistries;
  const all = await docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${SHARED_PROJECT}`]);
  // Old pairs: replicas hold the mirrors' addresses; a proxy sharing a replica's namespace belongs to that network too.
  const replicas = all.filter((c) => c.labels[LABELS.role] === 'replica' && c.networks[net] !== undefined);
  const replicaIds = new Set(replicas.map((c) => c.id));
  const mirrors = all.filter(
    (c) =>
      c.labels[LABELS.role] === 'mirror' &&
      (c.networks[net] !== undefined ||
        (c.networkMode.startsWith('container:') && replicaIds.has(c.networkMode.slice('container:'.length)))),
  );
  // Proxies, then the replicas whose network namespaces they share.
  return [...projectRegistries, ...mirrors, ...replicas];
}

/** What `down` does to what runs: remove every target container. Pure. */
export function diffDown(targets: readonly ContainerState[]): Action[] {
  return targets.map((c) => ({ kind: 'container', name: c.name, action: 'remove' }));
}

/** Stops and removes the containers the actions name; one gone in between is a noop. */
export async function removeContainers(
  docker: DockerClients,
  targets: readonly ContainerState[],
  actions: readonly Action[],
): Promise<Action[]> {
  const byName = new Map(targets.map((c) => [c.name, c]));
  return Promise.all(
    actions.map(async (a): Promise<Action> => {
      const c = byName.get(a.name)!;
      await docker.containers.stop(c.id, 3);
      const removed = await docker.containers.remove(c.id);
      return { kind: 'container', name: c.name, action: removed ? 'remove' : 'noop', ...(removed ? {} : { reason: 'already gone' }) };
    }),
  );
}

/** `down` on an already planned project (destroy plans once and calls this). */
export async function registryDownPlanned(docker: DockerClients, plan: Plan, o: RemoveOptions = {}): Promise<RemoveResult> {
  const targets = await observeTargets(docker, plan, Boolean(o.shared));
  const actions = diffDown(targets);
  if (o.dryRun) return { project: plan.project.name, actions, dryRun: true };
  return { project: plan.project.name, actions: await removeContainers(docker, targets, actions) };
}

/** `lo registry down`: stops and removes the project's registry containers (shared ones with `shared`); volumes stay. */
export async function registryDown(opts: LoadSpecOptions, deps: RegistryDeps & RemoveOptions = {}): Promise<RemoveResult> {
  const { docker, plan } = await setup(opts, { ...deps, strict: false });
  deps.onProgress?.(deps.dryRun ? 'comparing' : 'removing containers');
  return whileLocked(plan, 'lo registry down', deps, () => registryDownPlanned(docker, plan, deps));
}
