import { stringify as stringifyToml } from 'smol-toml';
import { stringify as stringifyYaml } from 'yaml';
import { KIND_POD_SUBNET, KIND_SERVICE_SUBNET } from '../../spec/constants.js';
import { escapeControl } from '../../errors/loError.js';
import type { Plan } from '../types.js';

/** Pod and service CIDRs of every lo cluster (why these: src/spec/constants.ts). */
export const DEFAULT_POD_SUBNET = KIND_POD_SUBNET;
export const DEFAULT_SERVICE_SUBNET = KIND_SERVICE_SUBNET;

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
  // The path is escaped: a file name with a line break must not add YAML to the config.
  return `# Written by lo from ${escapeControl(plan.project.file)}; regenerated on every \`lo provision\`.\n${stringifyYaml(kindConfigFor(plan, opts), { lineWidth: 0 })}`;
}
