import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import {
  endpointListing,
  LO_REGISTRIES_API_VERSION,
  registryAddress,
  renderConfigMaps,
  renderManifestsYaml,
} from '../../src/plan/render/renderConfigMaps.js';
import { renderHostsToml } from '../../src/plan/render/renderHostsToml.js';

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

  it('lo-registries is a versioned document: what each registry serves, the replica, P2P and the fallback setting', () => {
    const plan = planCluster(spec('  nodes:\n    workers: 1\n'), { paths });
    const listing = parseYaml(renderConfigMaps(plan)[1]!.data['registries.yaml']!) as Record<string, any>;
    expect(listing.apiVersion).toBe(LO_REGISTRIES_API_VERSION);
    expect(listing.disableDefaultEndpoint).toBe(false);
    expect(listing.p2p).toEqual({ endpoint: 'http://127.0.0.1:30020' });
    const by = (n: string) => listing.registries.find((r: any) => r.name === n);
    expect(by('build').serves).toEqual(['lok8s.local', '10.125.125.101']);
    // the cache serves its own names and the images pinned for every mirrored registry
    expect(by('cache').serves).toEqual(['lok8s.cache', '10.125.125.102', 'docker.io', 'quay.io', 'registry.k8s.io', 'ghcr.io']);
    expect(by('io-docker')).toMatchObject({ serves: ['docker.io'], replica: 'https://10.125.200.2:5443' });
    expect(listing.endpoints).toBeUndefined();
  });

  it('says when the default endpoint is disabled, and has no p2p key without P2P', () => {
    const plan = planCluster(spec('  registries:\n    disableDefaultEndpoint: true\n'), { paths });
    const listing = parseYaml(renderConfigMaps(plan)[1]!.data['registries.yaml']!) as Record<string, any>;
    expect(listing.disableDefaultEndpoint).toBe(true);
    expect(listing).not.toHaveProperty('p2p');
  });

  it('lists the endpoints of the certs.d tree that lo does not run, in containerd order, without header values', () => {
    const plan = planCluster(spec(), { paths });
    const docker = plan.containerd.hosts.find((h) => h.host === 'docker.io')!;
    // The tree as a spec with endpoints renders it: lo's hosts first, then the endpoints, then the upstream.
    const withEndpoints = {
      ...plan,
      containerd: {
        ...plan.containerd,
        hosts: [
          ...plan.containerd.hosts.filter((h) => h !== docker),
          {
            ...docker,
            content: renderHostsToml({
              server: 'https://registry-1.docker.io',
              hosts: [
                { url: 'https://10.125.200.2', capabilities: ['pull', 'resolve'] },
                { url: 'https://artifactory.corp.example/v2/docker-remote', capabilities: ['pull', 'resolve'], overridePath: true },
                { url: 'https://mirror.corp.example', capabilities: ['pull'] },
              ],
            }),
          },
          {
            host: '_default',
            path: '/x/_default/hosts.toml',
            mode: 0o644,
            content: renderHostsToml({ hosts: [{ url: 'https://any.corp.example', capabilities: ['pull', 'resolve'] }] }),
          },
        ],
      },
    };
    expect(endpointListing(withEndpoints)).toEqual([
      {
        registry: 'docker.io',
        url: 'https://artifactory.corp.example/v2/docker-remote',
        capabilities: ['pull', 'resolve'],
        overridePath: true,
      },
      { registry: 'docker.io', url: 'https://mirror.corp.example', capabilities: ['pull'], overridePath: false },
      { registry: '*', url: 'https://any.corp.example', capabilities: ['pull', 'resolve'], overridePath: false },
    ]);
    const listing = parseYaml(renderConfigMaps(withEndpoints)[1]!.data['registries.yaml']!) as Record<string, any>;
    expect(listing.endpoints).toHaveLength(3);
  });

  it('lists the endpoints of spec.registries.hosts, "*" included, and never a header value', () => {
    const plan = planCluster(
      spec(`  registries:
    hosts:
      docker.io:
        endpoints:
          - url: https://artifactory.corp.example/v2/docker-remote
            headers: { Authorization: { env: ART_AUTH } }
      "*":
        endpoints: [{ url: https://mirror.corp.example }]
`),
      { paths },
    );
    const text = renderConfigMaps(plan)[1]!.data['registries.yaml']!;
    expect((parseYaml(text) as { endpoints: unknown[] }).endpoints).toEqual([
      { registry: '*', url: 'https://mirror.corp.example', capabilities: ['pull', 'resolve'], overridePath: false },
      {
        registry: 'docker.io',
        url: 'https://artifactory.corp.example/v2/docker-remote',
        capabilities: ['pull', 'resolve'],
        overridePath: true,
      },
    ]);
    expect(text).not.toMatch(/ART_AUTH|Authorization/);
  });
});
