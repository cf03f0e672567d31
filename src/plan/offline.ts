import { join } from 'node:path';
import { REGISTRY_CONFIG_DIR, renderRegistryConfig } from './render/renderRegistryConfig.js';
import { renderMirrorSupervisor, SUPERVISOR_FILE } from './render/mirrorSupervisor.js';
import type { HostEntry } from './render/renderHostsToml.js';
import type { RegistryContainerPlan, RegistryPlan, ReplicaPlan } from './types.js';

/**
 * Offline mirrors (issue 11). Each pull-through mirror is ONE container whose entrypoint is a small sh
 * supervisor (src/plan/render/mirrorSupervisor.ts) running two registries on the mirror's volume and address:
 * a read-only "replica" (`storage.maintenance.readonly`, no proxy section: it never contacts the upstream and
 * starts offline) on its own port, and the pull-through proxy on the mirror's port, restarted with back-off
 * while it cannot start (registry:2 exits at start when its upstream's /v2/ does not answer). While the proxy
 * is down its port refuses at once, so containerd moves on to the replica's host entry immediately. No
 * container joins another's network namespace, so a restart of the Docker engine (which restores containers
 * in any order) brings every mirror back whole. See docs/offline.md.
 */

/** Port of the replica on the mirror's address (the proxy keeps 443/80). */
export function replicaPort(scheme: 'http' | 'https'): number {
  return scheme === 'https' ? 5443 : 5080;
}

export const REPLICA_CONFIG_FILE = 'replica.yml';
/** Role label of the second container of lo's earlier two-container mirrors (migrated by `lo registry up`). */
export const REPLICA_ROLE = 'replica';

/** The replica of one mirror: same config dir, TLS, volume and address, its own port, read-only. Pure. */
export function replicaFor(r: Pick<RegistryPlan, 'scheme' | 'ip' | 'configDir' | 'configInput'>): ReplicaPlan {
  const port = replicaPort(r.scheme);
  return {
    port,
    endpoint: `${r.scheme}://${r.ip}:${port}`,
    configPath: join(r.configDir, REPLICA_CONFIG_FILE),
    config: renderRegistryConfig({ port, tls: r.configInput.tls, readOnly: true }),
    supervisorPath: join(r.configDir, SUPERVISOR_FILE),
    supervisor: renderMirrorSupervisor(),
  };
}

/** A mirror's container: the registry's container running the supervisor (both registries) under /bin/sh. */
export function mirrorContainer(c: RegistryContainerPlan): RegistryContainerPlan {
  return { ...c, entrypoint: ['/bin/sh'], cmd: [`${REGISTRY_CONFIG_DIR}/${SUPERVISOR_FILE}`] };
}

/**
 * hosts.toml entries for a mirror, in containerd's order of preference: the pull-through proxy first, then
 * its read-only replica (what the proxy cached, served while the proxy or the upstream is down).
 */
export function mirrorHostEntries(r: RegistryPlan, ca: string | undefined): HostEntry[] {
  const pull: HostEntry['capabilities'] = ['pull', 'resolve'];
  const entries: HostEntry[] = [{ url: r.endpoint, capabilities: pull, ...(ca ? { ca } : {}) }];
  if (r.replica) entries.push({ url: r.replica.endpoint, capabilities: pull, ...(ca ? { ca } : {}) });
  return entries;
}

/** A repository path component as distribution accepts it (lowercase, `.`, `_`, `__`, `-` separators). */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/;

/**
 * The repository prefix under which the project's cache registry holds a registry's pinned images (issue 12):
 * the registry name itself (`docker.io`, so `docker.io/library/nginx`), a port's colon as `_`
 * (`localhost:5000` is `localhost_5000`). null when the name is no valid repository component.
 */
export function cacheRepoPrefix(registry: string): string | null {
  const prefix = registry.toLowerCase().replace(/:(\d+)$/, '_$1');
  return PATH_COMPONENT.test(prefix) ? prefix : null;
}

/**
 * The cache registry's hosts.toml entry for a mirrored registry, listed before the mirror: containerd asks
 * `<cache>/v2/<registry>/<repo>/manifests/<tag>` (`override_path`), so an image pinned into the cache under
 * `<registry>/<repo>` is served by tag with the mirror and the upstream down, and a miss is one 404 from a
 * registry on the project network. Pull only: nothing is pushed through a mirrored name.
 */
export function cacheHostEntry(cache: RegistryPlan | undefined, registry: string, ca: string | undefined): HostEntry[] {
  const prefix = cacheRepoPrefix(registry);
  if (!cache || !prefix) return [];
  return [{ url: `${cache.endpoint}/v2/${prefix}`, capabilities: ['pull', 'resolve'], overridePath: true, ...(ca ? { ca } : {}) }];
}
