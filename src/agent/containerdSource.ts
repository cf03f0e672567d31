import { createReadStream } from 'node:fs';
import { stat as fsStat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ContentSource, Descriptor, LocalTag } from './contentSource.js';
import { parseImageName } from './keys.js';

export interface ContainerdSourceOptions {
  /** `unix:///run/containerd/containerd.sock` (default) or a socket path. (containerd's tcp_address serves only the CRI.) */
  address?: string;
  namespace?: string;
  /** containerd's content directory; blobs are read from `<dir>/blobs/<alg>/<hex>` when it exists, else over gRPC. */
  contentDir?: string;
  log?: (msg: string) => void;
}

const DEFAULT_CONTAINERD_ADDRESS = 'unix:///run/containerd/containerd.sock';
const DEFAULT_CONTENT_DIR = '/var/lib/containerd/io.containerd.content.v1.content';

/** The .proto files live in src/agent/proto; from dist/agent they are at ../../src/agent/proto. */
function protoDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const c of [join(here, 'proto'), join(here, '..', '..', 'src', 'agent', 'proto')]) {
    if (existsSync(join(c, 'content.proto'))) return c;
  }
  throw new Error(`containerd .proto files not found next to ${here}`);
}

type Unary<Req, Res> = (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;
type ServerStream<Req> = (req: Req, md: grpc.Metadata) => grpc.ClientReadableStream<any>;

interface RawImage {
  name: string;
  target?: { mediaType: string; digest: string; size: number };
}

function normalizeAddress(address: string): string {
  if (address.startsWith('unix:') || address.startsWith('dns:') || address.startsWith('ipv4:')) return address;
  if (address.startsWith('/')) return `unix://${address}`;
  return address;
}

/** Reads a node's containerd over its gRPC API (images, content, events). */
export class ContainerdSource implements ContentSource {
  private readonly images: grpc.Client & {
    Get: Unary<{ name: string }, { image?: RawImage }>;
    List: Unary<{ filters: string[] }, { images: RawImage[] }>;
  };
  private readonly content: grpc.Client & {
    Info: Unary<{ digest: string }, { info?: { digest: string; size: number } }>;
    List: ServerStream<{ filters: string[] }>;
    Read: ServerStream<{ digest: string; offset: number; size: number }>;
  };
  private readonly events: grpc.Client & { Subscribe: ServerStream<{ filters: string[] }> };
  private readonly md = new grpc.Metadata();
  private readonly contentDir: string;
  private readonly log: (msg: string) => void;
  readonly namespace: string;
  private closed = false;
  private subs = new Set<grpc.ClientReadableStream<any>>();

  constructor(opts: ContainerdSourceOptions = {}) {
    const dir = protoDir();
    const def = protoLoader.loadSync(
      ['images.proto', 'content.proto', 'events.proto'].map((f) => join(dir, f)),
      {
        longs: Number,
        defaults: true,
        keepCase: false,
      },
    );
    const pkg = grpc.loadPackageDefinition(def) as any;
    const address = normalizeAddress(opts.address ?? DEFAULT_CONTAINERD_ADDRESS);
    const creds = grpc.credentials.createInsecure();
    // containerd's socket is unauthenticated gRPC; `:authority` must be a plain name for unix sockets.
    const chOpts = { 'grpc.default_authority': 'localhost', 'grpc.max_receive_message_length': 64 << 20 };
    this.images = new pkg.containerd.services.images.v1.Images(address, creds, chOpts);
    this.content = new pkg.containerd.services.content.v1.Content(address, creds, chOpts);
    this.events = new pkg.containerd.services.events.v1.Events(address, creds, chOpts);
    this.namespace = opts.namespace ?? 'k8s.io';
    this.md.set('containerd-namespace', this.namespace);
    this.contentDir = opts.contentDir ?? DEFAULT_CONTENT_DIR;
    this.log = opts.log ?? (() => {});
  }

  private unary<Req, Res>(fn: Unary<Req, Res>, client: grpc.Client, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      fn.call(client, req, this.md, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  async resolveTag(registry: string, repository: string, tag: string): Promise<Descriptor | null> {
    try {
      const res = await this.unary(this.images.Get, this.images, { name: `${registry}/${repository}:${tag}` });
      const t = res.image?.target;
      return t?.digest ? { mediaType: t.mediaType, digest: t.digest, size: Number(t.size) } : null;
    } catch (err) {
      if ((err as grpc.ServiceError).code === grpc.status.NOT_FOUND) return null;
      throw err;
    }
  }

  private blobPath(digest: string): string | null {
    const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(digest);
    return m ? join(this.contentDir, 'blobs', m[1]!, m[2]!) : null;
  }

  /**
   * Size of a blob this namespace holds. The content directory is shared by every namespace, so a file there
   * proves nothing: containerd's Content API (Info, in the agent's namespace) decides, and only then is the
   * file read directly (see read).
   */
  async stat(digest: string): Promise<{ size: number } | null> {
    if (!this.blobPath(digest)) return null;
    try {
      const res = await this.unary(this.content.Info, this.content, { digest });
      return res.info ? { size: Number(res.info.size) } : null;
    } catch (err) {
      if ((err as grpc.ServiceError).code === grpc.status.NOT_FOUND || (err as grpc.ServiceError).code === grpc.status.INVALID_ARGUMENT)
        return null;
      throw err;
    }
  }

  async read(digest: string, start: number, end: number): Promise<Readable> {
    const p = this.blobPath(digest);
    if (p) {
      try {
        await fsStat(p);
        return createReadStream(p, { start, end, highWaterMark: 256 * 1024 });
      } catch {
        /* fall through to gRPC */
      }
    }
    const call = this.content.Read.call(this.content, { digest, offset: start, size: end - start + 1 }, this.md);
    async function* bytes(): AsyncGenerator<Buffer> {
      for await (const msg of call as AsyncIterable<{ data: Buffer }>) yield msg.data;
    }
    const r = Readable.from(bytes(), { objectMode: false });
    r.on('close', () => call.cancel());
    return r;
  }

  async listDigests(): Promise<string[]> {
    const call = this.content.List.call(this.content, { filters: [] }, this.md);
    const out: string[] = [];
    for await (const msg of call as AsyncIterable<{ info: Array<{ digest: string }> }>) for (const i of msg.info) out.push(i.digest);
    return out;
  }

  async listTags(): Promise<LocalTag[]> {
    const res = await this.unary(this.images.List, this.images, { filters: [] });
    const out: LocalTag[] = [];
    for (const img of res.images) {
      const ref = parseImageName(img.name);
      if (ref && img.target?.digest) out.push({ ...ref, digest: img.target.digest });
    }
    return out;
  }

  /** Subscribes to containerd events (resubscribing after errors) and reports image/content topics. */
  watch(onChange: (topic: string) => void): () => void {
    let stopped = false;
    let current: grpc.ClientReadableStream<any> | null = null;
    let delay = 200;
    const subscribe = (): void => {
      if (stopped || this.closed) return;
      const call = this.events.Subscribe.call(this.events, { filters: ['topic~="^/(images|content)/"'] }, new grpc.Metadata());
      current = call;
      this.subs.add(call);
      call.on('data', (env: { namespace: string; topic: string }) => {
        delay = 200;
        if (env.namespace === this.namespace) onChange(env.topic);
      });
      let ended = false;
      const again = (err?: Error): void => {
        // 'error' and 'end' may both fire for one call: resubscribe once.
        if (ended) return;
        ended = true;
        this.subs.delete(call);
        if (stopped || this.closed) return;
        if (err && (err as grpc.ServiceError).code !== grpc.status.CANCELLED) this.log(`containerd events: ${err.message}; resubscribing`);
        setTimeout(subscribe, delay).unref();
        delay = Math.min(delay * 2, 5000);
        onChange('resubscribed');
      };
      call.on('error', again);
      call.on('end', () => again());
    };
    subscribe();
    return () => {
      stopped = true;
      current?.cancel();
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.subs) s.cancel();
    this.images.close();
    this.content.close();
    this.events.close();
  }
}
