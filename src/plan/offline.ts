import { join } from 'node:path';
import { specHash } from '../util/hash.js';
import { LABELS } from './labels.js';
import { REGISTRY_CONFIG_DIR, renderRegistryConfig } from './render/renderRegistryConfig.js';
import type { HostEntry } from './render/renderHostsToml.js';
import type { RegistryPlan, ReplicaPlan } from './types.js';

/**
 * Offline mirrors (issue 11). Each pull-through mirror gets a read-only "replica": a second registry on the
 * SAME volume with `storage.maintenance.readonly` and no proxy section, so it never contacts the upstream and
 * starts offline. The replica owns the mirror's address; the proxy joins its network namespace
 * (`--network container:<replica>`). While the proxy is down or crash-looping (registry:2 exits at start
 * when its upstream's /v2/ does not answer), the address still answers and the proxy's port refuses at once,
 * so containerd moves on to the replica immediately. See docs/offline.md.
 */

/** Port of the replica on the mirror's address (the proxy keeps 443/80). */
export function replicaPort(scheme: 'http' | 'https'): number {
  return scheme === 'https' ? 5443 : 5080;
}

export const REPLICA_CONFIG_FILE = 'replica.yml';
export const REPLICA_ROLE = 'replica';

/** The replica of one mirror: same config dir, TLS, volume and address, its own port, read-only. Pure. */
export function replicaFor(r: Omit<RegistryPlan, 'replica'>): ReplicaPlan {
  const port = replicaPort(r.scheme);
  const config = renderRegistryConfig({ port, tls: r.configInput.tls, readOnly: true });
  const containerName = `${r.containerName}-replica`;
  const body = { containerName, port, endpoint: `${r.scheme}://${r.ip}:${port}`, config };
  return {
    ...body,
    configPath: join(r.configDir, REPLICA_CONFIG_FILE),
    labels: { ...r.labels, [LABELS.role]: REPLICA_ROLE, [LABELS.specHash]: specHash(body) },
    // The registry's container (same mounts, network and address) under its own name, serving replica.yml.
    container: { ...r.container, name: containerName, cmd: [`${REGISTRY_CONFIG_DIR}/${REPLICA_CONFIG_FILE}`] },
  };
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
