import { describe, expect, it } from 'vitest';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET, renderKindConfig } from '../../src/plan/render/renderKindConfig.js';
import { inSubnet } from '../../src/util/cidr.js';

const paths = { stateDir: '/state', caRoot: '/ca' };

function planOf(specBody: string, domain = 'kc.example') {
  const text = `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: kc
spec:
  cluster:
    domain: ${domain}
  network:
    name: kc
    cidr: 10.160.9.0/24
${specBody}`;
  return planCluster(parseSpec(text, { file: 'test.yaml', domain }), { paths });
}

type Parsed = {
  kind: string;
  apiVersion: string;
  name: string;
  networking: { podSubnet: string; serviceSubnet: string };
  nodes: Array<{
    role: string;
    image: string;
    extraMounts: Array<{ hostPath: string; containerPath: string; readOnly: boolean }>;
    extraPortMappings?: unknown[];
  }>;
  containerdConfigPatches: string[];
};

describe('renderKindConfig', () => {
  it('renders a kind v1alpha4 Cluster with every node, the certs.d mount and the containerd patch', () => {
    const plan = planOf(`  kubernetes:
    version: v1.33.1
  nodes:
    controlPlane: 3
    workers: 2
    maxConcurrentDownloads: 7
    hostPorts:
      - { containerPort: 80, hostPort: 18080 }
      - { containerPort: 443, hostPort: 18443, listenAddress: 127.0.0.1, protocol: TCP }
`);
    const cfg = parseYaml(renderKindConfig(plan)) as Parsed;
    expect(cfg.kind).toBe('Cluster');
    expect(cfg.apiVersion).toBe('kind.x-k8s.io/v1alpha4');
    expect(cfg.name).toBe('kc');
    expect(cfg.nodes.map((n) => n.role)).toEqual(['control-plane', 'control-plane', 'control-plane', 'worker', 'worker']);
    expect(new Set(cfg.nodes.map((n) => n.image))).toEqual(new Set(['kindest/node:v1.33.1']));
    for (const n of cfg.nodes) {
      expect(n.extraMounts).toEqual([{ hostPath: '/state/projects/kc/certs.d', containerPath: '/etc/containerd/certs.d', readOnly: true }]);
    }
    // host ports only on the first control plane
    expect(cfg.nodes[0]!.extraPortMappings).toEqual([
      { containerPort: 80, hostPort: 18080, listenAddress: expect.any(String), protocol: 'TCP' },
      { containerPort: 443, hostPort: 18443, listenAddress: '127.0.0.1', protocol: 'TCP' },
    ]);
    expect(cfg.nodes.slice(1).every((n) => n.extraPortMappings === undefined)).toBe(true);

    expect(cfg.containerdConfigPatches).toHaveLength(1);
    const patch = parseToml(cfg.containerdConfigPatches[0]!) as { plugins: Record<string, any> };
    const cri = patch.plugins['io.containerd.grpc.v1.cri'];
    expect(cri.registry.config_path).toBe('/etc/containerd/certs.d');
    expect(cri.max_concurrent_downloads).toBe(7);
    // 5 nodes: P2P defaults on, so compressed layers stay in the content store for peers.
    expect(plan.p2p.enabled).toBe(true);
    expect(cri.containerd.discard_unpacked_layers).toBe(false);
  });

  it('leaves discard_unpacked_layers alone without P2P and maps no ports without hostPorts', () => {
    const plan = planOf(`  nodes:
    controlPlane: 1
    workers: 0
`);
    expect(plan.p2p.enabled).toBe(false);
    const cfg = parseYaml(renderKindConfig(plan)) as Parsed;
    expect(cfg.nodes).toHaveLength(1);
    expect(cfg.nodes[0]!.extraPortMappings).toBeUndefined();
    const cri = (parseToml(cfg.containerdConfigPatches[0]!) as { plugins: Record<string, any> }).plugins['io.containerd.grpc.v1.cri'];
    expect(cri.containerd).toBeUndefined();
    expect(cri.max_concurrent_downloads).toBe(plan.cluster.maxConcurrentDownloads);
    expect(cri.registry).toEqual({ config_path: '/etc/containerd/certs.d' });
  });

  it('honours an explicit p2p setting on a single node', () => {
    const plan = planOf(`  registries:
    p2p:
      enabled: true
`);
    const cfg = parseYaml(renderKindConfig(plan)) as Parsed;
    const cri = (parseToml(cfg.containerdConfigPatches[0]!) as { plugins: Record<string, any> }).plugins['io.containerd.grpc.v1.cri'];
    expect(cri.containerd.discard_unpacked_layers).toBe(false);
  });

  it('picks pod and service subnets that overlap no lok8s network, and allows overrides', () => {
    const plan = planCluster(
      parseSpec('apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n  cluster:\n    domain: lok8s.dev\n', {
        file: 'x',
        domain: 'lok8s.dev',
      }),
      { paths },
    );
    const cfg = parseYaml(renderKindConfig(plan)) as Parsed;
    expect(cfg.networking).toEqual({ podSubnet: DEFAULT_POD_SUBNET, serviceSubnet: DEFAULT_SERVICE_SUBNET });
    const addresses = [
      ...plan.registries.map((r) => r.ip),
      ...plan.networks.map((n) => n.gateway),
      '10.96.0.1',
      '10.125.0.1',
      '10.125.255.254',
    ];
    for (const ip of addresses) {
      expect(inSubnet(ip, DEFAULT_POD_SUBNET)).toBe(false);
      expect(inSubnet(ip, DEFAULT_SERVICE_SUBNET)).toBe(false);
    }
    const custom = parseYaml(renderKindConfig(plan, { podSubnet: '10.50.0.0/16', serviceSubnet: '10.51.0.0/16' })) as Parsed;
    expect(custom.networking).toEqual({ podSubnet: '10.50.0.0/16', serviceSubnet: '10.51.0.0/16' });
  });
});
