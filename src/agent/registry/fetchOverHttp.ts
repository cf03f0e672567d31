import { request } from 'node:http';
import { request as requestTls, type Agent as TlsAgent } from 'node:https';
import type { PeerRequest, PeerResponse } from '../router.js';

/** Response headers a relay uses; nothing else crosses between agents. */
export const PEER_RESPONSE_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'docker-content-digest'];

/**
 * A PeerRequest to an agent's registry at `base`: `http://127.0.0.1:30020` is how the serving side of both
 * peer transports asks its own registry, with `extraHeaders` (the hop header) added; `https://<peer>:30023`
 * with `agent` (the TLS-PSK keep-alive agent of dataPath.ts) is a pull from a peer's data port.
 */
export function fetchOverHttp(
  base: string,
  req: PeerRequest,
  timeoutMs: number,
  signal: AbortSignal,
  extraHeaders: Record<string, string> = {},
  agent?: TlsAgent,
): Promise<PeerResponse> {
  return new Promise((resolve, reject) => {
    const options = { method: req.method, headers: { ...req.headers, ...extraHeaders }, signal };
    const r = agent ? requestTls(base + req.path, { ...options, agent }) : request(base + req.path, options);
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
