import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadSpec, type LoadSpecOptions } from '../spec/loadSpec.js';
import { resolvePaths, type LoPaths } from '../runtime/paths.js';
import type { ClusterSpec } from '../spec/types.js';
import type { Log } from '../runtime/log.js';
import { planCluster } from '../plan/planCluster.js';
import type { ObservedShared, Plan } from '../plan/types.js';
import type { KindConfigOptions } from '../plan/render/renderKindConfig.js';

export interface PlanDeps {
  paths?: LoPaths;
  /** The environment (from main); paths and credentials come from it. */
  env?: NodeJS.ProcessEnv;
  /** The debug log (from main), for every executor and adapter below. */
  log?: Log;
  /** Reads the shared network's mirrors (Docker); absent means "nothing runs". */
  observeShared?: (spec: ClusterSpec) => Promise<ObservedShared>;
  registryImage?: string;
  extraLabels?: Record<string, string>;
  /** false for status and teardown: conflicts with running shared mirrors must not block them. */
  strict?: boolean;
  /** Extra kind config settings (pod and service subnets). */
  kindConfig?: KindConfigOptions;
  /** Where the spec's warnings (allowed but unsafe settings) go; the CLI prints them on stderr. */
  warn?: (message: string) => void;
}

/** Loads the spec, observes what runs, and plans. Used by `lo plan` and every command that applies. */
export async function loadPlan(opts: LoadSpecOptions, deps: PlanDeps = {}): Promise<{ spec: ClusterSpec; plan: Plan }> {
  const spec = await loadSpec(opts);
  for (const w of spec.warnings) deps.warn?.(w);
  const [observed, upstreamCaDigests] = await Promise.all([
    deps.observeShared ? deps.observeShared(spec) : undefined,
    readUpstreamCaDigests(spec),
  ]);
  const plan = planCluster(spec, {
    paths: deps.paths ?? resolvePaths({ env: deps.env ?? {} }),
    ...(observed ? { observed } : {}),
    ...(deps.registryImage ? { registryImage: deps.registryImage } : {}),
    ...(deps.extraLabels ? { extraLabels: deps.extraLabels } : {}),
    ...(deps.strict === false ? { strict: false } : {}),
    ...(deps.kindConfig ? { kindConfig: deps.kindConfig } : {}),
    upstreamCaDigests,
  });
  return { spec, plan };
}

/**
 * sha256 of each mirror's upstream CA file (the content, as the apply copies it), for the mirrors'
 * `upstream-access` label and the shared-mirror conflict check. A file that cannot be read is left out here:
 * the spec's checks name it, and the apply stops on it before anything changes.
 */
export async function readUpstreamCaDigests(spec: ClusterSpec): Promise<Record<string, string>> {
  const files = [...new Set(spec.registries.mirrors.flatMap((m) => (m.tls?.caFile ? [m.tls.caFile] : [])))];
  const read = await Promise.all(
    files.map(async (f) => {
      const pem = await readFile(f, 'utf8').catch(() => undefined);
      return pem === undefined ? [] : [[f, createHash('sha256').update(pem).digest('hex')] as const];
    }),
  );
  return Object.fromEntries(read.flat());
}
