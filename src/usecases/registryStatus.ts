import { readFile } from 'node:fs/promises';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { ContainerState } from '../adapters/docker/index.js';
import { LABELS, MANAGED_BY, SHARED_PROJECT } from '../plan/labels.js';
import type { Plan, RegistryPlan } from '../plan/types.js';
import { probeCatalog } from '../adapters/registryProbe.js';
import { setup, type RegistryDeps } from './registrySetup.js';
export type RegistryHealth = 'running' | 'not running' | 'running but unreachable' | 'not created';

export interface RegistryStatus {
  name: string;
  role: RegistryPlan['role'];
  scope: RegistryPlan['scope'];
  registry: string | null;
  containerName: string;
  endpoint: string;
  address: string;
  network: string;
  /** Docker's state (running, exited, …) or `missing`. */
  state: string;
  health: RegistryHealth;
  /** Repositories read from /v2/_catalog when reachable. */
  catalog: string[] | null;
  error?: string;
  probeMs?: number;
}

export interface StatusResult {
  project: string;
  shared: boolean;
  registries: RegistryStatus[];
}

/** `lo registry status`: container state plus a catalog read per registry, all probes in parallel. */
export async function registryStatus(
  opts: LoadSpecOptions,
  deps: RegistryDeps & { shared?: boolean; timeoutMs?: number } = {},
): Promise<StatusResult> {
  const { docker, plan } = await setup(opts, { ...deps, strict: false });
  const wanted = plan.registries.filter((r) => r.scope === 'project' || deps.shared);
  const [containers, ca] = await Promise.all([
    docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`]),
    plan.tls.enabled ? readFile(plan.tls.caCertPath, 'utf8').catch(() => null) : Promise.resolve(null),
  ]);
  deps.onProgress?.('probing registries');
  const registries = await Promise.all(
    wanted.map(async (r): Promise<RegistryStatus> => {
      const c = ownContainer(containers, plan, r);
      const base = {
        name: r.name,
        role: r.role,
        scope: r.scope,
        registry: r.registry ?? null,
        containerName: c?.name ?? r.containerName,
        endpoint: r.endpoint,
        address: c?.networks[r.network]?.ip ?? r.ip,
        network: r.network,
        state: c?.status ?? 'missing',
      };
      if (!c) return { ...base, health: 'not created', catalog: null };
      if (!c.running) return { ...base, health: 'not running', catalog: null };
      if (plan.tls.enabled && !ca)
        return { ...base, health: 'running but unreachable', catalog: null, error: `CA ${plan.tls.caCertPath} not readable` };
      // Probe only an address the container really has: a planned address on a network it left may route
      // off this machine.
      if (!c.networks[r.network]?.ip)
        return { ...base, health: 'running but unreachable', catalog: null, error: `not attached to network ${r.network}` };
      const endpoint = `${r.scheme}://${base.address}:${r.port}`;
      const p = await probeCatalog(endpoint, { ca, timeoutMs: deps.timeoutMs ?? 1500 });
      return p.ok
        ? { ...base, health: 'running', catalog: p.repositories, probeMs: p.ms }
        : { ...base, health: 'running but unreachable', catalog: null, error: p.error ?? 'unreachable', probeMs: p.ms };
    }),
  );
  return { project: plan.project.name, shared: Boolean(deps.shared), registries };
}

function ownContainer(all: ContainerState[], plan: Plan, r: RegistryPlan): ContainerState | undefined {
  const projectLabel = r.scope === 'shared' ? SHARED_PROJECT : plan.project.name;
  return all.find(
    (c) =>
      c.labels[LABELS.project] === projectLabel &&
      c.labels[LABELS.role] === r.role &&
      (r.role !== 'mirror' || c.labels[LABELS.mirror] === r.name),
  );
}
