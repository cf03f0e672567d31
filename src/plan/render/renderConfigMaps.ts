import { stringify as stringifyYaml } from 'yaml';
import { resolveHosts, type Capability } from '../containerdHosts.js';
import { cacheRepoPrefix } from '../offline.js';
import type { Plan, RegistryPlan } from '../types.js';

export const LOCAL_REGISTRY_HOSTING = { namespace: 'kube-public', name: 'local-registry-hosting' } as const;
export const LO_REGISTRIES = { namespace: 'kube-system', name: 'lo-registries' } as const;
/** Version of the `registries.yaml` document in `kube-system/lo-registries` (docs/registries.md#the-lo-registries-configmap). */
export const LO_REGISTRIES_API_VERSION = 'lo.lok8s.dev/registries/v1';
/**
 * KEP-1755's `help`: where users read how to use the registry. lo has no published docs site yet, so this is
 * kind's page on pushing to a local registry (the same workflow: push to `host`, use the image in pods).
 */
export const PROVISION_HELP_URL = 'https://kind.sigs.k8s.io/docs/user/local-registry/';

export interface ConfigMapManifest {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  data: Record<string, string>;
}

/** One registry as listed in the kube-system ConfigMap. */
export interface RegistryListing {
  name: string;
  role: RegistryPlan['role'];
  /** host[:port] to push/pull with, e.g. 10.125.125.101 */
  address: string;
  ip: string;
  port: number;
  scheme: 'http' | 'https';
  network: string;
  shared: boolean;
  push: boolean;
  hostnames: string[];
  registry?: string;
  upstream?: string;
  /**
   * The registry names whose images containerd fetches from it: the build and cache registries' own names
   * (and address), a mirror's registry; the cache also serves the images pinned for each mirrored registry.
   */
  serves: string[];
  /** A mirror's read-only replica (serves what the proxy cached while the proxy or the upstream is down). */
  replica?: string;
}

/** A host containerd uses for a registry that lo does not run (`spec.registries.hosts`), in containerd's order. */
export interface EndpointListing {
  /** The registry name containerd sees, or `*` for every registry without an entry of its own. */
  registry: string;
  url: string;
  capabilities: Capability[];
  overridePath: boolean;
}

/** The `registries.yaml` document of `kube-system/lo-registries`. */
export interface RegistriesListing {
  apiVersion: typeof LO_REGISTRIES_API_VERSION;
  project: string;
  domain: string;
  tls: boolean;
  /** true: nodes never fall back to the real upstream of a mirrored registry. */
  disableDefaultEndpoint: boolean;
  /** The P2P node mirror each node's containerd tries first (absent when P2P is off). */
  p2p?: { endpoint: string };
  registries: RegistryListing[];
  /** Present when the spec names endpoints lo does not run. */
  endpoints?: EndpointListing[];
}

/** host[:port], leaving out the port the scheme implies. */
export function registryAddress(r: Pick<RegistryPlan, 'ip' | 'port' | 'scheme'>): string {
  const implied = r.scheme === 'https' ? 443 : 80;
  return r.port === implied ? r.ip : `${r.ip}:${r.port}`;
}

export function buildRegistry(plan: Plan): RegistryPlan {
  const build = plan.registries.find((r) => r.role === 'build');
  if (!build) throw new Error('plan has no build registry');
  return build;
}

/** What each registry serves: see RegistryListing.serves. */
function servesOf(plan: Pick<Plan, 'registries'>, r: RegistryPlan): string[] {
  if (r.role === 'mirror') return r.registry ? [r.registry] : [];
  const own = [...r.hostnames, registryAddress(r)];
  if (r.role !== 'cache') return own;
  const pinned = plan.registries.filter((m) => m.role === 'mirror' && m.registry && cacheRepoPrefix(m.registry)).map((m) => m.registry!);
  return [...new Set([...own, ...pinned])];
}

export function registryListing(plan: Pick<Plan, 'registries'>): RegistryListing[] {
  return plan.registries.map((r) => ({
    name: r.name,
    role: r.role,
    address: registryAddress(r),
    ip: r.ip,
    port: r.port,
    scheme: r.scheme,
    network: r.network,
    shared: r.scope === 'shared',
    push: r.push,
    hostnames: r.hostnames,
    ...(r.registry ? { registry: r.registry } : {}),
    ...(r.upstream ? { upstream: r.upstream } : {}),
    serves: servesOf(plan, r),
    ...(r.replica ? { replica: r.replica.endpoint } : {}),
  }));
}

/**
 * The hosts of the plan's certs.d tree that are none of lo's (not a registry lo runs, its replica, or the
 * P2P agent) and not the registry's default endpoint: the endpoints the spec names. Read back from the
 * rendered hosts.toml files, so the list is exactly what containerd is told (header values are never listed).
 */
export function endpointListing(plan: Pick<Plan, 'registries' | 'containerd' | 'p2p'>): EndpointListing[] {
  const ours = new Set<string>();
  for (const r of plan.registries) {
    ours.add(new URL(r.endpoint).origin);
    if (r.replica) ours.add(new URL(r.replica.endpoint).origin);
  }
  if (plan.p2p.agents.length > 0) ours.add(new URL(plan.p2p.endpoint).origin);
  const out: EndpointListing[] = [];
  for (const file of plan.containerd.hosts) {
    const registry = file.host === '_default' ? '*' : file.host;
    let hosts;
    try {
      hosts = resolveHosts(registry === '*' ? 'example.invalid' : registry, file.content);
    } catch {
      continue; // not TOML lo can read: nothing to list (the planner only renders valid files)
    }
    for (const h of hosts) {
      if (h.source !== 'host' || ours.has(h.origin)) continue;
      const path = h.overridePath ? h.path : h.path.replace(/\/v2$/, '');
      out.push({ registry, url: `${h.origin}${path}`, capabilities: h.capabilities, overridePath: h.overridePath });
    }
  }
  return out;
}

/** The `registries.yaml` document of lo's own ConfigMap: every registry, what it serves, and the endpoints. */
export function registriesListing(plan: Plan): RegistriesListing {
  const endpoints = endpointListing(plan);
  return {
    apiVersion: LO_REGISTRIES_API_VERSION,
    project: plan.project.name,
    domain: plan.project.domain,
    tls: plan.tls.enabled,
    disableDefaultEndpoint: defaultEndpointDisabled(plan),
    ...(plan.p2p.enabled ? { p2p: { endpoint: plan.p2p.endpoint } } : {}),
    registries: registryListing(plan),
    ...(endpoints.length > 0 ? { endpoints } : {}),
  };
}

/** Whether every mirrored registry's hosts.toml leaves the upstream out (the global disableDefaultEndpoint). */
function defaultEndpointDisabled(plan: Plan): boolean {
  const mirrors = plan.registries.filter((r) => r.role === 'mirror' && r.registry);
  if (mirrors.length === 0) return false;
  return mirrors.every((m) => {
    const file = plan.containerd.hosts.find((h) => h.host === m.registry);
    if (!file) return false;
    return !resolveHosts(m.registry!, file.content).some((h) => m.upstream && h.origin === new URL(m.upstream).origin);
  });
}

/**
 * The cluster's registry ConfigMaps: KEP-1755's `kube-public/local-registry-hosting`
 * (https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry)
 * pointing tools at the build registry, and `kube-system/lo-registries` listing every registry lo runs
 * for this cluster. Pure.
 */
export function renderConfigMaps(plan: Plan): ConfigMapManifest[] {
  const build = buildRegistry(plan);
  const labels = { 'app.kubernetes.io/managed-by': 'lo', 'dev.lok8s.lo/project': plan.project.name };
  const hosting = {
    // The host pushes to the build registry's address (the CA is trusted with `lo trust`).
    host: registryAddress(build),
    // containerd on every node resolves lok8s.local through certs.d/lok8s.local/hosts.toml.
    hostFromContainerRuntime: build.hostnames[0] ?? registryAddress(build),
    // Pods reach the registry's address through their node, which sits on the project network.
    hostFromClusterNetwork: registryAddress(build),
    help: PROVISION_HELP_URL,
  };
  const listing = registriesListing(plan);
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { ...LOCAL_REGISTRY_HOSTING, labels },
      data: { 'localRegistryHosting.v1': stringifyYaml(hosting) },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { ...LO_REGISTRIES, labels },
      data: { 'registries.yaml': stringifyYaml(listing, { lineWidth: 0 }) },
    },
  ];
}

/** A multi-document YAML stream for `kubectl apply -f -`. */
export function renderManifestsYaml(manifests: readonly object[]): string {
  return manifests.map((m) => stringifyYaml(m, { lineWidth: 0 })).join('---\n');
}
