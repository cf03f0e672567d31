import { mkdir } from 'node:fs/promises';
import { ExitCode, LoError } from '../errors/loError.js';
import type { ContainerSpec, ContainerState, DockerClients, NetworkState } from '../adapters/docker/index.js';
import { LABELS, MANAGED_BY, SHARED_PROJECT } from '../plan/labels.js';
import type { NetworkPlan, Plan, RegistryPlan } from '../plan/types.js';
import { REPLICA_ROLE } from '../plan/offline.js';
import { applyCertsDir } from './certsDir.js';
import { readIfExists, SECRET_MODE, writeFileAtomic } from './files.js';
import { containerSpecHash, ensureHashKey, registryConfigWithSecrets } from './registryConfig.js';
import type { Action, ApplyDeps, EnsureTls, RegistryStage, StageReporter, TlsMaterial } from './types.js';

export type { Action, ApplyDeps, TlsMaterial } from './types.js';

/**
 * Makes the plan's registries real: networks, TLS material, config files, the containerd certs.d tree,
 * volumes and containers. Idempotent: what matches the plan is left alone (noop); drift recreates only the
 * affected container and keeps its volume. Returns what it did, in order.
 */
export async function applyRegistries(plan: Plan, deps: ApplyDeps): Promise<Action[]> {
  const dryRun = deps.dryRun ?? false;
  const env = deps.env ?? {};
  const progress = deps.onProgress ?? ((): void => undefined);
  const { docker } = deps;
  const stage = stageRunner(deps.stages);

  progress('networks');
  const nets = [plan.networks.find((n) => n.role === 'shared'), plan.networks.find((n) => n.role === 'project')].filter(
    (n): n is NetworkPlan => !!n,
  );
  const networksDone = stage.track('networks');
  const current = await networksDone.run(async () => {
    const found = await Promise.all(nets.map((n) => docker.networks.inspect(n.name)));
    // Before anything is created, recreated, removed or mounted: nothing of the plan's names belongs to another project.
    await checkOwnership(docker, plan, nets, found);
    // Before anything is created: a network of the plan's name with another subnet stops the apply here.
    nets.forEach((n, i) => found[i] && checkSubnet(n, found[i]!.subnet));
    return found;
  });
  const registriesDone = stage.track('registries');
  // Secrets are read before anything is created too: a missing credential variable changes nothing.
  const { configs, hashKey } = await registriesDone.run(async () => ({
    configs: new Map(plan.registries.map((r) => [r.name, registryConfigWithSecrets(r, env)])),
    hashKey: plan.registries.some((r) => r.credentials) ? await ensureHashKey(plan.paths.stateDir, dryRun) : undefined,
  }));

  // From here the independent steps run concurrently; each container waits only for what it needs (its
  // network, its volume, its files and certificate, the image), so containers start as early as possible.
  const networks = new Map(
    nets.map((n, i) => [n.name, handled(networksDone.run(() => ensureNetwork(docker, n, current[i] ?? null, dryRun)))]),
  );
  void Promise.all(networks.values()).then(
    () => networksDone.finish(),
    () => undefined,
  );
  const existing = handled(registriesDone.run(() => docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`])));
  const images = handled(
    registriesDone.run(() =>
      Promise.all(
        [...new Set(plan.registries.map((r) => r.image))].map(
          async (ref) => [ref, dryRun ? await docker.images.id(ref) : await docker.images.ensure(ref)] as const,
        ),
      ).then((e) => new Map(e)),
    ),
  );
  const configFiles = handled(
    registriesDone.run(() =>
      Promise.all([
        ...plan.registries.map(async (r): Promise<Action> => {
          if (!dryRun) {
            await mkdir(r.configDir, { recursive: true, mode: 0o700 });
            if (r.tlsDir) await mkdir(r.tlsDir, { recursive: true, mode: 0o700 });
          }
          // The name is the path; the content may hold secrets and is never part of an action.
          return {
            kind: 'file',
            name: r.configPath,
            action: await writeFileAtomic(r.configPath, configs.get(r.name)!, SECRET_MODE, dryRun),
          };
        }),
        // Mirrors: the replica's config (no proxy section, no secrets) and the supervisor script, next to config.yml.
        ...plan.registries.flatMap((r) =>
          r.replica
            ? [
                writeRegistryFile(r.configDir, r.replica.configPath, r.replica.config, dryRun),
                writeRegistryFile(r.configDir, r.replica.supervisorPath, r.replica.supervisor, dryRun),
              ]
            : [],
        ),
      ]),
    ),
  );
  const tls = handled(
    (async () => {
      progress('certificates');
      const certs = await stage.once('tls', () => ensureCertificates(plan, deps.ensureTls, dryRun));
      progress('registry configuration and containerd certs.d');
      const certsDir = await stage.once('certs.d', async () => {
        const caPem = certs.material?.caCertPem ?? (plan.tls.enabled ? await readIfExists(plan.tls.caCertPath) : null);
        return applyCertsDir(plan, caPem, dryRun);
      });
      return { ...certs, certsDir };
    })(),
  );
  const volumes = new Map(plan.registries.map((r) => [r.volume, handled(registriesDone.run(() => ensureVolume(docker, r, dryRun)))]));

  const registryActions = await registriesDone.run(() =>
    Promise.all(
      plan.registries.map(async (r): Promise<Action[]> => {
        const [{ material }, , imageIds, all, volumeAction] = await Promise.all([
          tls,
          configFiles,
          images,
          existing,
          volumes.get(r.volume)!,
          networks.get(r.network),
        ]);
        progress(`container ${r.containerName}`);
        const certPem = await certificateFor(plan, r, material);
        const hash = containerSpecHash(r.labels[LABELS.specHash] ?? '', certPem, configs.get(r.name)!, r.credentials ? hashKey : undefined);
        const imageId = imageIds.get(r.image) ?? null;
        const existingOne = findExisting(all, plan, r);
        // lo's earlier mirrors were two containers (a proxy in the network namespace of `<name>-replica`);
        // now the mirror's one container runs both (src/plan/offline.ts). Replace the pair, keep the volume.
        const oldReplica = r.replica ? findExisting(all, plan, r, REPLICA_ROLE) : undefined;
        if (oldReplica) {
          if (!dryRun) {
            // The proxy first: it sits in the old replica's namespace, which holds the address.
            if (existingOne) await docker.containers.remove(existingOne.id);
            await docker.containers.remove(oldReplica.id);
          }
          const made = await ensureRegistry(docker, r, { hash, imageId, existing: undefined, dryRun });
          const reason = 'proxy + replica pair -> one container running both (docs/offline.md), volume kept';
          return [
            volumeAction,
            { kind: 'container', name: oldReplica.name, action: 'remove', reason },
            ...made.map((x): Action => (x.action === 'create' && existingOne ? { ...x, action: 'recreate', reason } : x)),
          ];
        }
        const containerActions = await ensureRegistry(docker, r, { hash, imageId, existing: findExisting(all, plan, r), dryRun });
        return [volumeAction, ...containerActions];
      }),
    ),
  );
  registriesDone.finish();
  const { actions: certActions, certsDir } = await tls;
  return [...(await Promise.all(networks.values())), ...certActions, ...(await configFiles), ...certsDir, ...registryActions.flat()];
}

/**
 * Reports the executor's stages: `once` wraps one piece of work; `track` covers a stage made of several
 * concurrent pieces (started with the first, finished by `finish`). The first failure of a stage is reported
 * with the stage, so the caller never guesses it from the error.
 */
function stageRunner(reporter: StageReporter | undefined) {
  const r = reporter ?? { start: () => undefined, done: () => undefined, failed: () => undefined };
  const track = (name: RegistryStage) => {
    let started = false;
    let ended = false;
    return {
      async run<T>(fn: () => Promise<T>): Promise<T> {
        if (!started) {
          started = true;
          r.start(name);
        }
        try {
          return await fn();
        } catch (err) {
          if (!ended) {
            ended = true;
            r.failed(name, err);
          }
          throw err;
        }
      },
      finish(): void {
        if (started && !ended) {
          ended = true;
          r.done(name);
        }
      },
    };
  };
  return {
    track,
    async once<T>(name: RegistryStage, fn: () => Promise<T>): Promise<T> {
      const t = track(name);
      const result = await t.run(fn);
      t.finish();
      return result;
    },
  };
}

/** Which stage an action of this executor belongs to. */
export function stageOfAction(plan: Plan, a: Action): RegistryStage {
  if (a.kind === 'network') return 'networks';
  if (a.kind === 'certificate') return 'tls';
  if (a.kind === 'file') return a.name.startsWith(`${plan.containerd.certsDir}/`) ? 'certs.d' : 'registries';
  return 'registries';
}

/** Marks a promise's rejection as handled (it is awaited later, maybe after another step failed first). */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

async function ensureVolume(docker: DockerClients, r: RegistryPlan, dryRun: boolean): Promise<Action> {
  if (await docker.volumes.inspect(r.volume)) return { kind: 'volume', name: r.volume, action: 'noop' };
  if (!dryRun) await docker.volumes.ensure(r.volume, { ...r.labels });
  return { kind: 'volume', name: r.volume, action: 'create' };
}

async function ensureNetwork(docker: DockerClients, n: NetworkPlan, have: NetworkState | null, dryRun: boolean): Promise<Action> {
  if (have) {
    const reason =
      have.bridgeName && have.bridgeName !== n.bridgeName ? `exists with bridge ${have.bridgeName} (plan: ${n.bridgeName})` : undefined;
    return { kind: 'network', name: n.name, action: 'noop', ...(reason ? { reason } : {}) };
  }
  if (dryRun) return { kind: 'network', name: n.name, action: 'create', reason: `${n.subnet}, bridge ${n.bridgeName}` };
  const { state, created } = await docker.networks.ensure(n);
  checkSubnet(n, state.subnet);
  return created
    ? { kind: 'network', name: n.name, action: 'create', reason: `${n.subnet}, bridge ${n.bridgeName}` }
    : { kind: 'network', name: n.name, action: 'noop', reason: 'created concurrently by another lo' };
}

/** The owner a project object's labels name, or null when it is this project's (or carries no id: adopted). */
export function foreignOwner(plan: Plan, labels: Record<string, string>): string | null {
  const id = labels[LABELS.projectId];
  if (id === undefined || id === plan.project.id) return null;
  return labels[LABELS.specDir] ?? `project id ${id}`;
}

/**
 * Refuses (exit 2, nothing changed) when a project network, registry container or volume of the plan's names
 * is labelled as another project's: two specs with the same metadata.name in different directories.
 */
async function checkOwnership(docker: DockerClients, plan: Plan, nets: NetworkPlan[], found: Array<NetworkState | null>): Promise<void> {
  const own = plan.registries.filter((r) => r.scope === 'project');
  const [containers, volumes] = await Promise.all([
    docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${plan.project.name}`]),
    Promise.all(own.map((r) => docker.volumes.inspect(r.volume))),
  ]);
  const objects: Array<[string, Record<string, string>]> = [
    ...nets.flatMap((n, i): Array<[string, Record<string, string>]> =>
      n.role === 'project' && found[i] ? [[`network ${n.name}`, found[i]!.labels]] : [],
    ),
    ...containers.map((c): [string, Record<string, string>] => [`container ${c.name}`, c.labels]),
    ...volumes.flatMap((v): Array<[string, Record<string, string>]> => (v ? [[`volume ${v.name}`, v.labels]] : [])),
  ];
  for (const [what, labels] of objects) {
    const other = foreignOwner(plan, labels);
    if (other === null) continue;
    throw new LoError(
      'E_PROJECT_CONFLICT',
      `${what} belongs to another project named ${plan.project.name} (spec in ${other}); nothing was changed`,
      {
        hint: `give this project its own metadata.name in ${plan.project.file} (metadata.name is the cluster and network name), or run \`lo registry clean\` in ${other} first`,
        exitCode: ExitCode.badInput,
      },
    );
  }
}

/** A network of the plan's name with another subnet is never changed or removed silently. */
function checkSubnet(n: NetworkPlan, actual: string | null): void {
  if (actual === n.subnet) return;
  const ways =
    n.role === 'shared'
      ? `remove the shared registries and network with \`lo registry clean --shared\`, or set spec.registries.shared.network.cidr: ${actual ?? '<its subnet>'} in the spec`
      : `remove the network (\`lo registry clean\`, then \`docker network rm ${n.name}\` once nothing is attached), or set spec.network.cidr: ${actual ?? '<its subnet>'} in the spec`;
  throw new LoError(
    'E_NETWORK_MISMATCH',
    `network ${n.name} exists with subnet ${actual ?? '(none)'}, but the plan needs ${n.subnet}; nothing was changed`,
    {
      hint: ways,
      exitCode: ExitCode.badInput,
    },
  );
}

async function ensureCertificates(
  plan: Plan,
  ensureTls: EnsureTls | undefined,
  dryRun: boolean,
): Promise<{ actions: Action[]; material: TlsMaterial | null }> {
  if (!plan.tls.enabled) return { actions: [], material: null };
  if (dryRun) {
    const actions = await Promise.all(
      plan.tls.certificates.map(async (c): Promise<Action> => ({
        kind: 'certificate',
        name: c.certPath,
        action: (await readIfExists(c.certPath)) === null ? 'create' : 'noop',
        reason: 'names and expiry are checked at apply',
      })),
    );
    return { actions, material: null };
  }
  // node-forge loads with the TLS code, when certificates are needed (not for `lo registry status`).
  const fn = ensureTls ?? (await import('./tls/ensureTls.js')).ensureTls;
  const material = await fn(plan);
  if (!material) return { actions: [], material: null };
  const actions = Object.values(material.certificates).map((c): Action => ({
    kind: 'certificate',
    name: c.certPath,
    action: certAction(c.action),
  }));
  return { actions, material };
}

function certAction(a: string): Action['action'] {
  if (a === 'create' || a === 'created') return 'create';
  if (a === 'noop' || a === 'unchanged' || a === 'reused' || a === 'keep') return 'noop';
  return 'recreate';
}

async function certificateFor(plan: Plan, r: RegistryPlan, material: TlsMaterial | null): Promise<string | null> {
  if (!r.certificateId) return null;
  const path = material?.certificates[r.certificateId]?.certPath ?? plan.tls.certificates.find((c) => c.id === r.certificateId)?.certPath;
  return path ? readIfExists(path) : null;
}

/** The container lo made for this registry, found by labels (never by name). */
function findExisting(all: ContainerState[], plan: Plan, r: RegistryPlan, role: string = r.role): ContainerState | undefined {
  const projectLabel = r.scope === 'shared' ? SHARED_PROJECT : plan.project.name;
  const matches = all.filter(
    (c) =>
      c.labels[LABELS.project] === projectLabel &&
      c.labels[LABELS.role] === role &&
      (r.role !== 'mirror' || c.labels[LABELS.mirror] === r.name) &&
      // shared mirrors of another shared network are someone else's
      (r.scope !== 'shared' || c.name === r.containerName || c.networks[r.network] !== undefined),
  );
  return matches.find((c) => c.name === r.containerName) ?? matches[0];
}

/** The plan's container, labelled with the hash of what it runs (plan, certificate, config with secrets). */
function containerSpec(r: RegistryPlan, hash: string): ContainerSpec {
  return { ...r.container, labels: { ...r.labels, [LABELS.specHash]: hash } };
}

/** Why a running container no longer matches the plan, or null when it does. */
function driftOf(c: ContainerState, r: RegistryPlan, hash: string, imageId: string | null): string | null {
  if (c.name !== r.containerName) return `name ${c.name} -> ${r.containerName}`;
  if (imageId && c.imageId !== imageId) return `image ${r.image} changed`;
  if (c.labels[LABELS.specHash] !== hash) return 'configuration or certificate changed';
  const net = c.networks[r.network];
  if (!net) return `not on network ${r.network} (on ${Object.keys(c.networks).join(', ') || 'none'})`;
  if (net.ip !== r.ip) return `address ${net.ip ?? 'none'} -> ${r.ip}`;
  if (c.status === 'exited' || c.status === 'dead') return `container was ${c.status}`;
  if (!c.volumes.some((v) => v.name === r.volume)) return `volume ${r.volume} not mounted`;
  return null;
}

async function ensureRegistry(
  docker: DockerClients,
  r: RegistryPlan,
  o: { hash: string; imageId: string | null; existing: ContainerState | undefined; dryRun: boolean },
): Promise<Action[]> {
  const actions: Action[] = [];

  const spec = containerSpec(r, o.hash);
  const current = o.existing;
  if (current) {
    const drift = driftOf(current, r, o.hash, o.imageId);
    if (!drift) {
      // created but not started (e.g. a concurrent lo is between create and start): start it.
      if (!current.running && !o.dryRun) await docker.containers.start(current.id);
      actions.push({
        kind: 'container',
        name: r.containerName,
        action: 'noop',
        ...(current.running ? {} : { reason: `started (was ${current.status})` }),
      });
      return actions;
    }
    if (!o.dryRun) {
      await docker.containers.remove(current.id);
      const made = await createAndStart(docker, spec, o.hash);
      if (!made.created) {
        actions.push({ kind: 'container', name: r.containerName, action: 'noop', reason: 'recreated concurrently by another lo' });
        return actions;
      }
    }
    actions.push({ kind: 'container', name: r.containerName, action: 'recreate', reason: drift });
    return actions;
  }
  if (!o.dryRun) {
    const made = await createAndStart(docker, spec, o.hash);
    if (!made.created) {
      actions.push({ kind: 'container', name: r.containerName, action: 'noop', reason: 'created concurrently by another lo' });
      return actions;
    }
  }
  actions.push({ kind: 'container', name: r.containerName, action: 'create', reason: `${r.endpoint} on ${r.network}` });
  return actions;
}

async function createAndStart(docker: DockerClients, spec: ContainerSpec, hash: string): Promise<{ created: boolean }> {
  const { state, created } = await docker.containers.create(spec);
  if (!created) {
    // The name was taken between our list and our create. Ours (same labels and hash) is fine; anything else
    // is not lo's to replace.
    if (state.labels[LABELS.managedBy] !== MANAGED_BY) {
      throw new LoError('E_DOCKER', `a container named ${spec.name} exists and was not created by lo`, {
        hint: `remove or rename it (\`docker rm -f ${spec.name}\`) if it is not needed, then run again`,
        exitCode: ExitCode.badInput,
      });
    }
    if (state.labels[LABELS.specHash] !== hash) {
      throw new LoError(
        'E_DOCKER',
        `container ${spec.name} was created concurrently with another configuration (spec-hash ${state.labels[LABELS.specHash]}, want ${hash})`,
        {
          hint: 'two specs disagree about this shared registry; run `lo registry up` again once the other finished',
        },
      );
    }
  }
  await docker.containers.start(state.id);
  return { created };
}

/** Writes one file of a registry's config directory (0600: it may hold secrets), creating the directory first. */
async function writeRegistryFile(dir: string, path: string, content: string, dryRun: boolean): Promise<Action> {
  if (!dryRun) await mkdir(dir, { recursive: true, mode: 0o700 });
  return { kind: 'file', name: path, action: await writeFileAtomic(path, content, SECRET_MODE, dryRun) };
}
