import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { readLimited } from '../registry/request.js';
import type { UpstreamHost } from './hostsFile.js';

/** Redirects followed within one request (registries send blobs to storage with one or two). */
export const MAX_REDIRECTS = 5;
/** Largest token-server answer read. */
const MAX_TOKEN_BYTES = 64 << 10;

export interface UpstreamTimeouts {
  /** Connect and first byte, per request. */
  firstByteMs: number;
  /** Longest pause inside a body. */
  bodyIdleMs: number;
}

/** Keep-alive agents with a host's TLS settings (CA files added to Node's roots, client pairs, skip_verify). */
export interface HostAgents {
  http: HttpAgent;
  https: HttpsAgent;
}

export function createHostAgents(host: UpstreamHost): HostAgents {
  const ca = host.ca.length > 0 ? [...rootCertificates, ...host.ca.map((f) => readFileSync(f, 'utf8'))] : undefined;
  const cert = host.client.map(([c]) => readFileSync(c, 'utf8'));
  const key = host.client.map(([, k]) => readFileSync(k, 'utf8'));
  return {
    http: new HttpAgent({ keepAlive: true, maxSockets: 16 }),
    https: new HttpsAgent({
      keepAlive: true,
      maxSockets: 16,
      ...(ca ? { ca } : {}),
      ...(cert.length > 0 ? { cert, key } : {}),
      rejectUnauthorized: !host.skipVerify,
    }),
  };
}

/** One HTTP(S) request; resolves with the response head (body unread). */
export function send(
  url: URL,
  method: string,
  headers: OutgoingHttpHeaders,
  agents: HostAgents,
  t: UpstreamTimeouts,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    const req = (https ? httpsRequest : httpRequest)(url, { method, headers, agent: https ? agents.https : agents.http, signal });
    req.setTimeout(t.firstByteMs, () => req.destroy(new Error(`no answer from ${url.origin} within ${t.firstByteMs} ms`)));
    req.on('response', (res) => {
      req.setTimeout(t.bodyIdleMs, () => req.destroy(new Error(`${url.origin} sent nothing for ${t.bodyIdleMs} ms`)));
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface BearerChallenge {
  realm: string;
  service?: string;
  scope?: string;
}

/** `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`; null for another scheme. */
export function parseBearerChallenge(header: string | undefined): BearerChallenge | null {
  if (!header || !/^bearer\s/i.test(header.trim())) return null;
  const params: Record<string, string> = {};
  for (const m of header
    .trim()
    .slice(6)
    .matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g))
    params[m[1]!.toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  if (!params.realm) return null;
  return { realm: params.realm, ...(params.service ? { service: params.service } : {}), ...(params.scope ? { scope: params.scope } : {}) };
}

/**
 * Bearer tokens per (host, scope) until their `expires_in`. Token requests are anonymous or carry the
 * host's static `Authorization: Basic …` header (its value is a secret and is never logged).
 */
export class TokenCache {
  private readonly tokens = new Map<string, { token: string; until: number }>();
  constructor(private readonly now: () => number = Date.now) {}

  get(host: UpstreamHost, scope: string): string | undefined {
    const key = `${host.origin}${host.path} ${scope}`;
    const hit = this.tokens.get(key);
    if (hit && hit.until > this.now()) return hit.token;
    if (hit) this.tokens.delete(key);
    return undefined;
  }

  drop(host: UpstreamHost, scope: string): void {
    this.tokens.delete(`${host.origin}${host.path} ${scope}`);
  }

  /** Fetches a token for a challenge from its realm, caches it under the challenge's scope. */
  async fetch(host: UpstreamHost, ch: BearerChallenge, agents: HostAgents, t: UpstreamTimeouts, signal: AbortSignal): Promise<string> {
    const url = new URL(ch.realm);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`token realm ${url.protocol} is not http(s)`);
    if (ch.service) url.searchParams.set('service', ch.service);
    if (ch.scope) url.searchParams.set('scope', ch.scope);
    const basic = host.headers.authorization?.find((v) => /^basic\s/i.test(v));
    const res = await send(url, 'GET', { accept: 'application/json', ...(basic ? { authorization: basic } : {}) }, agents, t, signal);
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`token server ${url.origin} answered ${res.statusCode}`);
    }
    const body = (await readLimited(res, MAX_TOKEN_BYTES))?.toString('utf8');
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(body ?? '') as typeof doc;
    } catch {
      throw new Error(`token server ${url.origin} sent no JSON token`);
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!token) throw new Error(`token server ${url.origin} sent no token`);
    // The distribution token spec: expires_in defaults to 60 s. Renew a little early.
    const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    this.tokens.set(`${host.origin}${host.path} ${ch.scope ?? ''}`, { token, until: this.now() + Math.max(0, ttl - 5) * 1000 });
    return token;
  }
}
