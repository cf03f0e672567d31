import type { ContentSource } from '../contentSource.js';
import { digestKey, tagKey } from '../keys.js';
import type { ServeLocal } from './local.js';
import type { PeerRelay } from './peers.js';
import type { RequestContext } from './request.js';

/** Local content first, then peers: the DHT lookup starts alongside the local one. */
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
      // Started first, so a miss costs max(local, resolve), not the sum. A hop is answered locally only.
      const lookup = ctx.hop || !askPeers ? null : started(peers.providers(tagKey(registry, name, tag), 'tag', signal));
      // containerd unavailable: a miss here, so the peers still answer.
      const desc = await source.resolveTag(registry, name, tag).catch(() => null);
      if (desc && (await serveLocal(ctx, desc.digest, true, desc.mediaType))) {
        lookup?.cancel();
        return true;
      }
      if (lookup === null) return false;
      const accept = String(ctx.req.headers.accept ?? '*/*');
      const found = peers.withDirect(lookup.iterable, `/v2/${name}/manifests/${tag}?ns=${encodeURIComponent(registry)}`, accept);
      return peers.relayTag(ctx, registry, name, tag, found, signal);
    },
    async byDigest(ctx, digest, name, asManifest, signal) {
      const lookup = ctx.hop ? null : started(peers.providers(digestKey(digest), 'digest', signal));
      if (await serveLocal(ctx, digest, asManifest)) {
        lookup?.cancel();
        return true;
      }
      if (lookup === null) return false;
      const accept = String(ctx.req.headers.accept ?? '*/*');
      const found = peers.withDirect(lookup.iterable, `/v2/${name}/${asManifest ? 'manifests' : 'blobs'}/${digest}`, accept);
      return peers.relayDigest(ctx, digest, name, asManifest, found, signal);
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
