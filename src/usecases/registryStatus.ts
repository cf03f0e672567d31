import { readFile } from 'node:fs/promises';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { ContainerState } from '../adapters/docker/index.js';
import { LABELS, MANAGED_BY, SHARED_PROJECT } from '../plan/labels.js';
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
  /** Mirrors: the read-only replica serving the cache (src/plan/offline.ts). */
  replica?: { containerName: string; endpoint: string; state: string; health: RegistryHealth; error?: string };
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
    const rc = ownContainer(containers, plan, r, 'replica');
    const [rep, up] = await Promise.all([
      probeOne({ ...r, containerName: r.replica!.containerName, endpoint: r.replica!.endpoint, port: r.replica!.port }, rc ?? null),
      r.upstream ? probeAnswers(new URL('/v2/', r.upstream).toString(), { timeoutMs }) : Promise.resolve(null),
    ]);
    const replica = {
      containerName: rep.containerName,
      endpoint: rep.endpoint,
      state: rep.state,
      health: rep.health,
      ...(rep.error ? { error: rep.error } : {}),
    };
    const upstreamReachable = up ? up.ok : null;
    const offline = rep.health === 'running' && (s.health !== 'running' || upstreamReachable === false);
    return { ...s, address: rep.address, replica, upstreamReachable, offline };
  }

  async function probeOne(r: RegistryPlan, replicaContainer?: ContainerState | null): Promise<RegistryStatus> {
    const c = replicaContainer === undefined ? ownContainer(containers, plan, r) : (replicaContainer ?? undefined);
    // A proxy sharing its replica's namespace has the replica's address.
    const holder = r.replica && replicaContainer === undefined ? (ownContainer(containers, plan, r, 'replica') ?? c) : c;
    const base = {
      name: r.name,
      role: r.role,
      scope: r.scope,
      registry: r.registry ?? null,
      containerName: c?.name ?? r.containerName,
      endpoint: r.endpoint,
      address: holder?.networks[r.network]?.ip ?? r.ip,
      network: r.network,
      state: c?.status ?? 'missing',
      diskBytes: usage.get(r.volume) ?? null,
    };
    if (!c) return { ...base, health: 'not created', catalog: null };
    if (!c.running) return { ...base, health: 'not running', catalog: null };
    if (plan.tls.enabled && !ca)
      return { ...base, health: 'running but unreachable', catalog: null, error: `CA ${plan.tls.caCertPath} not readable` };
    // Probe only an address the container really has: a planned address on a network it left may route
    // off this machine.
    if (!holder?.networks[r.network]?.ip)
      return { ...base, health: 'running but unreachable', catalog: null, error: `not attached to network ${r.network}` };
    const endpoint = `${r.scheme}://${base.address}:${r.port}`;
    const p = await probeCatalog(endpoint, { ca, timeoutMs });
    return p.ok
      ? { ...base, health: 'running', catalog: p.repositories, probeMs: p.ms }
      : { ...base, health: 'running but unreachable', catalog: null, error: p.error ?? 'unreachable', probeMs: p.ms };
  }
}

function ownContainer(all: ContainerState[], plan: Plan, r: RegistryPlan, role: string = r.role): ContainerState | undefined {
  const projectLabel = r.scope === 'shared' ? SHARED_PROJECT : plan.project.name;
  return all.find(
    (c) =>
      c.labels[LABELS.project] === projectLabel &&
      c.labels[LABELS.role] === role &&
      (r.role !== 'mirror' || c.labels[LABELS.mirror] === r.name),
  );
}
