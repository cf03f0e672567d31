import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { registryAddress, renderConfigMaps, renderManifestsYaml } from '../../src/plan/render/renderConfigMaps.js';

const paths = { stateDir: '/state', caRoot: '/ca' };
const spec = (extra = '') =>
  parseSpec(
    `apiVersion: cluster.lok8s.dev/v1beta1
kind: Lo
metadata:
  name: lok8s
spec:
  cluster:
    domain: lok8s.dev
${extra}`,
    { file: 'x.yaml', domain: 'lok8s.dev' },
  );

describe('renderConfigMaps', () => {
  it('renders KEP-1755 local-registry-hosting pointing at the build registry', () => {
    const plan = planCluster(spec(), { paths });
    const [hosting] = renderConfigMaps(plan);
    expect(hosting!.metadata.namespace).toBe('kube-public');
    expect(hosting!.metadata.name).toBe('local-registry-hosting');
    expect(Object.keys(hosting!.data)).toEqual(['localRegistryHosting.v1']);
    const v1 = parseYaml(hosting!.data['localRegistryHosting.v1']!) as Record<string, string>;
    expect(v1).toEqual({
      host: '10.125.125.101',
      hostFromContainerRuntime: 'lok8s.local',
      hostFromClusterNetwork: '10.125.125.101',
      help: expect.stringMatching(/^https:\/\//),
    });
  });

  it('lists every registry with its real address, port, role and whether it is shared', () => {
    const plan = planCluster(spec(), { paths });
    const lo = renderConfigMaps(plan)[1]!;
    expect(lo.metadata).toMatchObject({ namespace: 'kube-system', name: 'lo-registries' });
    const listing = parseYaml(lo.data['registries.yaml']!) as { project: string; tls: boolean; registries: any[] };
    expect(listing.project).toBe('lok8s');
    expect(listing.tls).toBe(true);
    expect(listing.registries.map((r) => [r.name, r.role, r.address, r.port, r.shared])).toEqual([
      ['build', 'build', '10.125.125.101', 443, false],
      ['cache', 'cache', '10.125.125.102', 443, false],
      ['io-docker', 'mirror', '10.125.200.2', 443, true],
      ['io-quay', 'mirror', '10.125.200.3', 443, true],
      ['io-k8s', 'mirror', '10.125.200.4', 443, true],
      ['io-ghcr', 'mirror', '10.125.200.5', 443, true],
    ]);
    expect(listing.registries.find((r) => r.name === 'io-quay')).toMatchObject({
      registry: 'quay.io',
      upstream: 'https://quay.io',
      scheme: 'https',
      push: false,
    });
    expect(listing.registries.find((r) => r.name === 'build')).toMatchObject({ hostnames: ['lok8s.local'], push: true, network: 'lok8s' });
  });

  it('follows the plan without TLS and without shared mirrors', () => {
    const plan = planCluster(
      spec(`  registries:
    tls: false
    shared:
      enabled: false
    mirrors:
      - name: corp
        url: http://registry.corp.example:5000
`),
      { paths },
    );
    const [hosting, lo] = renderConfigMaps(plan);
    expect((parseYaml(hosting!.data['localRegistryHosting.v1']!) as Record<string, string>).host).toBe('10.125.125.101');
    const regs = (parseYaml(lo!.data['registries.yaml']!) as { registries: any[] }).registries;
    expect(regs.map((r) => [r.name, r.address, r.port, r.scheme, r.shared])).toEqual([
      ['build', '10.125.125.101', 80, 'http', false],
      ['cache', '10.125.125.102', 80, 'http', false],
      ['corp', '10.125.125.103', 80, 'http', false],
    ]);
  });

  it('writes the port into the address only when the scheme does not imply it', () => {
    expect(registryAddress({ ip: '10.0.0.1', port: 443, scheme: 'https' })).toBe('10.0.0.1');
    expect(registryAddress({ ip: '10.0.0.1', port: 80, scheme: 'http' })).toBe('10.0.0.1');
    expect(registryAddress({ ip: '10.0.0.1', port: 5000, scheme: 'http' })).toBe('10.0.0.1:5000');
  });

  it('serialises both ConfigMaps as one multi-document stream for kubectl apply', () => {
    const plan = planCluster(spec(), { paths });
    const docs = parseAllDocuments(renderManifestsYaml(renderConfigMaps(plan))).map((d) => d.toJS());
    expect(docs.map((d) => `${d.kind} ${d.metadata.namespace}/${d.metadata.name}`)).toEqual([
      'ConfigMap kube-public/local-registry-hosting',
      'ConfigMap kube-system/lo-registries',
    ]);
    expect(docs).toEqual(renderConfigMaps(plan));
  });
});
