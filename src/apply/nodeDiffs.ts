import type { Plan } from '../plan/types.js';
import type { StepAction } from './stepAction.js';

/** Which nodes still need the network (create) and which are on it (noop). Pure. */
export function diffConnect(nodes: ReadonlyArray<{ name: string; networks: readonly string[] }>, network: string): StepAction[] {
  return nodes.map((n) => ({ action: n.networks.includes(network) ? 'noop' : 'create', object: `node ${n.name} -> ${network}` }));
}

/** An agent container as observed: which node it serves and whether it runs. */
export interface ObservedAgent {
  node: string;
  agent: string;
  running: boolean;
}

/**
 * The planned agents against the running ones: missing -> create, stopped -> recreate, agents of nodes the
 * plan no longer has -> remove. A running agent is a noop here; at apply its hash label (command, image, node
 * container id) is compared too. Pure.
 */
export function diffAgents(plan: Plan, observed: readonly ObservedAgent[]): StepAction[] {
  const actions: StepAction[] = plan.p2p.agents.map((a): StepAction => {
    const found = observed.find((o) => o.node === a.node);
    const object = `p2p agent ${a.containerName}`;
    if (!found) return { action: 'create', object, detail: `peers ${a.options.peers?.length ?? 0}` };
    return found.running ? { action: 'noop', object } : { action: 'recreate', object, detail: 'not running' };
  });
  for (const o of observed)
    if (!plan.p2p.agents.some((a) => a.node === o.node)) actions.push({ action: 'remove', object: `p2p agent ${o.agent}` });
  return actions;
}
