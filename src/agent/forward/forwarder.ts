import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AgentMetrics } from '../metrics.js';
import { API_HEADERS, sendError, type RequestContext } from '../registry/request.js';
import { forwardHosts, hostDirCandidates, parseHostsFile, type UpstreamHost } from './hostsFile.js';
import {
  createHostAgents,
  MAX_REDIRECTS,
  parseBearerChallenge,
  send,
  TokenCache,
  type HostAgents,
  type UpstreamTimeouts,
} from './upstream.js';

/** What containerd asked for, with the name it asked under and the name it is fetched as. */
export interface ForwardRequest {
  registry: string;
  /** The repository name containerd asked for. */
  original: string;
  /** The name after the rewrite. */
  repository: string;
  kind: 'manifests' | 'blobs';
  /** Tag or digest. */
  reference: string;
  byTag: boolean;
}

export interface ForwarderOptions {
  /** containerd's hosts directory as the agent sees it. */
  hostsDir: string;
  /** The agent's own origins (e.g. `http://127.0.0.1:30020`): skipped in hosts.toml. */
  self: string[];
  metrics: AgentMetrics;
  log: (msg: string) => void;
  timeouts?: Partial<UpstreamTimeouts>;
  now?: () => number;
}

export interface Forwarder {
  forward(ctx: RequestContext, fr: ForwardRequest, signal: AbortSignal): Promise<void>;
  /** The hosts a registry's rewritten names go to now (hosts.toml re-read when it changed). */
  hostsFor(registry: string): Promise<UpstreamHost[]>;
  close(): void;
}

/** Response headers passed back to containerd. */
const PASSED_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'docker-content-digest', 'etag'];
/** Request headers passed on to the upstream. */
const ASKED_HEADERS = ['accept', 'range', 'user-agent', 'if-none-match'];

type Attempt = { kind: 'answer'; res: IncomingMessage; url: URL } | { kind: 'not-found' } | { kind: 'failed'; why: string };

export function createForwarder(opts: ForwarderOptions): Forwarder {
  const { metrics, log } = opts;
  const t: UpstreamTimeouts = { firstByteMs: opts.timeouts?.firstByteMs ?? 10_000, bodyIdleMs: opts.timeouts?.bodyIdleMs ?? 60_000 };
  const tokens = new TokenCache(opts.now);
  const files = new Map<string, { stamp: string; hosts: UpstreamHost[] }>();
  const agents = new Map<string, HostAgents>();

  async function hostsFor(registry: string): Promise<UpstreamHost[]> {
    for (const dir of hostDirCandidates(opts.hostsDir, registry)) {
      const st = await stat(dir).catch(() => null);
      if (!st) continue;
      // containerd takes the first directory that exists; without hosts.toml there it has only the default endpoint.
      const file = posix.join(dir, 'hosts.toml');
      const fst = await stat(file).catch(() => null);
      if (!fst) return [];
      const stamp = `${fst.mtimeMs}:${fst.size}`;
      const cached = files.get(file);
      if (cached?.stamp === stamp) return cached.hosts;
      let hosts: UpstreamHost[] = [];
      try {
        hosts = forwardHosts(parseHostsFile(await readFile(file, 'utf8'), registry, opts.hostsDir, dir), opts.self);
      } catch (err) {
        log(`forward: ${file}: ${(err as Error).message}; not forwarding for ${registry}`);
      }
      files.set(file, { stamp, hosts });
      return hosts;
    }
    return [];
  }

  function agentsOf(host: UpstreamHost): HostAgents {
    const key = JSON.stringify([host.origin, host.ca, host.client, host.skipVerify]);
    let a = agents.get(key);
    if (!a) {
      a = createHostAgents(host);
      agents.set(key, a);
    }
    return a;
  }

  /** One host: the request, a bearer-token round when challenged (once), redirects (bounded). */
  async function tryHost(ctx: RequestContext, host: UpstreamHost, fr: ForwardRequest, signal: AbortSignal): Promise<Attempt> {
    const a = agentsOf(host);
    const method = ctx.req.method === 'HEAD' ? 'HEAD' : 'GET';
    const scope = `repository:${fr.repository}:pull`;
    const base: OutgoingHttpHeaders = {};
    for (const n of ASKED_HEADERS) if (typeof ctx.req.headers[n] === 'string') base[n] = ctx.req.headers[n];
    for (const [k, v] of Object.entries(host.headers)) base[k] = v.length === 1 ? v[0] : v;
    let url = new URL(`${host.origin}${host.path}/${fr.repository}/${fr.kind}/${fr.reference}`);
    let token = tokens.get(host, scope);
    let challenged = false;
    for (let hop = 0; hop <= MAX_REDIRECTS;) {
      const sameOrigin = url.origin === host.origin;
      const headers: OutgoingHttpHeaders = { ...base };
      // Credentials go to the host only, never to the storage a redirect points at.
      if (!sameOrigin) delete headers.authorization;
      else if (token) headers.authorization = `Bearer ${token}`;
      const res = await send(url, method, headers, a, t, signal);
      const status = res.statusCode ?? 0;
      if (status === 401 && sameOrigin && !challenged) {
        const ch = parseBearerChallenge(res.headers['www-authenticate'] as string | undefined);
        res.resume();
        if (!ch) return { kind: 'failed', why: `401 without a bearer challenge` };
        challenged = true;
        tokens.drop(host, ch.scope ?? scope);
        token = await tokens.fetch(host, ch, a, t, signal);
        continue;
      }
      if ([301, 302, 303, 307, 308].includes(status) && typeof res.headers.location === 'string') {
        res.resume();
        url = new URL(res.headers.location, url);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') return { kind: 'failed', why: `redirect to ${url.protocol}` };
        hop++;
        continue;
      }
      if (status === 404) {
        res.resume();
        return { kind: 'not-found' };
      }
      if ((status >= 200 && status < 300) || status === 416 || status === 304) return { kind: 'answer', res, url };
      res.resume();
      return { kind: 'failed', why: `answered ${status}` };
    }
    return { kind: 'failed', why: `more than ${MAX_REDIRECTS} redirects` };
  }

  async function stream(ctx: RequestContext, res: IncomingMessage): Promise<void> {
    const headers: Record<string, string> = { ...API_HEADERS };
    for (const n of PASSED_HEADERS) if (typeof res.headers[n] === 'string') headers[n] = res.headers[n] as string;
    ctx.res.writeHead(res.statusCode ?? 502, headers);
    if (ctx.req.method === 'HEAD') {
      res.resume();
      ctx.res.end();
      return;
    }
    const counter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        metrics.bytesServed.inc({ source: 'upstream' }, chunk.length);
        cb(null, chunk);
      },
    });
    await pipeline(res, counter, ctx.res);
  }

  async function forward(ctx: RequestContext, fr: ForwardRequest, signal: AbortSignal): Promise<void> {
    const what = `${ctx.req.method} ${fr.registry} ${fr.original} -> ${fr.repository} ${fr.kind}/${fr.reference}`;
    const done = (result: string): void => {
      metrics.forwards.inc({ registry: fr.registry, result });
    };
    const hosts = (await hostsFor(fr.registry)).filter((h) => (fr.byTag ? h.resolve : h.pull));
    if (hosts.length === 0) {
      done('no-hosts');
      ctx.count('none', 'rewrite-no-hosts');
      log(`forward ${what}: no host in ${opts.hostsDir} to forward to (404: containerd asks its next hosts)`);
      return sendError(ctx, 404, fr.kind === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', `no host to forward ${fr.repository} to`);
    }
    const tried: string[] = [];
    let notFound = false;
    for (const host of hosts) {
      if (signal.aborted) return;
      let attempt: Attempt;
      try {
        attempt = await tryHost(ctx, host, fr, signal);
      } catch (err) {
        attempt = { kind: 'failed', why: (err as Error).message };
      }
      if (attempt.kind === 'answer') {
        const status = attempt.res.statusCode ?? 0;
        log(`forward ${what} via ${host.origin}${tried.length ? ` (after ${tried.join('; ')})` : ''}: ${status}`);
        try {
          await stream(ctx, attempt.res);
          done(status < 300 ? 'ok' : `status-${status}`);
          ctx.count('upstream', status < 300 ? 'ok' : `status-${status}`);
        } catch (err) {
          done('aborted');
          ctx.count('upstream', 'aborted');
          log(`forward ${what} via ${host.origin}: body: ${(err as Error).message}`);
          ctx.res.destroy();
        }
        return;
      }
      if (attempt.kind === 'not-found') notFound = true;
      tried.push(`${host.origin}: ${attempt.kind === 'not-found' ? '404' : attempt.why}`);
    }
    log(`forward ${what}: ${tried.join('; ')}`);
    if (notFound) {
      done('not-found');
      ctx.count('upstream', 'not-found');
      return sendError(
        ctx,
        404,
        fr.kind === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN',
        `${fr.repository}: not found on ${hosts.length} host(s)`,
      );
    }
    done('failed');
    ctx.count('upstream', 'failed');
    sendError(ctx, 502, 'UNAVAILABLE', `${fr.repository}: ${hosts.length} host(s) failed: ${tried.join('; ')}`.slice(0, 500));
  }

  return {
    forward,
    hostsFor,
    close() {
      for (const a of agents.values()) {
        a.http.destroy();
        a.https.destroy();
      }
      agents.clear();
    },
  };
}
