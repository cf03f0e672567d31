import { request } from 'node:http';
import type { PeerRequest, PeerResponse } from '../router.js';

/** Response headers a relay uses; nothing else crosses between agents. */
export const PEER_RESPONSE_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'docker-content-digest'];

/**
 * A PeerRequest to an agent's HTTP registry at `base` (`http://127.0.0.1:30020`): how the serving side of the
 * `/lo/oci/1.0.0` stream asks its own registry, with `extraHeaders` (the hop header) added.
 */
export function fetchOverHttp(
  base: string,
  req: PeerRequest,
  timeoutMs: number,
  signal: AbortSignal,
  extraHeaders: Record<string, string> = {},
): Promise<PeerResponse> {
  return new Promise((resolve, reject) => {
    const r = request(base + req.path, { method: req.method, headers: { ...req.headers, ...extraHeaders }, signal });
    // Also covers a registry that stops sending: no bytes for timeoutMs.
    r.setTimeout(timeoutMs, () => r.destroy(new Error(`${base} timed out after ${timeoutMs} ms`)));
    r.on('response', (res) => {
      const headers: Record<string, string> = {};
      for (const n of PEER_RESPONSE_HEADERS) if (typeof res.headers[n] === 'string') headers[n] = res.headers[n] as string;
      resolve({ status: res.statusCode ?? 0, headers, body: res });
    });
    r.on('error', reject);
    r.end();
  });
}
