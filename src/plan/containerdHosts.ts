import { parse } from 'smol-toml';

/**
 * How containerd turns a registry name into the hosts it tries, as in containerd's
 * core/remotes/docker/config/hosts.go (HostDirFromRoot, hostDirectory, parseHostsFile, parseHostConfig) and
 * docs/hosts.md. Pure: the caller reads the files.
 */

/** certs.d directories containerd looks at for a registry host, in order: `host_port_`, `host`, `_default`. */
export function hostDirCandidates(registry: string): string[] {
  const idx = registry.lastIndexOf(':');
  const mangled = idx > 0 ? `${registry.slice(0, idx)}_${registry.slice(idx + 1)}_` : registry;
  return [...new Set([mangled, registry]), '_default'];
}

export type Capability = 'pull' | 'resolve' | 'push';

/** One host containerd will try, in order. */
export interface ResolvedHost {
  /** scheme://host[:port] */
  origin: string;
  scheme: 'http' | 'https';
  host: string;
  /** API root path, e.g. /v2 or /v2/docker.io with override_path. */
  path: string;
  capabilities: Capability[];
  ca: string[];
  skipVerify: boolean;
  overridePath: boolean;
  dialTimeout?: string;
  header: Record<string, string[]>;
  /** Where it came from: a [host."…"] table, the top-level `server`, or containerd's built-in default. */
  source: 'host' | 'server' | 'default';
}

const ALL: Capability[] = ['pull', 'resolve', 'push'];

function strings(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.flat().map(String);
  return [String(v)];
}

function hostFrom(server: string, table: Record<string, unknown>, source: ResolvedHost['source']): ResolvedHost {
  const url = new URL(server.startsWith('http') ? server : `https://${server}`);
  const overridePath = table.override_path === true;
  let path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  if (path) {
    if (!path.endsWith('/v2') && !overridePath) path = `${path}/v2`;
  } else if (!overridePath) path = '/v2';
  const caps = strings(table.capabilities).map((c) => c.toLowerCase()) as Capability[];
  const header: Record<string, string[]> = {};
  if (table.header && typeof table.header === 'object') {
    for (const [k, v] of Object.entries(table.header as Record<string, unknown>)) header[k] = strings(v);
  }
  return {
    origin: `${url.protocol}//${url.host}`,
    scheme: url.protocol === 'http:' ? 'http' : 'https',
    host: url.host,
    path,
    capabilities: caps.length > 0 ? caps : ALL,
    ca: strings(table.ca),
    skipVerify: table.skip_verify === true,
    overridePath,
    ...(typeof table.dial_timeout === 'string' ? { dialTimeout: table.dial_timeout } : {}),
    header,
    source,
  };
}

/** The default endpoint containerd uses for a registry without `server` (docker.io is registry-1.docker.io). */
export function defaultServer(registry: string): string {
  if (registry === 'docker.io') return 'https://registry-1.docker.io';
  const host = registry.replace(/:\d+$/, '');
  if (host === 'localhost' || host === '127.0.0.1' || host === '::1') {
    const port = /:(\d+)$/.exec(registry)?.[1];
    return `${!port || port === '443' ? 'https' : 'http'}://${registry}`;
  }
  return `https://${registry}`;
}

/**
 * The ordered hosts of one hosts.toml: every [host."…"] table in file order, then the top-level server.
 * Without `server`, containerd still appends the registry's default endpoint (hosts.go ConfigureHosts), so
 * a hosts.toml cannot by itself stop containerd from trying the upstream: only a `server` that is not the
 * upstream does. `null` text means "no hosts.toml": the default endpoint only.
 */
export function resolveHosts(registry: string, text: string | null): ResolvedHost[] {
  if (text === null) return [hostFrom(defaultServer(registry), {}, 'default')];
  const doc = parse(text) as Record<string, unknown>;
  const hosts: ResolvedHost[] = [];
  const tables = (doc.host ?? {}) as Record<string, Record<string, unknown>>;
  for (const [url, table] of Object.entries(tables)) hosts.push(hostFrom(url, table, 'host'));
  const server = typeof doc.server === 'string' && doc.server ? doc.server : null;
  hosts.push(hostFrom(server ?? defaultServer(registry), doc, server ? 'server' : 'default'));
  return hosts;
}

/** containerd adds `?ns=<registry>` when the host is not the registry itself (a mirror). */
export function isProxyHost(host: ResolvedHost, registry: string): boolean {
  return host.host !== registry && !(registry === 'docker.io' && host.host === 'registry-1.docker.io');
}

/** The manifest URL containerd resolves a reference at, on one host. */
export function manifestUrl(host: ResolvedHost, registry: string, repository: string, reference: string): string {
  const path = `${host.path}/${repository}/manifests/${reference}`.replace(/\/{2,}/g, '/');
  const ns = isProxyHost(host, registry) ? `?ns=${encodeURIComponent(registry)}` : '';
  return `${host.origin}${path.startsWith('/') ? path : `/${path}`}${ns}`;
}

/** The Accept header containerd's resolver sends for a manifest HEAD (core/remotes/docker/resolver.go). */
export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  '*/*',
].join(', ');
