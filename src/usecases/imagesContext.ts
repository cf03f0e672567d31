import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient } from '../adapters/oci/registryClient.js';
import { LoError, ExitCode } from '../errors/loError.js';
import { cacheOf, LOCK_FILE, STAGING_PREFIX, type PinError } from '../plan/images.js';
import type { Plan, RegistryPlan } from '../plan/types.js';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { ClusterSpec } from '../spec/types.js';
import { loadPlan, type PlanDeps } from './plan.js';

/** What every `lo images` use case starts from: the plan, lo's CA, the cache, registry clients (closed at the end). */
export interface ImagesDeps extends PlanDeps {
  /** Progress for people (stderr): one short line per step or per MiB copied. */
  onProgress?: (text: string) => void;
}

export interface ImagesContext {
  spec: ClusterSpec;
  plan: Plan;
  ca: string | null;
  cache: RegistryPlan;
  client: (endpoint: string) => RegistryClient;
  close(): void;
}

/** Input errors of `lo images` (bad references, no mirror, bad lock file) are exit 2 with their hint. */
export const inputError = (err: PinError): LoError =>
  new LoError('E_USAGE', err.message, { exitCode: ExitCode.badInput, ...(err.hint ? { hint: err.hint } : {}) });

export async function openImages(opts: LoadSpecOptions, deps: ImagesDeps): Promise<ImagesContext> {
  const { spec, plan } = await loadPlan(opts, { ...deps, strict: false });
  let cache: RegistryPlan;
  try {
    cache = cacheOf(plan);
  } catch (err) {
    throw inputError(err as PinError);
  }
  const ca = plan.tls.enabled ? await readFile(plan.tls.caCertPath, 'utf8').catch(() => null) : null;
  if (plan.tls.enabled && !ca)
    throw new LoError('E_TLS', `no CA at ${plan.tls.caCertPath}`, { hint: 'run `lo registry up` (or `lo provision`) first' });
  const clients = new Map<string, RegistryClient>();
  return {
    spec,
    plan,
    ca,
    cache,
    client: (endpoint) => {
      let c = clients.get(endpoint);
      if (!c) clients.set(endpoint, (c = new RegistryClient(endpoint, { ca })));
      return c;
    },
    close: () => clients.forEach((c) => c.close()),
  };
}

/** What a registry answered, as an error that names it and how to get it running. */
export function unreachable(r: { name: string; endpoint: string }, err: unknown): LoError {
  return new LoError('E_STEP', `${r.name} (${r.endpoint}): ${(err as Error).message}`, {
    exitCode: ExitCode.stepFailed,
    hint: '`lo registry status` shows which registry is down; `lo registry up` starts it',
    cause: err,
  });
}

export const lockPath = (plan: Plan): string =>
  join(plan.project.specDir.startsWith('<') ? join('clusters', plan.project.domain) : plan.project.specDir, LOCK_FILE);

/** A repository of the cache for one load's blobs until the images are linked (src/plan/images.ts). */
export const stagingRepo = (): string => `${STAGING_PREFIX}${randomBytes(4).toString('hex')}`;
