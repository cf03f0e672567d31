import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { renderKindConfig } from '../../src/plan/render/renderKindConfig.js';
import { renderConfigMaps } from '../../src/plan/render/renderConfigMaps.js';
import { renderRegistryConfig } from '../../src/plan/render/renderRegistryConfig.js';
import { LABELS } from '../../src/plan/labels.js';
import { specHash } from '../../src/util/hash.js';

const spec = (body = ''): ReturnType<typeof parseSpec> =>
  parseSpec(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: parts\nspec:\n${body}`, { file: 'parts.yaml' });
const PATHS = { paths: { stateDir: '/s', caRoot: '/c' } };

describe('the plan holds the whole desired state', () => {
  it('kind config: rendered from the plan, at cluster.kindConfigPath, with the kindConfig options', () => {
    const plan = planCluster(spec('  nodes:\n    workers: 1\n'), { ...PATHS, kindConfig: { podSubnet: '10.50.0.0/16' } });
    expect(plan.cluster.kindConfigPath).toBe('/s/projects/parts/kind-config.yaml');
    expect(plan.cluster.kindConfig).toBe(renderKindConfig(plan, { podSubnet: '10.50.0.0/16' }));
    const cfg = parseYaml(plan.cluster.kindConfig) as { networking: { podSubnet: string }; nodes: unknown[] };
    expect([cfg.networking.podSubnet, cfg.nodes.length]).toEqual(['10.50.0.0/16', 2]);
    expect(plan.files.find((f) => f.kind === 'kind-config')?.path).toBe(plan.cluster.kindConfigPath);
  });

  it('ConfigMaps: the two manifests the cluster gets', () => {
    const plan = planCluster(spec(), PATHS);
    expect(plan.configMaps).toEqual(renderConfigMaps(plan));
    expect(plan.configMaps.map((m) => `${m.metadata.namespace}/${m.metadata.name}`)).toEqual([
      'kube-public/local-registry-hosting',
      'kube-system/lo-registries',
    ]);
  });

  it('registry containers: name, address, mounts from the plan; config rendered from configInput without secrets', () => {
    const plan = planCluster(
      spec(
        '  registries:\n    mirrors:\n      - name: corp\n        url: https://registry.corp.test\n        credentials:\n          usernameEnv: CU\n          passwordEnv: CP\n',
      ),
      PATHS,
    );
    for (const r of plan.registries) {
      expect(r.container).toMatchObject({ name: r.containerName, image: r.image, network: r.network, ip: r.ip, restart: 'always' });
      expect(r.container.binds.map((b) => b.source)).toEqual([r.configDir, ...(r.tlsDir ? [r.tlsDir] : [])]);
      expect(r.container.volumes).toEqual([{ name: r.volume, target: '/var/lib/registry' }]);
      expect(r.config).toBe(renderRegistryConfig(r.configInput));
    }
    const corp = plan.registries.find((r) => r.name === 'corp')!;
    expect(corp.configInput.proxy).toEqual({ remoteurl: 'https://registry.corp.test' });
    expect(JSON.stringify(plan)).not.toMatch(/"(username|password)"|username:|password:/);
  });

  it('the registry hash label does not move with the new plan fields (no recreate after an upgrade)', () => {
    const plan = planCluster(spec(), PATHS);
    const build = plan.registries.find((r) => r.role === 'build')!;
    const { labels: _l, configInput: _i, container: _c, ...before } = build;
    // the same fields as before configInput and container existed
    expect(build.labels[LABELS.specHash]).toBe(specHash({ ...before, labels: undefined }));
  });

  it('P2P agents: one per node, peers are the other nodes by name; none when P2P is off', () => {
    const on = planCluster(spec('  nodes:\n    workers: 2\n'), PATHS);
    expect(on.p2p.agents.map((a) => [a.containerName, a.options.peers])).toEqual([
      ['parts-control-plane-lo-p2p', ['parts-worker:30021', 'parts-worker2:30021']],
      ['parts-worker-lo-p2p', ['parts-control-plane:30021', 'parts-worker2:30021']],
      ['parts-worker2-lo-p2p', ['parts-control-plane:30021', 'parts-worker:30021']],
    ]);
    expect(on.p2p.agents[0]!.options.key).toBe(on.p2p.agentKeyPath);
    const off = planCluster(spec('  registries:\n    p2p:\n      enabled: false\n'), PATHS);
    expect(off.p2p.agents).toEqual([]);
  });
});
