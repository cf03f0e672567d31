import { join } from 'node:path';
import type { LoPaths } from '../runtime/paths.js';
import type { ClusterSpec, MirrorSpec } from '../spec/types.js';
import { BUILD_HOSTNAME, CACHE_HOSTNAME, DEFAULT_MIRRORS, DYNAMIC_RANGE_SUFFIX, HOST, MAX_BRIDGE_NAME } from '../spec/constants.js';
import { PlanConflictError } from '../errors/loError.js';
import { renderHostsToml, type HostEntry } from './render/renderHostsToml.js';
import { renderRegistryConfig } from './render/renderRegistryConfig.js';
import { hostAddress, hostPart, inSubnet, parseSubnet24, type ParsedCidr } from '../util/cidr.js';
import { specHash } from '../util/hash.js';
import { LO_VERSION } from '../version.js';
import { LABELS, MANAGED_BY, SHARED_PROJECT, type Scope } from './labels.js';
import { mirrorHostEntries, replicaFor } from './offline.js';
import type {
  CertificatePlan,
  ClusterNodePlan,
  FilePlan,
  HostsFilePlan,
  NetworkPlan,
  ObservedShared,
  Plan,
  RegistryPlan,
} from './types.js';
import { EMPTY_OBSERVED } from './types.js';

export interface PlanOptions {
  paths: LoPaths;
  /** What already runs on the shared network (empty when nothing runs). */
  observed?: ObservedShared;
  registryImage?: string;
  /** Extra labels on every object (tests add a run id so they can clean up after themselves). */
  extraLabels?: Record<string, string>;
  /**
   * false: plan for status and teardown, where a conflict with the running shared mirrors (TLS setting, URL,
   * credentials) must not stop the user from looking or cleaning up. Default true.
   */
  strict?: boolean;
}

export const NODE_CERTS_DIR = '/etc/containerd/certs.d';
export const NODE_CA_FILE = `${NODE_CERTS_DIR}/_lo/ca.crt`;
export const DEFAULT_REGISTRY_IMAGE = 'registry:2';
const PULL: HostEntry['capabilities'] = ['pull', 'resolve'];
const PUSH: HostEntry['capabilities'] = ['pull', 'resolve', 'push'];

/**
 * Turns a validated spec and the observed shared-network state into the exact networks, registries,
 * certificates and files that provisioning creates. Pure: no I/O, deterministic.
 */
export function planCluster(spec: ClusterSpec, opts: PlanOptions): Plan {
  const observed = opts.observed ?? EMPTY_OBSERVED;
  const image = opts.registryImage ?? DEFAULT_REGISTRY_IMAGE;
  const extra = opts.extraLabels ?? {};
  const { stateDir, caRoot } = opts.paths;
  const projectDir = join(stateDir, 'projects', spec.name);
  const sharedDir = join(stateDir, 'shared');
  const tls = spec.registries.tls;
  const scheme = tls ? 'https' : 'http';
  const port = tls ? 443 : 80;
  const project = parseSubnet24(spec.network.cidr) as ParsedCidr;
  const shared = parseSubnet24(spec.registries.shared.network.cidr) as ParsedCidr;
  const sharedOn = spec.registries.shared.enabled;

  const baseLabels = (scope: Scope, role: string): Record<string, string> => ({
    ...extra,
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.project]: scope === 'shared' ? SHARED_PROJECT : spec.name,
    [LABELS.scope]: scope,
    [LABELS.role]: role,
    [LABELS.version]: LO_VERSION,
  });

  const networks: NetworkPlan[] = [networkPlan('project', spec.network.name, project, spec.network.name)];
  if (sharedOn) {
    const name = spec.registries.shared.network.name;
    networks.push(networkPlan('shared', name, shared, sharedBridgeName(name)));
  }

  function networkPlan(role: 'project' | 'shared', name: string, cidr: ParsedCidr, bridgeName: string): NetworkPlan {
    const scope: Scope = role === 'shared' ? 'shared' : 'project';
    const body = {
      role,
      name,
      subnet: `${cidr.network}/24`,
      gateway: hostAddress(cidr.base, HOST.gateway),
      ipRange: `${hostAddress(cidr.base, DYNAMIC_RANGE_SUFFIX.host)}/${DYNAMIC_RANGE_SUFFIX.prefix}`,
      bridgeName,
    };
    return { ...body, labels: { ...baseLabels(scope, 'network'), [LABELS.specHash]: specHash(body) } };
  }

  // Mirror addresses: on the shared network they must not depend on one project's list order.
  const mirrorIps = sharedOn
    ? allocateSharedIps(spec, observed, shared, opts.strict ?? true)
    : allocateProjectIps(spec.registries.mirrors, project);

  const tlsDirProject = join(projectDir, 'tls');
  const tlsDirShared = join(sharedDir, 'tls');
  const registries: RegistryPlan[] = [];
  const addRegistry = (
    r: Omit<
      RegistryPlan,
      'config' | 'configPath' | 'configDir' | 'labels' | 'tlsDir' | 'certificateId' | 'image' | 'endpoint' | 'port' | 'scheme'
    > & { certFile: string; keyFile: string },
  ): void => {
    const dir = r.scope === 'shared' ? sharedDir : projectDir;
    const configDir = join(dir, 'registries', r.name);
    const config = renderRegistryConfig({
      port,
      tls: tls ? { certFile: r.certFile, keyFile: r.keyFile } : null,
      ...(r.upstream ? { proxy: { remoteurl: r.upstream } } : {}),
    });
    const { certFile: _c, keyFile: _k, ...rest } = r;
    const plan: Omit<RegistryPlan, 'labels'> = {
      ...rest,
      port,
      scheme,
      endpoint: `${scheme}://${r.ip}`,
      image,
      configDir,
      configPath: join(configDir, 'config.yml'),
      config,
      tlsDir: tls ? (r.scope === 'shared' ? tlsDirShared : tlsDirProject) : null,
      certificateId: tls ? (r.scope === 'shared' ? `shared-${r.name}` : 'project') : null,
    };
    const hashed = { ...plan, labels: undefined };
    const entry: RegistryPlan = {
      ...plan,
      labels: {
        ...baseLabels(r.scope, r.role),
        ...(r.role === 'mirror'
          ? {
              [LABELS.mirror]: r.name,
              [LABELS.registry]: r.registry!,
              [LABELS.upstream]: r.upstream!,
              [LABELS.credentials]: credentialsLabel(r.credentials),
              ...(r.scope === 'shared' ? { [LABELS.createdBy]: spec.name } : {}),
            }
          : {}),
        [LABELS.scheme]: scheme,
        [LABELS.specHash]: specHash(hashed),
      },
    };
    registries.push(r.role === 'mirror' ? { ...entry, replica: replicaFor(entry) } : entry);
  };

  const net = spec.network.name;
  for (const [role, host, hostname] of [
    ['build', HOST.build, BUILD_HOSTNAME],
    ['cache', HOST.cache, CACHE_HOSTNAME],
  ] as const) {
    addRegistry({
      name: role,
      role,
      scope: 'project',
      containerName: `${net}-registry-${role}`,
      volume: `${net}-registry-${role}-data`,
      network: net,
      ip: hostAddress(project.base, host),
      hostnames: [hostname],
      push: true,
      certFile: 'registry.crt',
      keyFile: 'registry.key',
    });
  }
  for (const m of spec.registries.mirrors) {
    const scope: Scope = sharedOn ? 'shared' : 'project';
    const containerName = sharedOn ? `lok8s-registry-${m.name}` : `${net}-registry-${m.name}`;
    addRegistry({
      name: m.name,
      role: 'mirror',
      scope,
      containerName,
      volume: `${containerName}-data`,
      network: sharedOn ? spec.registries.shared.network.name : net,
      ip: mirrorIps.get(m.name)!,
      upstream: m.url,
      registry: m.registry,
      hostnames: [],
      push: false,
      ...(m.credentials ? { credentials: m.credentials } : {}),
      certFile: sharedOn ? `${m.name}.crt` : 'registry.crt',
      keyFile: sharedOn ? `${m.name}.key` : 'registry.key',
    });
  }

  // TLS: one leaf for the project covering every name of the plan; each shared mirror has its own leaf
  // in the per-user state dir, since it serves every project.
  const subjectNames = uniqueSorted(registries.flatMap((r) => [r.ip, ...r.hostnames, ...(r.registry ? [sanOf(r.registry)] : [])]));
  const certificates: CertificatePlan[] = [];
  if (tls) {
    certificates.push({
      id: 'project',
      scope: 'project',
      certPath: join(tlsDirProject, 'registry.crt'),
      keyPath: join(tlsDirProject, 'registry.key'),
      names: subjectNames,
      usedBy: registries.filter((r) => r.certificateId === 'project').map((r) => r.containerName),
    });
    for (const r of registries.filter((x) => x.scope === 'shared')) {
      certificates.push({
        id: `shared-${r.name}`,
        scope: 'shared',
        certPath: join(tlsDirShared, `${r.name}.crt`),
        keyPath: join(tlsDirShared, `${r.name}.key`),
        names: uniqueSorted([r.ip, sanOf(r.registry!)]),
        usedBy: [r.containerName],
      });
    }
  }

  // containerd certs.d: one hosts.toml per mirrored registry name, per hostname and per registry address.
  const certsDir = join(projectDir, 'certs.d');
  const p2pEndpoint = `http://127.0.0.1:${spec.registries.p2p.port}`;
  const ca = tls ? NODE_CA_FILE : undefined;
  const hosts: HostsFilePlan[] = [];
  const addHosts = (host: string, content: string): void => {
    hosts.push({ host, path: join(certsDir, host, 'hosts.toml'), content });
  };
  for (const r of registries) {
    const direct = { server: r.endpoint, serverCa: ca, serverCapabilities: r.push ? PUSH : PULL, hosts: [] };
    if (r.role === 'mirror') {
      const p2pHost: HostEntry[] = spec.registries.p2p.enabled
        ? [{ url: p2pEndpoint, capabilities: PULL, dialTimeout: spec.registries.p2p.dialTimeout }]
        : [];
      // The proxy, then its read-only replica (serves the cache while the proxy or upstream is down).
      const [mirrorHost, ...replicaHosts] = mirrorHostEntries(r, ca);
      addHosts(
        r.registry!,
        renderHostsToml(
          spec.registries.disableDefaultEndpoint
            ? // Air-gapped: the mirror itself is the server, so containerd never falls back to the internet.
              { server: r.endpoint, serverCa: ca, serverCapabilities: PULL, hosts: [...p2pHost, mirrorHost!, ...replicaHosts] }
            : { server: r.upstream, hosts: [...p2pHost, mirrorHost!, ...replicaHosts] },
        ),
      );
    }
    for (const name of r.hostnames) addHosts(name, renderHostsToml(direct));
    addHosts(r.ip, renderHostsToml(direct));
  }
  hosts.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));

  const nodes: ClusterNodePlan[] = [
    ...Array.from({ length: spec.nodes.controlPlane }, (_, i) => ({
      name: `${spec.name}-control-plane${i ? i + 1 : ''}`,
      role: 'control-plane' as const,
    })),
    ...Array.from({ length: spec.nodes.workers }, (_, i) => ({ name: `${spec.name}-worker${i ? i + 1 : ''}`, role: 'worker' as const })),
  ];

  const p2pKeyPath = join(projectDir, 'p2p', 'swarm.key');
  const files: FilePlan[] = [
    ...hosts.map((h) => ({ path: h.path, kind: 'hosts.toml' as const, mode: 0o644 })),
    ...(tls ? [{ path: join(certsDir, '_lo', 'ca.crt'), kind: 'ca' as const, mode: 0o644 }] : []),
    ...registries.flatMap((r) => [
      { path: r.configPath, kind: 'registry-config' as const, mode: 0o600 },
      ...(r.replica ? [{ path: r.replica.configPath, kind: 'registry-config' as const, mode: 0o600 }] : []),
    ]),
    ...certificates.flatMap((c) => [
      { path: c.certPath, kind: 'certificate' as const, mode: 0o644 },
      { path: c.keyPath, kind: 'key' as const, mode: 0o600 },
    ]),
    ...(spec.registries.p2p.enabled ? [{ path: p2pKeyPath, kind: 'p2p-key' as const, mode: 0o600 }] : []),
    { path: join(projectDir, 'kind-config.yaml'), kind: 'kind-config' as const, mode: 0o644 },
  ];

  const { file: _file, ...specForHash } = spec;
  return {
    apiVersion: 'lo.lok8s.dev/plan/v1',
    project: { name: spec.name, domain: spec.domain, slot: spec.slot, file: spec.file, specHash: specHash(specForHash) },
    paths: { stateDir, projectDir, sharedDir, caRoot },
    networks,
    registries,
    tls: {
      enabled: tls,
      caRoot,
      caCertPath: join(caRoot, 'rootCA.pem'),
      caKeyPath: join(caRoot, 'rootCA-key.pem'),
      subjectNames: tls ? subjectNames : [],
      certificates,
    },
    containerd: {
      certsDir,
      nodeCertsDir: NODE_CERTS_DIR,
      caFile: tls ? join(certsDir, '_lo', 'ca.crt') : null,
      nodeCaFile: tls ? NODE_CA_FILE : null,
      hosts,
    },
    cluster: {
      name: spec.name,
      domain: spec.domain,
      kubernetesVersion: spec.kubernetesVersion,
      image: `kindest/node:${spec.kubernetesVersion}`,
      network: net,
      nodes,
      hostPorts: spec.nodes.hostPorts,
      maxConcurrentDownloads: spec.nodes.maxConcurrentDownloads,
      kubeconfigPath: join(projectDir, 'kubeconfig'),
    },
    p2p: { ...spec.registries.p2p, keyPath: p2pKeyPath, endpoint: p2pEndpoint },
    files,
  };
}

/** Bridge names are at most 15 bytes; the shared network's default name is longer, so derive one. */
export function sharedBridgeName(networkName: string): string {
  return networkName.length <= MAX_BRIDGE_NAME ? networkName : `br-lo${specHash(networkName, 10)}`;
}

/** A certificate names hosts, not ports: `registry.corp.test:5000` -> `registry.corp.test`. */
function sanOf(registry: string): string {
  return registry.replace(/:[0-9]+$/, '');
}

function uniqueSorted(values: string[]): string[] {
  return [...new Set(values)].sort();
}

/** Default mirrors first in their fixed order, then the rest by name: independent of the spec's list order. */
export function canonicalMirrorOrder<T extends { name: string }>(mirrors: readonly T[]): T[] {
  const rank = (name: string): number => {
    const i = DEFAULT_MIRRORS.findIndex((d) => d.name === name);
    return i === -1 ? DEFAULT_MIRRORS.length : i;
  };
  return [...mirrors].sort((a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** `USER_VAR/PASS_VAR`, or empty without credentials: names only, never values. */
export function credentialsLabel(c: MirrorSpec['credentials']): string {
  return c ? `${c.usernameEnv}/${c.passwordEnv}` : '';
}

function allocateSharedIps(spec: ClusterSpec, observed: ObservedShared, shared: ParsedCidr, strict: boolean): Map<string, string> {
  const scheme = spec.registries.tls ? 'https' : 'http';
  const running = new Map(observed.mirrors.map((m) => [m.name, m]));
  const mismatched = observed.mirrors.find((m) => m.scheme && m.scheme !== scheme);
  if (strict && mismatched && spec.registries.mirrors.length > 0) {
    const theirs = mismatched.scheme === 'https' ? 'true' : 'false';
    throw new PlanConflictError(
      `${spec.file}: spec.registries.tls is ${spec.registries.tls} but the shared mirrors already run with tls: ${theirs} (mirror ${mismatched.name}${mismatched.project ? `, created by project ${mismatched.project}` : ''})`,
      `set spec.registries.tls: ${theirs} to use the running mirrors, or recreate them with \`lo registry clean --shared\`, or set spec.registries.shared.enabled: false`,
    );
  }
  const taken = new Set<number>(
    [...observed.mirrors.map((m) => m.ip), ...(observed.usedAddresses ?? [])]
      .filter((ip) => inSubnet(ip, `${shared.network}/24`))
      .map(hostPart),
  );
  const ips = new Map<string, string>();
  for (const m of canonicalMirrorOrder(spec.registries.mirrors)) {
    const existing = running.get(m.name);
    if (existing) {
      if (strict) checkSameMirror(spec, m, existing);
      ips.set(m.name, existing.ip);
      continue;
    }
    let host: number = HOST.sharedMirrorFirst;
    while (taken.has(host) && host <= HOST.staticLast) host++;
    if (host > HOST.staticLast) {
      throw new PlanConflictError(
        `${spec.file}: spec.registries.mirrors[${spec.registries.mirrors.indexOf(m)}]: no free shared mirror address for "${m.name}": .${HOST.sharedMirrorFirst}-.${HOST.staticLast} of ${shared.network}/24 are all in use`,
        'remove unused shared mirrors with `lo registry clean --shared`, or set spec.registries.shared.enabled: false',
      );
    }
    taken.add(host);
    ips.set(m.name, hostAddress(shared.base, host));
  }
  return ips;
}

function checkSameMirror(spec: ClusterSpec, m: MirrorSpec, existing: ObservedShared['mirrors'][number]): void {
  const norm = (u: string): string => u.replace(/\/+$/, '');
  const owner = existing.project ? `project ${existing.project}` : 'another project';
  const at = `spec.registries.mirrors[${spec.registries.mirrors.indexOf(m)}]`;
  if (norm(existing.url) !== norm(m.url)) {
    throw new PlanConflictError(
      `${spec.file}: ${at}.url: shared mirror "${m.name}" already runs for ${owner} with url ${existing.url}; this spec asks for ${m.url}`,
      `use url ${existing.url} for "${m.name}", give this mirror another name, or set spec.registries.shared.enabled: false`,
    );
  }
  if (existing.registry && existing.registry !== m.registry) {
    throw new PlanConflictError(
      `${spec.file}: ${at}.registry: shared mirror "${m.name}" already runs for ${owner} as registry ${existing.registry}; this spec says ${m.registry}`,
      `use registry ${existing.registry} for "${m.name}", or give this mirror another name`,
    );
  }
  // Mirrors with different credentials would recreate each other on every `up` of either project.
  if (existing.credentials !== undefined && existing.credentials !== credentialsLabel(m.credentials)) {
    const theirs = existing.credentials ? `credentials from $${existing.credentials.replace('/', ' and $')}` : 'no credentials';
    const ours = m.credentials ? `credentials from $${m.credentials.usernameEnv} and $${m.credentials.passwordEnv}` : 'no credentials';
    throw new PlanConflictError(
      `${spec.file}: ${at}.credentials: shared mirror "${m.name}" already runs for ${owner} with ${theirs}; this spec asks for ${ours}`,
      `use the same credentials variables for "${m.name}" in both specs, give this mirror another name, or set spec.registries.shared.enabled: false`,
    );
  }
}

function allocateProjectIps(mirrors: MirrorSpec[], project: ParsedCidr): Map<string, string> {
  const ips = new Map<string, string>();
  canonicalMirrorOrder(mirrors).forEach((m, i) => ips.set(m.name, hostAddress(project.base, HOST.projectMirrorFirst + i)));
  return ips;
}
