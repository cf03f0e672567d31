import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface ProbeResult {
  ok: boolean;
  repositories: string[] | null;
  error?: string;
  ms: number;
}

/**
 * Reads `/v2/_catalog` over the registry API. With TLS the certificate is verified against `ca` only (no
 * insecure fallback), so "reachable" also means "a node with our CA will trust it".
 */
export function probeCatalog(endpoint: string, opts: { ca?: string | null; timeoutMs?: number } = {}): Promise<ProbeResult> {
  const started = Date.now();
  const url = new URL('/v2/_catalog?n=1000', endpoint);
  const timeoutMs = opts.timeoutMs ?? 1500;
  return new Promise((resolve) => {
    const done = (r: Omit<ProbeResult, 'ms'>): void => resolve({ ...r, ms: Date.now() - started });
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      {
        method: 'GET',
        timeout: timeoutMs,
        ...(url.protocol === 'https:' ? { ca: opts.ca ?? undefined, rejectUnauthorized: true } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return done({ ok: false, repositories: null, error: `HTTP ${res.statusCode}` });
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { repositories?: string[] };
            done({ ok: true, repositories: body.repositories ?? [] });
          } catch (err) {
            done({ ok: false, repositories: null, error: `bad catalog: ${(err as Error).message}` });
          }
        });
        res.on('error', (err) => done({ ok: false, repositories: null, error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => done({ ok: false, repositories: null, error: err.message }));
    req.end();
  });
}

/**
 * Whether anything answers HTTP at `url` (any status: a registry's /v2/ answers 401 without a token).
 * Used to tell "the upstream is unreachable" in `lo registry status` (the host's view, not the mirror's) and
 * whether a registry lo just started serves yet (src/apply/waitServing.ts; with TLS verified against `ca`
 * only). `code` is the socket error's (`ECONNREFUSED`: the address answered, nothing listens on the port).
 */
export function probeAnswers(
  url: string,
  opts: { timeoutMs?: number; ca?: string | null } = {},
): Promise<{ ok: boolean; error?: string; code?: string; ms: number }> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 1500;
  const target = new URL(url);
  const tls = target.protocol === 'https:' && opts.ca ? { ca: opts.ca, rejectUnauthorized: true } : {};
  return new Promise((resolve) => {
    const done = (ok: boolean, err?: NodeJS.ErrnoException): void =>
      resolve({ ok, ...(err ? { error: err.message } : {}), ...(err?.code ? { code: err.code } : {}), ms: Date.now() - started });
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(
      target,
      { method: 'GET', timeout: timeoutMs, agent: false, ...tls },
      (res) => {
        res.resume();
        done(true);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => done(false, err));
    req.end();
  });
}
