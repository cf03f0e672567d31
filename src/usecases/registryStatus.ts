import { readFile } from 'node:fs/promises';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { ContainerState } from '../adapters/docker/index.js';
import { foreignOwnerOf, LABELS, MANAGED_BY, SHARED_PROJECT } from '../plan/labels.js';
import type { Plan, RegistryPlan } from '../plan/types.js';
import { probeAnswers, probeCatalog } from '../adapters/registryProbe.js';
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
  /** Bytes on the registry's volume (Docker's disk-usage report), null when unknown. */
  diskBytes: number | null;
  /**
   * Mirrors: the read-only replica serving the cache, a process of the mirror's container on its own port
   * (src/plan/offline.ts); `health` as a registry's (its port probed). The proxy is the registry itself:
   * `health` above is the proxy's port.
   */
  replica?: { endpoint: string; port: number; health: RegistryHealth; error?: string };
  /** Mirrors: whether the upstream answered from this machine (null: not probed). */
  upstreamReachable?: boolean | null;
  /** Mirrors: serving offline, i.e. the replica serves while the proxy is down or the upstream is unreachable. */
  offline?: boolean;
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
  const [containers, ca, usage] = await Promise.all([
    docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`]),
    plan.tls.enabled ? readFile(plan.tls.caCertPath, 'utf8').catch(() => null) : Promise.resolve(null),
    docker.volumes.usage().catch(() => new Map<string, number>()),
  ]);
  deps.onProgress?.('probing registries');
  const timeoutMs = deps.timeoutMs ?? 1500;
  const registries = await Promise.all(
    wanted.map(async (r): Promise<RegistryStatus> => {
      const s = await probeOne(r);
      if (!r.replica) return s;
      return withReplica(s, r);
    }),
  );
  return { project: plan.project.name, shared: Boolean(deps.shared), registries };

  async function withReplica(s: RegistryStatus, r: RegistryPlan): Promise<RegistryStatus> {
    // The replica is a process of the mirror's container (src/plan/render/mirrorSupervisor.ts): probe its port.
    const [rep, up] = await Promise.all([
      probeOne({ ...r, endpoint: r.replica!.endpoint, port: r.replica!.port }),
      r.upstream ? probeAnswers(new URL('/v2/', r.upstream).toString(), { timeoutMs }) : Promise.resolve(null),
    ]);
    const replica = {
      endpoint: rep.endpoint,
      port: r.replica!.port,
      health: rep.health,
      ...(rep.error ? { error: rep.error } : {}),
    };
    const upstreamReachable = up ? up.ok : null;
    const offline = rep.health === 'running' && (s.health !== 'running' || upstreamReachable === false);
    return { ...s, replica, upstreamReachable, offline };
  }

  async function probeOne(r: RegistryPlan): Promise<RegistryStatus> {
    const c = ownContainer(containers, plan, r);
    // A container of this registry's name and role labelled as another project's is not reported as ours.
    const other = c ? null : ownContainer(containers, plan, r, true);
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
      diskBytes: other ? null : (usage.get(r.volume) ?? null),
    };
    if (other) {
      const owner = foreignOwnerOf(plan.project.id, other.labels);
      return {
        ...base,
        containerName: other.name,
        state: 'missing',
        health: 'not created',
        catalog: null,
        error: `${other.name} belongs to the project in ${owner}`,
      };
    }
    if (!c) return { ...base, health: 'not created', catalog: null };
    if (!c.running) return { ...base, health: 'not running', catalog: null };
    if (plan.tls.enabled && !ca)
      return { ...base, health: 'running but unreachable', catalog: null, error: `CA ${plan.tls.caCertPath} not readable` };
    // Probe only an address the container really has: a planned address on a network it left may route
    // off this machine.
    if (!c?.networks[r.network]?.ip)
      return { ...base, health: 'running but unreachable', catalog: null, error: `not attached to network ${r.network}` };
    const endpoint = `${r.scheme}://${base.address}:${r.port}`;
    const p = await probeCatalog(endpoint, { ca, timeoutMs });
    return p.ok
      ? { ...base, health: 'running', catalog: p.repositories, probeMs: p.ms }
      : { ...base, health: 'running but unreachable', catalog: null, error: p.error ?? 'unreachable', probeMs: p.ms };
  }
}

/** The registry's container, found by labels: this project's (or, with `foreign`, one of the same name labelled as another project's). */
function ownContainer(all: ContainerState[], plan: Plan, r: RegistryPlan, foreign = false): ContainerState | undefined {
  const projectLabel = r.scope === 'shared' ? SHARED_PROJECT : plan.project.name;
  return all.find(
    (c) =>
      c.labels[LABELS.project] === projectLabel &&
      c.labels[LABELS.role] === r.role &&
      (r.role !== 'mirror' || c.labels[LABELS.mirror] === r.name) &&
      (foreignOwnerOf(plan.project.id, c.labels) !== null) === foreign,
  );
}
