import type { Plan } from '../plan/types.js';
import type { Action } from './action.js';

/** Which nodes still need the network (create) and which are on it (noop). Pure. */
export function diffConnect(nodes: ReadonlyArray<{ name: string; networks: readonly string[] }>, network: string): Action[] {
  return nodes.map((n) => ({ kind: 'node', name: `${n.name} -> ${network}`, action: n.networks.includes(network) ? 'noop' : 'create' }));
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
export function diffAgents(plan: Plan, observed: readonly ObservedAgent[]): Action[] {
  const actions: Action[] = plan.p2p.agents.map((a): Action => {
    const found = observed.find((o) => o.node === a.node);
    const agent = { kind: 'p2p agent', name: a.containerName } as const;
    const reason = plan.p2p.forwardOnly ? 'forward-only: rewrites, P2P off' : `peers ${a.options.peers?.length ?? 0}`;
    if (!found) return { ...agent, action: 'create', reason };
    return found.running ? { ...agent, action: 'noop' } : { ...agent, action: 'recreate', reason: 'not running' };
  });
  for (const o of observed)
    if (!plan.p2p.agents.some((a) => a.node === o.node)) actions.push({ kind: 'p2p agent', name: o.agent, action: 'remove' });
  return actions;
}
