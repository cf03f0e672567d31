import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentSource } from './contentSource.js';
import { digestKey, tagKey } from './keys.js';
import type { AgentMetrics } from './metrics.js';
import { manifestMediaType, parseOciPath, parseRange, tagResolvable, type OciRoute } from './ociPath.js';
import type { PeerTarget, Router } from './router.js';

/** Set on agent-to-agent requests: the receiver answers from its own store only (no second hop, no loops). */
export const HOP_HEADER = 'x-lo-p2p-hop';
/** Manifests are small JSON documents; anything larger is not treated as one. */
export const MAX_MANIFEST_BYTES = 4 << 20;

export interface RegistryOptions {
  source: ContentSource;
  /** null: serve local content only. */
  router: Router | null;
  metrics: AgentMetrics;
  resolveTimeoutMs: number;
  resolveLatest: boolean;
  /** Limit, in bytes per second, for content served to other agents (0 or undefined: none). */
  uploadBytesPerSecond?: number;
  /** Time a peer has to start answering, and the longest pause inside a body. */
  peerTimeoutMs?: number;
  /** How long a peer that served a wrong digest is skipped for that digest. */
  badPeerMs?: number;
  now?: () => number;
  log?: (msg: string) => void;
}

type RouteName = 'base' | 'manifest' | 'blob' | 'metrics' | 'other';

class Ctx {
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly route: RouteName,
    private readonly metrics: AgentMetrics,
  ) {}
  counted = false;
  count(source: 'local' | 'peer' | 'none', result: string): void {
    if (this.counted) return;
    this.counted = true;
    this.metrics.requests.inc({ route: this.route, source, result });
  }
}

const API_HEADERS = { 'docker-distribution-api-version': 'registry/2.0' };

function hashOf(digest: string): Hash | null {
  const alg = digest.slice(0, digest.indexOf(':'));
  return alg === 'sha256' || alg === 'sha512' ? createHash(alg) : null;
}

function sendError(ctx: Ctx, status: number, code: string, message: string): void {
  const { req, res } = ctx;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ errors: [{ code, message }] });
  res.writeHead(status, { ...API_HEADERS, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** A token bucket as a stream: paces chunks to `rate` bytes per second. */
function throttle(rate: number): Transform {
  let next = Date.now();
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const now = Date.now();
      next = Math.max(next, now) + (chunk.length / rate) * 1000;
      const wait = next - now;
      if (wait > 2) setTimeout(() => cb(null, chunk), wait);
      else cb(null, chunk);
    },
  });
}

function peerRequest(
  url: string,
  method: 'GET' | 'HEAD',
  headers: Record<string, string>,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, signal });
    // Also covers a peer that vanished without closing its sockets (node killed): no bytes for timeoutMs.
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`peer ${url} timed out after ${timeoutMs} ms`)));
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
}

async function readLimited(stream: Readable, limit: number): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      stream.destroy();
      return null;
    }
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/**
 * The agent's read-only OCI registry (pull API only): local content first, then peers found in the DHT.
 * Everything streams; only manifests (<= 4 MiB) are held in memory.
 */
export function createRegistryHandler(opts: RegistryOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { source, router, metrics } = opts;
  const now = opts.now ?? (() => performance.now());
  const peerTimeoutMs = opts.peerTimeoutMs ?? 3000;
  const badPeerMs = opts.badPeerMs ?? 10 * 60_000;
  const badPeers = new Map<string, number>();
  const log = opts.log ?? (() => {});

  const isBad = (peer: PeerTarget, digest: string): boolean => {
    const until = badPeers.get(`${peer.id} ${digest}`);
    return until !== undefined && until > Date.now();
  };

  async function writeBody(ctx: Ctx, body: Readable, fromPeerRequest: boolean): Promise<number> {
    let n = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        n += chunk.length;
        metrics.bytesServed.inc({ source: 'local' }, chunk.length);
        cb(null, chunk);
      },
    });
    const rate = fromPeerRequest ? (opts.uploadBytesPerSecond ?? 0) : 0;
    if (rate > 0) await pipeline(body, throttle(rate), counter, ctx.res);
    else await pipeline(body, counter, ctx.res);
    return n;
  }

  /** Serves a blob or manifest held by this node; false when it is not here. */
  async function serveLocal(ctx: Ctx, digest: string, asManifest: boolean, knownType?: string): Promise<boolean> {
    const st = await source.stat(digest);
    if (!st) return false;
    const { req, res } = ctx;
    const hop = req.headers[HOP_HEADER] !== undefined;
    if (asManifest) {
      if (st.size > MAX_MANIFEST_BYTES) return false;
      const body = await readLimited(await source.read(digest, 0, Math.max(0, st.size - 1)), MAX_MANIFEST_BYTES);
      if (!body) return false;
      res.writeHead(200, {
        ...API_HEADERS,
        'content-type': knownType || manifestMediaType(body),
        'docker-content-digest': digest,
        'content-length': body.length,
      });
      if (req.method === 'HEAD') res.end();
      else {
        res.end(body);
        metrics.bytesServed.inc({ source: 'local' }, body.length);
      }
      ctx.count('local', 'ok');
      return true;
    }
    const range = parseRange(req.headers.range, st.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...API_HEADERS, 'content-range': `bytes */${st.size}` });
      res.end();
      ctx.count('local', 'range-unsatisfiable');
      return true;
    }
    const r = range && range !== 'ignore' ? range : null;
    const start = r ? r.start : 0;
    const end = r ? r.end : st.size - 1;
    res.writeHead(r ? 206 : 200, {
      ...API_HEADERS,
      'content-type': 'application/octet-stream',
      'docker-content-digest': digest,
      'accept-ranges': 'bytes',
      'content-length': st.size === 0 ? 0 : end - start + 1,
      ...(r ? { 'content-range': `bytes ${start}-${end}/${st.size}` } : {}),
    });
    if (req.method === 'HEAD' || st.size === 0) {
      res.end();
      ctx.count('local', 'ok');
      return true;
    }
    try {
      await writeBody(ctx, await source.read(digest, start, end), hop);
      ctx.count('local', 'ok');
    } catch (err) {
      ctx.count('local', 'aborted');
      log(`serving ${digest} locally: ${(err as Error).message}`);
      res.destroy();
    }
    return true;
  }

  /** Iterates providers of `key`, recording how long the first one took (or giving up took). */
  async function* providers(key: ReturnType<typeof digestKey>, kind: 'digest' | 'tag', signal: AbortSignal): AsyncGenerator<PeerTarget> {
    if (!router) return;
    const t0 = now();
    let first = true;
    for await (const p of router.resolve(key, opts.resolveTimeoutMs, signal)) {
      if (first) metrics.resolveDuration.observe({ kind, found: 'true' }, (now() - t0) / 1000);
      first = false;
      yield p;
    }
    if (first) metrics.resolveDuration.observe({ kind, found: 'false' }, (now() - t0) / 1000);
  }

  /** Manifest by tag from a peer: buffered (small), verified against the digest the peer names. */
  async function relayTag(
    ctx: Ctx,
    registry: string,
    name: string,
    tag: string,
    found: AsyncIterable<PeerTarget>,
    signal: AbortSignal,
  ): Promise<boolean> {
    const path = `/v2/${name}/manifests/${tag}?ns=${encodeURIComponent(registry)}`;
    for await (const peer of found) {
      try {
        const up = await peerRequest(
          peer.url + path,
          'GET',
          { [HOP_HEADER]: '1', accept: String(ctx.req.headers.accept ?? '*/*') },
          peerTimeoutMs,
          signal,
        );
        const digest = String(up.headers['docker-content-digest'] ?? '');
        if (up.statusCode !== 200 || !hashOf(digest)) {
          up.resume();
          continue;
        }
        const body = await readLimited(up, MAX_MANIFEST_BYTES);
        const h = hashOf(digest)!;
        if (!body || `${digest.slice(0, digest.indexOf(':'))}:${h.update(body).digest('hex')}` !== digest) {
          badPeers.set(`${peer.id} ${digest}`, Date.now() + badPeerMs);
          metrics.requests.inc({ route: 'manifest', source: 'peer', result: 'digest-mismatch' });
          continue;
        }
        ctx.res.writeHead(200, {
          ...API_HEADERS,
          'content-type': String(up.headers['content-type'] ?? manifestMediaType(body)),
          'docker-content-digest': digest,
          'content-length': body.length,
        });
        ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
        if (ctx.req.method !== 'HEAD') metrics.bytesServed.inc({ source: 'peer' }, body.length);
        ctx.count('peer', 'ok');
        return true;
      } catch (err) {
        metrics.peerFailovers.inc();
        log(`tag ${registry}/${name}:${tag} from ${peer.url}: ${(err as Error).message}`);
      }
    }
    return false;
  }

  /**
   * Blob or manifest by digest from peers. A full GET is hashed while it streams and the last chunk is held
   * back until the digest is checked: on a mismatch the socket is destroyed, so containerd never receives a
   * complete wrong body and moves to its next host. A peer failing mid-body is replaced by the next one,
   * continuing with a Range request from the byte reached.
   */
  async function relayDigest(
    ctx: Ctx,
    digest: string,
    name: string,
    asManifest: boolean,
    found: AsyncIterable<PeerTarget>,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { req, res } = ctx;
    const kindPath = asManifest ? 'manifests' : 'blobs';
    const path = `/v2/${name}/${kindPath}/${digest}`;
    const rangeHeader = typeof req.headers.range === 'string' ? req.headers.range : undefined;
    const hash = hashOf(digest);
    let sent = 0; // bytes received from peers and hashed (written or pending)
    let pending: Buffer | null = null;
    let total = -1;
    for await (const peer of found) {
      if (isBad(peer, digest)) continue;
      const headers: Record<string, string> = { [HOP_HEADER]: '1', accept: String(req.headers.accept ?? '*/*') };
      const method = req.method === 'HEAD' ? 'HEAD' : 'GET';
      if (rangeHeader && !res.headersSent) headers.range = rangeHeader;
      if (res.headersSent && sent > 0) headers.range = `bytes=${sent}-`;
      let up: IncomingMessage;
      try {
        up = await peerRequest(peer.url + path, method, headers, peerTimeoutMs, signal);
      } catch (err) {
        metrics.peerFailovers.inc();
        log(`${digest} from ${peer.url}: ${(err as Error).message}`);
        continue;
      }
      const status = up.statusCode ?? 0;
      // Passthrough: HEAD, a Range asked by containerd, or a response we cannot verify (unknown algorithm).
      if (!res.headersSent && (method === 'HEAD' || rangeHeader || !hash)) {
        if (status !== 200 && status !== 206 && status !== 416) {
          up.resume();
          continue;
        }
        res.writeHead(status, {
          ...API_HEADERS,
          ...pick(up.headers, ['content-type', 'content-length', 'content-range', 'accept-ranges']),
          'docker-content-digest': digest,
        });
        if (method === 'HEAD') {
          up.resume();
          res.end();
          ctx.count('peer', 'ok');
          return true;
        }
        try {
          await pipeline(up, countPeer(), res);
          ctx.count('peer', 'ok');
        } catch {
          ctx.count('peer', 'peer-failed');
          res.destroy();
        }
        return true;
      }
      const expected = res.headersSent && sent > 0 ? 206 : 200;
      if (status !== expected) {
        up.resume();
        continue;
      }
      if (!res.headersSent) {
        total = Number(up.headers['content-length'] ?? -1);
        if (asManifest && total > MAX_MANIFEST_BYTES) {
          up.resume();
          continue;
        }
        res.writeHead(200, {
          ...API_HEADERS,
          'content-type': String(up.headers['content-type'] ?? 'application/octet-stream'),
          'docker-content-digest': digest,
          'accept-ranges': 'bytes',
          ...(total >= 0 ? { 'content-length': total } : {}),
        });
      }
      try {
        for await (const chunk of up as AsyncIterable<Buffer>) {
          hash!.update(chunk);
          sent += chunk.length;
          if (pending) {
            metrics.bytesServed.inc({ source: 'peer' }, pending.length);
            if (!res.write(pending)) await drained(res);
            if (res.destroyed) throw new Error('client went away');
          }
          pending = chunk;
        }
        if (total >= 0 && sent !== total) throw new Error(`peer sent ${sent} of ${total} bytes`);
      } catch (err) {
        if (res.destroyed) {
          up.destroy();
          ctx.count('peer', 'client-closed');
          return true;
        }
        metrics.peerFailovers.inc();
        log(`${digest} from ${peer.url} failed after ${sent} bytes: ${(err as Error).message}; trying the next peer`);
        continue;
      }
      const got = `${digest.slice(0, digest.indexOf(':'))}:${hash!.digest('hex')}`;
      if (got !== digest) {
        badPeers.set(`${peer.id} ${digest}`, Date.now() + badPeerMs);
        log(`${digest} from ${peer.url}: content hashes to ${got}; aborting the response`);
        ctx.count('peer', 'digest-mismatch');
        res.destroy();
        return true;
      }
      if (pending) metrics.bytesServed.inc({ source: 'peer' }, pending.length);
      res.end(req.method === 'HEAD' ? undefined : (pending ?? undefined));
      ctx.count('peer', 'ok');
      return true;
    }
    if (res.headersSent) {
      // Out of peers in the middle of a body: end the connection so containerd tries its next host.
      ctx.count('peer', 'peer-failed');
      res.destroy();
      return true;
    }
    return false;

    function countPeer(): Transform {
      return new Transform({
        transform(chunk: Buffer, _e, cb) {
          metrics.bytesServed.inc({ source: 'peer' }, chunk.length);
          cb(null, chunk);
        },
      });
    }
  }

  async function handle(ctx: Ctx, route: OciRoute, url: URL): Promise<void> {
    const { req, res } = ctx;
    const hop = req.headers[HOP_HEADER] !== undefined;
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    if (route.kind === 'base') {
      res.writeHead(200, { ...API_HEADERS, 'content-type': 'application/json', 'content-length': 2 });
      res.end(req.method === 'HEAD' ? undefined : '{}');
      ctx.count('none', 'ok');
      return;
    }
    if (route.kind === 'manifest' && !route.byDigest) {
      const tag = route.reference;
      const registry = url.searchParams.get('ns');
      if (!tagResolvable(tag, opts.resolveLatest)) {
        ctx.count('none', 'tag-policy');
        return sendError(ctx, 404, 'MANIFEST_UNKNOWN', `tag ${tag} is not resolved by the P2P mirror (resolveLatest is off)`);
      }
      if (!registry) {
        ctx.count('none', 'not-found');
        return sendError(ctx, 404, 'MANIFEST_UNKNOWN', 'a tag needs the ns query parameter (the registry name)');
      }
      // The DHT lookup starts alongside the local one, so a miss costs max(local, resolve), not the sum.
      const lookup = hop ? null : started(providers(tagKey(registry, route.name, tag), 'tag', ac.signal));
      const desc = await source.resolveTag(registry, route.name, tag);
      if (desc && (await serveLocal(ctx, desc.digest, true, desc.mediaType))) return void lookup?.cancel();
      if (lookup && (await relayTag(ctx, registry, route.name, tag, lookup.iterable, ac.signal))) return;
      ctx.count('none', 'not-found');
      return sendError(ctx, 404, 'MANIFEST_UNKNOWN', `${registry}/${route.name}:${tag} is not on this node or its peers`);
    }
    const digest = route.kind === 'blob' ? route.digest : route.reference;
    const asManifest = route.kind === 'manifest';
    const lookup = hop ? null : started(providers(digestKey(digest), 'digest', ac.signal));
    if (await serveLocal(ctx, digest, asManifest)) return void lookup?.cancel();
    if (lookup && (await relayDigest(ctx, digest, route.name, asManifest, lookup.iterable, ac.signal))) return;
    ctx.count('none', 'not-found');
    sendError(ctx, 404, asManifest ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN', `${digest} is not on this node or its peers`);
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (url.pathname === '/metrics' && req.method === 'GET') {
      metrics.registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        })
        .catch(() => res.destroy());
      return;
    }
    const route = parseOciPath(url.pathname);
    const ctx = new Ctx(req, res, route ? (route.kind as RouteName) : 'other', metrics);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      ctx.count('none', 'method-not-allowed');
      return sendError(ctx, 405, 'UNSUPPORTED', 'this registry is read-only (GET and HEAD only)');
    }
    if (!route) {
      ctx.count('none', 'not-found');
      return sendError(ctx, 404, 'NAME_UNKNOWN', `${url.pathname} is not a pull route`);
    }
    handle(ctx, route, url).catch((err: Error) => {
      log(`${req.method} ${url.pathname}: ${err.stack ?? err.message}`);
      ctx.count('none', 'error');
      if (res.headersSent) res.destroy();
      else sendError(ctx, 500, 'UNKNOWN', err.message);
    });
  };
}

/**
 * Starts an async iteration now (its first `next()` runs while the caller does other work) and hands back an
 * iterable that continues it, or a cancel that ends it.
 */
function started<T>(gen: AsyncGenerator<T>): { iterable: AsyncIterable<T>; cancel: () => void } {
  const first = gen.next();
  first.catch(() => {});
  let used = false;
  return {
    iterable: {
      async *[Symbol.asyncIterator]() {
        if (used) return;
        used = true;
        const f = await first;
        if (f.done) return;
        yield f.value;
        yield* { [Symbol.asyncIterator]: () => gen };
      },
    },
    cancel: () => {
      void first.then(() => gen.return(undefined)).catch(() => {});
    },
  };
}

/** Resolves on 'drain' or 'close', removing both listeners (a long body would otherwise pile them up). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function pick(h: http.IncomingHttpHeaders, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (typeof h[n] === 'string') out[n] = h[n] as string;
  return out;
}

export async function startRegistryServer(opts: RegistryOptions & { port: number; host?: string }): Promise<http.Server> {
  const server = http.createServer({ keepAlive: true }, createRegistryHandler(opts));
  server.listen(opts.port, opts.host ?? '0.0.0.0');
  await once(server, 'listening');
  return server;
}
