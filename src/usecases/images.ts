import { readFile } from 'node:fs/promises';
import { copyImage, type CopyStats, type ImageManifestDoc, type IndexDoc, parseJson } from '../adapters/oci/copyImage.js';
import { isIndexType, RegistryClient, type Manifest } from '../adapters/oci/registryClient.js';
import { LoError, ExitCode } from '../errors/loError.js';
import { cacheRepoOf, parseLock, PinError, planPins, refOfCacheRepo, type PinPlan } from '../plan/images.js';
import { parseImageRef } from '../plan/imageRef.js';
import type { RegistryPlan } from '../plan/types.js';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import { inputError, lockPath, openImages as open, unreachable, type ImagesDeps } from './imagesContext.js';

/** `lo images add|ls|rm` (issue 12, docs/images.md); load/export in imagesArchive.ts, lock and the doctor check in imagesLock.ts. */

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

export interface AddedImage extends CopyStats {
  ref: string;
  /** Where it is pinned: <cache>/<registry>/<repository>:<tag>. */
  cacheRef: string;
  /** Mirror it came from, or `cache` when a locked digest was pinned already. */
  from: string;
  alreadyPinned: boolean;
  ms: number;
}

/** `lo images add`: copies each image from the project's mirror of its registry into the cache. */
export async function imagesAdd(
  opts: LoadSpecOptions,
  o: { refs: string[]; fromLock?: boolean; platform?: string; dryRun?: boolean },
  deps: ImagesDeps = {},
): Promise<{ project: string; dryRun: boolean; images: AddedImage[] }> {
  const ctx = await open(opts, deps);
  try {
    const refs = [...o.refs];
    if (o.fromLock) {
      const file = lockPath(ctx.plan);
      const text = await readFile(file, 'utf8').catch(() => {
        throw new LoError('E_USAGE', `no lock file ${file}`, { exitCode: ExitCode.badInput, hint: 'run `lo images lock` first' });
      });
      try {
        refs.push(...parseLock(text, file));
      } catch (err) {
        throw inputError(err as PinError);
      }
    }
    if (refs.length === 0)
      throw new LoError('E_USAGE', 'no image to add', {
        exitCode: ExitCode.badInput,
        hint: 'name images, e.g. `lo images add nginx:1.27`, or `--from-lock`',
      });
    let pins: PinPlan[];
    try {
      pins = planPins(ctx.plan, refs);
    } catch (err) {
      throw inputError(err as PinError);
    }
    const images: AddedImage[] = [];
    const dst = ctx.client(ctx.cache.endpoint);
    for (const p of pins) {
      const t0 = performance.now();
      let sent = 0;
      let shown = 0;
      const cacheRef = (digest: string): string =>
        `${new URL(ctx.cache.endpoint).host}/${p.cacheRepo}${p.tag ? `:${p.tag}` : `@${digest}`}`;
      // A reference with a digest (a lock entry) that the cache already holds under its tag needs no mirror.
      if (p.ref.digest && (await dst.headManifest(p.cacheRepo, p.tag ?? p.ref.digest).catch(() => null)) === p.ref.digest) {
        const zero = { manifests: 0, blobsCopied: 0, blobsSkipped: 0, bytesCopied: 0, bytesTotal: 0 };
        images.push({
          ...zero,
          digest: p.ref.digest,
          mediaType: '',
          ref: p.ref.normalized,
          cacheRef: cacheRef(p.ref.digest),
          from: 'cache',
          alreadyPinned: true,
          ms: 0,
        });
        continue;
      }
      if (o.dryRun) {
        // What the mirror and the cache answer for the reference now; nothing is copied.
        const [source, pinned] = await Promise.all([
          ctx.client(p.mirror.endpoint).headManifest(p.sourceRepo, p.sourceRef),
          dst.headManifest(p.cacheRepo, p.tag ?? p.sourceRef).catch(() => null),
        ]).catch((err: unknown) => {
          throw unreachable({ name: `mirror ${p.mirror.name}`, endpoint: p.mirror.endpoint }, err);
        });
        if (!source)
          throw unreachable({ name: `mirror ${p.mirror.name}`, endpoint: p.mirror.endpoint }, new Error(`${p.ref.normalized}: not found`));
        const zero = { manifests: 0, blobsCopied: 0, blobsSkipped: 0, bytesCopied: 0, bytesTotal: 0 };
        images.push({
          ...zero,
          digest: source,
          mediaType: '',
          ref: p.ref.normalized,
          cacheRef: cacheRef(source),
          from: p.mirror.name,
          alreadyPinned: pinned === source,
          ms: 0,
        });
        continue;
      }
      deps.onProgress?.(`${p.ref.normalized}: from ${p.mirror.name}`);
      const stats = await copyImage(
        { client: ctx.client(p.mirror.endpoint), repo: p.sourceRepo, ref: p.sourceRef },
        { client: dst, repo: p.cacheRepo, ...(p.tag ? { tag: p.tag } : {}) },
        {
          ...(o.platform ? { platform: o.platform } : {}),
          onProgress: ({ bytes }) => {
            sent += bytes;
            if (sent - shown >= 8 << 20) {
              shown = sent;
              deps.onProgress?.(`${p.ref.normalized}: ${mib(sent)} copied`);
            }
          },
        },
      ).catch((err: unknown) => {
        throw unreachable({ name: `copy of ${p.ref.normalized} from mirror ${p.mirror.name}`, endpoint: p.mirror.endpoint }, err);
      });
      images.push({
        ...stats,
        ref: p.ref.normalized,
        cacheRef: cacheRef(stats.digest),
        from: p.mirror.name,
        alreadyPinned: false,
        ms: Math.round(performance.now() - t0),
      });
    }
    return { project: ctx.plan.project.name, dryRun: Boolean(o.dryRun), images };
  } finally {
    ctx.close();
  }
}

export interface ListedImage {
  ref: string;
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  /** Bytes of every blob the registry holds for it (all platforms it has of an index). */
  size: number;
  platforms?: string[];
}

export interface ListedRegistry {
  name: string;
  role: 'cache' | 'mirror';
  endpoint: string;
  images: ListedImage[];
  error?: string;
}

/** Size of an image as a registry holds it: its manifests and blobs (children of an index it lacks count 0). */
async function sizeOf(client: RegistryClient, repo: string, m: Manifest): Promise<{ size: number; platforms?: string[] }> {
  if (!isIndexType(m.mediaType)) {
    const doc = parseJson<ImageManifestDoc>(m);
    return { size: m.bytes.length + doc.config.size + doc.layers.reduce((s, l) => s + l.size, 0) };
  }
  let size = m.bytes.length;
  const platforms: string[] = [];
  for (const child of parseJson<IndexDoc>(m).manifests) {
    const c = await client.getManifest(repo, child.digest).catch(() => null);
    if (!c) continue;
    size += (await sizeOf(client, repo, c)).size;
    const p = child.platform;
    if (p) platforms.push([p.os, p.architecture, p.variant].filter(Boolean).join('/'));
  }
  return { size, platforms };
}

export async function listRegistry(client: RegistryClient, toRef: (repo: string, tag: string) => string | null): Promise<ListedImage[]> {
  const out: ListedImage[] = [];
  for (const repo of (await client.catalog()).sort()) {
    for (const tag of await client.tags(repo)) {
      const ref = toRef(repo, tag);
      if (!ref) continue;
      const m = await client.getManifest(repo, tag);
      if (!m) continue;
      const { size, platforms } = await sizeOf(client, repo, m);
      out.push({ ref, repository: repo, tag, digest: m.digest, mediaType: m.mediaType, size, ...(platforms ? { platforms } : {}) });
    }
  }
  return out;
}

/** `lo images ls`: what the cache holds (pinned) and what each mirror has cached, with sizes. */
export async function imagesLs(opts: LoadSpecOptions, deps: ImagesDeps = {}): Promise<{ project: string; registries: ListedRegistry[] }> {
  const ctx = await open(opts, deps);
  try {
    const cacheRef = (repo: string, tag: string): string | null => {
      const r = refOfCacheRepo(repo);
      return r ? `${r.registry}/${r.repository}:${tag}` : null;
    };
    const sources: Array<{ r: RegistryPlan; endpoint: string; toRef: (repo: string, tag: string) => string | null }> = [
      { r: ctx.cache, endpoint: ctx.cache.endpoint, toRef: cacheRef },
      // A mirror is read through its read-only replica: the proxy would ask the upstream for tag lists.
      ...ctx.plan.registries
        .filter((r) => r.role === 'mirror')
        .map((r) => ({
          r,
          endpoint: r.replica?.endpoint ?? r.endpoint,
          toRef: (repo: string, tag: string) => `${r.registry ?? r.name}/${repo}:${tag}`,
        })),
    ];
    const registries = await Promise.all(
      sources.map(async (s): Promise<ListedRegistry> => {
        deps.onProgress?.(`reading ${s.r.name}`);
        const base = { name: s.r.name, role: s.r.role as 'cache' | 'mirror', endpoint: s.endpoint };
        try {
          // A stopped registry's address may not answer at all: give up on it after a few seconds.
          const client = new RegistryClient(s.endpoint, { ca: ctx.ca, timeoutMs: 5000 });
          try {
            return { ...base, images: await listRegistry(client, s.toRef) };
          } finally {
            client.close();
          }
        } catch (err) {
          return { ...base, images: [], error: (err as Error).message };
        }
      }),
    );
    return { project: ctx.plan.project.name, registries };
  } finally {
    ctx.close();
  }
}

/** `lo images rm`: deletes each pinned image's manifest from the cache (its blobs go with `registry garbage-collect`). */
export async function imagesRm(
  opts: LoadSpecOptions,
  refs: string[],
  deps: ImagesDeps & { dryRun?: boolean } = {},
): Promise<{ project: string; dryRun: boolean; removed: Array<{ ref: string; digest: string }> }> {
  const ctx = await open(opts, deps);
  try {
    const targets = refs.map((text) => {
      try {
        const ref = parseImageRef(text);
        return { ref, repo: cacheRepoOf(ref) };
      } catch (err) {
        throw new LoError('E_USAGE', (err as Error).message, { exitCode: ExitCode.badInput });
      }
    });
    const client = ctx.client(ctx.cache.endpoint);
    const removed: Array<{ ref: string; digest: string }> = [];
    const missing: string[] = [];
    for (const t of targets) {
      const digest = await client.headManifest(t.repo, t.ref.reference).catch((err: unknown) => {
        throw unreachable(ctx.cache, err);
      });
      if (!digest) {
        missing.push(t.ref.normalized);
        continue;
      }
      deps.onProgress?.(`removing ${t.ref.normalized}`);
      if (!deps.dryRun)
        await client.deleteManifest(t.repo, digest).catch((err: unknown) => {
          throw unreachable(ctx.cache, err);
        });
      removed.push({ ref: t.ref.normalized, digest });
    }
    if (missing.length)
      throw new LoError(
        'E_USAGE',
        `not in the cache: ${missing.join(', ')}${removed.length ? ` (removed ${removed.map((r) => r.ref).join(', ')})` : ''}`,
        {
          exitCode: ExitCode.badInput,
          hint: '`lo images ls` lists what the cache holds',
        },
      );
    return { project: ctx.plan.project.name, dryRun: Boolean(deps.dryRun), removed };
  } finally {
    ctx.close();
  }
}
