import { join } from 'node:path';
import { agentArgv, type AgentOptions } from '../agent/options.js';
import type { ClusterSpec } from '../spec/types.js';
import { p2pEndpointOf } from './planContainerd.js';
import type { AgentPlan, ClusterNodePlan, P2PPlan, RegistryPlan } from './types.js';

export const AGENT_KEY_PATH = '/etc/lo/p2p/swarm.key';
/** The node's filesystem seen from an agent sharing its PID namespace (PID 1 is the node's init). */
export const NODE_ROOT = '/proc/1/root';
export const NODE_CONTAINERD_SOCKET = `${NODE_ROOT}/run/containerd/containerd.sock`;
export const NODE_CONTENT_DIR = `${NODE_ROOT}/var/lib/containerd/io.containerd.content.v1.content`;
export const AGENT_NAMESPACE = 'k8s.io';

/** The agent options every node shares (peers apart): everything comes from the spec and the registries. */
export function agentBaseOptions(p2p: ClusterSpec['registries']['p2p'], registries: readonly RegistryPlan[]): Partial<AgentOptions> {
  return {
    port: p2p.port,
    routerPort: p2p.routerPort,
    metricsPort: p2p.metricsPort,
    dataPort: p2p.dataPort,
    key: AGENT_KEY_PATH,
    containerd: NODE_CONTAINERD_SOCKET,
    namespace: AGENT_NAMESPACE,
    contentDir: NODE_CONTENT_DIR,
    resolveTimeoutMs: p2p.resolveTimeoutMs,
    resolveLatest: p2p.resolveLatest,
    resolveTags: p2p.resolveTags,
    registries: [...new Set(registries.filter((r) => r.role === 'mirror').map((r) => r.registry!))].sort(),
  };
}

/** The agent's command line: `p2p agent` and its options, built from the option table. */
export function agentCommand(options: Partial<AgentOptions>): string[] {
  return ['p2p', 'agent', ...agentArgv(options)];
}

/**
 * One agent per Kubernetes node. Peers are the other nodes by container name: kind's nodes sit on the
 * project's user-defined Docker network, where Docker's DNS resolves container names, and the agent shares
 * its node's network namespace (and so its resolver).
 */
export function planP2P(
  spec: ClusterSpec,
  projectDir: string,
  nodes: readonly ClusterNodePlan[],
  registries: readonly RegistryPlan[],
): P2PPlan {
  const p2p = spec.registries.p2p;
  const base = agentBaseOptions(p2p, registries);
  const agents: AgentPlan[] = p2p.enabled
    ? nodes.map((n) => {
        const options = { ...base, peers: nodes.filter((o) => o.name !== n.name).map((o) => `${o.name}:${p2p.routerPort}`) };
        return { node: n.name, containerName: `${n.name}-lo-p2p`, options, command: agentCommand(options) };
      })
    : [];
  return { ...p2p, keyPath: join(projectDir, 'p2p', 'swarm.key'), endpoint: p2pEndpointOf(spec), agentKeyPath: AGENT_KEY_PATH, agents };
}
