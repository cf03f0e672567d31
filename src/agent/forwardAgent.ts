import { once } from 'node:events';
import http, { type Server } from 'node:http';
import { createForwarder } from './forward/forwarder.js';
import { rewriteRoute } from './forward/rewriteRoute.js';
import type { RewriteTable } from './forward/rewrites.js';
import { createMetrics, type AgentMetrics } from './metrics.js';
import { sendError } from './registry/request.js';
import { acceptPull, metricsRoute, settle } from './registry/routes.js';

/**
 * `lo p2p agent --forward-only`: P2P off. The registry port only answers rewritten image names, by
 * forwarding them to the hosts of containerd's hosts.toml; everything else is a 404 at once, so containerd
 * goes on to its next hosts with the name unchanged. No libp2p, no swarm key, no containerd client, no data
 * port: this module imports none of them (src/cli/commands/p2p.ts loads it instead of agent.ts).
 */
export interface ForwardAgentOptions {
  port: number;
  metricsPort: number;
  /** Where the registry port listens (loopback in the node's network namespace). */
  host?: string;
  /** Where the metrics port listens. */
  publicHost?: string;
  rewrites: RewriteTable;
  hostsDir: string;
  timeouts?: { firstByteMs?: number; bodyIdleMs?: number };
  log?: (msg: string) => void;
}

export interface RunningForwardAgent {
  url: string;
  metricsUrl: string;
  metrics: AgentMetrics;
  server: Server;
  close(): Promise<void>;
}

/** A listening address as a URL host: the wildcard is reached on loopback, IPv6 in brackets. */
export function urlHost(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
}

/** The origins containerd's hosts.toml names the agent by (skipped when forwarding). */
export function selfOrigins(host: string, port: number): string[] {
  return [...new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://${urlHost(host)}:${port}`])];
}

export function portOf(server: Server, fallback: number): number {
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : fallback;
}

async function listen(server: Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  await once(server, 'listening');
}

export async function startForwardAgent(opts: ForwardAgentOptions): Promise<RunningForwardAgent> {
  const log = opts.log ?? (() => {});
  const metrics = createMetrics();
  const host = opts.host ?? '127.0.0.1';
  const publicHost = opts.publicHost ?? '0.0.0.0';
  // The port is known once listening (0 in tests); the forwarder reads it through `self`.
  const self: string[] = [];
  const forwarder = createForwarder({ hostsDir: opts.hostsDir, self, metrics, log, timeouts: opts.timeouts });
  const deps = { table: opts.rewrites, forwarder, metrics };
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const a = acceptPull(req, res, metrics);
    if (!a) return;
    const { ctx, pull, route } = a;
    const handled = rewriteRoute(ctx, route, pull, deps, null, a.signal);
    if (handled) return settle(handled, a, log);
    ctx.count('none', 'not-found');
    sendError(
      ctx,
      404,
      route.kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN',
      pull.ns ? `no rewrite rules for ${pull.ns}` : 'rewrites need the ns query parameter (the registry name)',
    );
  });
  await listen(server, opts.port, host);
  const port = portOf(server, opts.port);
  self.push(...selfOrigins(host, port));
  const metricsServer = http.createServer((req, res) => {
    if (req.method === 'GET' && new URL(req.url ?? '/', 'http://agent').pathname === '/metrics') return metricsRoute(res, metrics);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('only /metrics here\n');
  });
  await listen(metricsServer, opts.metricsPort, publicHost);
  return {
    url: `http://${urlHost(host)}:${port}`,
    metricsUrl: `http://${urlHost(publicHost)}:${portOf(metricsServer, opts.metricsPort)}/metrics`,
    metrics,
    server,
    async close() {
      forwarder.close();
      for (const s of [server, metricsServer]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
