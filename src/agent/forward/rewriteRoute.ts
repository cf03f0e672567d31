import type { OciRoute } from '../ociPath.js';
import { tagResolvable } from '../ociPath.js';
import type { AgentMetrics } from '../metrics.js';
import { sendError, type PullRequest, type RequestContext } from '../registry/request.js';
import type { Resolver } from '../registry/resolve.js';
import type { Forwarder } from './forwarder.js';
import { rewriteRepository, rulesFor, type RewriteTable } from './rewrites.js';

export interface RewriteDeps {
  table: RewriteTable;
  forwarder: Forwarder;
  metrics: AgentMetrics;
}

/** With P2P on: this node's content and its peers are asked first (under the original name, or by digest). */
export interface P2PFirst {
  resolver: Resolver;
  resolveLatest: boolean;
  peerTags: (registry: string) => boolean;
}

/**
 * A manifest or blob request for a registry with rewrite rules (its own or `*`), or null when rewrites do not
 * concern it (no rules, no `?ns=`, a peer's hop request): the caller answers as it would without rewrites.
 *
 * - A rule changes the name: with P2P on, this node and its peers answer first (content is the same whatever
 *   the name); otherwise, and when they have nothing, the rewritten name is forwarded to the hosts of the
 *   registry's hosts.toml that follow the agent.
 * - No rule changes it: without P2P, 404 at once, so containerd asks its next hosts with the name unchanged;
 *   with P2P, null (the usual P2P answer, which ends in the same 404).
 */
export function rewriteRoute(
  ctx: RequestContext,
  route: OciRoute,
  pull: PullRequest,
  deps: RewriteDeps,
  p2p: P2PFirst | null,
  signal: AbortSignal,
): Promise<void> | null {
  if (route.kind === 'base' || ctx.hop || !pull.ns) return null;
  const registry = pull.ns;
  const rules = rulesFor(deps.table, registry);
  if (!rules) return null;
  const rw = rewriteRepository(rules, route.name);
  const byTag = route.kind === 'manifest' && !route.byDigest;
  if (!rw) {
    if (p2p) return null;
    deps.metrics.forwards.inc({ registry, result: 'rewrite-nomatch' });
    ctx.count('none', 'rewrite-nomatch');
    sendError(ctx, 404, route.kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', `${registry}/${route.name}: no rewrite rule matches`);
    return Promise.resolve();
  }
  const reference = route.kind === 'manifest' ? route.reference : route.digest;
  return (async () => {
    if (p2p) {
      if (byTag) {
        // A tag the P2P mirror does not resolve (latest, unless resolveLatest) comes from upstream.
        if (tagResolvable(reference, p2p.resolveLatest)) {
          if (await p2p.resolver.manifestByTag(ctx, registry, route.name, reference, signal, p2p.peerTags(registry))) return;
        }
      } else if (await p2p.resolver.byDigest(ctx, reference, route.name, route.kind === 'manifest', signal)) return;
      if (signal.aborted) return;
    }
    await deps.forwarder.forward(
      ctx,
      { registry, original: route.name, repository: rw.repository, kind: route.kind === 'blob' ? 'blobs' : 'manifests', reference, byTag },
      signal,
    );
  })();
}
