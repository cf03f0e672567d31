import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ExitCode, LoError } from '../errors/loError.js';
import { shellCommand } from '../util/shell.js';
import type { ContainerSpec, DockerClients } from '../adapters/docker/index.js';
import { LABELS, MANAGED_BY } from '../plan/labels.js';
import type { NetworkPlan, Plan, RegistryPlan } from '../plan/types.js';
import { certsDirContents, executeCertsDir, observeCertsDir, readSpecFile } from './certsDir.js';
import {
  checkRegistries,
  checkSubnet,
  diffActions,
  diffRegistries,
  registryNetworks,
  type RegistriesDiff,
  type RegistriesObserved,
} from './diffRegistries.js';
import { PUBLIC_MODE, readIfExists, SECRET_MODE, writeFileAtomic } from './files.js';
import { containerSpecHash, ensureHashKey, readHashKey, registryConfigWithSecrets, sha256 } from './registryConfig.js';
import {
  REGISTRY_STAGE_NAMES,
  type Action,
  type ApplyDeps,
  type EnsureTls,
  type RegistryStage,
  type StageReporter,
  type TlsMaterial,
} from './types.js';
import { servingTargets, waitServing, type ServingReport } from './waitServing.js';

export type { Action, ApplyDeps, TlsMaterial } from './types.js';
export { foreignOwner } from './diffRegistries.js';

type Stages = ReturnType<typeof stageRunner>;

/** Why config.yml of a mirror with an upstream CA carries the CA's hash. */
const UPSTREAM_CA_NOTE = 'a new CA recreates the mirror';

/**
 * Reads everything the registry executor decides on: the plan's networks and volumes, lo's containers, the
 * local image IDs, the config files, the certs.d tree, the hash key and the certificates. Changes nothing.
 */
export async function observeRegistries(plan: Plan, docker: DockerClients, now: Date = new Date()): Promise<RegistriesObserved> {
  const nets = registryNetworks(plan);
  const paths = plan.registries.flatMap((r) => [
    r.configPath,
    ...(r.replica ? [r.replica.configPath, r.replica.supervisorPath] : []),
    ...(r.upstreamCa ? [r.upstreamCa.path] : []),
  ]);
  const [networks, containers, volumes, images, files, certsDir, hashKey, tls] = await Promise.all([
    Promise.all(nets.map(async (n) => [n.name, await docker.networks.inspect(n.name)] as const)),
    docker.containers.list([`${LABELS.managedBy}=${MANAGED_BY}`]),
    Promise.all([...new Set(plan.registries.map((r) => r.volume))].map(async (v) => [v, await docker.volumes.inspect(v)] as const)),
    Promise.all([...new Set(plan.registries.map((r) => r.image))].map(async (ref) => [ref, await docker.images.id(ref)] as const)),
    Promise.all(paths.map(async (p) => [p, await readIfExists(p)] as const)),
    observeCertsDir(plan),
    plan.registries.some((r) => r.credentials) ? readHashKey(plan.paths.stateDir) : null,
    observeTls(plan, now),
  ]);
  return {
    now,
    networks: Object.fromEntries(networks),
    containers,
    volumes: Object.fromEntries(volumes),
    images: Object.fromEntries(images),
    files: Object.fromEntries(files),
    certsDir,
    hashKey,
    tls,
  };
}

/** The CA and every planned certificate, judged as ensureTls will judge them (names, key, CA, expiry). */
async function observeTls(plan: Plan, now: Date): Promise<RegistriesObserved['tls']> {
  if (!plan.tls.enabled) return { caCertPem: null, certificates: {} };
  // node-forge loads with the TLS code, when certificates are needed (not for `lo registry status`).
  const [caCertPem, { reissueReason }] = await Promise.all([readIfExists(plan.tls.caCertPath), import('./tls/leaf.js')]);
  const certificates = await Promise.all(
    plan.tls.certificates.map(async (c) => {
      const [certPem, keyPem] = await Promise.all([readIfExists(c.certPath), readIfExists(c.keyPath)]);
      const reissue =
        caCertPem === null
          ? certPem === null && keyPem === null
            ? 'missing'
            : 'new CA'
          : reissueReason({ certPem, keyPem }, c, { certPem: caCertPem }, now);
      return [c.id, { certPem, keyPresent: keyPem !== null, reissue }] as const;
    }),
  );
  return { caCertPem, certificates: Object.fromEntries(certificates) };
}

/**
 * Observe and diff, inside the stages the failures belong to: Docker unreachable, another project's objects or
 * a network of another subnet fail `networks`; a missing credential variable fails `registries`.
 */
async function observeAndDiff(plan: Plan, deps: ApplyDeps, stage: Stages) {
  (deps.onProgress ?? ((): void => undefined))('networks');
  const observed = await stage.track('networks').run(async () => {
    const o = await observeRegistries(plan, deps.docker);
    checkRegistries(plan, o);
    return o;
  });
  // Secrets are read before anything is created too: a missing credential variable changes nothing. So are
  // the header values of hosts.toml files and the files the spec names (upstream CAs, endpoint TLS files).
  const env = deps.env ?? {};
  const { configs, upstreamCas, certsContents } = await stage.track('registries').run(async () => {
    const upstreamCas = new Map(
      await Promise.all(
        plan.registries.flatMap((r) =>
          r.upstreamCa ? [readSpecFile(r.upstreamCa.source).then((pem) => [r.name, pem.toString('utf8')] as const)] : [],
        ),
      ),
    );
    // A new upstream CA changes config.yml (this comment), so the mirror is recreated: Go reads its roots once.
    const caNote = (r: RegistryPlan): string => {
      const pem = upstreamCas.get(r.name);
      return pem === undefined ? '' : `# upstream CA sha256:${sha256(pem)} (${UPSTREAM_CA_NOTE})\n`;
    };
    return {
      configs: new Map(plan.registries.map((r) => [r.name, registryConfigWithSecrets(r, env) + caNote(r)])),
      upstreamCas,
      certsContents: await certsDirContents(plan, env),
    };
  });
  return { observed, configs, certsContents, upstreamCas, diff: diffRegistries(plan, observed, configs, { upstreamCas, certsContents }) };
}

/**
 * `--dry-run`: observes and returns the actions applyRegistries would take now, changing nothing (no file,
 * directory, key, certificate, image, network, volume or container is made, started or removed).
 */
export async function previewRegistries(plan: Plan, deps: ApplyDeps): Promise<Action[]> {
  const stage = stageRunner(deps.stages);
  const { diff } = await observeAndDiff(plan, deps, stage);
  for (const s of REGISTRY_STAGE_NAMES) stage.track(s).finish();
  return diffActions(diff);
}

/**
 * Makes the plan's registries real: networks, TLS material, config files, the containerd certs.d tree,
 * volumes and containers. Observes, diffs (the same diff `--dry-run` prints) and performs exactly the diff's
 * actions: what matches the plan is left alone (noop); drift recreates only the affected container and keeps
 * its volume. Returns what it did, in order.
 */
export async function applyRegistries(plan: Plan, deps: ApplyDeps): Promise<Action[]> {
  const progress = deps.onProgress ?? ((): void => undefined);
  const { docker } = deps;
  const stage = stageRunner(deps.stages);
  const { diff, configs, observed, certsContents, upstreamCas } = await observeAndDiff(plan, deps, stage);
  const networksDone = stage.track('networks');
  const registriesDone = stage.track('registries');

  // From here the independent steps run concurrently; each container waits only for what it needs (its
  // network, its volume, its files and certificate, the image), so containers start as early as possible.
  const nets = registryNetworks(plan);
  const networks = new Map(diff.networks.map((a, i) => [a.name, handled(networksDone.run(() => executeNetwork(docker, nets[i]!, a)))]));
  void Promise.all(networks.values()).then(
    () => networksDone.finish(),
    () => undefined,
  );
  // Only the images of containers to (re)create are pulled when missing.
  const refs = new Set(plan.registries.filter((_, i) => diff.registries[i]!.container.action !== 'noop').map((r) => r.image));
  const images = handled(registriesDone.run(() => Promise.all([...refs].map((ref) => docker.images.ensure(ref)))));
  let hashKey: Promise<Buffer> | undefined;
  const key = (): Promise<Buffer> => (hashKey ??= ensureHashKey(plan.paths.stateDir));
  const configFiles = handled(registriesDone.run(() => writeConfigFiles(plan, configs, upstreamCas, diff.files)));
  const tls = handled(
    (async () => {
      progress('certificates');
      const certs = await stage.once('tls', () => ensureCertificates(plan, deps.ensureTls, diff.certificates));
      progress('registry configuration and containerd certs.d');
      const caPem = certs.material?.caCertPem ?? (plan.tls.enabled ? await readIfExists(plan.tls.caCertPath) : null);
      const certsDir = await stage.once('certs.d', () => executeCertsDir(plan, caPem, diff.certsDir, certsContents));
      return { ...certs, certsDir, caPem };
    })(),
  );
  const volumes = plan.registries.map((r, i) => handled(registriesDone.run(() => executeVolume(docker, r, diff.registries[i]!.volume))));

  // A mirror's container runs its supervisor with the image's /bin/sh. An image no running one-container mirror
  // uses yet is looked at before any container is removed or created (in parallel with the TLS step), so a
  // shell-less custom image changes nothing.
  const shells = handled(
    registriesDone.run(async () => {
      const proven = new Set(
        observed.containers
          .filter((c) => c.labels[LABELS.role] === 'mirror' && !c.networkMode.startsWith('container:'))
          .map((c) => c.imageId),
      );
      const made = plan.registries.filter((r, i) => r.replica && diff.registries[i]!.container.action !== 'noop');
      if (made.length === 0) return;
      await images;
      const ids = new Map(
        await Promise.all([...new Set(made.map((r) => r.image))].map(async (ref) => [ref, await docker.images.id(ref)] as const)),
      );
      const unproven = new Map(made.filter((r) => !proven.has(ids.get(r.image) ?? '')).map((r) => [r.image, r] as const));
      await Promise.all([...unproven.values()].map((r) => checkSupervisorShellOnce(docker, r, ids.get(r.image), plan.paths.stateDir)));
    }),
  );

  const registryActions = await registriesDone.run(() =>
    Promise.all(
      plan.registries.map(async (r, i): Promise<Action[]> => {
        const d = diff.registries[i]!;
        const [{ material }, , , volumeAction] = await Promise.all([
          tls,
          configFiles,
          images,
          volumes[i]!,
          networks.get(r.network),
          shells,
        ]);
        progress(`container ${r.containerName}`);
        const replica = d.oldReplica ? [d.oldReplica.action] : [];
        if (d.container.action === 'noop') {
          if (d.existing && !d.existing.running) await docker.containers.start(d.existing.id);
          return [volumeAction, ...replica, d.container];
        }
        const certPem = await certificateFor(plan, r, material);
        const hash = containerSpecHash(
          r.labels[LABELS.specHash] ?? '',
          certPem,
          configs.get(r.name)!,
          r.credentials ? await key() : undefined,
        );
        // An old pair: the proxy first, it sits in the old replica's namespace, which holds the address.
        if (d.existing) await docker.containers.remove(d.existing.id);
        if (d.oldReplica) await docker.containers.remove(d.oldReplica.id);
        const made = await createAndStart(docker, containerSpec(r, hash), hash);
        const container: Action = made.created
          ? d.container
          : {
              kind: 'container',
              name: r.containerName,
              action: 'noop',
              reason: `${d.existing ? 'recreated' : 'created'} concurrently by another lo`,
            };
        return [volumeAction, ...replica, container];
      }),
    ),
  );
  const { actions: certActions, certsDir, caPem } = await tls;
  let containerActions = registryActions.flat();
  // The containers just (re)started may not listen yet: wait, bounded, until each answers (src/apply/waitServing.ts).
  if (deps.serving) {
    const targets = servingTargets(plan, containerActions);
    const reports = await registriesDone.run(() =>
      waitServing(targets, { docker, ca: caPem, ...deps.serving, ...(deps.onProgress ? { onProgress: deps.onProgress } : {}) }),
    );
    containerActions = withServing(containerActions, reports);
  }
  registriesDone.finish();
  return [...(await Promise.all(networks.values())), ...certActions, ...(await configFiles), ...certsDir, ...containerActions];
}

/** The container actions with what the wait found: `serving`, and why when it is not plain serving. */
function withServing(actions: Action[], reports: ServingReport[]): Action[] {
  const by = new Map(reports.map((r) => [r.container, r]));
  return actions.map((a): Action => {
    const r = a.kind === 'container' ? by.get(a.name) : undefined;
    if (!r) return a;
    const note = r.state === 'serving' ? undefined : `${r.state}: ${r.detail ?? ''}`.trim();
    return { ...a, serving: r.state, ...(note ? { reason: a.reason ? `${a.reason}; ${note}` : note } : {}) };
  });
}

/**
 * Reports the executor's stages: `once` wraps one piece of work; `track` covers a stage made of several
 * concurrent pieces (started with the first, finished by `finish`). The first failure of a stage is reported
 * with the stage, so the caller never guesses it from the error.
 */
function stageRunner(reporter: StageReporter | undefined) {
  const r = reporter ?? { start: () => undefined, done: () => undefined, failed: () => undefined };
  const tracker = (name: RegistryStage) => {
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
  const trackers = new Map<RegistryStage, ReturnType<typeof tracker>>();
  // One tracker per stage: its observe, diff and execute parts report one start and one end.
  const track = (name: RegistryStage): ReturnType<typeof tracker> => trackers.get(name) ?? trackers.set(name, tracker(name)).get(name)!;
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

async function executeVolume(docker: DockerClients, r: RegistryPlan, a: Action): Promise<Action> {
  if (a.action === 'create') await docker.volumes.ensure(r.volume, { ...r.labels });
  return a;
}

async function executeNetwork(docker: DockerClients, n: NetworkPlan, a: Action): Promise<Action> {
  if (a.action === 'noop') return a;
  const { state, created } = await docker.networks.ensure(n);
  checkSubnet(n, state.subnet);
  return created ? a : { kind: 'network', name: n.name, action: 'noop', reason: 'created concurrently by another lo' };
}

/** Writes the registries' config files (0600: they may hold secrets), their directories first. */
async function writeConfigFiles(
  plan: Plan,
  configs: ReadonlyMap<string, string>,
  upstreamCas: ReadonlyMap<string, string>,
  diff: readonly Action[],
): Promise<Action[]> {
  const content = new Map<string, string>();
  // A mirror's upstream CA (public: 0644) in `<configDir>/upstream-ca/`, read by its TLS client (SSL_CERT_DIR).
  const publicFiles = new Set<string>();
  for (const r of plan.registries) {
    content.set(r.configPath, configs.get(r.name)!);
    if (r.replica) content.set(r.replica.configPath, r.replica.config).set(r.replica.supervisorPath, r.replica.supervisor);
    if (r.upstreamCa) {
      content.set(r.upstreamCa.path, upstreamCas.get(r.name)!);
      publicFiles.add(r.upstreamCa.path);
    }
  }
  const dirs = new Set(
    plan.registries.flatMap((r) => [r.configDir, ...(r.tlsDir ? [r.tlsDir] : []), ...(r.upstreamCa ? [dirname(r.upstreamCa.path)] : [])]),
  );
  await Promise.all([...dirs].map((d) => mkdir(d, { recursive: true, mode: 0o700 })));
  return Promise.all(
    diff.map(async (a): Promise<Action> => {
      // The name is the path; the content may hold secrets and is never part of an action.
      const action = await writeFileAtomic(a.name, content.get(a.name)!, publicFiles.has(a.name) ? PUBLIC_MODE : SECRET_MODE);
      return action === a.action ? a : { kind: 'file', name: a.name, action };
    }),
  );
}

/** Runs the TLS step (issues or reuses the CA and leaves) and reports each certificate as the diff named it. */
async function ensureCertificates(
  plan: Plan,
  ensureTls: EnsureTls | undefined,
  diff: RegistriesDiff['certificates'],
): Promise<{ actions: Action[]; material: TlsMaterial | null }> {
  if (!plan.tls.enabled) return { actions: [], material: null };
  // node-forge loads with the TLS code, when certificates are needed (not for `lo registry status`).
  const fn = ensureTls ?? (await import('./tls/ensureTls.js')).ensureTls;
  const material = await fn(plan);
  if (!material) return { actions: [], material: null };
  const actions = Object.values(material.certificates).map((c): Action => {
    const predicted = diff.find((d) => d.id === c.id)?.action;
    const action = certAction(c.action);
    return predicted?.action === action ? predicted : { kind: 'certificate', name: c.certPath, action };
  });
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

/** The plan's container, labelled with the hash of what it runs (plan, certificate, config with secrets). */
function containerSpec(r: RegistryPlan, hash: string): ContainerSpec {
  return { ...r.container, labels: { ...r.labels, [LABELS.specHash]: hash } };
}

async function createAndStart(docker: DockerClients, spec: ContainerSpec, hash: string): Promise<{ created: boolean }> {
  const { state, created } = await docker.containers.create(spec);
  if (!created) {
    // The name was taken between our list and our create. Ours (same labels and hash) is fine; anything else
    // is not lo's to replace.
    if (state.labels[LABELS.managedBy] !== MANAGED_BY) {
      throw new LoError('E_DOCKER', `a container named ${spec.name} exists and was not created by lo`, {
        hint: `remove or rename it (\`${shellCommand(['docker', 'rm', '-f', spec.name])}\`) if it is not needed, then run again`,
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

/**
 * checkSupervisorShell once per image ID on this machine: an image ID names the image's content, so a shell found
 * in it stays found. The look-up (a container created, an archive read, the container removed) was the one step
 * every mirror of a cold `up` waited for; a marker file `<state>/image-checks/<id>` remembers it passed.
 */
async function checkSupervisorShellOnce(docker: DockerClients, r: RegistryPlan, imageId: string | null | undefined, stateDir: string) {
  const marker = imageId && /^sha256:[0-9a-f]{64}$/.test(imageId) ? join(stateDir, 'image-checks', imageId.replace(':', '-')) : undefined;
  if (marker && existsSync(marker)) return;
  await checkSupervisorShell(docker, r);
  if (marker) await writeFileAtomic(marker, 'has /bin/sh\n', PUBLIC_MODE).catch(() => undefined); // a marker not written only costs the look-up again
}

/**
 * Refuses (exit 5, nothing changed for this mirror) an image without /bin/sh for a mirror: its container's
 * entrypoint is `/bin/sh mirror.sh` (src/plan/offline.ts), which would fail at every start.
 */
async function checkSupervisorShell(docker: DockerClients, r: RegistryPlan): Promise<void> {
  // The look-up container is labelled lo's (and the test run's) but with a role no registry has.
  const labels: Record<string, string> = { ...r.labels, [LABELS.role]: 'image-check' };
  delete labels[LABELS.mirror];
  if (await docker.images.hasPath(r.image, '/bin/sh', labels)) return;
  throw new LoError(
    'E_REGISTRY_IMAGE',
    `image ${r.image} has no /bin/sh: mirror ${r.name}'s container runs its supervisor (proxy + read-only replica, docs/offline.md) with it; no registry container was removed or created`,
    {
      hint: `use a registry:2 image with a shell (the upstream alpine registry:2 has one; or add busybox as /bin/sh to yours) in LO_REGISTRY_IMAGE, then run \`lo registry up\` again`,
      exitCode: ExitCode.stepFailed,
    },
  );
}
