import { readFile } from 'node:fs/promises';
import { connectClients } from '../adapters/docker/index.js';
import { RegistryClient } from '../adapters/oci/registryClient.js';
import { readIfExists, writeFileAtomic, PUBLIC_MODE, type FileChange } from '../apply/files.js';
import { LoError, ExitCode } from '../errors/loError.js';
import { parseImageRef } from '../plan/imageRef.js';
import { cacheOf, cacheRepoOf, parseCtrImages, parseLock, renderLock } from '../plan/images.js';
import type { Plan } from '../plan/types.js';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { Check } from './doctor.js';
import { lockPath, type ImagesDeps } from './imagesContext.js';
import { kindNodes } from './nodeContainerd.js';
import { loadPlan } from './plan.js';

/**
 * `lo images lock` and `lo doctor`'s air-gap check (issue 12): the lock file records every image the
 * cluster's nodes hold (containerd's k8s.io namespace, read with `ctr` inside each node), so
 * `lo images add --from-lock` can pin them all and the doctor can tell which the cluster could not pull
 * without the internet.
 */
export async function imagesLock(
  opts: LoadSpecOptions,
  deps: ImagesDeps & { dryRun?: boolean } = {},
): Promise<{ project: string; dryRun: boolean; change: FileChange; file: string; nodes: string[]; images: string[] }> {
  const { plan } = await loadPlan(opts, { ...deps, strict: false });
  const docker = await connectClients({ env: deps.env ?? {}, ...(deps.log ? { log: deps.log } : {}) });
  const nodes = (await kindNodes(docker, plan.cluster.name)).filter((n) => n.running);
  if (nodes.length === 0)
    throw new LoError('E_USAGE', `no running node of cluster ${plan.cluster.name}`, {
      exitCode: ExitCode.badInput,
      hint: 'run `lo provision` first',
    });
  const images: string[] = [];
  for (const n of nodes) {
    deps.onProgress?.(`reading containerd images on ${n.name}`);
    const r = await docker.exec.exec(n.name, ['ctr', '-n', 'k8s.io', 'images', 'ls']);
    if (r.exitCode !== 0)
      throw new LoError('E_STEP', `\`ctr -n k8s.io images ls\` on ${n.name} failed: ${(r.stderr || r.stdout).trim()}`, {
        exitCode: ExitCode.stepFailed,
      });
    images.push(...parseCtrImages(r.stdout));
  }
  const file = lockPath(plan);
  const text = renderLock(images);
  // A dry run observes the file and says what writing would do (the diff); only the real run writes.
  const current = await readIfExists(file);
  const change: FileChange = deps.dryRun
    ? current === text
      ? 'noop'
      : current === null
        ? 'create'
        : 'recreate'
    : await writeFileAtomic(file, text, PUBLIC_MODE);
  return {
    project: plan.project.name,
    dryRun: Boolean(deps.dryRun),
    change,
    file,
    nodes: nodes.map((n) => n.name),
    images: parseLock(text, file),
  };
}

/**
 * With `spec.registries.disableDefaultEndpoint: true`: is every image of the lock file in the cache (pinned,
 * by digest) or in a mirror's storage (asked through its read-only replica, which never contacts the
 * upstream)? A missing lock file is a warning; images that cannot be served are a failure naming them.
 */
export async function pinnedImagesCheck(plan: Plan, o: { timeoutMs?: number } = {}): Promise<Check> {
  const name = 'pinned-images';
  const file = lockPath(plan);
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null)
    return {
      name,
      status: 'warn',
      detail: `air-gapped (disableDefaultEndpoint) but no lock file ${file}: nothing says which images the cluster needs`,
      fix: 'run `lo images lock` on a cluster that has pulled what it needs, then `lo images add --from-lock`',
    };
  let refs: string[];
  try {
    refs = parseLock(text, file);
  } catch (err) {
    return { name, status: 'fail', detail: (err as Error).message, fix: 'run `lo images lock` again' };
  }
  const ca = plan.tls.enabled ? await readFile(plan.tls.caCertPath, 'utf8').catch(() => null) : null;
  const clients = new Map<string, RegistryClient>();
  const client = (endpoint: string): RegistryClient => {
    let c = clients.get(endpoint);
    if (!c) clients.set(endpoint, (c = new RegistryClient(endpoint, { ca, timeoutMs: o.timeoutMs ?? 3000 })));
    return c;
  };
  const cache = cacheOf(plan);
  const has = (endpoint: string, repo: string, digest: string): Promise<boolean> =>
    client(endpoint)
      .headManifest(repo, digest)
      .then((d) => d !== null)
      .catch(() => false);
  try {
    const missing: string[] = [];
    for (const text of refs) {
      const ref = parseImageRef(text);
      const digest = ref.digest!;
      if (await has(cache.endpoint, cacheRepoOf(ref), digest)) continue;
      const mirror = plan.registries.find((r) => r.role === 'mirror' && r.registry === ref.registry && r.replica);
      if (mirror && (await has(mirror.replica!.endpoint, ref.repository, digest))) continue;
      missing.push(text);
    }
    if (missing.length === 0) return { name, status: 'ok', detail: `all ${refs.length} images of ${file} are in the cache or a mirror` };
    return {
      name,
      status: 'fail',
      detail: `${missing.length} of ${refs.length} images of ${file} are in neither the cache nor a mirror, so the air-gapped cluster cannot pull them: ${missing.join(', ')}`,
      fix: '`lo images add --from-lock` while the upstream is reachable, or `lo images load` an archive holding them',
    };
  } finally {
    clients.forEach((c) => c.close());
  }
}
