import { applyRegistries, previewRegistries } from '../apply/applyRegistries.js';
import type { Action } from '../apply/types.js';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { Plan } from '../plan/types.js';
import { setup, whileLocked, type RegistryDeps } from './registrySetup.js';
export interface UpResult {
  plan: Plan;
  actions: Action[];
  dryRun: boolean;
}

/**
 * `lo registry up`: networks, TLS, files, volumes and containers the plan lists, and nothing else. With
 * `dryRun`, the same observe and diff, and the actions it would take; nothing is changed.
 */
export async function registryUp(opts: LoadSpecOptions, deps: RegistryDeps & { dryRun?: boolean } = {}): Promise<UpResult> {
  const { docker, plan } = await setup(opts, deps);
  const run = deps.dryRun ? previewRegistries : applyRegistries;
  const actions = await whileLocked(plan, 'lo registry up', deps, () =>
    run(plan, {
      docker,
      // Return only once what was (re)started answers (or a mirror serves offline from its replica).
      serving: {},
      ...(deps.ensureTls ? { ensureTls: deps.ensureTls } : {}),
      ...(deps.env ? { env: deps.env } : {}),
      ...(deps.onProgress ? { onProgress: deps.onProgress } : {}),
    }),
  );
  return { plan, actions, dryRun: deps.dryRun ?? false };
}
