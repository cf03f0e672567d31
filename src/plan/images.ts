import { parse, stringify } from 'yaml';
import { parseImageRef, type ImageRef } from './imageRef.js';
import { cacheRepoPrefix } from './offline.js';
import type { Plan, RegistryPlan } from './types.js';

/**
 * Pinned images (issue 12), the pure part: where an image reference lives in the project's cache, which
 * mirror it is copied from, how cache repositories read back as references, and the lock file. The copier
 * and the registry calls are in src/adapters/oci/, the use cases in src/usecases/images.ts. docs/images.md.
 */

export const LOCK_FILE = 'images.lock.yaml';
export const LOCK_API = 'lo.lok8s.dev/images/v1';
/** Repositories of the cache that hold blobs of an archive being loaded; never shown, emptied after a load. */
export const STAGING_PREFIX = 'lo-staging/';

export class PinError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** One image to put into the cache: from a mirror's repository to the cache's prefixed repository. */
export interface PinPlan {
  ref: ImageRef;
  /** Mirror the bytes come from (the pull-through proxy, which applies the spec's upstream credentials). */
  mirror: { name: string; endpoint: string };
  /** Repository on the mirror (the upstream's own name, e.g. library/nginx). */
  sourceRepo: string;
  /** What the mirror is asked for: the digest when the reference has one, else the tag. */
  sourceRef: string;
  /** Repository in the cache, e.g. docker.io/library/nginx. */
  cacheRepo: string;
  /** Tag written in the cache (absent for a digest-only reference: pinned by digest). */
  tag?: string;
}

export function cacheOf(plan: Plan): RegistryPlan {
  const cache = plan.registries.find((r) => r.role === 'cache');
  if (!cache) throw new PinError(`project ${plan.project.name} has no cache registry`);
  return cache;
}

/** The cache repository a reference is pinned under (`docker.io/library/nginx`). Pure. */
export function cacheRepoOf(ref: Pick<ImageRef, 'registry' | 'repository'>): string {
  const prefix = cacheRepoPrefix(ref.registry);
  if (!prefix) throw new PinError(`registry "${ref.registry}" cannot be a repository prefix in the cache`);
  return `${prefix}/${ref.repository}`;
}

/** The reference a cache repository and tag stand for (`docker.io/library/nginx` + `1.27`); null for lo's own. */
export function refOfCacheRepo(repo: string): { registry: string; repository: string } | null {
  if (repo.startsWith(STAGING_PREFIX)) return null;
  const slash = repo.indexOf('/');
  if (slash === -1) return null;
  const registry = repo.slice(0, slash).replace(/_(\d+)$/, ':$1');
  return { registry, repository: repo.slice(slash + 1) };
}

/** Where each reference comes from and goes to; every problem at once (bad references, no mirror). Pure. */
export function planPins(plan: Plan, refs: readonly string[]): PinPlan[] {
  const problems: string[] = [];
  const pins: PinPlan[] = [];
  const mirrors = plan.registries.filter((r) => r.role === 'mirror' && r.registry);
  for (const text of refs) {
    let ref: ImageRef;
    try {
      ref = parseImageRef(text);
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    const mirror = mirrors.find((m) => m.registry === ref.registry);
    if (!mirror) {
      problems.push(
        `${ref.normalized}: the project has no mirror for ${ref.registry} (mirrors: ${mirrors.map((m) => m.registry).join(', ') || 'none'})`,
      );
      continue;
    }
    pins.push({
      ref,
      mirror: { name: mirror.name, endpoint: mirror.endpoint },
      sourceRepo: ref.repository,
      sourceRef: ref.digest ?? ref.tag!,
      cacheRepo: cacheRepoOf(ref),
      ...(ref.tag ? { tag: ref.tag } : {}),
    });
  }
  if (problems.length)
    throw new PinError(
      problems.join('\n'),
      'name images as registry/repository:tag (docker.io/library/nginx:1.27); add a mirror for the registry to spec.registries.mirrors, or `lo images load` an archive',
    );
  return pins;
}

/** A lock file: every image a cluster uses, as `registry/repository:tag@sha256:…`, sorted. */
export interface ImagesLock {
  apiVersion: typeof LOCK_API;
  images: string[];
}

/**
 * The images of `ctr -n k8s.io images ls` output (columns REF TYPE DIGEST SIZE PLATFORMS LABELS) as
 * `registry/repo:tag@digest`: references by tag only (containerd's `sha256:` ids and `@digest` aliases of
 * the same image are left out). Pure.
 */
export function parseCtrImages(out: string): string[] {
  const refs: string[] = [];
  for (const line of out.split('\n').slice(1)) {
    const [name, , digest] = line.trim().split(/\s+/);
    if (!name || !digest?.startsWith('sha256:') || name.startsWith('sha256:') || name.includes('@')) continue;
    try {
      const ref = parseImageRef(name);
      if (ref.tag) refs.push(`${ref.registry}/${ref.repository}:${ref.tag}@${digest}`);
    } catch {
      // not an image reference containerd would pull (e.g. an imported local name): nothing to lock
    }
  }
  return refs;
}

export function renderLock(images: readonly string[]): string {
  const lock: ImagesLock = { apiVersion: LOCK_API, images: [...new Set(images)].sort() };
  return `# written by \`lo images lock\`: every image the cluster's nodes hold; \`lo images add --from-lock\` pins them\n${stringify(lock)}`;
}

/** Reads a lock file's text; every entry must be `registry/repository:tag@digest`. Pure. */
export function parseLock(text: string, file: string): string[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new PinError(`${file}: not YAML: ${(err as Error).message}`, 'run `lo images lock` again');
  }
  const d = doc as Partial<ImagesLock> | null;
  if (!d || d.apiVersion !== LOCK_API || !Array.isArray(d.images))
    throw new PinError(`${file}: expected apiVersion ${LOCK_API} and a list \`images\``, 'run `lo images lock` again');
  const bad: string[] = [];
  d.images.forEach((image, i) => {
    try {
      const r = parseImageRef(String(image));
      if (!r.digest || !r.tag) bad.push(`images[${i}]: "${String(image)}" needs both a tag and a digest`);
    } catch (err) {
      bad.push(`images[${i}]: ${(err as Error).message}`);
    }
  });
  if (bad.length) throw new PinError(`${file}: ${bad.join('; ')}`, 'entries look like docker.io/library/nginx:1.27@sha256:<64 hex>');
  return d.images.map(String);
}
