import { basename } from 'node:path';
import { shellCommand } from '../util/shell.js';
import type { DockerClients } from '../adapters/docker/index.js';
import { foreignOwnerOf, LABELS } from '../plan/labels.js';
import { REGISTRY_CONFIG_DIR, REGISTRY_DATA_DIR } from '../plan/render/renderRegistryConfig.js';
import { ExitCode, LoError } from '../errors/loError.js';
import { writeFileAtomic } from './files.js';
import { SUPERVISOR_FILE } from '../plan/render/mirrorSupervisor.js';
import { renderRegistryConfig } from '../plan/render/renderRegistryConfig.js';
import type { RegistryPlan } from '../plan/types.js';

/** Port of the short-lived gc registry inside the mirror's network namespace. */
export const GC_PORT = 5099;
export const GC_CONFIG_FILE = 'gc.yml';

export interface RepoUsage {
  repository: string;
  /** Bytes its manifests reference (layers + config); a blob shared by repositories counts in each. */
  bytes: number;
  /** Last pull seen (ISO time) in the mirror container's log (proxy and replica), else when it was cached. */
  lastAccess: string;
  /** Where lastAccess comes from. */
  source: 'log' | 'cached';
  manifests: string[];
}

export interface GcResult {
  name: string;
  volume: string;
  budgetBytes: number | null;
  bytesBefore: number;
  bytesAfter: number;
  freedBytes: number;
  /** Repositories removed (least recently used first), or that would be (previewGc). */
  removed: string[];
  kept: string[];
  dryRun: boolean;
  ms: number;
  /** Why this mirror was left alone (its container or volume belongs to another project); nothing was read or changed. */
  skipped?: string;
}

/**
 * Pure: which repositories to remove so that `total` fits in `budget`, least recently used first.
 * Sizes are per repository (shared blobs counted in each), so the choice may free less than estimated;
 * the executor measures the volume afterwards.
 */
export function chooseEvictions(repos: RepoUsage[], total: number, budget: number | null): { remove: RepoUsage[]; keep: RepoUsage[] } {
  if (budget === null || total <= budget) return { remove: [], keep: repos };
  const byAge = [...repos].sort((a, b) => (a.lastAccess < b.lastAccess ? -1 : a.lastAccess > b.lastAccess ? 1 : 0));
  const remove: RepoUsage[] = [];
  let left = total;
  for (const r of byAge) {
    if (left <= budget) break;
    remove.push(r);
    left -= r.bytes;
  }
  return { remove, keep: byAge.filter((r) => !remove.includes(r)) };
}

/**
 * Last manifest pull per repository from registry access-log lines with Docker's timestamp prefix, e.g.
 * `2026-12-02T04:38:38.99Z 10.1.2.3 - - [...] "GET /v2/team/app/manifests/v1 HTTP/1.1" 200 ...`. Pure.
 */
export function lastPulls(log: string): Map<string, string> {
  const last = new Map<string, string>();
  for (const line of log.split('\n')) {
    const m = /^(\S+) .*"(?:GET|HEAD) \/v2\/(.+?)\/manifests\/[^ ?"]+/.exec(line);
    if (!m || !/ 20[0-9] /.test(line.slice(line.indexOf('HTTP/')))) continue;
    const [, at, repo] = m as unknown as [string, string, string];
    if ((last.get(repo) ?? '') < at) last.set(repo, at);
  }
  return last;
}

interface GcOptions {
  budgetBytes: number | null;
  extraLabels?: Record<string, string>;
}

/**
 * Observe + diff for one mirror, the part `--dry-run` shares with the real run: its volume's usage, its
 * repositories read through a short-lived registry on the mirror's volume (no proxy, deletes enabled, in the
 * mirror's network namespace on GC_PORT; removed afterwards), and the LRU choice (chooseEvictions, pure).
 * `then` runs while that registry still serves (the real run deletes through it).
 */
async function observeGc<T>(
  docker: DockerClients,
  r: RegistryPlan,
  o: GcOptions,
  then: (choice: { url: string; bytesBefore: number; remove: RepoUsage[]; keep: RepoUsage[] }) => Promise<T>,
): Promise<T> {
  if (!r.replica) throw new Error(`mirror ${r.name} has no replica in the plan`);
  // One container runs the proxy and the read-only replica (src/plan/render/mirrorSupervisor.ts).
  const mirror = await docker.containers.inspect(r.containerName);
  if (!mirror?.running) {
    throw new LoError('E_STEP', `mirror ${r.name} is not running (${r.containerName}: ${mirror?.status ?? 'missing'})`, {
      hint: 'run `lo registry up` first',
      exitCode: ExitCode.stepFailed,
    });
  }
  const bytesBefore = await volumeUsage(docker, r);
  // lo's own scratch config for the short-lived registry (the same bytes every run).
  await writeFileAtomic(gcConfigPath(r), renderRegistryConfig({ port: GC_PORT, tls: null }), 0o600);
  const apiName = `${r.containerName}-gc`;
  await docker.containers.remove(apiName);
  const { state: api } = await docker.containers.create({
    ...gcContainerBase(r, o),
    name: apiName,
    cmd: [`${REGISTRY_CONFIG_DIR}/${GC_CONFIG_FILE}`],
    network: `container:${mirror.id}`,
  });
  try {
    await docker.containers.start(api.id);
    const url = `http://${r.ip}:${GC_PORT}`;
    await waitFor(`${url}/v2/`);
    const logs = await docker.containers.logs(r.containerName, { timestamps: true });
    const repos = await inventory(url, lastPulls(logs));
    return await then({ url, bytesBefore, ...chooseEvictions(repos, bytesBefore, o.budgetBytes) });
  } finally {
    await docker.containers.remove(api.id);
  }
}

/** `lo registry gc --dry-run` for one mirror: what gc would remove; no repository is deleted, no proxy held. */
export async function previewGc(docker: DockerClients, r: RegistryPlan, o: GcOptions): Promise<GcResult> {
  const started = Date.now();
  const other = await foreignMirror(docker, r);
  if (other !== null) return skippedResult(r, o, true, started, other);
  return observeGc(docker, r, o, async (c) => gcResult(r, o, c, c.bytesBefore, true, started));
}

/**
 * `lo registry gc` for one mirror: observeGc, then the LRU evictions through the registry API (manifest
 * DELETE untags too), then `registry garbage-collect --delete-untagged` with the proxy process held by the
 * mirror's supervisor, so the bytes really leave the volume. The replica keeps serving reads meanwhile.
 */
export async function gcMirror(docker: DockerClients, r: RegistryPlan, o: GcOptions): Promise<GcResult> {
  const started = Date.now();
  const other = await foreignMirror(docker, r);
  if (other !== null) return skippedResult(r, o, false, started, other);
  const choice = await observeGc(docker, r, o, async (c) => {
    for (const repo of c.remove) {
      for (const d of repo.manifests) {
        const res = await fetch(`${c.url}/v2/${repo.repository}/manifests/${d}`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
        if (res.status !== 202 && res.status !== 404)
          throw new LoError('E_STEP', `deleting ${repo.repository}@${d} on ${r.name}: HTTP ${res.status}`, {
            exitCode: ExitCode.stepFailed,
          });
      }
    }
    return c;
  });
  // The proxy process is held (stopped, not restarted by the supervisor) while blobs are swept: it could be
  // writing one. The replica, in the same container, serves reads meanwhile.
  await supervisor(docker, r, 'hold');
  const sweepName = `${r.containerName}-gc-sweep`;
  await docker.containers.remove(sweepName);
  try {
    const { state: sweep } = await docker.containers.create({
      ...gcContainerBase(r, o),
      name: sweepName,
      entrypoint: ['/bin/registry'],
      cmd: ['garbage-collect', '--delete-untagged', `${REGISTRY_CONFIG_DIR}/${basename(gcConfigPath(r))}`],
      network: 'none',
    });
    await docker.containers.start(sweep.id);
    const code = await docker.containers.wait(sweep.id);
    if (code !== 0) {
      const tail = (await docker.containers.logs(sweep.id, { tail: 5 })).trim();
      throw new LoError('E_STEP', `registry garbage-collect on ${r.volume} exited with ${code}: ${tail}`, {
        exitCode: ExitCode.stepFailed,
      });
    }
  } finally {
    await docker.containers.remove(sweepName);
    await supervisor(docker, r, 'resume');
  }
  return gcResult(r, o, choice, await volumeUsage(docker, r), false, started);
}

const gcConfigPath = (r: RegistryPlan): string => `${r.configDir}/${GC_CONFIG_FILE}`;

async function volumeUsage(docker: DockerClients, r: RegistryPlan): Promise<number> {
  return (await docker.volumes.usage()).get(r.volume) ?? 0;
}

/** The short-lived gc containers: the mirror's image, volume and config directory, lo's labels, role gc. */
function gcContainerBase(r: RegistryPlan, o: GcOptions) {
  const labels = { ...(o.extraLabels ?? {}), ...pick(r.labels, [LABELS.managedBy, LABELS.project, LABELS.mirror]), [LABELS.role]: 'gc' };
  return {
    image: r.image,
    labels,
    network: r.network,
    binds: [{ source: r.configDir, target: REGISTRY_CONFIG_DIR, readOnly: true }],
    volumes: [{ name: r.volume, target: REGISTRY_DATA_DIR }],
    restart: 'no' as const,
  };
}

/**
 * The mirror is found by name: a container or volume of that name labelled as another project's (same
 * metadata.name, other spec directory) is never read or swept. Its owner's spec directory, or null.
 */
async function foreignMirror(docker: DockerClients, r: RegistryPlan): Promise<string | null> {
  const own = r.labels[LABELS.projectId];
  const [mirror, volume] = await Promise.all([docker.containers.inspect(r.containerName), docker.volumes.inspect(r.volume)]);
  return foreignOwnerOf(own, mirror?.labels ?? {}) ?? foreignOwnerOf(own, volume?.labels ?? {});
}

function skippedResult(r: RegistryPlan, o: GcOptions, dryRun: boolean, started: number, owner: string): GcResult {
  const none = { bytesBefore: 0, remove: [], keep: [] };
  return { ...gcResult(r, o, none, 0, dryRun, started), skipped: `belongs to the project in ${owner}` };
}

function gcResult(
  r: RegistryPlan,
  o: GcOptions,
  c: { bytesBefore: number; remove: RepoUsage[]; keep: RepoUsage[] },
  after: number,
  dryRun: boolean,
  started: number,
): GcResult {
  return {
    name: r.name,
    volume: r.volume,
    budgetBytes: o.budgetBytes,
    bytesBefore: c.bytesBefore,
    bytesAfter: after,
    freedBytes: Math.max(0, c.bytesBefore - after),
    removed: c.remove.map((x) => x.repository),
    kept: c.keep.map((x) => x.repository),
    dryRun,
    ms: Date.now() - started,
  };
}

/** `sh mirror.sh hold|resume` in the mirror's container: stop the proxy process and keep it stopped, or let it start. */
async function supervisor(docker: DockerClients, r: RegistryPlan, verb: 'hold' | 'resume'): Promise<void> {
  const res = await docker.exec.exec(r.containerName, ['/bin/sh', `${REGISTRY_CONFIG_DIR}/${SUPERVISOR_FILE}`, verb], {
    timeoutMs: 20_000,
  });
  if (res.exitCode !== 0) {
    throw new LoError('E_STEP', `${verb} of the proxy in ${r.containerName} failed (exit ${res.exitCode}): ${res.stderr.trim()}`, {
      hint: `see \`${shellCommand(['docker', 'logs', r.containerName])}\`; \`lo registry up\` recreates a mirror whose supervisor is older than this lo`,
      exitCode: ExitCode.stepFailed,
    });
  }
}

function pick(labels: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => labels[k] !== undefined).map((k) => [k, labels[k]!]));
}

async function waitFor(url: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch (err) {
      if (Date.now() > until) throw new LoError('E_STEP', `the gc registry at ${url} did not start: ${(err as Error).message}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface Manifest {
  config?: { size: number };
  layers?: Array<{ size: number }>;
  manifests?: Array<{ digest: string; size: number }>;
}

/** Repositories, their tagged manifests (digests), bytes and last access, read over the registry API. */
async function inventory(url: string, pulls: Map<string, string>): Promise<RepoUsage[]> {
  const get = async (path: string): Promise<Response> =>
    fetch(`${url}${path}`, { headers: { Accept: ACCEPT }, signal: AbortSignal.timeout(10_000) });
  const out: RepoUsage[] = [];
  for (const repo of await catalog(get)) {
    const tags = ((await (await get(`/v2/${repo}/tags/list`)).json()) as { tags?: string[] | null }).tags ?? [];
    const digests = new Set<string>();
    let bytes = 0;
    let cachedAt = '';
    for (const tag of tags) {
      const res = await get(`/v2/${repo}/manifests/${tag}`);
      if (!res.ok) continue;
      const digest = res.headers.get('docker-content-digest');
      if (digest) digests.add(digest);
      const m = (await res.json()) as Manifest;
      bytes += await manifestBytes(repo, m, get);
      const lm = res.headers.get('last-modified');
      if (lm && new Date(lm).toISOString() > cachedAt) cachedAt = new Date(lm).toISOString();
    }
    const seen = pulls.get(repo);
    out.push({
      repository: repo,
      bytes,
      lastAccess: seen ?? (cachedAt || new Date(0).toISOString()),
      source: seen ? 'log' : 'cached',
      manifests: [...digests],
    });
  }
  return out;
}

/** Every repository, page by page (distribution 2.8 refuses n above catalog.maxentries, 1000 by default). */
async function catalog(get: (p: string) => Promise<Response>): Promise<string[]> {
  const all: string[] = [];
  let path: string | null = '/v2/_catalog?n=1000';
  for (let page = 0; path && page < 1000; page++) {
    const res = await get(path);
    if (!res.ok)
      throw new LoError('E_STEP', `reading the catalog of the gc registry: HTTP ${res.status}`, { exitCode: ExitCode.stepFailed });
    all.push(...(((await res.json()) as { repositories?: string[] }).repositories ?? []));
    // Link: </v2/_catalog?last=x&n=1000>; rel="next"
    path = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
  }
  return all;
}

async function manifestBytes(repo: string, m: Manifest, get: (p: string) => Promise<Response>): Promise<number> {
  let bytes = (m.config?.size ?? 0) + (m.layers ?? []).reduce((a, l) => a + l.size, 0);
  // An index: count the platform manifests the cache holds (others were never pulled).
  for (const child of m.manifests ?? []) {
    const res = await get(`/v2/${repo}/manifests/${child.digest}`);
    if (res.ok) bytes += await manifestBytes(repo, (await res.json()) as Manifest, get);
  }
  return bytes;
}
