import { rm } from 'node:fs/promises';
import type { KindCli } from '../adapters/kindCli.js';
import type { Plan } from '../plan/types.js';
import { runStep, silentReporter, validateStep, type StepReporter, type StepResult } from './runSteps.js';
import type { Action } from '../apply/action.js';

export interface DestroyDeps {
  loadPlan: () => Promise<Plan>;
  kind: KindCli;
  /**
   * Removes the project's registries (build, cache, private mirrors), never the shared mirrors; with dryRun,
   * returns what it would remove and changes nothing.
   */
  removeRegistries: (plan: Plan, opts: { volumes: boolean; dryRun?: boolean }) => Promise<Action[]>;
  /** Removes the project's P2P agent sidecars (they outlive kind's node containers otherwise); dryRun as above. */
  removeP2P?: (plan: Plan, opts?: { dryRun?: boolean }) => Promise<Action[]>;
  /**
   * Why the kind cluster of the plan's name is another project's (its network is labelled with another
   * project id, or its nodes are on another network), or null when it is this project's. kind knows clusters
   * by name only; two specs with one metadata.name share it.
   */
  clusterOwner?: (plan: Plan) => Promise<string | null>;
  /** Takes the project's lock once the plan is known (as provision does); not for dry runs. */
  lockProject?: (plan: Plan) => Promise<{ release: () => Promise<void> }>;
  reporter?: StepReporter;
}

export interface DestroyResult {
  project: string;
  cluster: string;
  volumesRemoved: boolean;
  steps: StepResult[];
  /** True when nothing was changed: the steps' actions say what would be removed. */
  dryRun?: boolean;
}

/** What deleting the cluster does, given whether kind knows it and whether it is another project's. Pure. */
export function diffCluster(plan: Plan, clusters: readonly string[], foreign: string | null = null): Action[] {
  const name = plan.cluster.name;
  if (!clusters.includes(name)) return [{ kind: 'cluster', name, action: 'noop', reason: 'not found' }];
  if (foreign !== null) return [{ kind: 'cluster', name, action: 'noop', reason: `kept: ${foreign}` }];
  return [{ kind: 'cluster', name, action: 'remove' }];
}

/** `lo destroy`: deletes the kind cluster and the project's registries; shared mirrors stay for other projects. */
export async function destroy(deps: DestroyDeps, opts: { volumes: boolean; dryRun?: boolean }): Promise<DestroyResult> {
  const dryRun = opts.dryRun ?? false;
  const reporter = deps.reporter ?? silentReporter;
  const steps: StepResult[] = [];
  const plan = await validateStep(reporter, steps, () => deps.loadPlan());
  const lock = dryRun ? undefined : await deps.lockProject?.(plan);
  try {
    return await destroyLocked(deps, plan, steps, opts);
  } finally {
    await lock?.release();
  }
}

async function destroyLocked(
  deps: DestroyDeps,
  plan: Plan,
  steps: StepResult[],
  opts: { volumes: boolean; dryRun?: boolean },
): Promise<DestroyResult> {
  const dryRun = opts.dryRun ?? false;
  const reporter = deps.reporter ?? silentReporter;
  const name = plan.cluster.name;
  await runStep(reporter, steps, 'cluster', `delete kind cluster ${name}`, async () => {
    const clusters = await deps.kind.getClusters();
    const foreign = clusters.includes(name) && deps.clusterOwner ? await deps.clusterOwner(plan) : null;
    const actions = diffCluster(plan, clusters, foreign);
    // Another project's cluster keeps its kubeconfig and kind config too (same state directory name).
    if (dryRun || foreign !== null) return actions;
    // --kubeconfig: kind removes the cluster's entry from lo's kubeconfig, not from ~/.kube/config.
    if (actions.some((a) => a.action === 'remove')) await deps.kind.deleteCluster(name, plan.cluster.kubeconfigPath);
    for (const file of [plan.cluster.kubeconfigPath, plan.cluster.kindConfigPath]) {
      await rm(file, { force: true });
    }
    return actions;
  });
  const removeP2P = deps.removeP2P;
  if (removeP2P) await runStep(reporter, steps, 'p2p', `remove ${name}'s P2P agents`, () => removeP2P(plan, { dryRun }));
  await runStep(reporter, steps, 'registries', `remove ${name}'s registries${opts.volumes ? ' and volumes' : ''}`, () =>
    deps.removeRegistries(plan, { volumes: opts.volumes, dryRun }),
  );
  return { project: plan.project.name, cluster: name, volumesRemoved: opts.volumes && !dryRun, steps, ...(dryRun ? { dryRun } : {}) };
}
