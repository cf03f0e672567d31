import type Docker from 'dockerode';
import { ExitCode, LoError } from '../../errors/loError.js';
import { silentLog, verbForms, type Log } from '../../runtime/log.js';

/** Where lo talks to Docker: a unix socket or a TCP host, as DOCKER_HOST says. */
export interface DockerTarget {
  /** Human-readable, for error messages: `unix:///var/run/docker.sock`, `tcp://host:2375`. */
  description: string;
  options: Docker.DockerOptions;
}

export const DEFAULT_SOCKET = '/var/run/docker.sock';

/** Reads DOCKER_HOST from the injected environment (never process.env: main passes it down). */
export function dockerTarget(env: NodeJS.ProcessEnv): DockerTarget {
  const host = env.DOCKER_HOST;
  if (!host) return { description: `unix://${DEFAULT_SOCKET}`, options: { socketPath: DEFAULT_SOCKET } };
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    return { description: host, options: { socketPath } };
  }
  // tcp://, http(s)://, ssh://: docker-modem reads DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) itself.
  return { description: host, options: {} };
}

/** Docker's HTTP answer on an error, when there was one (dockerode sets statusCode). */
export function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** `fn`'s answer, or `absent` when Docker answers 404 (a missing object is state, not a failure). */
export async function unless404<T, A>(fn: () => Promise<T>, absent: A): Promise<T | A> {
  try {
    return await fn();
  } catch (err) {
    if (statusOf(err) === 404) return absent;
    throw err;
  }
}

const CONNECT_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE']);

export function isConnectError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && CONNECT_CODES.has(code) && statusOf(err) === undefined;
}

export class DockerUnreachableError extends LoError {
  constructor(target: string, cause: unknown) {
    const why = (cause as Error)?.message ?? String(cause);
    super('E_DOCKER_UNREACHABLE', `cannot reach the Docker engine at ${target} (${why})`, {
      hint: target.startsWith('unix://')
        ? `start dockerd (e.g. \`sudo systemctl start docker\`), check you may use ${target.slice(7)}, or set DOCKER_HOST to your engine`
        : 'check that the engine runs at DOCKER_HOST, or unset DOCKER_HOST to use the local socket',
      exitCode: ExitCode.dockerUnavailable,
      cause,
    });
  }
}

/** A Docker error lo does not turn into reconciled state; names what lo was doing. */
export function dockerError(doing: string, err: unknown, target?: string): LoError {
  if (err instanceof LoError) return err;
  if (target && isConnectError(err)) return new DockerUnreachableError(target, err);
  const json = (err as { json?: { message?: string } })?.json;
  const msg = json?.message ?? (err as Error)?.message ?? String(err);
  return new LoError('E_DOCKER', `${doing}: ${msg}`, { hint: 'see `docker info` and the Docker daemon log', cause: err });
}

/** A connected engine: dockerode plus where it is, for messages. Only the narrow clients hold it. */
export interface DockerConnection {
  docker: Docker;
  target: string;
}

export interface ConnectOptions {
  /** The environment main injected (DOCKER_HOST); required, so no caller falls back to process.env. */
  env: NodeJS.ProcessEnv;
  /** How long the first ping may take before Docker counts as unreachable. */
  pingTimeoutMs?: number;
  /** The debug log every Docker call goes through (default: silent). */
  log?: Log;
}

/** Connects and pings once, so an absent engine fails fast with the socket/DOCKER_HOST tried. */
export async function connectDocker({ env, pingTimeoutMs = 3000, log = silentLog }: ConnectOptions): Promise<DockerConnection> {
  const t = dockerTarget(env);
  // Loaded on the first connection, not at start-up: `lo plan` and `lo --help` never pay for dockerode.
  const { default: Docker } = await import('dockerode');
  const docker = new Docker(t.options);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), pingTimeoutMs);
  try {
    // The typings lack ping's options; dockerode passes abortSignal through to the request.
    await log.call('ping', `Docker engine ${t.description}`, async () => {
      try {
        await (docker.ping as unknown as (o: { abortSignal: AbortSignal }) => Promise<unknown>)({ abortSignal: ac.signal });
      } catch (err) {
        throw new DockerUnreachableError(t.description, ac.signal.aborted ? new Error(`no answer within ${pingTimeoutMs} ms`) : err);
      }
    });
  } finally {
    clearTimeout(timer);
  }
  return { docker, target: t.description };
}

/**
 * How every narrow client makes a Docker call: through the debug log ("creating container x…", "created
 * container x (12 ms)", "failed to create container x: why"), with connection failures turned into
 * DockerUnreachableError and other errors into E_DOCKER naming what lo was doing. `fn` turns the answers
 * lo reconciles (404/409/304) into results before anything is counted as a failure.
 */
export class DockerCalls {
  constructor(
    private readonly conn: DockerConnection,
    private readonly log: Log = silentLog,
  ) {}

  get target(): string {
    return this.conn.target;
  }

  run<T>(verb: string, object: string, fn: (docker: Docker) => Promise<T>): Promise<T> {
    return this.log.call(verb, object, async () => {
      try {
        return await fn(this.conn.docker);
      } catch (err) {
        throw dockerError(`${verbForms(verb)[0]} ${object}`, err, this.conn.target);
      }
    });
  }
}
