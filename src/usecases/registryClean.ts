import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { ContainerState, DockerClients, NetworkState, VolumeState } from '../adapters/docker/index.js';
import type { Action } from '../apply/types.js';
import { LABELS, MANAGED_BY } from '../plan/labels.js';
import { foreignOwner } from '../apply/applyRegistries.js';
import type { Plan } from '../plan/types.js';
import { setup, whileLocked, type RegistryDeps } from './registrySetup.js';
import { diffDown, observeTargets, removeContainers, type RemoveOptions, type RemoveResult } from './registryDown.js';

/** What `clean` sees: the target containers, the candidate volumes and the plan's networks. */
export interface CleanObserved {
  containers: ContainerState[];
  volumes: VolumeState[];
  networks: Array<{ name: string; role: 'project' | 'shared'; state: NetworkState | null }>;
}

export async function observeClean(docker: DockerClients, plan: Plan, shared: boolean): Promise<CleanObserved> {
  const containers = await observeTargets(docker, plan, shared);
  const names = new Set<string>(containers.flatMap((c) => c.volumes.map((v) => v.name)));
  for (const v of await docker.volumes.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${plan.project.name}`]))
    names.add(v.name);
  if (shared) for (const r of plan.registries.filter((x) => x.scope === 'shared')) names.add(r.volume);
  const volumes = (await Promise.all([...names].map((n) => docker.volumes.inspect(n)))).filter((v): v is VolumeState => v !== null);
  const networks = await Promise.all(
    plan.networks
      .filter((n) => shared || n.role !== 'shared')
      .map(async (n) => ({ name: n.name, role: n.role, state: await docker.networks.inspect(n.name) })),
  );
  return { containers, volumes, networks };
}

/**
 * What `clean` does: remove the target containers, lo's volumes among the candidates (others are never
 * touched), and each network lo created once nothing but the removed containers is attached. Pure.
 */
export function diffClean(observed: CleanObserved, plan: Plan): Action[] {
  const actions = diffDown(observed.containers);
  const removed = new Set(observed.containers.map((c) => c.name));
  for (const v of observed.volumes) {
    if (v.labels[LABELS.managedBy] !== MANAGED_BY) continue;
    const other = foreignOwner(plan, v.labels);
    actions.push(
      other === null
        ? { kind: 'volume', name: v.name, action: 'remove' }
        : { kind: 'volume', name: v.name, action: 'noop', reason: `kept: belongs to the project in ${other}` },
    );
  }
  for (const { name, state } of observed.networks) {
    if (!state) continue;
    if (state.labels[LABELS.managedBy] !== MANAGED_BY) {
      actions.push({ kind: 'network', name, action: 'noop', reason: 'kept: not created by lo' });
      continue;
    }
    const other = foreignOwner(plan, state.labels);
    if (other !== null) {
      actions.push({ kind: 'network', name, action: 'noop', reason: `kept: belongs to the project in ${other}` });
      continue;
    }
    const left = state.containers.map((c) => c.name).filter((n) => !removed.has(n));
    if (left.length > 0) {
      actions.push({ kind: 'network', name, action: 'noop', reason: `kept: still attached: ${left.sort().join(', ')}` });
      continue;
    }
    actions.push({ kind: 'network', name, action: 'remove' });
  }
  return actions;
}

/** Carries out a clean diff: containers first, then volumes, then networks; returns what happened. */
export async function executeClean(
  docker: DockerClients,
  observed: CleanObserved,
  diff: readonly Action[],
  progress?: (s: string) => void,
): Promise<Action[]> {
  progress?.('removing containers');
  const done = await removeContainers(
    docker,
    observed.containers,
    diff.filter((a) => a.kind === 'container'),
  );
  progress?.('removing volumes');
  for (const a of diff.filter((x) => x.kind === 'volume')) {
    if (a.action !== 'remove') {
      done.push(a);
      continue;
    }
    await docker.volumes.remove(a.name);
    done.push(a);
  }
  progress?.('networks');
  for (const a of diff.filter((x) => x.kind === 'network')) {
    if (a.action !== 'remove') {
      done.push(a);
      continue;
    }
    const removed = await docker.networks.remove(a.name).catch((err: unknown) => {
      // a container attached between inspect and remove keeps it
      done.push({ kind: 'network', name: a.name, action: 'noop', reason: `kept: ${(err as Error).message}` });
      return null;
    });
    if (removed !== null) done.push({ kind: 'network', name: a.name, action: removed ? 'remove' : 'noop' });
  }
  return done;
}

/** `clean` on an already planned project (destroy plans once and calls this). */
export async function registryCleanPlanned(
  docker: DockerClients,
  plan: Plan,
  o: RemoveOptions & { onProgress?: (s: string) => void } = {},
): Promise<RemoveResult> {
  const observed = await observeClean(docker, plan, Boolean(o.shared));
  const diff = diffClean(observed, plan);
  if (o.dryRun) return { project: plan.project.name, actions: diff, dryRun: true };
  return { project: plan.project.name, actions: await executeClean(docker, observed, diff, o.onProgress) };
}

/**
 * `lo registry clean`: like down, and also removes the volumes; with `shared`, the shared mirrors, their volumes
 * and the shared network when nothing else is attached (the action says what kept it). The project network
 * goes too when lo created it and nothing (e.g. a kind node) is attached.
 */
export async function registryClean(opts: LoadSpecOptions, deps: RegistryDeps & RemoveOptions = {}): Promise<RemoveResult> {
  const { docker, plan } = await setup(opts, { ...deps, strict: false });
  return whileLocked(plan, 'lo registry clean', deps, () => registryCleanPlanned(docker, plan, deps));
}
