import { stringify as stringifyToml } from 'smol-toml';
import { stringify as stringifyYaml } from 'yaml';
import type { Plan } from '../types.js';

/**
 * Pod and service CIDRs of every lo cluster. kind's defaults are 10.244.0.0/16 and 10.96.0.0/16; lo keeps
 * the pod range and moves services to 10.245.0.0/16 so neither overlaps the lok8s registry networks
 * (10.125.0.0/16), the commonly used kubeadm service range (10.96.0.0/12) or Docker's default pools
 * (172.17.0.0/16 and up, 192.168.0.0/16). Pods reach registries through their node, so an overlap with a
 * registry subnet would make those addresses unreachable from pods.
 */
export const DEFAULT_POD_SUBNET = '10.244.0.0/16';
export const DEFAULT_SERVICE_SUBNET = '10.245.0.0/16';

/** The CRI plugin's table in containerd's version 2 config (kind's node images keep config version 2). */
export const CRI_PLUGIN = 'io.containerd.grpc.v1.cri';

export interface KindConfigOptions {
  podSubnet?: string;
  serviceSubnet?: string;
}

export interface KindNode {
  role: 'control-plane' | 'worker';
  image: string;
  extraMounts: Array<{ hostPath: string; containerPath: string; readOnly: boolean }>;
  extraPortMappings?: Array<{ containerPort: number; hostPort: number; listenAddress: string; protocol: string }>;
}

export interface KindConfig {
  kind: 'Cluster';
  apiVersion: 'kind.x-k8s.io/v1alpha4';
  name: string;
  networking: { podSubnet: string; serviceSubnet: string };
  nodes: KindNode[];
  containerdConfigPatches: string[];
}

/**
 * containerd settings every node needs: hosts.toml lookup in the mounted certs.d tree, the download
 * parallelism, and, with the P2P mirror, keeping compressed layers so peers can serve them
 * (https://github.com/containerd/containerd/blob/main/docs/hosts.md, Spegel's install notes).
 */
export function renderContainerdPatch(plan: Plan): string {
  const cri: Record<string, unknown> = {
    max_concurrent_downloads: plan.cluster.maxConcurrentDownloads,
    registry: { config_path: plan.containerd.nodeCertsDir },
  };
  if (plan.p2p.enabled) cri.containerd = { discard_unpacked_layers: false };
  return stringifyToml({ plugins: { [CRI_PLUGIN]: cri } });
}

/** The kind cluster configuration as data (see https://kind.sigs.k8s.io/docs/user/configuration/). */
export function kindConfigFor(plan: Plan, opts: KindConfigOptions = {}): KindConfig {
  const c = plan.cluster;
  const mount = { hostPath: plan.containerd.certsDir, containerPath: plan.containerd.nodeCertsDir, readOnly: true };
  let firstControlPlane = true;
  const nodes = c.nodes.map((n): KindNode => {
    const node: KindNode = { role: n.role, image: c.image, extraMounts: [{ ...mount }] };
    if (n.role === 'control-plane' && firstControlPlane) {
      firstControlPlane = false;
      if (c.hostPorts.length > 0) {
        node.extraPortMappings = c.hostPorts.map((p) => ({
          containerPort: p.containerPort,
          hostPort: p.hostPort,
          listenAddress: p.listenAddress,
          protocol: p.protocol,
        }));
      }
    }
    return node;
  });
  return {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    name: c.name,
    networking: { podSubnet: opts.podSubnet ?? DEFAULT_POD_SUBNET, serviceSubnet: opts.serviceSubnet ?? DEFAULT_SERVICE_SUBNET },
    nodes,
    containerdConfigPatches: [renderContainerdPatch(plan)],
  };
}

/** Renders the kind config YAML for `kind create cluster --config`. Pure. */
export function renderKindConfig(plan: Plan, opts: KindConfigOptions = {}): string {
  return `# Written by lo from ${plan.project.file}; regenerated on every \`lo provision\`.\n${stringifyYaml(kindConfigFor(plan, opts), { lineWidth: 0 })}`;
}
