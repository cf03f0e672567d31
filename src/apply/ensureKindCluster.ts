import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Plan } from '../plan/types.js';
import type { StepAction } from './stepAction.js';
import type { KindCli } from '../adapters/kindCli.js';

export function kindConfigPath(plan: Plan): string {
  return plan.cluster.kindConfigPath;
}

/** Writes a file atomically (temp file + rename) unless it already has these bytes; true when written. */
export async function writeIfChanged(path: string, content: string, mode: number): Promise<boolean> {
  const current = await readFile(path, 'utf8').catch(() => null);
  if (current === content) return false;
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
  return true;
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

/**
 * Creates the kind cluster when it does not exist, on the project network, and keeps its kubeconfig at
 * plan.cluster.kubeconfigPath (0600). An existing cluster is left as it is: kind cannot change a running
 * cluster, so a changed node layout is reported for `lo destroy` + `lo provision`.
 */
export async function ensureKindCluster(plan: Plan, kind: KindCli): Promise<StepAction[]> {
  const c = plan.cluster;
  const configPath = kindConfigPath(plan);
  const content = c.kindConfig;
  const previous = await readFile(configPath, 'utf8').catch(() => null);
  const clusters = await kind.getClusters();
  const actions: StepAction[] = [];
  if (!clusters.includes(c.name)) {
    await writeIfChanged(configPath, content, 0o644);
    await mkdir(dirname(c.kubeconfigPath), { recursive: true });
    await kind.createCluster({ name: c.name, configPath, kubeconfigPath: c.kubeconfigPath, network: c.network });
    actions.push({ action: 'create', object: `cluster ${c.name}`, detail: `${c.nodes.length} node(s), ${c.image}, network ${c.network}` });
  } else {
    actions.push({ action: 'noop', object: `cluster ${c.name}` });
    if (previous !== null && previous !== content) {
      actions.push({
        action: 'warn',
        object: `cluster ${c.name}`,
        detail:
          'the cluster was created from an older kind config (nodes, ports or containerd settings changed); run `lo destroy` then `lo provision` to apply it',
      });
    }
    await writeIfChanged(configPath, content, 0o644);
    if (!(await exists(c.kubeconfigPath))) {
      await mkdir(dirname(c.kubeconfigPath), { recursive: true });
      await kind.exportKubeconfig(c.name, c.kubeconfigPath);
      actions.push({ action: 'create', object: `kubeconfig ${c.kubeconfigPath}` });
    }
  }
  // kind writes kubeconfigs 0600 already; make sure, since it holds the cluster's admin credentials.
  if ((await stat(c.kubeconfigPath)).mode & 0o077) await chmod(c.kubeconfigPath, 0o600);
  return actions;
}
