import type Docker from 'dockerode';
import { statusOf } from '../adapters/docker/client.js';
import { LoError } from '../errors/loError.js';
import type { StepAction } from './stepAction.js';

/**
 * Attaches every node container to a network (the shared registry network), so nodes reach the shared
 * mirrors directly. Already attached counts as done; any other failure stops with the node's name.
 */
export async function connectNodes(docker: Docker, nodes: readonly string[], network: string): Promise<StepAction[]> {
  const actions: StepAction[] = [];
  for (const node of nodes) {
    const object = `node ${node} -> ${network}`;
    try {
      const info = await docker.getContainer(node).inspect();
      if (info.NetworkSettings?.Networks?.[network]) {
        actions.push({ action: 'noop', object });
        continue;
      }
      await docker.getNetwork(network).connect({ Container: node });
      actions.push({ action: 'create', object });
    } catch (err) {
      // A concurrent run may attach it between inspect and connect; Docker answers 403/409 "already exists".
      const msg = (err as { json?: { message?: string } })?.json?.message ?? (err as Error)?.message ?? String(err);
      const status = statusOf(err);
      if ((status === 403 || status === 409) && /already exists/i.test(msg)) {
        actions.push({ action: 'noop', object });
        continue;
      }
      throw new LoError('E_STEP', `cannot connect node ${node} to network ${network}: ${msg}`, {
        hint: `check the node with \`docker inspect ${node}\` and the network with \`docker network inspect ${network}\``,
        cause: err,
      });
    }
  }
  return actions;
}
