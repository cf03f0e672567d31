import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { NODE_CA_FILE, planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { renderHostsToml } from '../../src/plan/render/renderHostsToml.js';
import { cacheHostEntry, cacheRepoPrefix } from '../../src/plan/offline.js';
import { manifestUrl, resolveHosts } from '../../src/plan/containerdHosts.js';

const PATHS = { stateDir: '/state/lo', caRoot: '/state/mkcert' };
function plan(body = ''): Plan {
  const s = parseSpec(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n${body}`, { file: 't.yaml' });
  return planCluster(s, { paths: PATHS });
}
function hostsOf(p: Plan, host: string): Record<string, any> {
  const h = p.containerd.hosts.find((x) => x.host === host);
  if (!h) throw new Error(`no hosts.toml for ${host}`);
  expect(h.path).toBe(`${p.containerd.certsDir}/${host}/hosts.toml`);
  return parse(h.content) as Record<string, any>;
}

describe('containerd hosts.toml', () => {
  it('exists for every registry name, hostname and IP, and nothing else', () => {
    const p = plan();
    expect(p.containerd.hosts.map((h) => h.host)).toEqual([
      '10.125.125.101',
      '10.125.125.102',
      '10.125.200.2',
      '10.125.200.3',
      '10.125.200.4',
      '10.125.200.5',
      'docker.io',
      'ghcr.io',
      'lok8s.cache',
      'lok8s.local',
      'quay.io',
      'registry.k8s.io',
    ]);
    expect(p.containerd.certsDir).toBe('/state/lo/projects/lok8s/certs.d');
    expect(p.containerd.nodeCertsDir).toBe('/etc/containerd/certs.d');
  });

  it('mirror with p2p: server is the upstream, hosts are the p2p agent, the cache, the mirror, then its read-only replica', () => {
    const p = plan('  nodes:\n    workers: 1\n');
    expect(p.p2p.enabled).toBe(true);
    const t = hostsOf(p, 'docker.io');
    expect(t.server).toBe('https://registry-1.docker.io');
    expect(Object.keys(t.host)).toEqual([
      'http://127.0.0.1:30020',
      'https://10.125.125.102/v2/docker.io',
      'https://10.125.200.2',
      'https://10.125.200.2:5443',
    ]);
    expect(t.host['http://127.0.0.1:30020']).toEqual({ capabilities: ['pull', 'resolve'], dial_timeout: '200ms' });
    // Pinned images: the cache's API root is /v2/docker.io as written (override_path), pull only, lo's CA.
    expect(t.host['https://10.125.125.102/v2/docker.io']).toEqual({
      capabilities: ['pull', 'resolve'],
      ca: NODE_CA_FILE,
      override_path: true,
    });
    expect(t.host['https://10.125.200.2']).toEqual({ capabilities: ['pull', 'resolve'], ca: NODE_CA_FILE });
    expect(t.host['https://10.125.200.2:5443']).toEqual({ capabilities: ['pull', 'resolve'], ca: NODE_CA_FILE });
    expect(NODE_CA_FILE).toBe('/etc/containerd/certs.d/_lo/ca.crt');
    expect(hostsOf(p, 'registry.k8s.io').server).toBe('https://registry.k8s.io');
    expect(Object.keys(hostsOf(p, 'ghcr.io').host)).toEqual([
      'http://127.0.0.1:30020',
      'https://10.125.125.102/v2/ghcr.io',
      'https://10.125.200.5',
      'https://10.125.200.5:5443',
    ]);
  });

  it('mirror without p2p: the cache, the mirror host, then its replica', () => {
    const p = plan();
    expect(p.p2p.enabled).toBe(false);
    const t = hostsOf(p, 'quay.io');
    expect(t.server).toBe('https://quay.io');
    expect(Object.keys(t.host)).toEqual(['https://10.125.125.102/v2/quay.io', 'https://10.125.200.3', 'https://10.125.200.3:5443']);
  });

  it('a custom p2p port and dial timeout reach hosts.toml', () => {
    const t = hostsOf(
      plan('  nodes:\n    workers: 1\n  registries:\n    p2p:\n      port: 31000\n      routerPort: 31001\n      dialTimeout: 1s\n'),
      'docker.io',
    );
    expect(t.host['http://127.0.0.1:31000']).toEqual({ capabilities: ['pull', 'resolve'], dial_timeout: '1s' });
  });

  it.each(['lok8s.local', '10.125.125.101', 'lok8s.cache', '10.125.125.102'])('build/cache %s: server with push and the CA', (host) => {
    const t = hostsOf(plan(), host);
    const ip = host.endsWith('101') || host === 'lok8s.local' ? '10.125.125.101' : '10.125.125.102';
    expect(t).toEqual({
      server: `https://${ip}`,
      capabilities: ['pull', 'resolve', 'push'],
      ca: NODE_CA_FILE,
      host: { [`https://${ip}`]: { capabilities: ['pull', 'resolve', 'push'], ca: NODE_CA_FILE } },
    });
  });

  it('mirror IP: server is the mirror, pull only', () => {
    expect(hostsOf(plan(), '10.125.200.4')).toEqual({
      server: 'https://10.125.200.4',
      capabilities: ['pull', 'resolve'],
      ca: NODE_CA_FILE,
      host: { 'https://10.125.200.4': { capabilities: ['pull', 'resolve'], ca: NODE_CA_FILE } },
    });
  });

  it('disableDefaultEndpoint drops the upstream: the mirror is the server', () => {
    const p = plan('  nodes:\n    workers: 1\n  registries:\n    disableDefaultEndpoint: true\n');
    const h = p.containerd.hosts.find((x) => x.host === 'docker.io')!;
    expect(h.content).not.toContain('registry-1.docker.io');
    const t = parse(h.content) as Record<string, any>;
    expect(t.server).toBe('https://10.125.200.2');
    expect(t.capabilities).toEqual(['pull', 'resolve']);
    expect(t.ca).toBe(NODE_CA_FILE);
    // The read-only replica is listed too: air-gapped still means "only lo's registries".
    expect(Object.keys(t.host)).toEqual([
      'http://127.0.0.1:30020',
      'https://10.125.125.102/v2/docker.io',
      'https://10.125.200.2',
      'https://10.125.200.2:5443',
    ]);
    for (const m of p.registries.filter((r) => r.role === 'mirror')) {
      expect(p.containerd.hosts.find((x) => x.host === m.registry)!.content).not.toContain(m.upstream!);
    }
  });

  it('without TLS: http endpoints and no ca anywhere', () => {
    const p = plan('  registries:\n    tls: false\n');
    for (const h of p.containerd.hosts) {
      expect(h.content).not.toMatch(/\bca\s*=/);
      expect(h.content).not.toContain('https://10.');
    }
    expect(hostsOf(p, 'lok8s.local')).toEqual({
      server: 'http://10.125.125.101',
      capabilities: ['pull', 'resolve', 'push'],
      host: { 'http://10.125.125.101': { capabilities: ['pull', 'resolve', 'push'] } },
    });
    expect(hostsOf(p, 'docker.io').host).toEqual({
      'http://10.125.125.102/v2/docker.io': { capabilities: ['pull', 'resolve'], override_path: true },
      'http://10.125.200.2': { capabilities: ['pull', 'resolve'] },
      'http://10.125.200.2:5080': { capabilities: ['pull', 'resolve'] },
    });
    expect(p.containerd.caFile).toBeNull();
  });

  it('never skips TLS verification and always parses as TOML', () => {
    for (const p of [
      plan(),
      plan('  nodes:\n    workers: 3\n  registries:\n    disableDefaultEndpoint: true\n'),
      plan('  registries:\n    tls: false\n'),
    ]) {
      for (const h of p.containerd.hosts) {
        expect(h.content).not.toContain('skip_verify');
        expect(() => parse(h.content)).not.toThrow();
      }
    }
  });

  it('containerd reads the cache entry as the API root /v2/<registry>: a pinned tag resolves at <cache>/v2/docker.io/library/nginx', () => {
    const p = plan();
    const hosts = resolveHosts('docker.io', p.containerd.hosts.find((x) => x.host === 'docker.io')!.content);
    expect(hosts.map((h) => [h.origin, h.path, h.overridePath])).toEqual([
      ['https://10.125.125.102', '/v2/docker.io', true],
      ['https://10.125.200.2', '/v2', false],
      ['https://10.125.200.2:5443', '/v2', false],
      ['https://registry-1.docker.io', '/v2', false],
    ]);
    expect(manifestUrl(hosts[0]!, 'docker.io', 'library/nginx', '1.27')).toBe(
      'https://10.125.125.102/v2/docker.io/library/nginx/manifests/1.27?ns=docker.io',
    );
  });

  it('cache repository prefixes are valid distribution path components (a port becomes _port), else no cache entry', () => {
    expect(cacheRepoPrefix('docker.io')).toBe('docker.io');
    expect(cacheRepoPrefix('registry.k8s.io')).toBe('registry.k8s.io');
    expect(cacheRepoPrefix('localhost:5000')).toBe('localhost_5000');
    expect(cacheRepoPrefix('Ghcr.IO')).toBe('ghcr.io');
    expect(cacheRepoPrefix('my_-reg')).toBeNull();
    expect(cacheHostEntry(undefined, 'docker.io', undefined)).toEqual([]);
  });

  it('renderHostsToml keeps host order and omits an absent server', () => {
    const text = renderHostsToml({
      hosts: [
        { url: 'https://b', capabilities: ['pull'] },
        { url: 'https://a', capabilities: ['pull', 'resolve'], ca: '/ca.crt' },
      ],
    });
    const t = parse(text) as Record<string, any>;
    expect(t.server).toBeUndefined();
    expect(Object.keys(t.host)).toEqual(['https://b', 'https://a']);
    expect(t.host['https://a']).toEqual({ capabilities: ['pull', 'resolve'], ca: '/ca.crt' });
  });
});
