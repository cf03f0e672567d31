import { rm } from 'node:fs/promises';
import type { KindCli } from '../adapters/kindCli.js';
import { kindConfigPath } from '../apply/ensureKindCluster.js';
import type { Plan } from '../plan/types.js';
import { runStep, silentReporter, type StepReporter, type StepResult } from './runSteps.js';
import type { StepAction } from '../apply/stepAction.js';

export interface DestroyDeps {
  loadPlan: () => Promise<Plan>;
  kind: KindCli;
  /** Removes the project's registries (build, cache, private mirrors), never the shared mirrors. */
  removeRegistries: (plan: Plan, opts: { volumes: boolean }) => Promise<StepAction[]>;
  /** Removes the project's P2P agent sidecars (they outlive kind's node containers otherwise). */
  removeP2P?: (plan: Plan) => Promise<StepAction[]>;
  reporter?: StepReporter;
}

export interface DestroyResult {
  project: string;
  cluster: string;
  volumesRemoved: boolean;
  steps: StepResult[];
}

/** `lo destroy`: deletes the kind cluster and the project's registries; shared mirrors stay for other projects. */
export async function destroy(deps: DestroyDeps, opts: { volumes: boolean }): Promise<DestroyResult> {
  const reporter = deps.reporter ?? silentReporter;
  const steps: StepResult[] = [];
  let plan!: Plan;
  await runStep(reporter, steps, 'validate', 'read and check the spec', async () => {
    plan = await deps.loadPlan();
    return [];
  });
  const name = plan.cluster.name;
  await runStep(reporter, steps, 'cluster', `delete kind cluster ${name}`, async () => {
    const actions: StepAction[] = [];
    if ((await deps.kind.getClusters()).includes(name)) {
      // --kubeconfig: kind removes the cluster's entry from lo's kubeconfig, not from ~/.kube/config.
      await deps.kind.deleteCluster(name, plan.cluster.kubeconfigPath);
      actions.push({ action: 'remove', object: `cluster ${name}` });
    } else actions.push({ action: 'noop', object: `cluster ${name}`, detail: 'not found' });
    for (const file of [plan.cluster.kubeconfigPath, kindConfigPath(plan)]) {
      await rm(file, { force: true });
    }
    return actions;
  });
  const removeP2P = deps.removeP2P;
  if (removeP2P) await runStep(reporter, steps, 'p2p', `remove ${name}'s P2P agents`, () => removeP2P(plan));
  await runStep(reporter, steps, 'registries', `remove ${name}'s registries${opts.volumes ? ' and volumes' : ''}`, () =>
    deps.removeRegistries(plan, { volumes: opts.volumes }),
  );
  return { project: plan.project.name, cluster: name, volumesRemoved: opts.volumes, steps };
}
