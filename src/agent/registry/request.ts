import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { AgentMetrics } from '../metrics.js';
import { parseOciPath, type OciRoute } from '../ociPath.js';

/** Set on agent-to-agent requests: the receiver answers from its own store only (no second hop, no loops). */
export const HOP_HEADER = 'x-lo-p2p-hop';
/** Manifests are small JSON documents; anything larger is not treated as one. */
export const MAX_MANIFEST_BYTES = 4 << 20;
export const API_HEADERS = { 'docker-distribution-api-version': 'registry/2.0' };

/** What the agent needs to know about a request before it routes it. */
export interface PullRequest {
  method: string;
  pathname: string;
  /** The pull route, or null when the path is not one (including /metrics). */
  route: OciRoute | null;
  /** `?ns=`: the registry a tag belongs to (containerd adds it for mirrors). */
  ns: string | null;
  /** Another agent asked: answer from the local store only. */
  hop: boolean;
}

export function parseRequest(req: Pick<IncomingMessage, 'url' | 'method' | 'headers'>): PullRequest {
  const url = new URL(req.url ?? '/', 'http://agent');
  return {
    method: req.method ?? 'GET',
    pathname: url.pathname,
    route: parseOciPath(url.pathname),
    ns: url.searchParams.get('ns'),
    hop: req.headers[HOP_HEADER] !== undefined,
  };
}

export type RouteName = 'base' | 'manifest' | 'blob' | 'metrics' | 'other';

/** One request being answered; counts it in the metrics exactly once. */
export class RequestContext {
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly route: RouteName,
    private readonly metrics: AgentMetrics,
  ) {}
  counted = false;
  get hop(): boolean {
    return this.req.headers[HOP_HEADER] !== undefined;
  }
  count(source: 'local' | 'peer' | 'upstream' | 'none', result: string): void {
    if (this.counted) return;
    this.counted = true;
    this.metrics.requests.inc({ route: this.route, source, result });
  }
}

/** An OCI error document (or, when a body is already on its way, a closed connection). */
export function sendError(ctx: RequestContext, status: number, code: string, message: string): void {
  const { req, res } = ctx;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ errors: [{ code, message }] });
  res.writeHead(status, { ...API_HEADERS, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** A hash for the digest's algorithm, or null for one we cannot verify. */
export function hashOf(digest: string): Hash | null {
  const alg = digest.slice(0, digest.indexOf(':'));
  return alg === 'sha256' || alg === 'sha512' ? createHash(alg) : null;
}

/** Reads a whole stream, or null (and destroys it) when it is longer than `limit`. */
export async function readLimited(stream: Readable, limit: number): Promise<Buffer | null> {
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
