import type Docker from 'dockerode';
import { LoError } from '../../errors/loError.js';

/** kind's labels on its node containers. */
export const KIND_CLUSTER_LABEL = 'io.x-k8s.kind.cluster';
export const KIND_ROLE_LABEL = 'io.x-k8s.kind.role';

export interface KindNodeInfo {
  name: string;
  /** control-plane, worker, or external-load-balancer (HA clusters: a proxy, no kubelet, no containerd pulls). */
  role: string;
}

/** Roles of the containers `kind get nodes` listed, read from kind's labels. */
export async function inspectKindNodes(docker: Docker, names: readonly string[]): Promise<KindNodeInfo[]> {
  return Promise.all(
    names.map(async (name) => {
      try {
        const info = await docker.getContainer(name).inspect();
        return { name, role: info.Config?.Labels?.[KIND_ROLE_LABEL] ?? 'unknown' };
      } catch (err) {
        throw new LoError('E_STEP', `cannot inspect kind node ${name}: ${(err as Error).message}`, {
          hint: `check it with \`docker inspect ${name}\``,
          cause: err,
        });
      }
    }),
  );
}

/** Nodes that run kubelet and containerd (pull images): everything but kind's external load balancer. */
export function kubernetesNodes(nodes: readonly KindNodeInfo[]): string[] {
  return nodes.filter((n) => n.role !== 'external-load-balancer').map((n) => n.name);
}
