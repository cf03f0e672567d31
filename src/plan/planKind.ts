import { join } from 'node:path';
import type { ClusterSpec } from '../spec/types.js';
import { renderKindConfig, type KindConfigOptions } from './render/renderKindConfig.js';
import type { ClusterNodePlan, ClusterPlan, Plan } from './types.js';

/** kind's node container names: `<name>-control-plane`, `<name>-control-plane2`, …, `<name>-worker`, … */
export function planNodes(spec: ClusterSpec): ClusterNodePlan[] {
  return [
    ...Array.from({ length: spec.nodes.controlPlane }, (_, i) => ({
      name: `${spec.name}-control-plane${i ? i + 1 : ''}`,
      role: 'control-plane' as const,
    })),
    ...Array.from({ length: spec.nodes.workers }, (_, i) => ({ name: `${spec.name}-worker${i ? i + 1 : ''}`, role: 'worker' as const })),
  ];
}

/** The cluster without its kind config (which renders from the rest of the plan). */
export function planClusterBase(spec: ClusterSpec, projectDir: string): Omit<ClusterPlan, 'kindConfig'> {
  return {
    name: spec.name,
    domain: spec.domain,
    kubernetesVersion: spec.kubernetesVersion,
    image: `kindest/node:${spec.kubernetesVersion}`,
    network: spec.network.name,
    nodes: planNodes(spec),
    hostPorts: spec.nodes.hostPorts,
    maxConcurrentDownloads: spec.nodes.maxConcurrentDownloads,
    kubeconfigPath: join(projectDir, 'kubeconfig'),
    kindConfigPath: join(projectDir, 'kind-config.yaml'),
  };
}

/** The kind config file's content, rendered from the finished plan. */
export function planKindConfig(plan: Omit<Plan, 'configMaps'>, opts: KindConfigOptions = {}): string {
  return renderKindConfig(plan as Plan, opts);
}
