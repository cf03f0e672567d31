import { stringify as stringifyYaml } from 'yaml';
import type { Plan, RegistryPlan } from '../types.js';

export const LOCAL_REGISTRY_HOSTING = { namespace: 'kube-public', name: 'local-registry-hosting' } as const;
export const LO_REGISTRIES = { namespace: 'kube-system', name: 'lo-registries' } as const;
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

export function registryListing(plan: Plan): RegistryListing[] {
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
  }));
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
  const listing = {
    project: plan.project.name,
    domain: plan.project.domain,
    tls: plan.tls.enabled,
    registries: registryListing(plan),
  };
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
