import type { DockerClients } from '../adapters/docker/index.js';
import { shellCommand } from '../util/shell.js';
import { LoError } from '../errors/loError.js';
import type { Action } from './action.js';

/**
 * Attaches every node container to a network (the shared registry network), so nodes reach the shared
 * mirrors directly. Already attached (also by a concurrent run) counts as done; any other failure stops with
 * the node's name.
 */
export async function connectNodes(
  docker: Pick<DockerClients, 'containers' | 'networks'>,
  nodes: readonly string[],
  network: string,
): Promise<Action[]> {
  const actions: Action[] = [];
  for (const node of nodes) {
    const fail = (why: string, cause?: unknown): LoError =>
      new LoError('E_STEP', `cannot connect node ${node} to network ${network}: ${why}`, {
        hint: `check the node with \`${shellCommand(['docker', 'inspect', node])}\` and the network with \`${shellCommand(['docker', 'network', 'inspect', network])}\``,
        ...(cause === undefined ? {} : { cause }),
      });
    let attached: boolean;
    try {
      const info = await docker.containers.inspect(node);
      if (!info) throw fail('no such container');
      attached = info.networks[network] === undefined && (await docker.networks.connect(network, node));
    } catch (err) {
      if (err instanceof LoError && err.code === 'E_STEP') throw err;
      throw fail((err as Error).message, err);
    }
    actions.push({ kind: 'node', name: `${node} -> ${network}`, action: attached ? 'create' : 'noop' });
  }
  return actions;
}
