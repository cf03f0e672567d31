import { request } from 'node:http';
import { connect } from 'node:net';
import type Docker from 'dockerode';
import { silentLog, type Log } from '../../runtime/log.js';
import { DockerCalls, dockerTarget, DockerUnreachableError } from './client.js';
import { Containers } from './containers.js';
import { Networks } from './networks.js';
import type { DockerClients } from './types.js';

/**
 * The read-only lookups `lo plan` makes (src/adapters/docker/observeShared.ts: list containers by label, inspect
 * a network) spoken over the engine's unix socket with node:http. dockerode and docker-modem (with https, tls,
 * zlib and their stubs) are not loaded: that was a third of `lo plan`'s start-up (docs/speed.md). Other
 * DOCKER_HOSTs (tcp, TLS, ssh) return undefined and go through dockerode (connectClients).
 *
 * The engine below implements exactly the dockerode calls `Containers.list` and `Networks.inspect` make, with the
 * same requests (unversioned paths, as dockerode without a version) and dockerode's error shape (`statusCode`,
 * `json.message`), so the narrow clients turn answers into state as they do over dockerode.
 */
export type LookupEngine = Pick<Docker, 'listContainers' | 'getNetwork'>;

export interface SocketLookup {
  /** Only `containers.list` and `networks.inspect` may be called: the engine implements nothing else. */
  clients: Pick<DockerClients, 'target' | 'containers' | 'networks'>;
  /** The engine's /_ping within `pingTimeoutMs`, else DockerUnreachableError (and every lookup in flight aborts). */
  ping(): Promise<void>;
}

export interface SocketLookupOptions {
  env: NodeJS.ProcessEnv;
  pingTimeoutMs: number;
  log?: Log;
}

/** undefined when DOCKER_HOST is not a unix socket (dockerode then). */
export function socketLookup({ env, pingTimeoutMs, log = silentLog }: SocketLookupOptions): SocketLookup | undefined {
  const t = dockerTarget(env);
  const socketPath = t.options.socketPath;
  if (!socketPath) return undefined;
  const ac = new AbortController();
  const get = (path: string): Promise<unknown> => getJson(socketPath, path, ac.signal);
  const engine: LookupEngine = {
    listContainers: ((opts: { all: boolean; filters: Record<string, string[]> }) =>
      get(
        `/containers/json?all=${String(opts.all)}&filters=${encodeURIComponent(JSON.stringify(opts.filters))}`,
      )) as Docker['listContainers'],
    getNetwork: ((id: string) => ({ inspect: () => get(`/networks/${encodeURIComponent(id)}`) })) as unknown as Docker['getNetwork'],
  };
  // The narrow clients take a dockerode instance; they call only the two methods above on the paths used here.
  const calls = new DockerCalls({ docker: engine as Docker, target: t.description }, log);
  return {
    clients: { target: t.description, containers: new Containers(calls), networks: new Networks(calls) },
    ping: () =>
      log.call('ping', `Docker engine ${t.description}`, async () => {
        const timer = setTimeout(() => ac.abort(new Error(`no answer within ${pingTimeoutMs} ms`)), pingTimeoutMs);
        try {
          await get('/_ping');
        } catch (err) {
          throw new DockerUnreachableError(t.description, ac.signal.aborted ? ac.signal.reason : err);
        } finally {
          clearTimeout(timer);
        }
      }),
  };
}

/** One GET over the socket; an answer >= 300 rejects as dockerode does (statusCode, json). */
function getJson(socketPath: string, path: string, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // createConnection and no agent: one connection per lookup, and none of the agent's host bookkeeping (its
    // servername check runs Node's IPv6 regular expression, ~5 ms to compile in a profiled `lo plan`).
    const createConnection = () => connect(socketPath);
    const req = request({ path, method: 'GET', headers: { host: 'docker' }, signal, createConnection }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // /_ping answers "OK"; an error page that is not JSON stays text
        }
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(body);
        const message = (body as { message?: unknown })?.message;
        reject(
          Object.assign(new Error(`(HTTP code ${status}) ${typeof message === 'string' ? message : text}`), {
            statusCode: status,
            json: typeof body === 'object' ? body : { message: text },
          }),
        );
      });
    });
    // An aborted lookup (the ping timed out) counts as a connection failure: ETIMEDOUT, as the ping reports it.
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(signal.aborted ? Object.assign(new Error(String((signal.reason as Error)?.message)), { code: 'ETIMEDOUT' }) : err),
    );
    req.end();
  });
}
