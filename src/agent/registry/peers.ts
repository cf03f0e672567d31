import type { ServerResponse } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { digestKey } from '../keys.js';
import type { AgentMetrics } from '../metrics.js';
import { MANIFEST_MEDIA_TYPES, manifestTypeOf } from '../ociPath.js';
import type { PeerResponse, PeerTarget, Router } from '../router.js';
import { API_HEADERS, hashOf, MAX_MANIFEST_BYTES, readLimited, type RequestContext } from './request.js';

interface PeerRelayDeps {
  /** null: serve local content only (no providers are ever found). */
  router: Router | null;
  metrics: AgentMetrics;
  resolveTimeoutMs: number;
  /** Time a peer has to start answering, and the longest pause inside a body. */
  peerTimeoutMs: number;
  /** How long a peer that served a wrong digest is skipped for that digest. */
  badPeerMs: number;
  now: () => number;
  log: (msg: string) => void;
}

type Key = ReturnType<typeof digestKey>;

export interface PeerRelay {
  /**
   * `found`, plus the connected peers asked directly (a HEAD of `path` to each, in parallel, answered 200 =
   * a provider) when there are at most MAX_DIRECT of them: in a small cluster that is one round trip on a warm
   * connection, where a DHT lookup is several. Lazy: nothing is sent until the relay asks for a provider.
   */
  withDirect(found: AsyncIterable<PeerTarget>, key: Key, path: string, accept: string): AsyncIterable<PeerTarget>;
  /**
   * In a small cluster (1 to MAX_DIRECT connected peers) with no provider of `key` remembered: the connected
   * peers asked directly first, the DHT only when none of them has it (or all that had it failed). null
   * otherwise (the caller looks `key` up in the DHT alongside the local store and uses withDirect). Lazy.
   */
  directFirst(key: Key, kind: 'digest' | 'tag', path: string, accept: string, signal: AbortSignal): AsyncIterable<PeerTarget> | null;
  providers(key: Key, kind: 'digest' | 'tag', signal: AbortSignal): AsyncGenerator<PeerTarget>;
  relayTag(
    ctx: RequestContext,
    registry: string,
    name: string,
    tag: string,
    found: AsyncIterable<PeerTarget>,
    signal: AbortSignal,
  ): Promise<boolean>;
  relayDigest(
    ctx: RequestContext,
    digest: string,
    name: string,
    asManifest: boolean,
    found: AsyncIterable<PeerTarget>,
    signal: AbortSignal,
  ): Promise<boolean>;
}

/** Fetching from peers: finding providers in the DHT, relaying a tag or a digest, and skipping bad peers. */
export function createPeerRelay(opts: PeerRelayDeps): PeerRelay {
  const { router, metrics, now, log, peerTimeoutMs, badPeerMs } = opts;
  const badPeers = new Map<string, number>();
  const isBad = (peer: PeerTarget, digest: string): boolean => {
    const until = badPeers.get(`${peer.id} ${digest}`);
    return until !== undefined && until > Date.now();
  };

  /** Iterates providers of `key`, recording how long the first one took (or giving up took). */
  async function* providers(key: Key, kind: 'digest' | 'tag', signal: AbortSignal): AsyncGenerator<PeerTarget> {
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
    ctx: RequestContext,
    registry: string,
    name: string,
    tag: string,
    found: AsyncIterable<PeerTarget>,
    signal: AbortSignal,
  ): Promise<boolean> {
    const path = `/v2/${name}/manifests/${tag}?ns=${encodeURIComponent(registry)}`;
    for await (const peer of found) {
      try {
        const up = await router!.fetch(
          peer,
          { method: 'GET', path, headers: { accept: String(ctx.req.headers.accept ?? '*/*') } },
          peerTimeoutMs,
          signal,
        );
        const digest = String(up.headers['docker-content-digest'] ?? '');
        if (up.status !== 200 || !hashOf(digest)) {
          discard(up);
          continue;
        }
        const body = await readLimited(up.body, MAX_MANIFEST_BYTES);
        const h = hashOf(digest)!;
        if (!body || `${digest.slice(0, digest.indexOf(':'))}:${h.update(body).digest('hex')}` !== digest) {
          badPeers.set(`${peer.id} ${digest}`, Date.now() + badPeerMs);
          metrics.requests.inc({ route: 'manifest', source: 'peer', result: 'digest-mismatch' });
          continue;
        }
        const type = manifestTypeOf(body);
        if (!type) continue; // a tag names a manifest or an index, nothing else
        ctx.res.writeHead(200, {
          ...API_HEADERS,
          'content-type': type,
          'docker-content-digest': digest,
          'content-length': body.length,
        });
        ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
        if (ctx.req.method !== 'HEAD') metrics.bytesServed.inc({ source: 'peer' }, body.length);
        ctx.count('peer', 'ok');
        return true;
      } catch (err) {
        metrics.peerFailovers.inc();
        log(`tag ${registry}/${name}:${tag} from ${peer.id}: ${(err as Error).message}`);
      }
    }
    return false;
  }

  /**
   * Blob or manifest by digest from peers. A full GET is hashed while it streams, written in batches, and the
   * last batch is held back until the digest is checked: on a mismatch the socket is destroyed, so containerd never receives a
   * complete wrong body and moves to its next host. A peer failing mid-body is replaced by the next one,
   * continuing with a Range request from the byte reached.
   */
  async function relayDigest(
    ctx: RequestContext,
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
    let sent = 0; // bytes received from peers and hashed (written or held)
    // Received and hashed, not yet written: a full batch held back (the last one waits for the digest check)
    // and the batch being filled. A batch is written corked (one writev of its chunks, no copy), not one write
    // per 16 KiB TLS record: that saves most of the syscalls.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let total = -1;
    for await (const peer of found) {
      if (isBad(peer, digest)) continue;
      const headers: Record<string, string> = { accept: String(req.headers.accept ?? '*/*') };
      const method = req.method === 'HEAD' ? 'HEAD' : 'GET';
      if (rangeHeader && !res.headersSent) headers.range = rangeHeader;
      if (res.headersSent && sent > 0) headers.range = `bytes=${sent}-`;
      // A HEAD whose answer the direct ask already holds (same path, same accept): resolved and answered in
      // one round trip, the peer is not asked again.
      const asked = (peer as DirectTarget).head;
      const reuse = method === 'HEAD' && !rangeHeader && asked?.path === path && asked.accept === headers.accept;
      let up: PeerResponse;
      try {
        up = reuse
          ? { status: 200, headers: asked.headers, body: Readable.from([]) }
          : await router!.fetch(peer, { method, path, headers }, peerTimeoutMs, signal);
      } catch (err) {
        metrics.peerFailovers.inc();
        log(`${digest} from ${peer.id}: ${(err as Error).message}`);
        continue;
      }
      const { status } = up;
      // The manifest route relays manifests and indexes only (by the peer's media type), never a blob.
      if (asManifest && (status === 200 || status === 206) && !MANIFEST_MEDIA_TYPES.has(String(up.headers['content-type'] ?? ''))) {
        discard(up, method);
        continue;
      }
      // Passthrough: HEAD, a Range asked by containerd, or a response we cannot verify (unknown algorithm).
      if (!res.headersSent && (method === 'HEAD' || rangeHeader || !hash)) {
        if (status !== 200 && status !== 206 && status !== 416) {
          discard(up, method);
          continue;
        }
        res.writeHead(status, {
          ...API_HEADERS,
          ...pick(up.headers, ['content-type', 'content-length', 'content-range', 'accept-ranges']),
          'docker-content-digest': digest,
        });
        if (method === 'HEAD') {
          discard(up, method);
          res.end();
          ctx.count('peer', 'ok');
          return true;
        }
        try {
          await pipeline(up.body, countPeer(), res);
          ctx.count('peer', 'ok');
        } catch {
          ctx.count('peer', 'peer-failed');
          res.destroy();
        }
        return true;
      }
      const expected = res.headersSent && sent > 0 ? 206 : 200;
      if (status !== expected) {
        discard(up, method);
        continue;
      }
      if (!res.headersSent) {
        total = Number(up.headers['content-length'] ?? -1);
        if (asManifest && total > MAX_MANIFEST_BYTES) {
          discard(up, method);
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
        // 'data' events, not an async iterator: no promise and no read() per 16 KiB record.
        const body = up.body;
        const ended = finished(body);
        body.on('data', (chunk: Buffer) => {
          hash!.update(chunk);
          sent += chunk.length;
          batch.push(chunk);
          batchBytes += chunk.length;
          if (batchBytes < RELAY_BATCH_BYTES) return;
          if (pendingBytes > 0) {
            if (res.destroyed) return void body.destroy(new Error('client went away'));
            metrics.bytesServed.inc({ source: 'peer' }, pendingBytes);
            if (!writeCorked(res, pending)) {
              body.pause();
              void drained(res).then(() => (res.destroyed ? body.destroy(new Error('client went away')) : body.resume()));
            }
          }
          pending = batch;
          pendingBytes = batchBytes;
          batch = [];
          batchBytes = 0;
        });
        await ended;
        if (total >= 0 && sent !== total) throw new Error(`peer sent ${sent} of ${total} bytes`);
      } catch (err) {
        if (res.destroyed) {
          discard(up, method);
          ctx.count('peer', 'client-closed');
          return true;
        }
        metrics.peerFailovers.inc();
        log(`${digest} from ${peer.id} failed after ${sent} bytes: ${(err as Error).message}; trying the next peer`);
        continue;
      }
      const got = `${digest.slice(0, digest.indexOf(':'))}:${hash!.digest('hex')}`;
      if (got !== digest) {
        badPeers.set(`${peer.id} ${digest}`, Date.now() + badPeerMs);
        log(`${digest} from ${peer.id}: content hashes to ${got}; aborting the response`);
        ctx.count('peer', 'digest-mismatch');
        res.destroy();
        return true;
      }
      if (pendingBytes + batchBytes > 0) metrics.bytesServed.inc({ source: 'peer' }, pendingBytes + batchBytes);
      res.cork();
      writeCorked(res, pending);
      writeCorked(res, batch);
      res.end();
      res.uncork();
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

  /**
   * Connected peers answering 200 to a HEAD of `path`, in the order they answer. Like the DHT, the first must
   * answer within resolveTimeoutMs (so a miss is still a fast 404); later ones within DIRECT_MS (failover).
   */
  async function* askDirect(peers: PeerTarget[], key: Key, path: string, accept: string): AsyncGenerator<PeerTarget> {
    // Not tied to the containerd request: cutting a HEAD in flight would close a warm connection; it ends by itself.
    const signal = AbortSignal.timeout(DIRECT_MS);
    const asked = new Map(
      peers.map((p, i) => [
        i,
        router!.fetch(p, { method: 'HEAD', path, headers: { accept } }, DIRECT_MS, signal).then(
          (r) => {
            discard(r, 'HEAD');
            // Its connection goes back to the pool when the (empty) body has ended, the tick after 'end': the
            // pull that follows then reuses it instead of opening another TLS connection (a handshake). The
            // answer counts when its headers arrive (the deadline below); it is handed on once that is done.
            const freed = finished(r.body)
              .catch(() => {})
              .then(() => new Promise<void>((resolve) => setImmediate(resolve)));
            if (r.status !== 200) return { i, peer: null, freed };
            // The next request for the key finds it in the router's provider cache: no ask, no DHT.
            router!.remember?.(key, p);
            const found: DirectTarget = { ...p, head: { path, accept, headers: r.headers } };
            return { i, peer: found, freed };
          },
          (err: Error) => {
            log(`direct ask of ${path} to ${p.id}: ${err.message}`);
            return { i, peer: null, freed: Promise.resolve() };
          },
        ),
      ]),
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((r) => (timer = setTimeout(() => r(null), opts.resolveTimeoutMs)));
    let any = false;
    try {
      while (asked.size > 0) {
        const got = await Promise.race(any ? asked.values() : [...asked.values(), deadline]);
        if (got === null) {
          log(`direct ask of ${path}: ${asked.size} of ${peers.length} connected peers did not answer within ${opts.resolveTimeoutMs} ms`);
          return;
        }
        asked.delete(got.i);
        if (got.peer) {
          any = true;
          await got.freed;
          yield got.peer;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  function directFirst(
    key: Key,
    kind: 'digest' | 'tag',
    path: string,
    accept: string,
    signal: AbortSignal,
  ): AsyncIterable<PeerTarget> | null {
    const peers = router?.connected?.() ?? [];
    if (peers.length === 0 || peers.length > MAX_DIRECT || !router?.knows || router.knows(key)) return null;
    return {
      async *[Symbol.asyncIterator]() {
        const t0 = now();
        const seen = new Set<string>();
        for await (const p of askDirect(peers, key, path, accept)) {
          if (seen.size === 0) metrics.resolveDuration.observe({ kind, found: 'true' }, (now() - t0) / 1000);
          seen.add(p.id);
          yield p;
        }
        // Nobody connected has it, or every one that had it failed: the DHT (a provider not connected to us).
        for await (const p of providers(key, kind, signal)) if (!seen.has(p.id)) yield p;
      },
    };
  }

  function withDirect(found: AsyncIterable<PeerTarget>, key: Key, path: string, accept: string): AsyncIterable<PeerTarget> {
    const peers = router?.connected?.() ?? [];
    if (peers.length === 0 || peers.length > MAX_DIRECT) return found;
    return {
      async *[Symbol.asyncIterator]() {
        const it = found[Symbol.asyncIterator]();
        const first = it.next();
        // A provider already known (the cache, looked up while the local store was asked): nobody is asked.
        const now = await Promise.race([first, new Promise<null>((r) => setImmediate(() => r(null)))]);
        const rest: AsyncIterable<PeerTarget> = {
          [Symbol.asyncIterator]: () => {
            let started = false;
            return {
              next: () => (started ? it.next() : ((started = true), first)),
              return: (v) => it.return?.(v) ?? Promise.resolve({ done: true, value: v }),
            };
          },
        };
        if (now && !now.done) yield* rest;
        else yield* mergeUnique([askDirect(peers, key, path, accept), rest]);
      },
    };
  }

  return { withDirect, directFirst, providers, relayTag, relayDigest };
}

/** A provider found by asking it directly, with the headers of its 200 answer to that HEAD. */
type DirectTarget = PeerTarget & { head?: { path: string; accept: string; headers: Record<string, string> } };

/** Clusters up to this many connected peers ask them directly, alongside the DHT. */
const MAX_DIRECT = 8;
/** How long a direct ask may take (a warm round trip on the cluster network is a millisecond or two). */
const DIRECT_MS = 1000;

/** Providers from several sources in the order they arrive, each peer once. */
async function* mergeUnique(sources: AsyncIterable<PeerTarget>[]): AsyncGenerator<PeerTarget> {
  const its = sources.map((s) => s[Symbol.asyncIterator]());
  const next = (i: number): Promise<{ i: number; r: IteratorResult<PeerTarget> }> => its[i]!.next().then((r) => ({ i, r }));
  const live = new Map(its.map((_, i) => [i, next(i)]));
  const seen = new Set<string>();
  try {
    while (live.size > 0) {
      const { i, r } = await Promise.race(live.values());
      live.delete(i);
      if (r.done) continue;
      if (!seen.has(r.value.id)) {
        seen.add(r.value.id);
        yield r.value;
      }
      // Only now, when the relay wants another provider: the DHT is not queried for a peer that answered.
      live.set(i, next(i));
    }
  } finally {
    for (const it of its) void it.return?.(undefined).catch(() => {});
  }
}

/** What the relay writes to containerd at once (and so the most it holds back until the digest is checked). */
const RELAY_BATCH_BYTES = 256 << 10;

/** A small answer is read to its end; anything larger is cut there. */
const DISCARD_LIMIT = 64 << 10;

/**
 * Done with a peer's answer without using its body: an empty or small one (a HEAD, an error document) is read
 * to its end, so the keep-alive connection to the peer's data port stays open for the next pull; a large one
 * (or one that keeps sending past the limit) is cut, which closes its connection or resets its stream.
 */
function discard(up: PeerResponse, method: 'GET' | 'HEAD' = 'GET'): void {
  const length = method === 'HEAD' ? 0 : Number(up.headers['content-length'] ?? NaN);
  if (!(length <= DISCARD_LIMIT)) {
    up.body.destroy();
    return;
  }
  let got = 0;
  up.body.on('data', (c: Buffer) => {
    got += c.length;
    if (got > DISCARD_LIMIT) up.body.destroy();
  });
  up.body.on('error', () => {});
  up.body.resume();
}

/** Writes `chunks` as one writev (corked); false when the response wants a 'drain' first. */
function writeCorked(res: ServerResponse, chunks: Buffer[]): boolean {
  let ok = true;
  res.cork();
  for (const c of chunks) ok = res.write(c);
  res.uncork();
  return ok;
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

function pick(h: Record<string, string>, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (h[n] !== undefined) out[n] = h[n];
  return out;
}
