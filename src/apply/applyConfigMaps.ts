import type { Plan } from '../plan/types.js';
import type { Action } from './action.js';
import { renderManifestsYaml } from '../plan/render/renderConfigMaps.js';
import { canonicalJson } from '../util/hash.js';
import type { Kubectl } from '../adapters/kubectl.js';

/** The data each planned ConfigMap holds in the cluster now (null: it does not exist). */
export async function observeConfigMaps(plan: Plan, kube: Kubectl): Promise<Array<Record<string, string> | null>> {
  return Promise.all(plan.configMaps.map((m) => kube.getConfigMapData(m.metadata.namespace, m.metadata.name)));
}

/** Which planned ConfigMaps differ from the cluster's (create or update) and which match (noop). Pure. */
export function diffConfigMaps(plan: Plan, current: ReadonlyArray<Record<string, string> | null>): Action[] {
  return plan.configMaps.map((m, i): Action => {
    const name = `${m.metadata.namespace}/${m.metadata.name}`;
    const have = current[i] ?? null;
    if (have && canonicalJson(have) === canonicalJson(m.data)) return { kind: 'configmap', name, action: 'noop' };
    return { kind: 'configmap', name, action: have ? 'update' : 'create' };
  });
}

/**
 * Applies the registry ConfigMaps whose data differs from what the cluster holds; unchanged ones are
 * left alone, so a re-run sends nothing to the API server.
 */
export async function applyConfigMaps(plan: Plan, kube: Kubectl): Promise<Action[]> {
  const actions = diffConfigMaps(plan, await observeConfigMaps(plan, kube));
  const toApply = plan.configMaps.filter((_, i) => actions[i]!.action !== 'noop');
  if (toApply.length > 0) await kube.apply(renderManifestsYaml(toApply));
  return actions;
}
