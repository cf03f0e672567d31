import { LoError } from '../../errors/loError.js';
import { shellCommand } from '../../util/shell.js';
import { KIND_LABELS } from '../../plan/labels.js';
import type { ContainersClient } from './types.js';

export interface KindNodeInfo {
  name: string;
  /** control-plane, worker, or external-load-balancer (HA clusters: a proxy, no kubelet, no containerd pulls). */
  role: string;
}

/** Roles of the containers `kind get nodes` listed, read from kind's labels. */
export async function inspectKindNodes(containers: Pick<ContainersClient, 'inspect'>, names: readonly string[]): Promise<KindNodeInfo[]> {
  return Promise.all(
    names.map(async (name) => {
      let info;
      try {
        info = await containers.inspect(name);
      } catch (err) {
        throw new LoError('E_STEP', `cannot inspect kind node ${name}: ${(err as Error).message}`, {
          hint: `check it with \`${shellCommand(['docker', 'inspect', name])}\``,
          cause: err,
        });
      }
      if (!info) {
        throw new LoError('E_STEP', `kind lists node ${name}, but Docker has no such container`, {
          hint: `check the cluster with \`kind get nodes\` and \`docker ps -a\`; \`lo destroy\` then \`lo provision\` recreates it`,
        });
      }
      return { name, role: info.labels[KIND_LABELS.role] ?? 'unknown' };
    }),
  );
}

/** Nodes that run kubelet and containerd (pull images): everything but kind's external load balancer. */
export function kubernetesNodes(nodes: readonly KindNodeInfo[]): string[] {
  return nodes.filter((n) => pullsImages(n.role)).map((n) => n.name);
}

/** Whether a kind node of this role runs kubelet and containerd: all but kind's HA external load balancer. */
export function pullsImages(role: string): boolean {
  return role !== 'external-load-balancer';
}
