import { ExitCode, LoError } from '../errors/loError.js';
import type { ContainerState, NetworkState, VolumeState } from '../adapters/docker/index.js';
import { foreignOwnerOf, LABELS, MANAGED_BY, SHARED_PROJECT } from '../plan/labels.js';
import { shellCommand } from '../util/shell.js';
import type { NetworkPlan, Plan, RegistryPlan } from '../plan/types.js';
import { REPLICA_ROLE } from '../plan/offline.js';
import { diffCertsDir, fileAction, type CertsDirContents, type CertsDirState } from './certsDir.js';
import { containerSpecHash } from './registryConfig.js';
import type { Action } from './types.js';

/**
 * Everything the registry executor looks at before it changes anything (src/apply/applyRegistries.ts
 * `observeRegistries`): Docker objects, the files it writes, the certificates. The diff is computed from this
 * alone, so `--dry-run` and the real run decide the same way.
 */
export interface RegistriesObserved {
  /** When it was observed (certificate expiry is judged against it). */
  now: Date;
  /** The plan's networks by name (null: missing). */
  networks: Record<string, NetworkState | null>;
  /** Every container lo manages (label managed-by). */
  containers: ContainerState[];
  /** The plan's volumes by name (null: missing). */
  volumes: Record<string, VolumeState | null>;
  /** Local image ID per image reference of the plan (null: not pulled yet; pulled at apply). */
  images: Record<string, string | null>;
  /** Content of every registry config file the plan writes (null: missing). */
  files: Record<string, string | null>;
  certsDir: CertsDirState;
  /** Whether `<stateDir>/hash.key` exists (a new key changes the hash of every config with credentials). */
  hashKey: Buffer | null;
  tls: {
    /** The CA certificate, or null when the CA is made at apply. */
    caCertPem: string | null;
    /** Per certificate id: its PEM and why it must be (re)issued (null: it is kept as it is). */
    certificates: Record<string, { certPem: string | null; keyPresent: boolean; reissue: string | null }>;
  };
}

/** What the executor would do, per stage, in the order it reports it. Plain data. */
export interface RegistriesDiff {
  networks: Action[];
  certificates: Array<{ id: string; action: Action }>;
  files: Action[];
  certsDir: Action[];
  registries: Array<{
    name: string;
    volume: Action;
    /** An old separate replica container (removed first; the mirror's one container replaces the pair). */
    oldReplica?: { id: string; action: Action };
    /** The container lo made for this registry, when there is one. */
    existing?: { id: string; running: boolean };
    container: Action;
  }>;
}

/** The flat list of actions, in the executor's order (what `lo registry up` prints). */
export function diffActions(d: RegistriesDiff): Action[] {
  return [
    ...d.networks,
    ...d.certificates.map((c) => c.action),
    ...d.files,
    ...d.certsDir,
    ...d.registries.flatMap((r) => [r.volume, ...(r.oldReplica ? [r.oldReplica.action] : []), r.container]),
  ];
}

/** The networks the registry executor ensures: the shared one first, then the project's. */
export function registryNetworks(plan: Plan): NetworkPlan[] {
  return [plan.networks.find((n) => n.role === 'shared'), plan.networks.find((n) => n.role === 'project')].filter(
    (n): n is NetworkPlan => !!n,
  );
}

/**
 * The registry part of the plan against what exists: networks, certificates, files, the certs.d tree,
 * volumes and containers, each create / recreate / remove / noop with its reason. Pure. Refuses (typed error,
 * nothing changed) when an object of the plan's names belongs to another project or a network has another
 * subnet. `configs`: each registry's config.yml as written (with its secrets; never part of an action).
 */
export function diffRegistries(
  plan: Plan,
  o: RegistriesObserved,
  configs: ReadonlyMap<string, string>,
  extra: { upstreamCas?: ReadonlyMap<string, string>; certsContents?: CertsDirContents } = {},
): RegistriesDiff {
  const nets = registryNetworks(plan);
  checkRegistries(plan, o);
  const certificates = plan.tls.enabled
    ? plan.tls.certificates.map((c) => {
        const seen = o.tls.certificates[c.id];
        const fresh = !seen || (seen.certPem === null && !seen.keyPresent);
        const action: Action =
          seen && seen.reissue === null
            ? { kind: 'certificate', name: c.certPath, action: 'noop' }
            : fresh
              ? { kind: 'certificate', name: c.certPath, action: 'create' }
              : { kind: 'certificate', name: c.certPath, action: 'recreate', reason: seen.reissue ?? 'missing' };
        return { id: c.id, action };
      })
    : [];
  const files: Action[] = [
    ...plan.registries.map((r): Action => ({
      kind: 'file',
      name: r.configPath,
      action: fileAction(o.files[r.configPath], configs.get(r.name)!),
    })),
    // Mirrors: the replica's config (no proxy section, no secrets) and the supervisor script, next to config.yml.
    ...plan.registries.flatMap((r): Action[] =>
      r.replica
        ? [
            { kind: 'file', name: r.replica.configPath, action: fileAction(o.files[r.replica.configPath], r.replica.config) },
            { kind: 'file', name: r.replica.supervisorPath, action: fileAction(o.files[r.replica.supervisorPath], r.replica.supervisor) },
          ]
        : [],
    ),
    // Mirrors with tls.caFile: the upstream's CA copy in the config directory.
    ...plan.registries.flatMap((r): Action[] =>
      r.upstreamCa
        ? [{ kind: 'file', name: r.upstreamCa.path, action: fileAction(o.files[r.upstreamCa.path], extra.upstreamCas?.get(r.name) ?? '') }]
        : [],
    ),
  ];
  return {
    networks: nets.map((n) => networkAction(n, o.networks[n.name] ?? null)),
    certificates,
    files,
    certsDir: diffCertsDir(plan, o.certsDir, plan.tls.enabled ? o.tls.caCertPem : null, extra.certsContents),
    registries: plan.registries.map((r) => diffRegistry(plan, r, o, configs.get(r.name)!)),
  };
}

/**
 * Before anything is created, recreated, removed or mounted: nothing of the plan's names belongs to another
 * project, and no network of the plan's name has another subnet. Pure; throws a typed error (exit 2).
 */
export function checkRegistries(plan: Plan, o: RegistriesObserved): void {
  const nets = registryNetworks(plan);
  checkOwnership(plan, nets, o);
  for (const n of nets) {
    const have = o.networks[n.name];
    if (have) checkSubnet(n, have.subnet);
  }
}

function networkAction(n: NetworkPlan, have: NetworkState | null): Action {
  if (!have) return { kind: 'network', name: n.name, action: 'create', reason: `${n.subnet}, bridge ${n.bridgeName}` };
  const reason =
    have.bridgeName && have.bridgeName !== n.bridgeName ? `exists with bridge ${have.bridgeName} (plan: ${n.bridgeName})` : undefined;
  return { kind: 'network', name: n.name, action: 'noop', ...(reason ? { reason } : {}) };
}

/**
 * The container's spec hash as the apply will label it, or null when it is only known then (a certificate
 * is (re)issued, or the hash key for credentials is made): then it differs from any label that exists.
 */
function expectedHash(r: RegistryPlan, o: RegistriesObserved, config: string): string | null {
  let certPem: string | null = null;
  if (r.certificateId) {
    const cert = o.tls.certificates[r.certificateId];
    if (cert && cert.reissue !== null) return null;
    certPem = cert?.certPem ?? null;
  }
  if (r.credentials && !o.hashKey) return null;
  return containerSpecHash(r.labels[LABELS.specHash] ?? '', certPem, config, r.credentials ? o.hashKey! : undefined);
}

function diffRegistry(plan: Plan, r: RegistryPlan, o: RegistriesObserved, config: string): RegistriesDiff['registries'][number] {
  const volume: Action = { kind: 'volume', name: r.volume, action: o.volumes[r.volume] ? 'noop' : 'create' };
  const existing = findExisting(o.containers, plan, r);
  const present = existing ? { existing: { id: existing.id, running: existing.running } } : {};
  const created: Action = { kind: 'container', name: r.containerName, action: 'create', reason: `${r.endpoint} on ${r.network}` };
  // lo's earlier mirrors were two containers (a proxy in the network namespace of `<name>-replica`); now the
  // mirror's one container runs both (src/plan/offline.ts). Replace the pair, keep the volume.
  const oldReplica = r.replica ? findExisting(o.containers, plan, r, REPLICA_ROLE) : undefined;
  if (oldReplica) {
    const reason = 'proxy + replica pair -> one container running both (docs/offline.md), volume kept';
    return {
      name: r.name,
      volume,
      oldReplica: { id: oldReplica.id, action: { kind: 'container', name: oldReplica.name, action: 'remove', reason } },
      ...present,
      container: existing ? { kind: 'container', name: r.containerName, action: 'recreate', reason } : created,
    };
  }
  if (!existing) return { name: r.name, volume, container: created };
  const drift = driftOf(existing, r, expectedHash(r, o, config), o.images[r.image] ?? null);
  const container: Action = drift
    ? { kind: 'container', name: r.containerName, action: 'recreate', reason: drift }
    : {
        kind: 'container',
        name: r.containerName,
        action: 'noop',
        // created but not started (e.g. a concurrent lo is between create and start): the apply starts it.
        ...(existing.running ? {} : { reason: `started (was ${existing.status})` }),
      };
  return { name: r.name, volume, ...present, container };
}

/** The owner a project object's labels name, or null when it is this project's (or carries no id: adopted). */
export function foreignOwner(plan: Plan, labels: Record<string, string>): string | null {
  return foreignOwnerOf(plan.project.id, labels);
}

/**
 * Refuses (exit 2, nothing changed) when a project network, registry container or volume of the plan's names
 * is labelled as another project's: two specs with the same metadata.name in different directories.
 */
function checkOwnership(plan: Plan, nets: NetworkPlan[], o: RegistriesObserved): void {
  const objects: Array<[string, Record<string, string>]> = [
    ...nets.flatMap((n): Array<[string, Record<string, string>]> => {
      const have = o.networks[n.name];
      return n.role === 'project' && have ? [[`network ${n.name}`, have.labels]] : [];
    }),
    ...o.containers
      .filter((c) => c.labels[LABELS.managedBy] === MANAGED_BY && c.labels[LABELS.project] === plan.project.name)
      .map((c): [string, Record<string, string>] => [`container ${c.name}`, c.labels]),
    ...plan.registries
      .filter((r) => r.scope === 'project')
      .flatMap((r): Array<[string, Record<string, string>]> => {
        const v = o.volumes[r.volume];
        return v ? [[`volume ${v.name}`, v.labels]] : [];
      }),
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
export function checkSubnet(n: NetworkPlan, actual: string | null): void {
  if (actual === n.subnet) return;
  const ways =
    n.role === 'shared'
      ? `remove the shared registries and network with \`lo registry clean --shared\`, or set spec.registries.shared.network.cidr: ${actual ?? '<its subnet>'} in the spec`
      : `remove the network (\`lo registry clean\`, then \`${shellCommand(['docker', 'network', 'rm', n.name])}\` once nothing is attached), or set spec.network.cidr: ${actual ?? '<its subnet>'} in the spec`;
  throw new LoError(
    'E_NETWORK_MISMATCH',
    `network ${n.name} exists with subnet ${actual ?? '(none)'}, but the plan needs ${n.subnet}; nothing was changed`,
    {
      hint: ways,
      exitCode: ExitCode.badInput,
    },
  );
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

/** Why a container no longer matches the plan, or null when it does. `hash` null: it changes at apply. */
function driftOf(c: ContainerState, r: RegistryPlan, hash: string | null, imageId: string | null): string | null {
  if (c.name !== r.containerName) return `name ${c.name} -> ${r.containerName}`;
  if (imageId && c.imageId !== imageId) return `image ${r.image} changed`;
  if (hash === null || c.labels[LABELS.specHash] !== hash) return 'configuration or certificate changed';
  const net = c.networks[r.network];
  if (!net) return `not on network ${r.network} (on ${Object.keys(c.networks).join(', ') || 'none'})`;
  if (net.ip !== r.ip) return `address ${net.ip ?? 'none'} -> ${r.ip}`;
  if (c.status === 'exited' || c.status === 'dead') return `container was ${c.status}`;
  if (!c.volumes.some((v) => v.name === r.volume)) return `volume ${r.volume} not mounted`;
  return null;
}
