import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Media types of manifests lo reads and writes (OCI and Docker schema 2, images and indexes). */
export const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

const INDEX_TYPES = new Set<string>([MANIFEST_TYPES[0], MANIFEST_TYPES[1]]);
export const isIndexType = (mediaType: string): boolean => INDEX_TYPES.has(mediaType);

/** Manifests are small JSON documents; anything larger is refused rather than buffered. */
const MAX_MANIFEST = 4 << 20;

export interface Manifest {
  /** The exact bytes (a manifest's digest is over these, so they are pushed as read). */
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export class RegistryHttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** A digest check on bytes as they pass: sha256 and length, compared when the stream ends. */
export class DigestCheck extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  constructor(
    private readonly expected?: string,
    private readonly expectedSize?: number,
    private readonly onBytes?: (n: number) => void,
  ) {
    // 1 MiB buffered either side: fewer, larger writes into the upload's TLS socket than the 16 KiB default.
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
  }
  get digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = this.digest;
    if (this.expected && got !== this.expected) return cb(new Error(`digest mismatch: expected ${this.expected}, got ${got}`));
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize)
      return cb(new Error(`size mismatch for ${this.expected ?? got}: expected ${this.expectedSize} bytes, got ${this.bytes}`));
    cb();
  }
}

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * The distribution (OCI) API of one registry, over node:http(s) with lo's CA (verified, never insecure) and
 * keep-alive. Blob bodies are streams end to end: nothing here holds a layer in memory.
 */
export class RegistryClient {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly base: URL;

  constructor(
    endpoint: string,
    private readonly opts: { ca?: string | null; timeoutMs?: number } = {},
  ) {
    this.base = new URL(endpoint);
    this.agent =
      this.base.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, maxSockets: 8, ...(opts.ca ? { ca: opts.ca } : {}) })
        : new HttpAgent({ keepAlive: true, maxSockets: 8 });
  }

  get endpoint(): string {
    return this.base.origin;
  }

  close(): void {
    this.agent.destroy();
  }

  /** One request; resolves with the response (body unread) for any status. */
  request(
    method: string,
    path: string,
    o: { headers?: Record<string, string | number>; body?: Buffer | Readable } = {},
  ): Promise<IncomingMessage> {
    const url = new URL(path, this.base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, agent: this.agent, headers: o.headers ?? {}, timeout: this.opts.timeoutMs ?? 30_000 }, resolve);
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.href}: no answer within ${this.opts.timeoutMs ?? 30_000} ms`)));
      req.on('error', reject);
      if (!o.body) req.end();
      else if (Buffer.isBuffer(o.body)) req.end(o.body);
      else pipeline(o.body, req).catch((err: Error) => req.destroy(err));
    });
  }

  private async text(res: IncomingMessage, max = 64 << 10): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > max) {
        res.destroy();
        throw new RegistryHttpError(`response over ${max} bytes`, res.statusCode ?? 0);
      }
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private async fail(what: string, res: IncomingMessage): Promise<never> {
    const body = (await this.text(res).catch(() => '')).trim().slice(0, 300);
    throw new RegistryHttpError(`${what}: ${this.base.origin} answered ${res.statusCode}${body ? ` ${body}` : ''}`, res.statusCode ?? 0);
  }

  /** GET a manifest by tag or digest; null on 404. A manifest asked for by digest is checked against it. */
  async getManifest(repo: string, ref: string): Promise<Manifest | null> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: MANIFEST_TYPES.join(', ') } });
    if (res.statusCode === 404) return (void res.resume(), null);
    if (res.statusCode !== 200) return this.fail(`GET manifest ${repo}:${ref}`, res);
    const bytes = Buffer.from(await this.text(res, MAX_MANIFEST), 'utf8');
    const digest = sha256(bytes);
    if (ref.startsWith('sha256:') && digest !== ref) throw new Error(`manifest ${repo}@${ref} has digest ${digest}`);
    const mediaType =
      String(res.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim() || mediaTypeOf(bytes);
    return { bytes, mediaType, digest };
  }

  /** HEAD a manifest: its digest, or null on 404. */
  async headManifest(repo: string, ref: string): Promise<string | null> {
    const res = await this.request('HEAD', `/v2/${repo}/manifests/${ref}`, { headers: { accept: MANIFEST_TYPES.join(', ') } });
    res.resume();
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) return this.fail(`HEAD manifest ${repo}:${ref}`, res);
    return String(res.headers['docker-content-digest'] ?? '') || null;
  }

  async putManifest(repo: string, ref: string, m: Pick<Manifest, 'bytes' | 'mediaType'>): Promise<void> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, {
      headers: { 'content-type': m.mediaType, 'content-length': m.bytes.length },
      body: m.bytes,
    });
    if (res.statusCode !== 201) return this.fail(`PUT manifest ${repo}:${ref}`, res);
    res.resume();
  }

  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('DELETE', `/v2/${repo}/manifests/${digest}`);
    if (res.statusCode === 404) return (void res.resume(), false);
    if (res.statusCode !== 202) return this.fail(`DELETE manifest ${repo}@${digest}`, res);
    res.resume();
    return true;
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`);
    res.resume();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    return this.fail(`HEAD blob ${repo}@${digest}`, res);
  }

  /** Removes a blob's link from one repository (the blob stays while another repository links it). */
  async deleteBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('DELETE', `/v2/${repo}/blobs/${digest}`);
    res.resume();
    if (res.statusCode === 202) return true;
    if (res.statusCode === 404) return false;
    return this.fail(`DELETE blob ${repo}@${digest}`, res);
  }

  /** The blob's body as a stream (redirects to storage followed once). */
  async getBlob(repo: string, digest: string): Promise<IncomingMessage> {
    let res = await this.request('GET', `/v2/${repo}/blobs/${digest}`);
    if (res.statusCode === 307 || res.statusCode === 302) {
      const to = String(res.headers.location);
      res.resume();
      res = await this.request('GET', to);
    }
    if (res.statusCode !== 200) return this.fail(`GET blob ${repo}@${digest}`, res);
    return res;
  }

  /** Cross-repository mount (same registry): true when the registry linked the blob without an upload. */
  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    const res = await this.request(
      'POST',
      `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
      {
        headers: { 'content-length': 0 },
      },
    );
    res.resume();
    if (res.statusCode === 201) return true;
    // 202: the registry opened an upload instead; drop it.
    if (res.statusCode === 202 && res.headers.location) await this.cancelUpload(String(res.headers.location));
    return false;
  }

  private async cancelUpload(location: string): Promise<void> {
    await this.request('DELETE', location).then(
      (r) => r.resume(),
      () => undefined,
    );
  }

  /**
   * Uploads a blob from a stream in one PATCH (chunked) and a closing PUT with the digest the bytes had as
   * they passed. `expected` (digest and size), when known, is checked while streaming: a mismatch aborts the
   * upload before it is committed. Resolves with the digest and size.
   */
  async pushBlob(
    repo: string,
    body: Readable,
    expected: { digest?: string; size?: number } = {},
    onBytes?: (n: number) => void,
  ): Promise<{ digest: string; size: number }> {
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': 0 } });
    if (start.statusCode !== 202) return this.fail(`start upload to ${repo}`, start);
    start.resume();
    let location = String(start.headers.location);
    const check = new DigestCheck(expected.digest, expected.size, onBytes);
    try {
      const patchBody = body.pipe(check);
      body.on('error', (err) => check.destroy(err));
      const patched = await this.request('PATCH', location, {
        headers: {
          'content-type': 'application/octet-stream',
          ...(expected.size !== undefined ? { 'content-length': expected.size } : {}),
        },
        body: patchBody,
      });
      if (patched.statusCode !== 202) return await this.fail(`upload to ${repo}`, patched);
      patched.resume();
      if (check.errored) throw check.errored;
      if (!check.writableFinished && !check.readableEnded) await new Promise((r) => check.once('end', r));
      location = String(patched.headers.location ?? location);
      const sep = location.includes('?') ? '&' : '?';
      const done = await this.request('PUT', `${location}${sep}digest=${encodeURIComponent(check.digest)}`, {
        headers: { 'content-length': 0 },
      });
      if (done.statusCode !== 201) return await this.fail(`commit upload to ${repo}`, done);
      done.resume();
      return { digest: check.digest, size: check.bytes };
    } catch (err) {
      await this.cancelUpload(location);
      throw err;
    }
  }

  /** Repositories (every page of /v2/_catalog). */
  async catalog(): Promise<string[]> {
    const out: string[] = [];
    let next: string | null = '/v2/_catalog?n=1000';
    while (next) {
      const res = await this.request('GET', next);
      if (res.statusCode !== 200) return this.fail('GET /v2/_catalog', res);
      const link = String(res.headers.link ?? '');
      out.push(...((JSON.parse(await this.text(res, MAX_MANIFEST)) as { repositories?: string[] }).repositories ?? []));
      next = /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] ?? null;
    }
    return out;
  }

  /** Tags of a repository ([] when it has none or is unknown). */
  async tags(repo: string): Promise<string[]> {
    const res = await this.request('GET', `/v2/${repo}/tags/list`);
    if (res.statusCode === 404) return (void res.resume(), []);
    if (res.statusCode !== 200) return this.fail(`GET tags of ${repo}`, res);
    return ((JSON.parse(await this.text(res, MAX_MANIFEST)) as { tags?: string[] | null }).tags ?? []).sort();
  }
}

/** A manifest's media type from its own `mediaType` field (OCI manifests may omit it: then by shape). */
export function mediaTypeOf(bytes: Buffer): string {
  const m = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown };
  if (m.mediaType) return m.mediaType;
  return m.manifests ? MANIFEST_TYPES[0] : MANIFEST_TYPES[2];
}
