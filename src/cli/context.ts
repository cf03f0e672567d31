import type { LoadSpecOptions } from '../spec/loadSpec.js';
import type { PlanDeps } from '../usecases/plan.js';
import { observeSharedOrNothing } from '../usecases/registry.js';

/** Options every command accepts (set on the root program). */
export interface GlobalOpts {
  config?: string;
  json?: boolean;
}

export function specOptions(domain: string | undefined, g: GlobalOpts): LoadSpecOptions {
  return { ...(g.config ? { config: g.config } : { domain: domain ?? 'lok8s.dev' }) };
}

/** Dependencies shared by commands; environment is read here, at the edge. */
export async function commonDeps(_g: GlobalOpts): Promise<PlanDeps> {
  const extraLabels = process.env.LO_EXTRA_LABELS ? parseLabels(process.env.LO_EXTRA_LABELS) : undefined;
  return {
    ...(process.env.LO_REGISTRY_IMAGE ? { registryImage: process.env.LO_REGISTRY_IMAGE } : {}),
    ...(extraLabels ? { extraLabels } : {}),
    // Shared mirrors already running keep their addresses; `lo plan` falls back to "nothing observed" fast.
    observeShared: observeSharedOrNothing(process.env),
  };
}

/** `a=b,c=d` -> { a: 'b', c: 'd' } */
export function parseLabels(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(',')
      .map((kv) => kv.trim())
      .filter(Boolean)
      .map((kv) => {
        const i = kv.indexOf('=');
        return i === -1 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
      }),
  );
}
