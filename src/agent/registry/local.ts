import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentSource } from '../contentSource.js';
import type { AgentMetrics } from '../metrics.js';
import { MANIFEST_MEDIA_TYPES, manifestTypeOf, parseRange } from '../ociPath.js';
import { API_HEADERS, MAX_MANIFEST_BYTES, readLimited, type RequestContext } from './request.js';

interface LocalContentDeps {
  source: ContentSource;
  metrics: AgentMetrics;
  /** Limit, in bytes per second, for content served to other agents (0 or undefined: none). */
  uploadBytesPerSecond?: number;
  log: (msg: string) => void;
}

/** Serves a blob or manifest held by this node; resolves false when it is not here. */
export type ServeLocal = (ctx: RequestContext, digest: string, asManifest: boolean, knownType?: string) => Promise<boolean>;

export function createServeLocal({ source, metrics, uploadBytesPerSecond, log }: LocalContentDeps): ServeLocal {
  async function writeBody(ctx: RequestContext, body: Readable): Promise<number> {
    let n = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        n += chunk.length;
        metrics.bytesServed.inc({ source: 'local' }, chunk.length);
        cb(null, chunk);
      },
    });
    const rate = ctx.hop ? (uploadBytesPerSecond ?? 0) : 0;
    if (rate > 0) await pipeline(body, throttle(rate), counter, ctx.res);
    else await pipeline(body, counter, ctx.res);
    return n;
  }

  return async (ctx, digest, asManifest, knownType) => {
    let st: { size: number } | null;
    try {
      st = await source.stat(digest);
    } catch (err) {
      // containerd down or restarting: not here as far as we can tell, so the caller goes on to the peers.
      log(`containerd: stat ${digest}: ${(err as Error).message}; trying peers`);
      return false;
    }
    if (!st) return false;
    const { req, res } = ctx;
    if (asManifest) {
      if (st.size > MAX_MANIFEST_BYTES) return false;
      const body = await readLimited(await source.read(digest, 0, Math.max(0, st.size - 1)), MAX_MANIFEST_BYTES);
      if (!body) return false;
      // Only manifests and indexes go out on the manifest route, never a layer or a config blob.
      const type = knownType ? (MANIFEST_MEDIA_TYPES.has(knownType) ? knownType : null) : manifestTypeOf(body);
      if (!type) return false;
      res.writeHead(200, {
        ...API_HEADERS,
        'content-type': type,
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
      await writeBody(ctx, await source.read(digest, start, end));
      ctx.count('local', 'ok');
    } catch (err) {
      ctx.count('local', 'aborted');
      log(`serving ${digest} locally: ${(err as Error).message}`);
      res.destroy();
    }
    return true;
  };
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
