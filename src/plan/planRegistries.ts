import { join } from 'node:path';
import { BUILD_HOSTNAME, CACHE_HOSTNAME, HOST, SHARED_MIRROR_PREFIX } from '../spec/constants.js';
import type { ClusterSpec } from '../spec/types.js';
import { hostAddress, type ParsedCidr } from '../util/cidr.js';
import { specHash } from '../util/hash.js';
import { LABELS, type Scope } from './labels.js';
import { mirrorContainer, replicaFor } from './offline.js';
import { credentialsLabel, upstreamAccessLabel, type UpstreamCaDigests } from './planAddresses.js';
import type { BaseLabels } from './planNetworks.js';
import {
  REGISTRY_CONFIG_DIR,
  REGISTRY_DATA_DIR,
  REGISTRY_TLS_DIR,
  renderRegistryConfig,
  type RegistryConfigInput,
} from './render/renderRegistryConfig.js';
import type { ObservedProjectMirror, RegistryContainerPlan, RegistryPlan } from './types.js';

export const DEFAULT_REGISTRY_IMAGE = 'registry:2';

/**
 * Directory (in the mirror's config directory, mounted at /etc/lo/registry) with the upstream's CA. Go's TLS
 * client, which registry:2's proxy uses through http.DefaultTransport, reads the system bundle file and then
 * every file of the directories in SSL_CERT_DIR (crypto/x509 root_unix.go): the system CAs stay trusted.
 */
export const UPSTREAM_CA_DIR = 'upstream-ca';

export interface RegistryPlanContext {
  spec: ClusterSpec;
  projectDir: string;
  sharedDir: string;
  project: ParsedCidr;
  mirrorIps: Map<string, string>;
  image: string;
  labels: BaseLabels;
  /** This project's unshared mirrors as they run (observed by labels), kept under their names. */
  kept?: ObservedProjectMirror[];
  /** The content digests of the mirrors' upstream CA files (the `upstream-access` label). */
  upstreamCaDigests?: UpstreamCaDigests;
}

/** An observed unshared mirror's container name, unless it is a name the shared mirrors use. */
function keptName(kept: readonly ObservedProjectMirror[] | undefined, mirror: string): string | undefined {
  const found = kept?.find((k) => k.name === mirror);
  if (!found || found.containerName.startsWith(`${SHARED_MIRROR_PREFIX}-registry-`)) return undefined;
  return found.containerName;
}

type RegistryInput = Pick<
  RegistryPlan,
  'name' | 'role' | 'scope' | 'containerName' | 'volume' | 'network' | 'ip' | 'upstream' | 'registry' | 'hostnames' | 'push' | 'credentials'
> & { certFile: string; keyFile: string; upstreamCaFile?: string; upstreamAccess?: string };

export { SHARED_MIRROR_PREFIX };

/** Build and cache registries of the project, then one registry per mirror (shared or project scope). */
export function planRegistries(ctx: RegistryPlanContext): RegistryPlan[] {
  const { spec } = ctx;
  const net = spec.network.name;
  const sharedOn = spec.registries.shared.enabled;
  const inputs: RegistryInput[] = [];
  for (const [role, host, hostname] of [
    ['build', HOST.build, BUILD_HOSTNAME],
    ['cache', HOST.cache, CACHE_HOSTNAME],
  ] as const) {
    inputs.push({
      name: role,
      role,
      scope: 'project',
      containerName: `${net}-registry-${role}`,
      volume: `${net}-registry-${role}-data`,
      network: net,
      ip: hostAddress(ctx.project.base, host),
      hostnames: [hostname],
      push: true,
      certFile: 'registry.crt',
      keyFile: 'registry.key',
    });
  }
  for (const m of spec.registries.mirrors) {
    const scope: Scope = sharedOn ? 'shared' : 'project';
    // Shared: `lok8s-registry-<m>`; unshared: `<network>-mirror-<m>`, which never equals a shared name (no
    // project network starts with `lok8s-registry`: src/spec/rules.ts). An unshared mirror lo made under an
    // earlier name (found by its labels) keeps that name and its volume.
    const containerName = sharedOn
      ? `${SHARED_MIRROR_PREFIX}-registry-${m.name}`
      : (keptName(ctx.kept, m.name) ?? `${net}-mirror-${m.name}`);
    inputs.push({
      name: m.name,
      role: 'mirror',
      scope,
      containerName,
      volume: `${containerName}-data`,
      network: sharedOn ? spec.registries.shared.network.name : net,
      ip: ctx.mirrorIps.get(m.name)!,
      upstream: m.url,
      registry: m.registry,
      hostnames: [],
      push: false,
      ...(m.credentials ? { credentials: m.credentials } : {}),
      ...(m.tls?.caFile ? { upstreamCaFile: m.tls.caFile } : {}),
      ...withUpstreamAccess(upstreamAccessLabel(m, ctx.upstreamCaDigests ?? {})),
      certFile: sharedOn ? `${m.name}.crt` : 'registry.crt',
      keyFile: sharedOn ? `${m.name}.key` : 'registry.key',
    });
  }
  return inputs.map((r) => registryPlan(ctx, r));
}

const withUpstreamAccess = (label: string | undefined): { upstreamAccess?: string } =>
  label === undefined ? {} : { upstreamAccess: label };

function registryPlan(ctx: RegistryPlanContext, r: RegistryInput): RegistryPlan {
  const tls = ctx.spec.registries.tls;
  const scheme = tls ? 'https' : 'http';
  const port = tls ? 443 : 80;
  const dir = r.scope === 'shared' ? ctx.sharedDir : ctx.projectDir;
  const configDir = join(dir, 'registries', r.name);
  // Credentials are never part of the input: the executor resolves them and passes them to the renderer.
  const configInput: RegistryConfigInput = {
    port,
    tls: tls ? { certFile: r.certFile, keyFile: r.keyFile } : null,
    ...(r.upstream ? { proxy: { remoteurl: r.upstream } } : {}),
  };
  const { certFile: _c, keyFile: _k, upstreamCaFile, upstreamAccess, ...rest } = r;
  const tlsDir = tls ? join(dir, 'tls') : null;
  const plan: Omit<RegistryPlan, 'labels' | 'configInput' | 'container'> = {
    ...rest,
    port,
    scheme,
    endpoint: `${scheme}://${r.ip}`,
    image: ctx.image,
    configDir,
    configPath: join(configDir, 'config.yml'),
    config: renderRegistryConfig(configInput),
    tlsDir,
    certificateId: tls ? (r.scope === 'shared' ? `shared-${r.name}` : 'project') : null,
    ...(upstreamCaFile ? { upstreamCa: { source: upstreamCaFile, path: join(configDir, UPSTREAM_CA_DIR, 'ca.crt') } } : {}),
  };
  // The hash covers the fields above (what it always covered); configInput and container derive from them.
  // Not the upstream CA's source path: its content is in config.yml (a digest note, written at apply), and
  // projects sharing a mirror keep the same CA at different paths (they would recreate it in turn).
  const hashed = { ...plan, labels: undefined, ...(plan.upstreamCa ? { upstreamCa: { path: plan.upstreamCa.path } } : {}) };
  const labels = {
    ...ctx.labels(r.scope, r.role),
    ...(r.role === 'mirror'
      ? {
          [LABELS.mirror]: r.name,
          [LABELS.registry]: r.registry!,
          [LABELS.upstream]: r.upstream!,
          [LABELS.credentials]: credentialsLabel(r.credentials),
          ...(upstreamAccess !== undefined ? { [LABELS.upstreamAccess]: upstreamAccess } : {}),
          ...(r.scope === 'shared' ? { [LABELS.createdBy]: ctx.spec.name } : {}),
        }
      : {}),
    [LABELS.scheme]: scheme,
    [LABELS.specHash]: specHash(hashed),
  };
  const entry: RegistryPlan = { ...plan, labels, configInput, container: containerPlan(plan) };
  if (plan.upstreamCa) entry.container.env = [`SSL_CERT_DIR=${REGISTRY_CONFIG_DIR}/${UPSTREAM_CA_DIR}`];
  if (r.role !== 'mirror') return entry;
  // A mirror: one container, its supervisor running the proxy and the read-only replica (src/plan/offline.ts).
  // The hash covers the replica and the supervisor too: a new script or replica config recreates the container.
  const replica = replicaFor(entry);
  const container = mirrorContainer(entry.container);
  return {
    ...entry,
    container,
    replica,
    labels: { ...labels, [LABELS.specHash]: specHash({ ...hashed, replica, container }) },
  };
}

/** How the registry container runs; its labels are the registry's, with the container hash set at apply. */
function containerPlan(
  r: Pick<RegistryPlan, 'containerName' | 'image' | 'network' | 'ip' | 'configDir' | 'tlsDir' | 'volume'>,
): RegistryContainerPlan {
  return {
    name: r.containerName,
    image: r.image,
    cmd: [`${REGISTRY_CONFIG_DIR}/config.yml`],
    network: r.network,
    ip: r.ip,
    // Directories, not files, are mounted: an atomic rename inside them is visible to the container.
    binds: [
      { source: r.configDir, target: REGISTRY_CONFIG_DIR, readOnly: true },
      ...(r.tlsDir ? [{ source: r.tlsDir, target: REGISTRY_TLS_DIR, readOnly: true }] : []),
    ],
    volumes: [{ name: r.volume, target: REGISTRY_DATA_DIR }],
    restart: 'always',
  };
}
