import { stringify } from 'yaml';

export const REGISTRY_CONFIG_DIR = '/etc/lo/registry';
export const REGISTRY_TLS_DIR = '/etc/lo/tls';
export const REGISTRY_DATA_DIR = '/var/lib/registry';

export interface RegistryConfigInput {
  port: number;
  /** File names inside REGISTRY_TLS_DIR, or null for plain HTTP. */
  tls: { certFile: string; keyFile: string } | null;
  /** Pull-through upstream; absent for build/cache registries, which accept pushes. */
  proxy?: { remoteurl: string };
  /** A read-only replica of a mirror's storage (no proxy, never contacts an upstream). */
  readOnly?: boolean;
}

/** Upstream credentials, resolved by the executor from the environment; never part of a plan. */
export interface RegistrySecrets {
  username: string;
  password: string;
}

/**
 * Renders a registry:2 (distribution 2.8) configuration, with the upstream credentials when given (the
 * plan renders without them; the executor renders once more with the secrets it resolved).
 * See https://distribution.github.io/distribution/about/configuration/
 */
export function renderRegistryConfig(input: RegistryConfigInput, secrets?: RegistrySecrets): string {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', fields: { service: 'registry' } },
    storage: {
      filesystem: { rootdirectory: REGISTRY_DATA_DIR },
      // A proxy's storage refuses deletes: distribution 2.8 schedules every proxied blob and manifest for
      // deletion 7 days after caching (hard-coded repositoryTTL) and its expiry handler deletes through
      // the storage API, which then answers "operation unsupported", so nothing expires on a timer.
      // `lo registry gc` and `registry garbage-collect` delete through the storage driver and still work.
      delete: { enabled: !input.proxy && !input.readOnly },
      ...(input.readOnly ? { maintenance: { readonly: { enabled: true }, uploadpurging: { enabled: false } } } : {}),
      cache: { blobdescriptor: 'inmemory' },
    },
    http: {
      addr: `:${input.port}`,
      headers: { 'X-Content-Type-Options': ['nosniff'] },
      ...(input.tls
        ? { tls: { certificate: `${REGISTRY_TLS_DIR}/${input.tls.certFile}`, key: `${REGISTRY_TLS_DIR}/${input.tls.keyFile}` } }
        : {}),
    },
    health: { storagedriver: { enabled: true, interval: '10s', threshold: 3 } },
  };
  if (input.proxy) config.proxy = { ...input.proxy, ...(secrets ? { username: secrets.username, password: secrets.password } : {}) };
  return stringify(config);
}
