import { join } from 'node:path';
import { agentArgv, type AgentOptions } from '../agent/options.js';
import { WILDCARD_HOST } from '../spec/accessRules.js';
import type { ClusterSpec } from '../spec/types.js';
import { NODE_CERTS_DIR, p2pEndpointOf } from './planContainerd.js';
import type { AgentPlan, ClusterNodePlan, P2PPlan, RegistryPlan } from './types.js';

export const AGENT_KEY_PATH = '/etc/lo/p2p/swarm.key';
/** The node's filesystem seen from an agent sharing its PID namespace (PID 1 is the node's init). */
export const NODE_ROOT = '/proc/1/root';
export const NODE_CONTAINERD_SOCKET = `${NODE_ROOT}/run/containerd/containerd.sock`;
export const NODE_CONTENT_DIR = `${NODE_ROOT}/var/lib/containerd/io.containerd.content.v1.content`;
export const AGENT_NAMESPACE = 'k8s.io';
/** containerd's hosts.toml tree as the agent sees it: where it finds the hosts a rewritten name goes to. */
export const NODE_HOSTS_DIR = `${NODE_ROOT}${NODE_CERTS_DIR}`;

/** The spec's rewrites as the agent's `--rewrites` JSON, or '' without any. */
export function rewritesOption(spec: ClusterSpec): string {
  const hosts = spec.registries.hosts;
  const withRules = Object.keys(hosts).filter((k) => hosts[k]!.rewrites.length > 0);
  if (withRules.length === 0) return '';
  const rules: Record<string, Array<[string, string]>> = {};
  for (const key of withRules) rules[key] = hosts[key]!.rewrites.map((r) => [r.pattern, r.replacement]);
  // `"*"` rules are for registries without an entry of their own (as in K3s): a registry that has one (in
  // hosts, or mirrored by lo, so its own hosts.toml) gets an empty list, so the agent leaves its names alone.
  if (rules[WILDCARD_HOST]) {
    const own = [...Object.keys(hosts), ...spec.registries.mirrors.map((m) => m.registry)];
    for (const key of own) if (key !== WILDCARD_HOST) rules[key] ??= [];
  }
  // Sorted keys (rules keep their order): the same spec gives the same command, so the same agent hash.
  return JSON.stringify(
    Object.fromEntries(
      Object.keys(rules)
        .sort()
        .map((k) => [k, rules[k]!]),
    ),
  );
}

/** Whether an agent must run on every node for the rewrites even with P2P off (it then only forwards). */
export function hasRewrites(spec: ClusterSpec): boolean {
  return Object.values(spec.registries.hosts).some((h) => h.rewrites.length > 0);
}

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
 * The options of a forward-only agent (P2P off, a rewrite configured): its registry port, metrics and the
 * rewrites; no libp2p, no key, no data port, no peers.
 */
export function forwardOnlyOptions(p2p: ClusterSpec['registries']['p2p'], rewrites: string): Partial<AgentOptions> {
  return { port: p2p.port, metricsPort: p2p.metricsPort, forwardOnly: true, rewrites, hostsDir: NODE_HOSTS_DIR };
}

/**
 * One agent per Kubernetes node, with P2P on, or with P2P off when a rewrite is configured (upstream containerd
 * has none: the agent applies them, forward-only). Peers are the other nodes by container name: kind's nodes
 * sit on the project's user-defined Docker network, where Docker's DNS resolves container names, and the agent
 * shares its node's network namespace (and so its resolver).
 */
export function planP2P(
  spec: ClusterSpec,
  projectDir: string,
  nodes: readonly ClusterNodePlan[],
  registries: readonly RegistryPlan[],
): P2PPlan {
  const p2p = spec.registries.p2p;
  const rewrites = rewritesOption(spec);
  const forwardOnly = !p2p.enabled && rewrites !== '';
  const base: Partial<AgentOptions> = forwardOnly
    ? forwardOnlyOptions(p2p, rewrites)
    : { ...agentBaseOptions(p2p, registries), ...(rewrites ? { rewrites, hostsDir: NODE_HOSTS_DIR } : {}) };
  const agents: AgentPlan[] =
    p2p.enabled || forwardOnly
      ? nodes.map((n) => {
          const options = forwardOnly
            ? base
            : { ...base, peers: nodes.filter((o) => o.name !== n.name).map((o) => `${o.name}:${p2p.routerPort}`) };
          return { node: n.name, containerName: `${n.name}-lo-p2p`, options, command: agentCommand(options) };
        })
      : [];
  return {
    ...p2p,
    forwardOnly,
    keyPath: join(projectDir, 'p2p', 'swarm.key'),
    endpoint: p2pEndpointOf(spec),
    agentKeyPath: AGENT_KEY_PATH,
    agents,
  };
}
