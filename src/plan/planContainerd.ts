import { join } from 'node:path';
import type { ClusterSpec } from '../spec/types.js';
import { cacheHostEntry, mirrorHostEntries } from './offline.js';
import { renderHostsToml, type HostEntry } from './render/renderHostsToml.js';
import type { ContainerdPlan, HostsFilePlan, RegistryPlan } from './types.js';

export const NODE_CERTS_DIR = '/etc/containerd/certs.d';
export const NODE_CA_FILE = `${NODE_CERTS_DIR}/_lo/ca.crt`;
const PULL: HostEntry['capabilities'] = ['pull', 'resolve'];
const PUSH: HostEntry['capabilities'] = ['pull', 'resolve', 'push'];

/** The agent endpoint as containerd on each node sees it (host networking). */
export function p2pEndpointOf(spec: ClusterSpec): string {
  return `http://127.0.0.1:${spec.registries.p2p.port}`;
}

/** containerd certs.d: one hosts.toml per mirrored registry name, per hostname and per registry address. */
export function planContainerd(spec: ClusterSpec, projectDir: string, registries: readonly RegistryPlan[]): ContainerdPlan {
  const tls = spec.registries.tls;
  const certsDir = join(projectDir, 'certs.d');
  const p2pEndpoint = p2pEndpointOf(spec);
  const ca = tls ? NODE_CA_FILE : undefined;
  const hosts: HostsFilePlan[] = [];
  const addHosts = (host: string, content: string): void => {
    hosts.push({ host, path: join(certsDir, host, 'hosts.toml'), content });
  };
  const cache = registries.find((r) => r.role === 'cache');
  for (const r of registries) {
    const direct = { server: r.endpoint, serverCa: ca, serverCapabilities: r.push ? PUSH : PULL, hosts: [] };
    if (r.role === 'mirror') {
      const p2pHost: HostEntry[] = spec.registries.p2p.enabled
        ? [{ url: p2pEndpoint, capabilities: PULL, dialTimeout: spec.registries.p2p.dialTimeout }]
        : [];
      // The project's cache (pinned images, by tag), the proxy, then its read-only replica (serves what the
      // proxy cached while the proxy or upstream is down).
      const mirrorHosts = [...cacheHostEntry(cache, r.registry!, ca), ...mirrorHostEntries(r, ca)];
      addHosts(
        r.registry!,
        renderHostsToml(
          spec.registries.disableDefaultEndpoint
            ? // Air-gapped: the mirror itself is the server, so containerd never falls back to the internet.
              { server: r.endpoint, serverCa: ca, serverCapabilities: PULL, hosts: [...p2pHost, ...mirrorHosts] }
            : { server: r.upstream, hosts: [...p2pHost, ...mirrorHosts] },
        ),
      );
    }
    for (const name of r.hostnames) addHosts(name, renderHostsToml(direct));
    addHosts(r.ip, renderHostsToml(direct));
  }
  hosts.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  return {
    certsDir,
    nodeCertsDir: NODE_CERTS_DIR,
    caFile: tls ? join(certsDir, '_lo', 'ca.crt') : null,
    nodeCaFile: tls ? NODE_CA_FILE : null,
    hosts,
  };
}
