import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { ClusterSpec } from '../spec/types.js';
import { connectClients, DockerUnreachableError, type DockerClients } from '../adapters/docker/index.js';
import { observeShared } from '../adapters/docker/observeShared.js';
import { socketLookup } from '../adapters/docker/socketLookup.js';
import type { EnsureTls } from '../apply/types.js';
import { EMPTY_OBSERVED, type ObservedShared, type Plan } from '../plan/types.js';
import { loadPlan, type PlanDeps } from './plan.js';
import type { Log } from '../runtime/log.js';
import { withProjectLock } from '../apply/projectLock.js';

export interface RegistryDeps extends PlanDeps {
  /** Connects to Docker (default: DOCKER_HOST or the local socket, failing fast when unreachable). */
  connect?: () => Promise<DockerClients>;
  ensureTls?: EnsureTls;
  env?: NodeJS.ProcessEnv;
  onProgress?: (step: string) => void;
  /** The debug log every Docker call goes through (default: silent). */
  log?: Log;
  /** `--wait`: how long a changing command waits for another lo holding the project's lock (default: fail at once). */
  lockWaitMs?: number;
}

/**
 * Runs a changing registry command holding the project's lock (`<state>/projects/<name>/lock`); a dry run
 * changes nothing and takes no lock.
 */
export async function whileLocked<T>(
  plan: Plan,
  command: string,
  deps: RegistryDeps & { dryRun?: boolean },
  fn: () => Promise<T>,
): Promise<T> {
  if (deps.dryRun) return fn();
  return withProjectLock(plan.paths.projectDir, command, deps.lockWaitMs ? { waitMs: deps.lockWaitMs } : {}, fn);
}

/** Connects to Docker, observes the shared network and plans: the start of every registry command. */
export async function setup(opts: LoadSpecOptions, deps: RegistryDeps): Promise<{ docker: DockerClients; plan: Plan; spec: ClusterSpec }> {
  deps.onProgress?.('connecting to Docker');
  const docker = await (deps.connect ?? (() => connectClients({ env: deps.env ?? {}, ...(deps.log ? { log: deps.log } : {}) })))();
  deps.onProgress?.('reading the shared network');
  const { plan, spec } = await loadPlan(opts, { ...deps, observeShared: (s) => observeShared(docker, s) });
  return { docker, plan, spec };
}

/**
 * For `lo plan`: what runs on the shared network, or "nothing observed" at once when Docker is unreachable
 * (planning must work without an engine).
 */
export function observeSharedOrNothing(env: NodeJS.ProcessEnv): (spec: ClusterSpec) => Promise<ObservedShared> {
  return async (spec) => {
    // Over the unix socket without dockerode (most of `lo plan`'s start-up otherwise), the ping alongside.
    const lookup = socketLookup({ env, pingTimeoutMs: 800 });
    try {
      if (lookup) return (await Promise.all([observeShared(lookup.clients, spec), lookup.ping()]))[0];
      const docker: DockerClients = await connectClients({ env, pingTimeoutMs: 800 });
      return await observeShared(docker, spec);
    } catch (err) {
      if (err instanceof DockerUnreachableError) return EMPTY_OBSERVED;
      throw err;
    }
  };
}
