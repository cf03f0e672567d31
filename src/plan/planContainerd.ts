import { join } from 'node:path';
import { WILDCARD_HOST } from '../spec/accessRules.js';
import type { ClusterSpec, EndpointSpec, HostSpec } from '../spec/types.js';
import { defaultServer } from './containerdHosts.js';
import { cacheHostEntry, mirrorHostEntries } from './offline.js';
import { headerPlaceholder, renderHostsToml, type HostEntry, type HostsTomlInput } from './render/renderHostsToml.js';
import type { CertsFilePlan, ContainerdPlan, EndpointsPlan, HostsFilePlan, RegistryPlan } from './types.js';

export const NODE_CERTS_DIR = '/etc/containerd/certs.d';
export const NODE_CA_FILE = `${NODE_CERTS_DIR}/_lo/ca.crt`;
/** containerd's certs.d directory for registries without one of their own (the spec's `"*"`). */
export const DEFAULT_HOST_DIR = '_default';
const PULL: HostEntry['capabilities'] = ['pull', 'resolve'];
const PUSH: HostEntry['capabilities'] = ['pull', 'resolve', 'push'];
const PUBLIC = 0o644;
const SECRET = 0o600;

/** The agent endpoint as containerd on each node sees it (host networking). */
export function p2pEndpointOf(spec: ClusterSpec): string {
  return `http://127.0.0.1:${spec.registries.p2p.port}`;
}

/** The certs.d directory of a `spec.registries.hosts` key. */
export function hostDirOf(key: string): string {
  return key === WILDCARD_HOST ? DEFAULT_HOST_DIR : key;
}

/**
 * containerd certs.d: one hosts.toml per mirrored registry name, per `spec.registries.hosts` entry (`"*"` is
 * `_default`), per hostname and per registry address; and the endpoint TLS files those reference.
 */
export function planContainerd(spec: ClusterSpec, projectDir: string, registries: readonly RegistryPlan[]): ContainerdPlan {
  const tls = spec.registries.tls;
  const certsDir = join(projectDir, 'certs.d');
  const ca = tls ? NODE_CA_FILE : undefined;
  const hosts: HostsFilePlan[] = [];
  const files: CertsFilePlan[] = [];
  const addHosts = (host: string, input: HostsTomlInput): void => {
    const headerEnv = headerEnvOf(input);
    hosts.push({
      host,
      path: join(certsDir, host, 'hosts.toml'),
      content: renderHostsToml(input),
      // A header value (e.g. Authorization) is a secret: the file is 0600 (containerd on the node reads it as root).
      mode: headerEnv.length > 0 ? SECRET : PUBLIC,
      ...(headerEnv.length > 0 ? { headerEnv } : {}),
    });
  };
  // The node agent comes first: with P2P on for every registry, and for a registry with rewrites (which the
  // agent applies, forwarding the new name to the hosts after it) with P2P on or off.
  const agentHost: HostEntry[] = [{ url: p2pEndpointOf(spec), capabilities: PULL, dialTimeout: spec.registries.p2p.dialTimeout }];
  const p2pHostOf = (key: string): HostEntry[] =>
    spec.registries.p2p.enabled || (spec.registries.hosts[key]?.rewrites.length ?? 0) > 0 ? agentHost : [];
  const endpointsOf = (key: string): HostEntry[] =>
    (spec.registries.hosts[key]?.endpoints ?? []).map((e, i) => endpointEntry(e, i, hostDirOf(key), certsDir, files));
  const cache = registries.find((r) => r.role === 'cache');
  const mirrored = new Set<string>();
  for (const r of registries) {
    const direct: HostsTomlInput = { server: r.endpoint, serverCa: ca, serverCapabilities: r.push ? PUSH : PULL, hosts: [] };
    if (r.role === 'mirror') {
      const registry = r.registry!;
      mirrored.add(registry);
      // The project's cache (pinned images, by tag), the proxy, then its read-only replica (serves what the
      // proxy cached while the proxy or upstream is down), then the spec's own endpoints for this registry.
      const mirrorHosts = [...cacheHostEntry(cache, registry, ca), ...mirrorHostEntries(r, ca)];
      const all = [...p2pHostOf(registry), ...mirrorHosts, ...endpointsOf(registry)];
      addHosts(
        registry,
        disabledDefault(spec, registry)
          ? // Air-gapped: the mirror itself is the server, so containerd never falls back to the internet.
            { server: r.endpoint, serverCa: ca, serverCapabilities: PULL, hosts: all }
          : { server: r.upstream, hosts: all },
      );
    }
    for (const name of r.hostnames) addHosts(name, direct);
    addHosts(r.ip, direct);
  }
  // Registries lo does not mirror but the spec configures: the P2P agent, the cache, the endpoints, then the
  // registry itself unless its default endpoint is disabled. `"*"` (`_default`) has no cache prefix and no
  // server: containerd's own default endpoint for each registry follows unless disabled.
  for (const key of Object.keys(spec.registries.hosts)) {
    if (mirrored.has(key)) continue;
    const endpoints = endpointsOf(key);
    const before = [...p2pHostOf(key), ...(key === WILDCARD_HOST ? [] : cacheHostEntry(cache, key, ca))];
    addHosts(hostDirOf(key), withDefault(spec.registries.hosts[key]!, key, before, endpoints));
  }
  hosts.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  const endpoints = Object.entries(spec.registries.hosts).map(([key, h]): EndpointsPlan => ({
    registry: key,
    host: hostDirOf(key),
    endpoints: h.endpoints.map((e) => ({
      url: e.url,
      capabilities: e.capabilities,
      overridePath: e.overridePath,
      skipVerify: e.tls.insecureSkipVerify,
      ca: files.find((f) => f.source === e.tls.caFile && f.path.startsWith(join(certsDir, hostDirOf(key), '/')))?.nodePath ?? null,
      clientCertificate: e.tls.certFile !== undefined,
      headers: Object.entries(e.headers).map(([name, v]) => `${name}: ${headerPlaceholder(v.env)}`),
    })),
    defaultEndpoint: disabledDefault(spec, key)
      ? null
      : key === WILDCARD_HOST
        ? 'per registry'
        : (spec.registries.mirrors.find((m) => m.registry === key)?.url ?? defaultServer(key)),
    rewrites: h.rewrites.map((r) => ({ pattern: r.pattern, replacement: r.replacement })),
  }));
  return {
    certsDir,
    nodeCertsDir: NODE_CERTS_DIR,
    caFile: tls ? join(certsDir, '_lo', 'ca.crt') : null,
    nodeCaFile: tls ? NODE_CA_FILE : null,
    hosts,
    files,
    endpoints,
  };
}

function disabledDefault(spec: ClusterSpec, registry: string): boolean {
  return spec.registries.hosts[registry]?.disableDefaultEndpoint ?? spec.registries.disableDefaultEndpoint;
}

/**
 * The hosts.toml input of a registry lo does not mirror. containerd always tries the top-level `server`
 * last, and without one the registry's default endpoint (hosts.go): so a disabled default endpoint makes
 * the last endpoint the server too (tried once more, as the mirror is in the air-gapped mirror case).
 */
function withDefault(host: HostSpec, key: string, before: HostEntry[], endpoints: HostEntry[]): HostsTomlInput {
  const hosts = [...before, ...endpoints];
  const last = endpoints[endpoints.length - 1];
  if (host.disableDefaultEndpoint && last) {
    const { url, capabilities, ca, ...rest } = last;
    return { server: url, serverCapabilities: capabilities, ...(ca ? { serverCa: ca } : {}), serverEntry: rest, hosts };
  }
  // `"*"`: no server, containerd adds each registry's own default endpoint after the hosts.
  return key === WILDCARD_HOST || host.disableDefaultEndpoint ? { hosts } : { server: defaultServer(key), hosts };
}

/** One spec endpoint as a hosts.toml entry; its TLS files planned as copies in the registry's directory. */
function endpointEntry(e: EndpointSpec, index: number, dir: string, certsDir: string, files: CertsFilePlan[]): HostEntry {
  const copy = (source: string, name: string, mode: number): string => {
    const file = `lo-${index}-${name}`;
    files.push({ source, path: join(certsDir, dir, file), nodePath: `${NODE_CERTS_DIR}/${dir}/${file}`, mode });
    return `${NODE_CERTS_DIR}/${dir}/${file}`;
  };
  const header = Object.fromEntries(Object.entries(e.headers).map(([name, v]) => [name, headerPlaceholder(v.env)]));
  return {
    url: e.url,
    capabilities: e.capabilities,
    ...(e.tls.caFile ? { ca: copy(e.tls.caFile, 'ca.crt', PUBLIC) } : {}),
    ...(e.tls.certFile && e.tls.keyFile
      ? { client: { cert: copy(e.tls.certFile, 'client.cert', PUBLIC), key: copy(e.tls.keyFile, 'client.key', SECRET) } }
      : {}),
    ...(e.tls.insecureSkipVerify ? { skipVerify: true } : {}),
    ...(e.overridePath ? { overridePath: true } : {}),
    ...(Object.keys(header).length > 0 ? { header } : {}),
  };
}

/** The variables behind the header placeholders of a hosts.toml, sorted. */
function headerEnvOf(input: HostsTomlInput): string[] {
  const out = new Set<string>();
  for (const h of [...input.hosts, ...(input.serverEntry ? [input.serverEntry] : [])])
    for (const value of Object.values(h.header ?? {})) {
      const env = /^<from \$([A-Z_][A-Z0-9_]*)>$/.exec(value)?.[1];
      if (env) out.add(env);
    }
  return [...out].sort();
}
