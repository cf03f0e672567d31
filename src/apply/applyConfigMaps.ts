import type { Plan } from '../plan/types.js';
import type { StepAction } from './stepAction.js';
import { renderManifestsYaml } from '../plan/render/renderConfigMaps.js';
import { canonicalJson } from '../util/hash.js';
import type { Kubectl } from '../adapters/kubectl.js';

/**
 * Applies the registry ConfigMaps whose data differs from what the cluster holds; unchanged ones are
 * left alone, so a re-run sends nothing to the API server.
 */
export async function applyConfigMaps(plan: Plan, kube: Kubectl): Promise<StepAction[]> {
  const manifests = plan.configMaps;
  const actions: StepAction[] = [];
  const toApply = [];
  const currents = await Promise.all(manifests.map((m) => kube.getConfigMapData(m.metadata.namespace, m.metadata.name)));
  for (const [i, m] of manifests.entries()) {
    const object = `configmap ${m.metadata.namespace}/${m.metadata.name}`;
    const current = currents[i];
    if (current && canonicalJson(current) === canonicalJson(m.data)) {
      actions.push({ action: 'noop', object });
      continue;
    }
    toApply.push(m);
    actions.push({ action: current ? 'update' : 'create', object });
  }
  if (toApply.length > 0) await kube.apply(renderManifestsYaml(toApply));
  return actions;
}
