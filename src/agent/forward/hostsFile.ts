import { posix } from 'node:path';
import { parse as parseToml } from 'smol-toml';

/**
 * containerd's `hosts.toml` (docs/hosts.md of containerd), read the way containerd reads it
 * (core/remotes/docker/config/hosts.go), for the hosts the agent forwards a rewritten name to.
 */
export interface UpstreamHost {
  /** `scheme://host[:port]`, for messages and logs (no user info, no path). */
  origin: string;
  /** API root path: `/v2` unless override_path (then the URL's path as written, without a trailing slash). */
  path: string;
  pull: boolean;
  resolve: boolean;
  /** CA files (absolute, already mapped under the hosts directory). */
  ca: string[];
  /** Client certificate and key files; the key is the certificate file itself when not given. */
  client: Array<[cert: string, key: string]>;
  skipVerify: boolean;
  /** Static headers, names in lower case (values are secrets: never logged). */
  headers: Record<string, string[]>;
}

/** `host:port` is looked up as `host_port_` first, then as written, then `_default` (containerd's hostPaths). */
export function hostDirCandidates(hostsDir: string, registry: string): string[] {
  const i = registry.lastIndexOf(':');
  const dirs: string[] = [];
  if (i > 0) dirs.push(posix.join(hostsDir, `${registry.slice(0, i)}_${registry.slice(i + 1)}_`));
  dirs.push(posix.join(hostsDir, registry), posix.join(hostsDir, '_default'));
  return dirs;
}

const CERTS_D = '/etc/containerd/certs.d';

/**
 * Where the agent reads a file that a hosts.toml names. Relative paths are relative to the registry's
 * directory, as containerd has them. The agent sees the node's files under `hostsDir` (e.g.
 * `/proc/1/root/etc/containerd/certs.d`), so an absolute path under /etc/containerd/certs.d is read there,
 * and when hostsDir ends in /etc/containerd/certs.d any other absolute path is read under the same root.
 */
export function mapPath(file: string, hostsDir: string, registryDir: string): string {
  if (!posix.isAbsolute(file)) return posix.join(registryDir, file);
  const clean = posix.normalize(file);
  if (clean === CERTS_D || clean.startsWith(`${CERTS_D}/`)) return posix.join(hostsDir, clean.slice(CERTS_D.length));
  const dir = posix.normalize(hostsDir).replace(/\/+$/, '');
  if (dir.endsWith(CERTS_D) && dir !== CERTS_D) return posix.join(dir.slice(0, -CERTS_D.length), clean);
  return clean;
}

class HostsFileError extends Error {}

function strings(v: unknown, what: string): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  throw new HostsFileError(`${what} must be a string or a list of strings`);
}

/** One `[host."…"]` table (or the top level, for `server`). */
function parseHost(url: string, table: Record<string, unknown>, hostsDir: string, registryDir: string): UpstreamHost {
  const full = url.startsWith('http') ? url : `https://${url}`;
  let u: URL;
  try {
    u = new URL(full);
  } catch {
    throw new HostsFileError(`${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new HostsFileError(`${JSON.stringify(url)} is not http(s)`);
  const override = table.override_path === true;
  let path = u.pathname === '/' ? '' : posix.normalize(u.pathname).replace(/\/+$/, '');
  if (!override && !path.endsWith('/v2')) path = `${path}/v2`;
  const caps = table.capabilities === undefined ? ['pull', 'resolve', 'push'] : strings(table.capabilities, 'capabilities');
  for (const c of caps) if (!['pull', 'resolve', 'push'].includes(c.toLowerCase())) throw new HostsFileError(`unknown capability ${c}`);
  const lower = caps.map((c) => c.toLowerCase());
  const ca = table.ca === undefined ? [] : strings(table.ca, 'ca').map((f) => mapPath(f, hostsDir, registryDir));
  const client: Array<[string, string]> = [];
  if (table.client !== undefined) {
    const list = typeof table.client === 'string' ? [table.client] : table.client;
    if (!Array.isArray(list)) throw new HostsFileError('client must be a file, a list of files or a list of [cert, key] pairs');
    for (const p of list as unknown[]) {
      if (typeof p === 'string') client.push([mapPath(p, hostsDir, registryDir), mapPath(p, hostsDir, registryDir)]);
      else if (Array.isArray(p) && p.length === 2 && p.every((s) => typeof s === 'string'))
        client.push([mapPath(p[0] as string, hostsDir, registryDir), mapPath(p[1] as string, hostsDir, registryDir)]);
      else throw new HostsFileError('client must be a file, a list of files or a list of [cert, key] pairs');
    }
  }
  const headers: Record<string, string[]> = {};
  if (table.header !== undefined) {
    if (!table.header || typeof table.header !== 'object' || Array.isArray(table.header))
      throw new HostsFileError('header must be a table');
    for (const [k, v] of Object.entries(table.header as Record<string, unknown>))
      headers[k.toLowerCase()] = [...(headers[k.toLowerCase()] ?? []), ...strings(v, `header ${k}`)];
  }
  return {
    origin: `${u.protocol}//${u.host}`,
    path,
    pull: lower.includes('pull'),
    resolve: lower.includes('resolve'),
    ca,
    client,
    skipVerify: table.skip_verify === true,
    headers,
  };
}

export interface HostsFile {
  /** The `[host."…"]` entries in file order. */
  hosts: UpstreamHost[];
  /** `server` when the file sets one that is not the registry's default endpoint. */
  server: UpstreamHost | null;
}

/** The URLs containerd and K3s use as a registry's default endpoint. */
function isDefaultEndpoint(h: UpstreamHost, registry: string): boolean {
  const origins =
    registry === 'docker.io' ? ['https://registry-1.docker.io', 'https://index.docker.io', 'https://docker.io'] : [`https://${registry}`];
  return origins.includes(h.origin) && h.path === '/v2';
}

/**
 * Parses one hosts.toml. `registryDir` is its directory (relative file names are relative to it).
 * Throws on a file containerd would refuse too.
 */
export function parseHostsFile(text: string, registry: string, hostsDir: string, registryDir: string): HostsFile {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new HostsFileError(`not TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  const hostTables = (doc.host ?? {}) as Record<string, Record<string, unknown>>;
  if (typeof hostTables !== 'object' || Array.isArray(hostTables)) throw new HostsFileError('host must be a table of tables');
  // smol-toml keeps keys in the order the tables appear, which is containerd's order (getSortedHosts).
  const hosts = Object.entries(hostTables).map(([url, t]) => {
    try {
      return parseHost(url, t ?? {}, hostsDir, registryDir);
    } catch (err) {
      throw new HostsFileError(`[host.${JSON.stringify(url)}]: ${(err as Error).message}`);
    }
  });
  let server: UpstreamHost | null = null;
  if (typeof doc.server === 'string' && doc.server !== '') {
    try {
      server = parseHost(doc.server, doc, hostsDir, registryDir);
    } catch (err) {
      throw new HostsFileError(`server: ${(err as Error).message}`);
    }
    if (isDefaultEndpoint(server, registry)) server = null;
  }
  return { hosts, server };
}

/**
 * The hosts a rewritten name is forwarded to, in order: the `[host]` entries after the agent's own (`self`,
 * e.g. `http://127.0.0.1:30020`; every entry when the agent is not listed), the agent itself skipped, then
 * `server` when it is set and is not the registry's default endpoint. K3s applies rewrites to mirror
 * endpoints only, never to the default endpoint (an absent `server` is the default endpoint, `https://<registry>`,
 * `https://registry-1.docker.io` for docker.io): containerd asks that one itself, with the original name,
 * after the agent's 404.
 */
export function forwardHosts(file: HostsFile, self: readonly string[]): UpstreamHost[] {
  const isSelf = (h: UpstreamHost): boolean => self.includes(h.origin);
  const at = file.hosts.findIndex(isSelf);
  const hosts = file.hosts.slice(at + 1).filter((h) => !isSelf(h));
  return file.server && !isSelf(file.server) ? [...hosts, file.server] : hosts;
}

export { HostsFileError };
