import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentMetrics } from '../metrics.js';
import { tagResolvable, type OciRoute } from '../ociPath.js';
import { API_HEADERS, parseRequest, RequestContext, sendError, type PullRequest, type RouteName } from './request.js';
import type { Resolver } from './resolve.js';

type Route<K extends OciRoute['kind']> = Extract<OciRoute, { kind: K }>;

/** A manifest or blob request that passed the checks of `acceptPull`. */
export interface AcceptedPull {
  ctx: RequestContext;
  pull: PullRequest;
  route: Exclude<OciRoute, { kind: 'base' }>;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/**
 * What every request to an agent's registry port goes through first: GET and HEAD only (405), a pull route
 * (404), `/v2/` answered. Null when the request has been answered here.
 */
export function acceptPull(req: IncomingMessage, res: ServerResponse, metrics: AgentMetrics): AcceptedPull | null {
  const pull = parseRequest(req);
  const { route } = pull;
  const ctx = new RequestContext(req, res, route ? (route.kind as RouteName) : 'other', metrics);
  if (pull.method !== 'GET' && pull.method !== 'HEAD') {
    ctx.count('none', 'method-not-allowed');
    sendError(ctx, 405, 'UNSUPPORTED', 'this registry is read-only (GET and HEAD only)');
    return null;
  }
  if (!route) {
    ctx.count('none', 'not-found');
    sendError(ctx, 404, 'NAME_UNKNOWN', `${pull.pathname} is not a pull route`);
    return null;
  }
  if (route.kind === 'base') {
    baseRoute(ctx);
    return null;
  }
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  return { ctx, pull, route, signal: ac.signal };
}

/** An answer that failed: logged, counted, a 500 (or a closed connection when the body had started). */
export function settle(handled: Promise<void>, a: AcceptedPull, log: (msg: string) => void): void {
  handled.catch((err: Error) => {
    log(`${a.ctx.req.method} ${a.pull.pathname}: ${err.stack ?? err.message}`);
    a.ctx.count('none', 'error');
    if (a.ctx.res.headersSent) a.ctx.res.destroy();
    else sendError(a.ctx, 500, 'UNKNOWN', err.message);
  });
}

/** `GET /v2/`: the API version check containerd makes first. */
export function baseRoute(ctx: RequestContext): void {
  ctx.res.writeHead(200, { ...API_HEADERS, 'content-type': 'application/json', 'content-length': 2 });
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : '{}');
  ctx.count('none', 'ok');
}

/** `/v2/<name>/manifests/<tag|digest>`; a tag needs `?ns=` and passes the tag policy (resolveLatest, resolveTags). */
export async function manifestRoute(
  ctx: RequestContext,
  route: Route<'manifest'>,
  pull: PullRequest,
  deps: { resolver: Resolver; resolveLatest: boolean; peerTags: (registry: string) => boolean },
  signal: AbortSignal,
): Promise<void> {
  if (route.byDigest) return digestRoute(ctx, route.reference, route.name, true, deps.resolver, signal);
  const tag = route.reference;
  const registry = pull.ns;
  if (!tagResolvable(tag, deps.resolveLatest)) {
    ctx.count('none', 'tag-policy');
    return sendError(ctx, 404, 'MANIFEST_UNKNOWN', `tag ${tag} is not resolved by the P2P mirror (resolveLatest is off)`);
  }
  if (!registry) {
    ctx.count('none', 'not-found');
    return sendError(ctx, 404, 'MANIFEST_UNKNOWN', 'a tag needs the ns query parameter (the registry name)');
  }
  // A peer's tag is trusted only for registries in resolveTags: anyone holding the swarm key could answer
  // any digest for a tag. Otherwise the tag comes from this node's containerd or containerd asks the mirror.
  const askPeers = deps.peerTags(registry);
  if (await deps.resolver.manifestByTag(ctx, registry, route.name, tag, signal, askPeers)) return;
  if (!askPeers && !ctx.hop) {
    ctx.count('none', 'tag-untrusted');
    return sendError(
      ctx,
      404,
      'MANIFEST_UNKNOWN',
      `${registry}/${route.name}:${tag} is not on this node; peers' tags are not used for ${registry} (p2p.resolveTags)`,
    );
  }
  ctx.count('none', 'not-found');
  sendError(ctx, 404, 'MANIFEST_UNKNOWN', `${registry}/${route.name}:${tag} is not on this node or its peers`);
}

/** `/v2/<name>/blobs/<digest>`. */
export function blobRoute(ctx: RequestContext, route: Route<'blob'>, resolver: Resolver, signal: AbortSignal): Promise<void> {
  return digestRoute(ctx, route.digest, route.name, false, resolver, signal);
}

async function digestRoute(
  ctx: RequestContext,
  digest: string,
  name: string,
  asManifest: boolean,
  resolver: Resolver,
  signal: AbortSignal,
): Promise<void> {
  if (await resolver.byDigest(ctx, digest, name, asManifest, signal)) return;
  ctx.count('none', 'not-found');
  sendError(ctx, 404, asManifest ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN', `${digest} is not on this node or its peers`);
}

/** `GET /metrics`: the Prometheus text of the agent's registry. */
export function metricsRoute(res: ServerResponse, metrics: AgentMetrics): void {
  metrics.registry
    .metrics()
    .then((text) => {
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
    })
    .catch(() => res.destroy());
}
