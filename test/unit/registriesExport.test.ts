import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { resolveHosts } from '../../src/plan/containerdHosts.js';
import { K3S_CA_FILE, planContainerdExport, renderDockerExport, renderK3sRegistries } from '../../src/plan/exportRegistries.js';

const paths = { stateDir: '/state', caRoot: '/ca' };
const plan = (extra = '') =>
  planCluster(
    parseSpec(
      `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n  cluster:\n    domain: lok8s.dev\n${extra}`,
      {
        file: 'x.yaml',
        domain: 'lok8s.dev',
      },
    ),
    { paths },
  );
/** K3s's documented registries.yaml fields (test/fixtures/k3s/registries-fields.json names the sources). */
const fields = JSON.parse(readFileSync(new URL('../fixtures/k3s/registries-fields.json', import.meta.url), 'utf8')) as {
  topLevel: string[];
  mirror: Record<string, string>;
  config: { auth: string[]; tls: string[] };
};

/** A rewrite for docker.io (lo mirrors it) and one for a registry lo does not mirror. */
const REWRITES =
  '  registries:\n    hosts:\n      docker.io:\n        rewrite:\n          "^rancher/(.*)": "mirrorproject/rancher-images/$1"\n          "^b/(.*)": "c/${1}"\n' +
  '      harbor.corp.example:\n        rewrite: { "^a/(.*)": "b/$1" }\n';

describe('lo registries export --format k3s', () => {
  it("uses only K3s's documented fields, field by field (rewrite too)", () => {
    const doc = parseYaml(renderK3sRegistries(plan(REWRITES)).yaml) as Record<string, Record<string, Record<string, unknown>>>;
    expect(Object.keys(doc.mirrors!['docker.io']!)).toEqual(['endpoint', 'rewrite']);
    for (const key of Object.keys(doc)) expect(fields.topLevel).toContain(key);
    for (const m of Object.values(doc.mirrors!)) {
      for (const key of Object.keys(m)) expect(Object.keys(fields.mirror)).toContain(key);
      expect(Array.isArray(m.endpoint) && m.endpoint.every((u) => typeof u === 'string' && /^https?:\/\//.test(u))).toBe(true);
    }
    for (const c of Object.values(doc.configs!)) {
      for (const key of Object.keys(c)) expect(['auth', 'tls']).toContain(key);
      for (const key of Object.keys(c.tls as object)) expect(fields.config.tls).toContain(key);
    }
  });

  it("points every mirrored registry at the cache, the shared mirror and its replica, and lo's names at build and cache", () => {
    const { doc } = renderK3sRegistries(plan(), '/etc/lo/ca.pem');
    expect(doc.mirrors['docker.io']!.endpoint).toEqual([
      'https://10.125.125.102/v2/docker.io',
      'https://10.125.200.2',
      'https://10.125.200.2:5443',
    ]);
    expect(doc.mirrors['lok8s.local']!.endpoint).toEqual(['https://10.125.125.101']);
    expect(doc.mirrors['lok8s.cache']!.endpoint).toEqual(['https://10.125.125.102']);
    // every host an endpoint names, and every registry address, verifies with lo's CA
    const hosts = new Set(Object.values(doc.mirrors).flatMap((m) => m.endpoint.map((u) => new URL(u).host)));
    for (const h of hosts) expect(doc.configs![h]).toEqual({ tls: { ca_file: '/etc/lo/ca.pem' } });
    expect(Object.keys(doc.configs!)).toContain('10.125.125.101');
  });

  it('without TLS: http endpoints and no configs; notes say what the nodes need', () => {
    const out = renderK3sRegistries(plan('  registries:\n    tls: false\n'));
    expect(out.doc.mirrors['docker.io']!.endpoint).toEqual([
      'http://10.125.125.102/v2/docker.io',
      'http://10.125.200.2',
      'http://10.125.200.2:5080',
    ]);
    expect(out.doc.configs).toBeUndefined();
    expect(out.notes.join('\n')).toMatch(/--network lok8s/);
    expect(renderK3sRegistries(plan()).notes[0]).toContain(K3S_CA_FILE);
  });
});

describe('lo registries export: rewrites', () => {
  it("k3s: a mirrored registry's rewrite goes out as K3s's rewrite map, in order; one lo has no endpoints for is named", () => {
    const out = renderK3sRegistries(plan(REWRITES));
    const doc = parseYaml(out.yaml) as { mirrors: Record<string, { rewrite?: Record<string, string> }> };
    expect(Object.entries(doc.mirrors['docker.io']!.rewrite!)).toEqual([
      ['^rancher/(.*)', 'mirrorproject/rancher-images/$1'],
      ['^b/(.*)', 'c/${1}'],
    ]);
    expect(doc.mirrors['harbor.corp.example']).toBeUndefined();
    expect(out.notes.join('\n')).toMatch(/the rewrites of "harbor\.corp\.example" are not exported: lo runs no mirror of that registry/);
    expect(doc.mirrors['quay.io']!.rewrite).toBeUndefined();
    expect(renderK3sRegistries(plan()).notes.join('\n')).not.toMatch(/rewrite/);
  });

  it('containerd: the agent is left out and the output says the rewrites are not exported, and why', () => {
    const p = plan(REWRITES + '    p2p: { enabled: false }\n');
    expect(p.p2p.forwardOnly).toBe(true);
    const out = planContainerdExport(p, '/out');
    const docker = out.files.find((f) => f.path === '/out/docker.io/hosts.toml')!;
    expect(docker.content).not.toContain('127.0.0.1:30020');
    expect(out.notes).toEqual([
      'the rewrites of "docker.io", "harbor.corp.example" are not exported: upstream containerd has no rewrite (lo\'s node agent applies them on the kind nodes, and a host containerd has no agent), so the host pulls those images under their own names',
    ]);
  });
});

describe('lo registries export --format containerd', () => {
  it("is the project's certs.d tree for the host: same hosts in order, no P2P agent, lo's CA copied and named by its path", () => {
    const p = plan('  nodes:\n    workers: 1\n');
    const out = planContainerdExport(p, '/out');
    const docker = out.files.find((f) => f.path === '/out/docker.io/hosts.toml')!;
    expect(docker.mode).toBe(0o644);
    const hosts = resolveHosts('docker.io', docker.content!);
    expect(hosts.map((h) => h.origin)).toEqual([
      'https://10.125.125.102',
      'https://10.125.200.2',
      'https://10.125.200.2:5443',
      'https://registry-1.docker.io',
    ]);
    expect(hosts[1]!.ca).toEqual(['/out/_lo/ca.crt']);
    // the node's tree has the agent first
    expect(resolveHosts('docker.io', p.containerd.hosts.find((h) => h.host === 'docker.io')!.content)[0]!.origin).toBe(
      'http://127.0.0.1:30020',
    );
    expect(out.files.filter((f) => f.copyFrom)).toEqual([{ path: '/out/_lo/ca.crt', mode: 0o644, copyFrom: '/ca/rootCA.pem' }]);
    expect(out.files.filter((f) => f.content).map((f) => f.path.replace('/out/', ''))).toEqual(
      p.containerd.hosts.map((h) => `${h.host}/hosts.toml`),
    );
    expect(out.notes).toHaveLength(1);
  });

  it('a hosts.toml with a header is written 0600, and certificates under the tree are copied with their modes', () => {
    const p = plan();
    const withEndpoint = {
      ...p,
      containerd: {
        ...p.containerd,
        hosts: [
          {
            host: 'docker.io',
            path: '/state/projects/lok8s/certs.d/docker.io/hosts.toml',
            mode: 0o600,
            headerEnv: ['ART_AUTH'],
            content:
              'server = "https://registry-1.docker.io"\n[host."https://art.corp.example/v2/docker-remote"]\ncapabilities = ["pull", "resolve"]\noverride_path = true\nca = "/etc/containerd/certs.d/docker.io/art-ca.crt"\nclient = [["/etc/containerd/certs.d/docker.io/client.crt", "/etc/containerd/certs.d/docker.io/client.key"]]\n[host."https://art.corp.example/v2/docker-remote".header]\nAuthorization = ["Basic abc"]\n',
          },
        ],
      },
    };
    const out = planContainerdExport(withEndpoint, '/out');
    expect(out.files.map((f) => [f.path, f.mode.toString(8), f.copyFrom ?? 'text'])).toEqual([
      ['/out/docker.io/hosts.toml', '600', 'text'],
      ['/out/docker.io/art-ca.crt', '644', '/state/projects/lok8s/certs.d/docker.io/art-ca.crt'],
      ['/out/docker.io/client.crt', '644', '/state/projects/lok8s/certs.d/docker.io/client.crt'],
      ['/out/docker.io/client.key', '600', '/state/projects/lok8s/certs.d/docker.io/client.key'],
    ]);
    const [h] = resolveHosts('docker.io', out.files[0]!.content!);
    expect(h).toMatchObject({ path: '/v2/docker-remote', overridePath: true, ca: ['/out/docker.io/art-ca.crt'] });
  });
});

describe('lo registries export --format docker', () => {
  it('puts only the docker.io mirror (and its replica) into registry-mirrors, and lo’s CA under every address', () => {
    const out = renderDockerExport(plan());
    expect(out.daemonJson).toEqual({ 'registry-mirrors': ['https://10.125.200.2', 'https://10.125.200.2:5443'] });
    expect(out.certs.map((c) => c.path)).toContain('/etc/docker/certs.d/10.125.125.101/ca.crt');
    expect(out.certs.map((c) => c.host)).toEqual([
      '10.125.125.101',
      '10.125.125.102',
      '10.125.200.2',
      '10.125.200.2:5443',
      '10.125.200.3',
      '10.125.200.4',
      '10.125.200.5',
    ]);
    expect(out.steps.at(-1)).toMatch(/kill -HUP/);
    expect(out.notes.join(' ')).toMatch(/cannot mirror quay\.io/);
  });

  it("puts each endpoint's TLS files into certs.d/<host:port> as Docker names them (keys 0600), and says what Docker cannot do", () => {
    const p = plan(`  registries:
    hosts:
      docker.io:
        endpoints:
          - url: https://art.corp.example:8443/v2/docker-remote
            tls: { caFile: /pki/corp-ca.pem, certFile: /pki/client.pem, keyFile: /pki/client-key.pem }
            headers: { Authorization: { env: ART_AUTH } }
          - url: https://hub-mirror.corp.example
            tls: { caFile: /pki/corp-ca.pem }
      harbor.corp.example:
        endpoints:
          - url: https://harbor.corp.example
            tls: { caFile: /pki/harbor-ca.pem, certFile: /pki/harbor-client.pem, keyFile: /pki/harbor-client.key }
          - url: https://harbor.corp.example/v2
            tls: { caFile: /pki/other-ca.pem, certFile: /pki/other-client.pem, keyFile: /pki/other-client.key }
          - url: https://harbor-b.corp.example
            tls: { insecureSkipVerify: true }
      "*":
        endpoints: [ { url: "http://mirror.corp.example:5000" } ]
`);
    const out = renderDockerExport(p);
    const endpointFiles = out.certs.filter((c) => c.source !== p.tls.caCertPath).map((c) => [c.path, c.source, c.mode.toString(8)]);
    expect(endpointFiles).toEqual([
      ['/etc/docker/certs.d/art.corp.example:8443/ca.crt', '/pki/corp-ca.pem', '644'],
      ['/etc/docker/certs.d/art.corp.example:8443/client.cert', '/pki/client.pem', '644'],
      ['/etc/docker/certs.d/art.corp.example:8443/client.key', '/pki/client-key.pem', '600'],
      ['/etc/docker/certs.d/hub-mirror.corp.example/ca.crt', '/pki/corp-ca.pem', '644'],
      ['/etc/docker/certs.d/harbor.corp.example/ca.crt', '/pki/harbor-ca.pem', '644'],
      ['/etc/docker/certs.d/harbor.corp.example/client.cert', '/pki/harbor-client.pem', '644'],
      ['/etc/docker/certs.d/harbor.corp.example/client.key', '/pki/harbor-client.key', '600'],
      // Docker reads every *.crt of the directory as a CA and each *.cert with its *.key: a second one is added.
      ['/etc/docker/certs.d/harbor.corp.example/ca-2.crt', '/pki/other-ca.pem', '644'],
      ['/etc/docker/certs.d/harbor.corp.example/client-2.cert', '/pki/other-client.pem', '644'],
      ['/etc/docker/certs.d/harbor.corp.example/client-2.key', '/pki/other-client.key', '600'],
    ]);
    expect(out.steps).toContain('sudo install -D -m 0600 /pki/client-key.pem /etc/docker/certs.d/art.corp.example:8443/client.key');
    // lo's own registries keep lo's CA; the endpoints are not registry-mirrors (Docker Hub only, no path prefix).
    expect(out.certs.find((c) => c.host === '10.125.125.101')?.source).toBe(p.tls.caCertPath);
    expect(out.daemonJson['registry-mirrors']).toEqual(['https://10.125.200.2', 'https://10.125.200.2:5443']);
    const notes = out.notes.join('\n');
    expect(notes).toContain(
      "Docker's registry-mirrors takes no path prefix: https://art.corp.example:8443/v2/docker-remote (endpoint 1 of docker.io) cannot mirror Docker Hub",
    );
    expect(notes).toContain('log in with `docker login art.corp.example:8443` instead');
    expect(notes).toContain('add https://hub-mirror.corp.example to registry-mirrors yourself');
    expect(notes).toContain(
      'Docker cannot send harbor.corp.example pulls to another host (registry-mirrors is for Docker Hub only): pull by harbor-b.corp.example/<repository>',
    );
    expect(notes).toContain('Docker has no skip_verify per endpoint (https://harbor-b.corp.example (endpoint 3 of harbor.corp.example))');
    expect(notes).toContain('Docker has no default for every registry ("*")');
    expect(notes).toContain(
      'http://mirror.corp.example:5000 (endpoint 1 of "*") is plain HTTP: Docker needs mirror.corp.example:5000 in insecure-registries',
    );
    expect(notes).not.toContain('ART_AUTH');
  });

  it('without TLS: insecure-registries instead of certificates; without a docker.io mirror: a note, no registry-mirrors', () => {
    const out = renderDockerExport(
      plan('  registries:\n    tls: false\n    mirrors:\n      - { name: q, url: https://quay.io, registry: quay.io }\n'),
    );
    expect(out.daemonJson).toEqual({ 'insecure-registries': ['10.125.125.101', '10.125.125.102', '10.125.200.2'] });
    expect(out.certs).toEqual([]);
    expect(out.notes[0]).toMatch(/no docker\.io mirror/);
  });
});
