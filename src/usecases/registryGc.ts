import { gcMirror, previewGc, type GcResult } from '../apply/gc.js';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import { setup, whileLocked, type RegistryDeps } from './registrySetup.js';

export interface GcRunResult {
  project: string;
  dryRun: boolean;
  mirrors: GcResult[];
}

/**
 * `lo registry gc`: per mirror of the project (shared ones with `shared`), evict least recently used
 * repositories until the volume fits `spec.registries.cache.maxSize` (or `maxSizeBytes`), then run the
 * registry's own garbage collector. Mirrors run one after another (each stops its proxy for the sweep).
 */
export async function registryGc(
  opts: LoadSpecOptions,
  deps: RegistryDeps & { shared?: boolean; dryRun?: boolean; maxSizeBytes?: number; extraLabels?: Record<string, string> } = {},
): Promise<GcRunResult> {
  const { docker, plan, spec } = await setup(opts, { ...deps, strict: false });
  const budget = deps.maxSizeBytes ?? spec.registries.cache?.maxSizeBytes ?? null;
  const mirrors = plan.registries.filter((r) => r.role === 'mirror' && r.replica && (r.scope === 'project' || deps.shared));
  const results: GcResult[] = [];
  // --dry-run: the same inventory and LRU choice, nothing deleted (and no lock taken).
  const run = deps.dryRun ? previewGc : gcMirror;
  await whileLocked(plan, 'lo registry gc', deps, async () => {
    for (const r of mirrors) {
      deps.onProgress?.(`gc ${r.name}`);
      results.push(await run(docker, r, { budgetBytes: budget, ...(deps.extraLabels ? { extraLabels: deps.extraLabels } : {}) }));
    }
  });
  return { project: plan.project.name, dryRun: deps.dryRun ?? false, mirrors: results };
}
