import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PUBLIC_MODE, writeIfChanged } from './files.js';
import type { Plan } from '../plan/types.js';
import type { Action } from './action.js';
import type { KindCli } from '../adapters/kindCli.js';

export function kindConfigPath(plan: Plan): string {
  return plan.cluster.kindConfigPath;
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

/** What kind and the project directory hold now. */
export interface KindObserved {
  clusters: string[];
  /** The kind config the cluster was last provisioned with (null when never written). */
  kindConfig: string | null;
  kubeconfigExists: boolean;
}

export async function observeKindCluster(plan: Plan, kind: KindCli): Promise<KindObserved> {
  const [clusters, kindConfig, kubeconfigExists] = await Promise.all([
    kind.getClusters(),
    readFile(plan.cluster.kindConfigPath, 'utf8').catch(() => null),
    exists(plan.cluster.kubeconfigPath),
  ]);
  return { clusters, kindConfig, kubeconfigExists };
}

export const OLD_KIND_CONFIG =
  'the cluster was created from an older kind config (nodes, ports or containerd settings changed); run `lo destroy` then `lo provision` to apply it';

/**
 * What to do about the cluster. Pure. A missing cluster is created; an existing one is left as it is: kind
 * cannot change a running cluster, so a changed kind config is a warning for `lo destroy` + `lo provision`.
 */
export function diffKindCluster(plan: Plan, o: KindObserved): Action[] {
  const c = plan.cluster;
  if (!o.clusters.includes(c.name)) {
    return [{ kind: 'cluster', name: c.name, action: 'create', reason: `${c.nodes.length} node(s), ${c.image}, network ${c.network}` }];
  }
  const actions: Action[] = [{ kind: 'cluster', name: c.name, action: 'noop' }];
  if (o.kindConfig !== null && o.kindConfig !== c.kindConfig)
    actions.push({ kind: 'cluster', name: c.name, action: 'warn', reason: OLD_KIND_CONFIG });
  if (!o.kubeconfigExists) actions.push({ kind: 'kubeconfig', name: c.kubeconfigPath, action: 'create' });
  return actions;
}

/**
 * Creates the kind cluster when it does not exist, on the project network, and keeps its kubeconfig at
 * plan.cluster.kubeconfigPath (0600). Observe, diff, then do what the diff says.
 */
export async function ensureKindCluster(plan: Plan, kind: KindCli): Promise<Action[]> {
  const c = plan.cluster;
  const actions = diffKindCluster(plan, await observeKindCluster(plan, kind));
  await writeIfChanged(c.kindConfigPath, c.kindConfig, PUBLIC_MODE);
  for (const a of actions) {
    if (a.action !== 'create') continue;
    await mkdir(dirname(c.kubeconfigPath), { recursive: true });
    if (a.kind === 'cluster') {
      await kind.createCluster({ name: c.name, configPath: c.kindConfigPath, kubeconfigPath: c.kubeconfigPath, network: c.network });
    } else await kind.exportKubeconfig(c.name, c.kubeconfigPath);
  }
  // kind writes kubeconfigs 0600 already; make sure, since it holds the cluster's admin credentials.
  if ((await stat(c.kubeconfigPath)).mode & 0o077) await chmod(c.kubeconfigPath, 0o600);
  return actions;
}
