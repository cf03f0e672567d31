import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'smol-toml';
import { checkContainerdConfig, criImageConfig, parseContainerdVersion, pullMode } from '../../src/plan/containerdChecks.js';
import { defaultServer, hostDirCandidates, manifestUrl, resolveHosts } from '../../src/plan/containerdHosts.js';
import { parseImageRef } from '../../src/plan/imageRef.js';
import { renderHostsToml } from '../../src/plan/render/renderHostsToml.js';

describe('image references, normalised as containerd does', () => {
  it.each([
    ['nginx', 'docker.io', 'library/nginx', 'latest', 'docker.io/library/nginx:latest'],
    ['nginx:1.27', 'docker.io', 'library/nginx', '1.27', 'docker.io/library/nginx:1.27'],
    ['bitnami/redis:7', 'docker.io', 'bitnami/redis', '7', 'docker.io/bitnami/redis:7'],
    ['quay.io/prometheus/node-exporter:v1.8.0', 'quay.io', 'prometheus/node-exporter', 'v1.8.0', 'quay.io/prometheus/node-exporter:v1.8.0'],
    ['localhost:5000/app', 'localhost:5000', 'app', 'latest', 'localhost:5000/app:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io', 'library/busybox', '1', 'docker.io/library/busybox:1'],
    ['lok8s.local/myapp:dev', 'lok8s.local', 'myapp', 'dev', 'lok8s.local/myapp:dev'],
  ])('%s', (input, registry, repository, tag, normalized) => {
    const r = parseImageRef(input);
    expect(r).toMatchObject({ registry, repository, tag, reference: tag, normalized });
  });

  it('a digest wins over the tag for resolving', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    const r = parseImageRef(`registry.k8s.io/pause:3.10@${d}`);
    expect(r).toMatchObject({ registry: 'registry.k8s.io', repository: 'pause', tag: '3.10', digest: d, reference: d });
  });

  it.each(['', 'UPPER/case', 'nginx@sha256:short', 'a//b', 'nginx:bad tag'])('rejects %j', (input) => {
    expect(() => parseImageRef(input)).toThrow();
  });
});

describe('certs.d lookup and host order, as containerd reads hosts.toml', () => {
  it('mangles the port, then the plain name, then _default', () => {
    expect(hostDirCandidates('localhost:5000')).toEqual(['localhost_5000_', 'localhost:5000', '_default']);
    expect(hostDirCandidates('docker.io')).toEqual(['docker.io', '_default']);
  });

  it('lists [host] tables in file order, then the server; override_path keeps the path as written', () => {
    const text = [
      'server = "https://registry-1.docker.io"',
      '[host."http://127.0.0.1:30020"]',
      '  capabilities = ["pull", "resolve"]',
      '  dial_timeout = "200ms"',
      '[host."https://10.125.125.102/v2/docker.io"]',
      '  capabilities = ["pull", "resolve"]',
      '  override_path = true',
      '  ca = "/etc/containerd/certs.d/_lo/ca.crt"',
      '[host."https://10.125.200.2"]',
      '  capabilities = ["pull", "resolve"]',
      '  ca = "/etc/containerd/certs.d/_lo/ca.crt"',
    ].join('\n');
    const hosts = resolveHosts('docker.io', text);
    expect(hosts.map((h) => [h.origin, h.path, h.source])).toEqual([
      ['http://127.0.0.1:30020', '/v2', 'host'],
      ['https://10.125.125.102', '/v2/docker.io', 'host'],
      ['https://10.125.200.2', '/v2', 'host'],
      ['https://registry-1.docker.io', '/v2', 'server'],
    ]);
    expect(hosts[0]!.dialTimeout).toBe('200ms');
    expect(hosts[2]!.ca).toEqual(['/etc/containerd/certs.d/_lo/ca.crt']);
    // A mirror gets ?ns=, the registry's own endpoint does not.
    expect(manifestUrl(hosts[2]!, 'docker.io', 'library/nginx', '1.27')).toBe(
      'https://10.125.200.2/v2/library/nginx/manifests/1.27?ns=docker.io',
    );
    expect(manifestUrl(hosts[1]!, 'docker.io', 'library/nginx', '1.27')).toBe(
      'https://10.125.125.102/v2/docker.io/library/nginx/manifests/1.27?ns=docker.io',
    );
    expect(manifestUrl(hosts[3]!, 'docker.io', 'library/nginx', '1.27')).toBe(
      'https://registry-1.docker.io/v2/library/nginx/manifests/1.27',
    );
  });

  it('without server, containerd still appends the default endpoint; without hosts.toml only that', () => {
    const hosts = resolveHosts('quay.io', '[host."https://10.125.200.3"]\n  capabilities = ["pull", "resolve"]\n');
    expect(hosts.map((h) => `${h.source} ${h.origin}`)).toEqual(['host https://10.125.200.3', 'default https://quay.io']);
    expect(resolveHosts('docker.io', null).map((h) => h.origin)).toEqual(['https://registry-1.docker.io']);
    expect(defaultServer('localhost:5000')).toBe('http://localhost:5000');
  });

  it("reads lo's own rendered hosts.toml in the order lo wrote it", () => {
    const text = renderHostsToml({
      server: 'https://10.125.200.2',
      serverCa: '/etc/containerd/certs.d/_lo/ca.crt',
      serverCapabilities: ['pull', 'resolve'],
      hosts: [
        { url: 'http://127.0.0.1:30020', capabilities: ['pull', 'resolve'], dialTimeout: '200ms' },
        { url: 'https://10.125.200.2', capabilities: ['pull', 'resolve'], ca: '/etc/containerd/certs.d/_lo/ca.crt' },
      ],
    });
    expect(resolveHosts('docker.io', text).map((h) => h.origin)).toEqual([
      'http://127.0.0.1:30020',
      'https://10.125.200.2',
      'https://10.125.200.2',
    ]);
  });
});

/** A `containerd config dump` of a kind v0.30 node (containerd 2.1, config v3) with lo's patch merged. */
function dumpV3(images: Record<string, unknown>): Record<string, unknown> {
  return parse(
    stringify({
      version: 3,
      plugins: {
        'io.containerd.cri.v1.images': {
          snapshotter: 'overlayfs',
          disable_snapshot_annotations: true,
          discard_unpacked_layers: false,
          max_concurrent_downloads: 3,
          registry: { config_path: '/etc/containerd/certs.d' },
          ...images,
        },
      },
    }),
  ) as Record<string, unknown>;
}

const V21 = parseContainerdVersion('containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7')!;
const V17 = parseContainerdVersion('containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6')!;
const V16 = parseContainerdVersion('containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1')!;

describe('containerd pull mode and silent bypasses', () => {
  it('parses the versions Debian and kind ship', () => {
    expect([V21.text, V17.text, V16.text]).toEqual(['v2.1.4', '1.7.24~ds1', '1.6.20~ds1']);
    expect([V21.minor, V17.minor, V16.minor]).toEqual([1, 7, 6]);
  });

  it("2.1 with lo's settings uses the transfer service; each unsupported setting falls back to local pull", () => {
    expect(pullMode(V21, criImageConfig(dumpV3({}))).mode).toBe('transfer');
    for (const [patch, why] of [
      [{ discard_unpacked_layers: true }, 'discard_unpacked_layers = true'],
      [{ max_concurrent_downloads: 5 }, 'max_concurrent_downloads = 5'],
      [{ disable_snapshot_annotations: false }, 'disable_snapshot_annotations = false'],
      [{ image_pull_with_sync_fs: true }, 'image_pull_with_sync_fs'],
      [{ registry: { config_path: '/etc/containerd/certs.d', mirrors: { 'docker.io': { endpoint: ['https://x'] } } } }, 'registry.mirrors'],
    ] as const) {
      const m = pullMode(V21, criImageConfig(dumpV3(patch as Record<string, unknown>)));
      expect(m.mode, why).toBe('local');
      expect(m.because).toContain(why);
    }
    expect(pullMode(V21, criImageConfig(dumpV3({ use_local_image_pull: true }))).because).toBe('use_local_image_pull = true');
    expect(pullMode(V17, criImageConfig(dumpV3({}))).mode).toBe('local');
  });

  it('reads the 1.x (v2) layout too', () => {
    const dump = parse(
      stringify({
        version: 2,
        plugins: {
          'io.containerd.grpc.v1.cri': {
            max_concurrent_downloads: 3,
            containerd: { discard_unpacked_layers: true, snapshotter: 'overlayfs' },
            registry: { config_path: '/etc/containerd/certs.d' },
          },
        },
      }),
    ) as Record<string, unknown>;
    expect(criImageConfig(dump)).toMatchObject({
      configPath: '/etc/containerd/certs.d',
      discardUnpackedLayers: true,
      maxConcurrentDownloads: 3,
    });
  });

  const base = { nodeCertsDir: '/etc/containerd/certs.d', p2pEnabled: true, hostsFiles: {} };
  const codes = (r: { findings: Array<{ code: string }> }): string[] => r.findings.map((f) => f.code);

  it("lo's own configuration has no finding on 2.1", () => {
    const hosts = renderHostsToml({
      server: 'https://registry-1.docker.io',
      hosts: [
        { url: 'https://10.125.200.2', capabilities: ['pull', 'resolve'], ca: '/etc/containerd/certs.d/_lo/ca.crt', dialTimeout: '200ms' },
      ],
    });
    expect(checkContainerdConfig({ ...base, version: V21, dump: dumpV3({}), hostsFiles: { 'docker.io': hosts } }).findings).toEqual([]);
  });

  it('the transfer service with a colon list in config_path reads no hosts.toml', () => {
    const r = checkContainerdConfig({
      ...base,
      version: V21,
      dump: dumpV3({ registry: { config_path: '/etc/containerd/certs.d:/etc/docker/certs.d' } }),
    });
    expect(codes(r)).toEqual(['config-path-list']);
    // The same list under local pull is split and works.
    const local = checkContainerdConfig({
      ...base,
      version: V21,
      dump: dumpV3({ use_local_image_pull: true, registry: { config_path: '/etc/containerd/certs.d:/etc/docker/certs.d' } }),
    });
    expect(codes(local)).toEqual([]);
  });

  it("config_path without lo's directory, discard_unpacked_layers with P2P, a mode-changing max_concurrent_downloads", () => {
    expect(codes(checkContainerdConfig({ ...base, version: V21, dump: dumpV3({ registry: { config_path: '' } }) }))).toEqual([
      'config-path',
    ]);
    expect(codes(checkContainerdConfig({ ...base, version: V21, dump: dumpV3({ discard_unpacked_layers: true }) }))).toEqual([
      'discard-unpacked-layers',
    ]);
    expect(
      codes(checkContainerdConfig({ ...base, p2pEnabled: false, version: V21, dump: dumpV3({ discard_unpacked_layers: true }) })),
    ).toEqual([]);
    expect(codes(checkContainerdConfig({ ...base, version: V21, dump: dumpV3({ max_concurrent_downloads: 6 }) }))).toEqual([
      'max-concurrent-downloads-mode',
    ]);
  });

  it('dial_timeout on a containerd that ignores it, and a CA in the table that does not apply to the hosts', () => {
    const withDial = '[host."https://10.125.200.2"]\n  capabilities = ["pull"]\n  ca = "/x/ca.crt"\n  dial_timeout = "200ms"\n';
    expect(codes(checkContainerdConfig({ ...base, version: V17, dump: dumpV3({}), hostsFiles: { 'docker.io': withDial } }))).toEqual([
      'dial-timeout-ignored',
    ]);
    expect(codes(checkContainerdConfig({ ...base, version: V21, dump: dumpV3({}), hostsFiles: { 'docker.io': withDial } }))).toEqual([]);
    const topCa = 'server = "https://registry-1.docker.io"\nca = "/x/ca.crt"\n[host."https://10.125.200.2"]\n  capabilities = ["pull"]\n';
    expect(codes(checkContainerdConfig({ ...base, version: V21, dump: dumpV3({}), hostsFiles: { 'docker.io': topCa } }))).toEqual([
      'ca-wrong-table',
    ]);
    // containerd 1.6 rejects a hosts.toml without [host] tables.
    expect(
      codes(checkContainerdConfig({ ...base, version: V16, dump: dumpV3({}), hostsFiles: { 'docker.io': 'server = "https://x"\n' } })),
    ).toEqual(['hosts-toml-no-host']);
  });
});

describe('lo doctor: one containerd check per node', () => {
  it('the worst finding decides; info only adds to the detail', async () => {
    const { containerdChecks } = await import('../../src/usecases/doctor.js');
    const fail = { code: 'config-path', severity: 'fail' as const, message: 'config_path is ""', fix: 'recreate' };
    const warn = { code: 'legacy-registry', severity: 'warn' as const, message: 'deprecated entries' };
    const info = { code: 'max-concurrent-downloads-mode', severity: 'info' as const, message: 'local pull path' };
    const checks = containerdChecks([
      { node: 'a', version: V21, mode: 'transfer', because: '', findings: [] },
      { node: 'b', version: V21, mode: 'local', because: '', findings: [info] },
      { node: 'c', version: V17, mode: 'local', because: '', findings: [warn, fail] },
    ]);
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ['containerd a', 'ok'],
      ['containerd b', 'ok'],
      ['containerd c', 'fail'],
    ]);
    expect(checks[0]!.detail).toBe('containerd v2.1.4, CRI pull via the transfer service');
    expect(checks[1]!.detail).toContain('local pull path');
    expect(checks[2]).toMatchObject({ fix: 'recreate' });
    expect(checks[2]!.detail).toContain('+1 more: `lo why IMAGE --node c`');
  });
});
