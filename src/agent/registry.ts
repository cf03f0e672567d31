import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { ContentSource } from './contentSource.js';
import type { AgentMetrics } from './metrics.js';
import type { Router } from './router.js';
import { rewriteRoute, type RewriteDeps } from './forward/rewriteRoute.js';
import { createServeLocal } from './registry/local.js';
import { createPeerRelay } from './registry/peers.js';
import { createResolver } from './registry/resolve.js';
import { acceptPull, blobRoute, manifestRoute, settle } from './registry/routes.js';

export interface RegistryOptions {
  source: ContentSource;
  /** null: serve local content only. */
  router: Router | null;
  metrics: AgentMetrics;
  resolveTimeoutMs: number;
  resolveLatest: boolean;
  /** Registries whose tags are taken from peers (`*`: all); others are answered from local content only. */
  resolveTags?: readonly string[];
  /** Limit, in bytes per second, for content served to other agents (0 or undefined: none). */
  uploadBytesPerSecond?: number;
  /** Time a peer has to start answering, and the longest pause inside a body. */
  peerTimeoutMs?: number;
  /** How long a peer that served a wrong digest is skipped for that digest. */
  badPeerMs?: number;
  now?: () => number;
  log?: (msg: string) => void;
  /** Image-name rewrites and where rewritten names are forwarded (src/agent/forward/). */
  rewrites?: RewriteDeps;
}

/**
 * The agent's read-only OCI registry (pull API only): local content first, then peers found in the DHT.
 * Everything streams; only manifests (<= 4 MiB) are held in memory.
 */
export function createRegistryHandler(opts: RegistryOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { source, metrics } = opts;
  const log = opts.log ?? (() => {});
  const serveLocal = createServeLocal({ source, metrics, uploadBytesPerSecond: opts.uploadBytesPerSecond, log });
  const peers = createPeerRelay({
    router: opts.router,
    metrics,
    resolveTimeoutMs: opts.resolveTimeoutMs,
    peerTimeoutMs: opts.peerTimeoutMs ?? 3000,
    badPeerMs: opts.badPeerMs ?? 10 * 60_000,
    now: opts.now ?? (() => performance.now()),
    log,
  });
  const resolver = createResolver(source, serveLocal, peers);
  const peerTags = peerTagsFor(opts.resolveTags ?? []);

  return (req, res) => {
    const a = acceptPull(req, res, metrics);
    if (!a) return;
    const { ctx, pull, route, signal } = a;
    const rewritten = opts.rewrites
      ? rewriteRoute(ctx, route, pull, opts.rewrites, { resolver, resolveLatest: opts.resolveLatest, peerTags }, signal)
      : null;
    const handled =
      rewritten ??
      (route.kind === 'manifest'
        ? manifestRoute(ctx, route, pull, { resolver, resolveLatest: opts.resolveLatest, peerTags }, signal)
        : blobRoute(ctx, route, resolver, signal));
    settle(handled, a, log);
  };
}

/** Whether tags of a registry may be taken from peers (`*` in the list: every registry). */
export function peerTagsFor(resolveTags: readonly string[]): (registry: string) => boolean {
  const all = resolveTags.includes('*');
  return (registry) => all || resolveTags.includes(registry);
}

export async function startRegistryServer(
  opts: RegistryOptions & { port: number; host: string; handler?: ReturnType<typeof createRegistryHandler> },
): Promise<http.Server> {
  const server = http.createServer({ keepAlive: true }, opts.handler ?? createRegistryHandler(opts));
  server.listen(opts.port, opts.host);
  await once(server, 'listening');
  return server;
}
