import { readFile } from 'node:fs/promises';
import { applyRegistries, type Action } from '../apply/applyRegistries.js';
import type { EnsureTls } from '../apply/types.js';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { ClusterSpec } from '../spec/types.js';
import { connectClients, DockerUnreachableError, type ContainerState, type DockerClients } from '../adapters/docker/index.js';
import { observeShared } from '../adapters/docker/observeShared.js';
import { LABELS, MANAGED_BY, SHARED_PROJECT } from '../plan/labels.js';
import { EMPTY_OBSERVED, type ObservedShared, type Plan, type RegistryPlan } from '../plan/types.js';
import { loadPlan, type PlanDeps } from './plan.js';
import { probeAnswers, probeCatalog } from '../adapters/registryProbe.js';

export interface RegistryDeps extends PlanDeps {
  /** Connects to Docker (default: DOCKER_HOST or the local socket, failing fast when unreachable). */
  connect?: () => Promise<DockerClients>;
  ensureTls?: EnsureTls;
  env?: NodeJS.ProcessEnv;
  onProgress?: (step: string) => void;
}

async function setup(opts: LoadSpecOptions, deps: RegistryDeps): Promise<{ docker: DockerClients; plan: Plan; spec: ClusterSpec }> {
  deps.onProgress?.('connecting to Docker');
  const docker = await (deps.connect ?? (() => connectClients({ env: deps.env ?? process.env })))();
  deps.onProgress?.('reading the shared network');
  const { plan, spec } = await loadPlan(opts, { ...deps, observeShared: (s) => observeShared(docker, s) });
  return { docker, plan, spec };
}

/**
 * For `lo plan`: what runs on the shared network, or "nothing observed" at once when Docker is unreachable
 * (planning must work without an engine).
 */
export function observeSharedOrNothing(env: NodeJS.ProcessEnv = process.env): (spec: ClusterSpec) => Promise<ObservedShared> {
  return async (spec) => {
    let docker: DockerClients;
    try {
      docker = await connectClients({ env, pingTimeoutMs: 800 });
    } catch (err) {
      if (err instanceof DockerUnreachableError) return EMPTY_OBSERVED;
      throw err;
    }
    return observeShared(docker, spec);
  };
}

// ---------------------------------------------------------------------------------------------- up

export interface UpResult {
  plan: Plan;
  actions: Action[];
  dryRun: boolean;
}

/** `lo registry up`: networks, TLS, files, volumes and containers the plan lists, and nothing else. */
export async function registryUp(opts: LoadSpecOptions, deps: RegistryDeps & { dryRun?: boolean } = {}): Promise<UpResult> {
  const { docker, plan } = await setup(opts, deps);
  const actions = await applyRegistries(plan, {
    docker,
    dryRun: deps.dryRun ?? false,
    ...(deps.ensureTls ? { ensureTls: deps.ensureTls } : {}),
    ...(deps.env ? { env: deps.env } : {}),
    ...(deps.onProgress ? { onProgress: deps.onProgress } : {}),
  });
  return { plan, actions, dryRun: deps.dryRun ?? false };
}

// ------------------------------------------------------------------------------------------ status

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

// ------------------------------------------------------------------------------------- down / clean

export interface RemoveResult {
  project: string;
  actions: Action[];
}

/** The project's containers (by label) and, with `shared`, the shared mirrors on the spec's shared network. */
async function targets(docker: DockerClients, plan: Plan, spec: ClusterSpec, shared: boolean): Promise<ContainerState[]> {
  const own = await docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${plan.project.name}`]);
  const projectRegistries = own.filter((c) => ['build', 'cache', 'mirror', 'replica'].includes(c.labels[LABELS.role] ?? ''));
  if (!shared || !spec.registries.shared.enabled) return projectRegistries;
  const net = spec.registries.shared.network.name;
  const all = await docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${SHARED_PROJECT}`]);
  // Replicas hold the mirrors' addresses; a proxy sharing a replica's namespace belongs to that network too.
  const replicas = all.filter((c) => c.labels[LABELS.role] === 'replica' && c.networks[net] !== undefined);
  const replicaIds = new Set(replicas.map((c) => c.id));
  const mirrors = all.filter(
    (c) =>
      c.labels[LABELS.role] === 'mirror' &&
      (c.networks[net] !== undefined ||
        (c.networkMode.startsWith('container:') && replicaIds.has(c.networkMode.slice('container:'.length)))),
  );
  // Proxies first: a replica removed first would leave its proxy in a dead namespace for a moment.
  return [...projectRegistries, ...mirrors, ...replicas];
}

async function removeContainers(docker: DockerClients, list: ContainerState[]): Promise<Action[]> {
  return Promise.all(
    list.map(async (c): Promise<Action> => {
      await docker.containers.stop(c.id, 3);
      const removed = await docker.containers.remove(c.id);
      return { kind: 'container', name: c.name, action: removed ? 'remove' : 'noop', ...(removed ? {} : { reason: 'already gone' }) };
    }),
  );
}

/** `lo registry down`: stops and removes the project's registry containers (shared ones with `shared`); volumes stay. */
export async function registryDown(opts: LoadSpecOptions, deps: RegistryDeps & { shared?: boolean } = {}): Promise<RemoveResult> {
  const { docker, plan, spec } = await setup(opts, { ...deps, strict: false });
  deps.onProgress?.('removing containers');
  const actions = await removeContainers(docker, await targets(docker, plan, spec, Boolean(deps.shared)));
  return { project: plan.project.name, actions };
}

/**
 * `lo registry clean`: like down, and also removes the volumes; with `shared`, the shared mirrors, their volumes
 * and the shared network when nothing else is attached (the action says what kept it). The project network
 * goes too when lo created it and nothing (e.g. a kind node) is attached.
 */
export async function registryClean(opts: LoadSpecOptions, deps: RegistryDeps & { shared?: boolean } = {}): Promise<RemoveResult> {
  const { docker, plan, spec } = await setup(opts, { ...deps, strict: false });
  const shared = Boolean(deps.shared);
  const list = await targets(docker, plan, spec, shared);
  deps.onProgress?.('removing containers');
  const actions = await removeContainers(docker, list);

  deps.onProgress?.('removing volumes');
  const volumeNames = new Set<string>(list.flatMap((c) => c.volumes.map((v) => v.name)));
  for (const v of await docker.volumes.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${plan.project.name}`]))
    volumeNames.add(v.name);
  if (shared) {
    for (const r of plan.registries.filter((x) => x.scope === 'shared')) volumeNames.add(r.volume);
  }
  const volumeActions = await Promise.all(
    [...volumeNames].map(async (name): Promise<Action | null> => {
      const v = await docker.volumes.inspect(name);
      if (!v || v.labels[LABELS.managedBy] !== MANAGED_BY) return null; // not ours: never touched
      await docker.volumes.remove(name);
      return { kind: 'volume', name, action: 'remove' };
    }),
  );
  actions.push(...volumeActions.filter((a): a is Action => a !== null));

  deps.onProgress?.('networks');
  for (const n of plan.networks) {
    if (n.role === 'shared' && !shared) continue;
    const state = await docker.networks.inspect(n.name);
    if (!state) continue;
    if (state.labels[LABELS.managedBy] !== MANAGED_BY) {
      actions.push({ kind: 'network', name: n.name, action: 'noop', reason: 'kept: not created by lo' });
      continue;
    }
    if (state.containers.length > 0) {
      const names = state.containers.map((c) => c.name).sort();
      actions.push({ kind: 'network', name: n.name, action: 'noop', reason: `kept: still attached: ${names.join(', ')}` });
      continue;
    }
    const removed = await docker.networks.remove(n.name).catch((err: unknown) => {
      // a container attached between inspect and remove keeps it
      actions.push({ kind: 'network', name: n.name, action: 'noop', reason: `kept: ${(err as Error).message}` });
      return null;
    });
    if (removed !== null) actions.push({ kind: 'network', name: n.name, action: removed ? 'remove' : 'noop' });
  }
  return { project: plan.project.name, actions };
}
