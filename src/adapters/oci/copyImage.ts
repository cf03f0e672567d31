import { isIndexType, type Manifest, type RegistryClient, RegistryHttpError } from './registryClient.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface ImageManifestDoc {
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface IndexDoc {
  mediaType?: string;
  manifests: Descriptor[];
}

export interface CopyStats {
  /** Digest of the top manifest written (the source's, unchanged, unless a platform was picked). */
  digest: string;
  mediaType: string;
  /** Manifests written (index + children). */
  manifests: number;
  blobsCopied: number;
  /** Blobs the destination had already (HEAD) or linked from another repository (mount). */
  blobsSkipped: number;
  bytesCopied: number;
  /** Sum of every blob's size (config and layers of every platform). */
  bytesTotal: number;
}

export interface CopyOptions {
  /** os/arch[/variant]: copy only that platform's manifest out of an index. */
  platform?: string;
  /** Repositories on the destination that may hold the blobs already (cross-repository mount). */
  mountFrom?: string[];
  /** Blobs of one manifest copied at the same time (default 3). */
  parallel?: number;
  /** Attempts per blob and manifest (a failed blob upload is cancelled and started again). */
  attempts?: number;
  onProgress?: (p: { bytes: number; blob: string }) => void;
}

export const parseJson = <T>(m: Pick<Manifest, 'bytes'>): T => JSON.parse(m.bytes.toString('utf8')) as T;

/** Whether a descriptor's platform is `os/arch[/variant]`. Pure. */
export function platformMatches(d: Descriptor, platform: string): boolean {
  const [os, arch, variant] = platform.split('/');
  const p = d.platform;
  return Boolean(p && p.os === os && p.architecture === arch && (!variant || p.variant === variant));
}

/** Every blob an image manifest references: its config first, then its layers. Pure. */
export function blobsOf(doc: ImageManifestDoc): Descriptor[] {
  return [doc.config, ...(doc.layers ?? [])];
}

const retryable = (err: unknown): boolean =>
  !(err instanceof RegistryHttpError) || err.status >= 500 || err.status === 429 || err.status === 0;

/** Runs fn, again after a short pause when it failed on the network or a 5xx (at most `attempts` times). */
export async function withRetry<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !retryable(err)) throw err;
      await new Promise((r) => setTimeout(r, 200 * i));
    }
  }
}

/**
 * Copies one image (a tag or a digest) from a repository of one registry to a repository of another,
 * registry to registry: every platform of an index with the index's bytes unchanged (so its digest is the
 * source's), or only `platform`. Blobs stream from the source's GET into the destination's upload, sha256
 * and size checked as they pass; a blob the destination has is skipped (HEAD) or mounted from `mountFrom`.
 */
export async function copyImage(
  src: { client: RegistryClient; repo: string; ref: string },
  dst: { client: RegistryClient; repo: string; tag?: string },
  o: CopyOptions = {},
): Promise<CopyStats> {
  const attempts = o.attempts ?? 3;
  const parallel = o.parallel ?? 3;
  const stats: CopyStats = { digest: '', mediaType: '', manifests: 0, blobsCopied: 0, blobsSkipped: 0, bytesCopied: 0, bytesTotal: 0 };
  const fetchManifest = async (ref: string): Promise<Manifest> => {
    const m = await withRetry(attempts, () => src.client.getManifest(src.repo, ref));
    if (!m) throw new RegistryHttpError(`${src.client.endpoint}/v2/${src.repo}/manifests/${ref}: not found`, 404);
    return m;
  };

  const copyBlob = async (d: Descriptor): Promise<void> => {
    stats.bytesTotal += d.size;
    if (await dst.client.hasBlob(dst.repo, d.digest)) return void stats.blobsSkipped++;
    for (const from of o.mountFrom ?? []) {
      if (from !== dst.repo && (await dst.client.mountBlob(dst.repo, d.digest, from))) return void stats.blobsSkipped++;
    }
    await withRetry(attempts, async () => {
      const body = await src.client.getBlob(src.repo, d.digest);
      let sent = 0;
      try {
        await dst.client.pushBlob(dst.repo, body, { digest: d.digest, size: d.size }, (n) => {
          sent += n;
          o.onProgress?.({ bytes: n, blob: d.digest });
        });
      } catch (err) {
        body.destroy();
        throw err;
      }
      stats.bytesCopied += sent;
    });
    stats.blobsCopied++;
  };

  const copyManifest = async (m: Manifest, ref: string): Promise<void> => {
    if (isIndexType(m.mediaType)) {
      for (const child of parseJson<IndexDoc>(m).manifests) await copyManifest(await fetchManifest(child.digest), child.digest);
    } else {
      // Up to `parallel` blobs at once, as skopeo and containerd do; each streams straight through.
      const queue = blobsOf(parseJson<ImageManifestDoc>(m));
      const worker = async (): Promise<void> => {
        for (let b = queue.shift(); b; b = queue.shift()) await copyBlob(b);
      };
      await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, worker));
    }
    await withRetry(attempts, () => dst.client.putManifest(dst.repo, ref, m));
    stats.manifests++;
  };

  let top = await fetchManifest(src.ref);
  if (o.platform && isIndexType(top.mediaType)) {
    const child = parseJson<IndexDoc>(top).manifests.find((d) => platformMatches(d, o.platform!));
    if (!child) {
      const have = parseJson<IndexDoc>(top)
        .manifests.map((d) => [d.platform?.os, d.platform?.architecture, d.platform?.variant].filter(Boolean).join('/'))
        .join(', ');
      throw new RegistryHttpError(`${src.repo}:${src.ref} has no ${o.platform} image (it has ${have})`, 404);
    }
    top = await fetchManifest(child.digest);
  }
  await copyManifest(top, dst.tag ?? top.digest);
  return { ...stats, digest: top.digest, mediaType: top.mediaType };
}
