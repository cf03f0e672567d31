import type { ContentSource } from '../contentSource.js';
import { digestKey, tagKey } from '../keys.js';
import type { ServeLocal } from './local.js';
import type { PeerRelay } from './peers.js';
import type { RequestContext } from './request.js';

/** Local content first, then peers: connected ones asked directly in a small cluster, else the DHT (started alongside the local lookup). */
export interface Resolver {
  /** Answers a manifest by tag; false when neither this node nor (with askPeers) a peer has it. */
  manifestByTag(
    ctx: RequestContext,
    registry: string,
    name: string,
    tag: string,
    signal: AbortSignal,
    askPeers?: boolean,
  ): Promise<boolean>;
  /** Answers a blob or a manifest by digest; false when neither this node nor a peer has it. */
  byDigest(ctx: RequestContext, digest: string, name: string, asManifest: boolean, signal: AbortSignal): Promise<boolean>;
}

export function createResolver(source: ContentSource, serveLocal: ServeLocal, peers: PeerRelay): Resolver {
  return {
    async manifestByTag(ctx, registry, name, tag, signal, askPeers = true) {
      const key = tagKey(registry, name, tag);
      const path = `/v2/${name}/manifests/${tag}?ns=${encodeURIComponent(registry)}`;
      const accept = String(ctx.req.headers.accept ?? '*/*');
      // A hop is answered locally only. In a small cluster the connected peers are asked after a local miss
      // (one round trip); else the DHT lookup starts first, so a miss costs max(local, resolve), not the sum.
      const direct = ctx.hop || !askPeers ? null : peers.directFirst(key, 'tag', path, accept, signal);
      const lookup = ctx.hop || !askPeers || direct ? null : started(peers.providers(key, 'tag', signal));
      // containerd unavailable: a miss here, so the peers still answer.
      const desc = await source.resolveTag(registry, name, tag).catch(() => null);
      if (desc && (await serveLocal(ctx, desc.digest, true, desc.mediaType))) {
        lookup?.cancel();
        return true;
      }
      const found = direct ?? (lookup ? peers.withDirect(lookup.iterable, key, path, accept) : null);
      return found ? peers.relayTag(ctx, registry, name, tag, found, signal) : false;
    },
    async byDigest(ctx, digest, name, asManifest, signal) {
      const key = digestKey(digest);
      const path = `/v2/${name}/${asManifest ? 'manifests' : 'blobs'}/${digest}`;
      const accept = String(ctx.req.headers.accept ?? '*/*');
      const direct = ctx.hop ? null : peers.directFirst(key, 'digest', path, accept, signal);
      const lookup = ctx.hop || direct ? null : started(peers.providers(key, 'digest', signal));
      if (await serveLocal(ctx, digest, asManifest)) {
        lookup?.cancel();
        return true;
      }
      const found = direct ?? (lookup ? peers.withDirect(lookup.iterable, key, path, accept) : null);
      return found ? peers.relayDigest(ctx, digest, name, asManifest, found, signal) : false;
    },
  };
}

/**
 * Starts an async iteration now (its first `next()` runs while the caller does other work) and hands back an
 * iterable that continues it, or a cancel that ends it.
 */
export function started<T>(gen: AsyncGenerator<T>): { iterable: AsyncIterable<T>; cancel: () => void } {
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
