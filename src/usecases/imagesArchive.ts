import { createReadStream, createWriteStream } from 'node:fs';
import { open as openFile, rename, rm } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { blobsOf, type Descriptor, type ImageManifestDoc, type IndexDoc, parseJson } from '../adapters/oci/copyImage.js';
import { createZstdDecompress, isZstdMagic } from '../adapters/zstdDecompress.js';
import { DigestCheck, isIndexType, mediaTypeOf, sha256, type RegistryClient } from '../adapters/oci/registryClient.js';
import { LoError, ExitCode } from '../errors/loError.js';
import { parseImageRef, type ImageRef } from '../plan/imageRef.js';
import { cacheRepoOf, refOfCacheRepo } from '../plan/images.js';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import { listRegistry } from './images.js';
import { openImages, stagingRepo, unreachable, type ImagesDeps } from './imagesContext.js';

/**
 * `lo images load` and `lo images export` (issue 12): archives in and out of the project's cache, streamed.
 * A load reads the tar once, front to back: every blob goes straight into a staging repository of the cache
 * (digest and size checked as it passes, never held in memory but for small JSON documents: manifests,
 * configs, index.json), and once the archive's index (or docker's manifest.json, which comes last) is read,
 * each image's blobs are mounted into its repository and its manifests pushed as they were. An export writes
 * one OCI image layout (index.json naming every pinned image, then the manifests, then the blobs streamed
 * from the cache), which `lo images load` takes back, as do `ctr images import` and K3s's air-gap loader.
 */

/** Blobs up to this size are kept while loading when they look like JSON (manifests and configs are). */
const SMALL = 1 << 20;
const DOCS = new Set(['index.json', 'manifest.json', 'oci-layout', 'repositories']);
const OCI_BLOB = /^blobs\/sha256\/([0-9a-f]{64})$/;
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

export interface LoadedImage {
  ref: string;
  digest: string;
  file: string;
  cacheRef: string;
}

interface LoadState {
  staging: string;
  /** digest -> size of every blob pushed to the staging repository */
  blobs: Map<string, number>;
  /** small JSON blobs (manifests, configs) by digest */
  small: Map<string, Buffer>;
  docs: Map<string, Buffer>;
  /** docker save (legacy layout): archive path of a layer or config -> its blob */
  paths: Map<string, { digest: string; size: number }>;
  links: Map<string, string>;
}

async function readAll(stream: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw new Error(`${what} is over ${max} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** How an archive is compressed, told by its first bytes (a `.tar.zst` renamed `.tar` still loads). */
export function compressionOf(head: Uint8Array): 'gzip' | 'zstd' | 'none' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  return isZstdMagic(head) ? 'zstd' : 'none';
}

async function headOf(file: string): Promise<Buffer> {
  const fh = await openFile(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Reads one archive into the staging repository; what it learnt about the images in it. */
async function readArchive(
  client: RegistryClient,
  file: string,
  state: LoadState,
  onBytes: (n: number) => void,
  dryRun = false,
): Promise<void> {
  // A dry run reads and checks every blob the same way and pushes nothing.
  const check = async (body: Readable, expected: { digest?: string; size?: number }): Promise<{ digest: string; size: number }> => {
    const c = new DigestCheck(expected.digest, expected.size, onBytes);
    await pipeline(body, c, new Writable({ write: (_chunk, _enc, cb) => cb() }));
    return { digest: c.digest, size: c.bytes };
  };
  const push = async (body: Readable, expected: { digest?: string; size?: number }): Promise<{ digest: string; size: number }> => {
    const r = dryRun ? await check(body, expected) : await client.pushBlob(state.staging, body, expected, onBytes);
    state.blobs.set(r.digest, r.size);
    return r;
  };
  const entry = async (header: tar.Headers, stream: Readable): Promise<void> => {
    const name = header.name.replace(/^\.\//, '');
    const size = header.size ?? 0;
    if (header.type === 'symlink' || header.type === 'link') {
      // docker save links a layer it already wrote: `<id>/layer.tar -> ../<other>/layer.tar`
      const base = name.split('/').slice(0, -1);
      const target = header.type === 'link' ? header.linkname! : [...base, header.linkname!].join('/').replace(/[^/]+\/\.\.\//g, '');
      state.links.set(name, target.replace(/^\.\//, ''));
      return void stream.resume();
    }
    if (header.type && header.type !== 'file') return void stream.resume();
    const oci = OCI_BLOB.exec(name);
    if (oci) {
      const digest = `sha256:${oci[1]}`;
      if (state.blobs.has(digest)) return void stream.resume();
      if (size <= SMALL) {
        const buf = await readAll(stream, SMALL, name);
        await push(Readable.from([buf]), { digest, size });
        if (buf[0] === 0x7b) state.small.set(digest, buf);
      } else await push(stream, { digest, size });
      return;
    }
    if (DOCS.has(name)) return void state.docs.set(name, await readAll(stream, 4 << 20, name));
    // docker save before Docker 25: configs `<hex>.json` at the top, layers `<id>/layer.tar` (uncompressed)
    if (/^[0-9a-f]{64}\.json$/.test(name)) {
      const buf = await readAll(stream, 4 << 20, name);
      const r = await push(Readable.from([buf]), { size });
      state.small.set(r.digest, buf);
      return void state.paths.set(name, r);
    }
    if (/\/layer\.tar$/.test(name)) return void state.paths.set(name, await push(stream, { size }));
    stream.resume();
  };

  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    entry(header, stream).then(
      () => next(),
      (err: Error) => {
        stream.resume();
        extract.destroy(new Error(`${file}: ${header.name}: ${err.message}`));
      },
    );
  });
  const source = createReadStream(file);
  const compression = compressionOf(await headOf(file));
  if (compression === 'none') await pipeline(source, extract);
  else await pipeline(source, compression === 'gzip' ? createGunzip() : createZstdDecompress(), extract);
}

interface Named {
  ref: ImageRef;
  descriptor: Descriptor;
}

/** The images an OCI layout's index.json names (containerd's and OCI's name annotations). Pure. */
export function namedInIndex(index: IndexDoc): { named: Named[]; unnamed: string[] } {
  const named: Named[] = [];
  const unnamed: string[] = [];
  for (const d of index.manifests ?? []) {
    const full = d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name'];
    // a bare ref.name ("1.27") is only a tag: it does not say which repository
    if (full && /[/:]/.test(full) && full.includes('/')) named.push({ ref: parseImageRef(full), descriptor: d });
    else unnamed.push(d.digest);
  }
  return { named, unnamed };
}

/** docker save's manifest.json (the layout before Docker 25) as image manifests to build. Pure. */
export function dockerSaveImages(
  manifestJson: Buffer,
  paths: ReadonlyMap<string, { digest: string; size: number }>,
  links: ReadonlyMap<string, string> = new Map(),
): Array<{ refs: ImageRef[]; bytes: Buffer }> {
  const entries = JSON.parse(manifestJson.toString('utf8')) as Array<{ Config: string; RepoTags?: string[] | null; Layers: string[] }>;
  const blob = (p: string): { digest: string; size: number } => {
    const b = paths.get(p) ?? paths.get(links.get(p) ?? '');
    if (!b) throw new Error(`manifest.json names ${p}, which is not in the archive`);
    return b;
  };
  return entries.map((e) => {
    const manifest = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...blob(e.Config) },
      layers: e.Layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', ...blob(l) })),
    };
    return { refs: (e.RepoTags ?? []).map((t) => parseImageRef(t)), bytes: Buffer.from(JSON.stringify(manifest)) };
  });
}

/** `lo images load FILE…`: docker save archives and OCI image layout archives (tar, or gzipped tar) into the cache. */
export async function imagesLoad(
  opts: LoadSpecOptions,
  files: string[],
  deps: ImagesDeps & { dryRun?: boolean } = {},
): Promise<{ project: string; dryRun: boolean; images: LoadedImage[] }> {
  const ctx = await openImages(opts, deps);
  const client = ctx.client(ctx.cache.endpoint);
  const host = new URL(ctx.cache.endpoint).host;
  const images: LoadedImage[] = [];
  try {
    for (const file of files) {
      const state: LoadState = {
        staging: stagingRepo(),
        blobs: new Map(),
        small: new Map(),
        docs: new Map(),
        paths: new Map(),
        links: new Map(),
      };
      let bytes = 0;
      let shown = 0;
      deps.onProgress?.(`${file}: reading`);
      try {
        await readArchive(
          client,
          file,
          state,
          (n) => {
            bytes += n;
            if (bytes - shown >= 8 << 20) {
              shown = bytes;
              deps.onProgress?.(`${file}: ${(bytes / 1048576).toFixed(0)} MiB`);
            }
          },
          Boolean(deps.dryRun),
        );
        const ensureBlob = async (repo: string, d: Descriptor): Promise<void> => {
          if (deps.dryRun) {
            if (!state.blobs.has(d.digest)) throw new Error(`blob ${d.digest} is not in the archive`);
            return;
          }
          if (await client.hasBlob(repo, d.digest)) return;
          if (!state.blobs.has(d.digest) || !(await client.mountBlob(repo, d.digest, state.staging)))
            throw new Error(`blob ${d.digest} is not in the archive`);
        };
        const linkManifest = async (repo: string, digest: string, ref: string, mediaType?: string): Promise<void> => {
          const bytes = state.small.get(digest);
          if (!bytes) throw new Error(`manifest ${digest} is not in the archive`);
          const type = mediaType ?? mediaTypeOf(bytes);
          if (isIndexType(type)) {
            const missing = parseJson<IndexDoc>({ bytes }).manifests.filter((c) => !state.small.has(c.digest));
            if (missing.length)
              throw new Error(
                `the index ${digest} names manifests the archive does not hold (${missing.map((m) => m.digest).join(', ')}): save every platform, or pull the image by platform before saving`,
              );
            for (const c of parseJson<IndexDoc>({ bytes }).manifests) await linkManifest(repo, c.digest, c.digest, c.mediaType);
          } else for (const b of blobsOf(parseJson<ImageManifestDoc>({ bytes }))) await ensureBlob(repo, b);
          if (!deps.dryRun) await client.putManifest(repo, ref, { bytes, mediaType: type });
        };
        const done = (ref: ImageRef, digest: string): void => {
          const repo = cacheRepoOf(ref);
          images.push({ ref: ref.normalized, digest, file, cacheRef: `${host}/${repo}${ref.tag ? `:${ref.tag}` : `@${digest}`}` });
          deps.onProgress?.(`${file}: ${ref.normalized}`);
        };
        const index = state.docs.get('index.json');
        const manifestJson = state.docs.get('manifest.json');
        if (index) {
          const { named, unnamed } = namedInIndex(JSON.parse(index.toString('utf8')) as IndexDoc);
          if (named.length === 0)
            throw new Error(
              `index.json names no image (${unnamed.length} unnamed): expected an io.containerd.image.name or a full org.opencontainers.image.ref.name annotation`,
            );
          for (const n of named) {
            await linkManifest(cacheRepoOf(n.ref), n.descriptor.digest, n.ref.tag ?? n.descriptor.digest, n.descriptor.mediaType);
            done(n.ref, n.descriptor.digest);
          }
        } else if (manifestJson) {
          for (const img of dockerSaveImages(manifestJson, state.paths, state.links)) {
            const doc = parseJson<ImageManifestDoc>({ bytes: img.bytes });
            for (const ref of img.refs) {
              const repo = cacheRepoOf(ref);
              for (const b of blobsOf(doc)) await ensureBlob(repo, b);
              if (!deps.dryRun)
                await client.putManifest(repo, ref.tag ?? sha256(img.bytes), { bytes: img.bytes, mediaType: DOCKER_MANIFEST });
              done(ref, sha256(img.bytes));
            }
          }
        } else throw new Error('neither an OCI image layout (index.json) nor a docker save archive (manifest.json)');
      } catch (err) {
        if (err instanceof LoError) throw err;
        throw new LoError('E_STEP', `cannot load ${file}: ${(err as Error).message}`, {
          exitCode: ExitCode.stepFailed,
          hint: 'load archives made by `docker save`, `lo images export`, `skopeo copy … oci-archive:` or `ctr images export`',
          cause: err,
        });
      } finally {
        // The staging repository lets go of every blob (the images' repositories keep theirs).
        if (!deps.dryRun) for (const digest of state.blobs.keys()) await client.deleteBlob(state.staging, digest).catch(() => false);
      }
    }
    return { project: ctx.plan.project.name, dryRun: Boolean(deps.dryRun), images };
  } finally {
    ctx.close();
  }
}

/** Writes one tar entry from a buffer or a stream of known size. */
function addEntry(pack: tar.Pack, name: string, body: Buffer | Readable, size?: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (Buffer.isBuffer(body))
      return void pack.entry({ name, size: body.length, mode: 0o644 }, body, (err) => (err ? reject(err) : resolve()));
    const entry: Writable = pack.entry({ name, size: size!, mode: 0o644 }, (err) => (err ? reject(err) : resolve()));
    pipeline(body, entry).catch(reject);
  });
}

/** `lo images export FILE`: every pinned image of the project as one OCI image layout archive. */
export async function imagesExport(
  opts: LoadSpecOptions,
  file: string,
  deps: ImagesDeps = {},
): Promise<{ project: string; file: string; images: Array<{ ref: string; digest: string }>; blobs: number; bytes: number }> {
  const ctx = await openImages(opts, deps);
  const client = ctx.client(ctx.cache.endpoint);
  const tmp = `${file}.lo-tmp`;
  try {
    deps.onProgress?.('listing pinned images');
    const pinned = await listRegistry(client, (repo, tag) => {
      const r = refOfCacheRepo(repo);
      return r ? `${r.registry}/${r.repository}:${tag}` : null;
    }).catch((err: unknown) => {
      throw unreachable(ctx.cache, err);
    });
    if (pinned.length === 0)
      throw new LoError('E_USAGE', 'the cache holds no pinned image', {
        exitCode: ExitCode.badInput,
        hint: '`lo images add IMAGE` or `lo images load FILE` first',
      });
    // Manifests (small) first, then every blob once, streamed.
    const manifests = new Map<string, Buffer>();
    const blobs = new Map<string, { repo: string; d: Descriptor }>();
    const walk = async (repo: string, ref: string): Promise<{ digest: string; mediaType: string; size: number }> => {
      const m = await client.getManifest(repo, ref);
      if (!m) throw new LoError('E_STEP', `${repo}:${ref} vanished from the cache during the export`, { exitCode: ExitCode.stepFailed });
      manifests.set(m.digest, m.bytes);
      if (isIndexType(m.mediaType)) for (const c of parseJson<IndexDoc>(m).manifests) await walk(repo, c.digest);
      else for (const b of blobsOf(parseJson<ImageManifestDoc>(m))) if (!blobs.has(b.digest)) blobs.set(b.digest, { repo, d: b });
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
    };
    const index: IndexDoc & { schemaVersion: number } = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [],
    };
    for (const p of pinned) {
      const top = await walk(p.repository, p.tag);
      index.manifests.push({ ...top, annotations: { 'io.containerd.image.name': p.ref, 'org.opencontainers.image.ref.name': p.tag } });
    }
    const pack = tar.pack();
    const written = pipeline(pack, createWriteStream(tmp));
    let bytes = 0;
    await addEntry(pack, 'oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    await addEntry(pack, 'index.json', Buffer.from(JSON.stringify(index)));
    for (const [digest, b] of manifests) await addEntry(pack, `blobs/sha256/${digest.slice(7)}`, b);
    for (const { repo, d } of blobs.values()) {
      deps.onProgress?.(`${file}: ${d.digest.slice(0, 19)} (${(d.size / 1048576).toFixed(1)} MiB)`);
      const body = await client.getBlob(repo, d.digest);
      await addEntry(pack, `blobs/sha256/${d.digest.slice(7)}`, body.pipe(new DigestCheck(d.digest, d.size)), d.size);
      bytes += d.size;
    }
    pack.finalize();
    await written;
    await rename(tmp, file);
    return {
      project: ctx.plan.project.name,
      file,
      images: pinned.map((p) => ({ ref: p.ref, digest: p.digest })),
      blobs: blobs.size,
      bytes,
    };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    ctx.close();
  }
}
