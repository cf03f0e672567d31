import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import type { ClusterSpec } from '../../src/spec/types.js';
import { ConfigError, PlanConflictError } from '../../src/errors/loError.js';
import { LABELS } from '../../src/plan/labels.js';
import { planCluster, sharedBridgeName } from '../../src/plan/planCluster.js';
import type { ObservedShared, Plan, RegistryPlan } from '../../src/plan/types.js';

const PATHS = { stateDir: '/state/lo', caRoot: '/state/mkcert' };

function spec(name: string, body = '', domain?: string): ClusterSpec {
  const cluster = domain ? `  cluster:\n    domain: ${domain}\n` : '';
  return parseSpec(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: ${name}\nspec:\n${cluster}${body}`, {
    file: `/specs/${name}.yaml`,
  });
}
const plan = (s: ClusterSpec, observed?: ObservedShared): Plan => planCluster(s, { paths: PATHS, ...(observed ? { observed } : {}) });
const byName = (p: Plan, name: string): RegistryPlan => {
  const r = p.registries.find((x) => x.name === name);
  if (!r) throw new Error(`no registry ${name}`);
  return r;
};
const mirrorIps = (p: Plan): Record<string, string> =>
  Object.fromEntries(p.registries.filter((r) => r.role === 'mirror').map((r) => [r.name, r.ip]));
const mirrorList = (names: string[]): string =>
  `  registries:\n    mirrors:\n${names.map((n) => `      - name: ${n}\n        url: https://${n}.example.test\n`).join('')}`;

describe('addresses', () => {
  it('lok8s.dev: build .101, cache .102 on 10.125.125.0/24, default mirrors .2-.5 on the shared network', () => {
    const p = plan(spec('lok8s'));
    const build = byName(p, 'build');
    const cache = byName(p, 'cache');
    expect([build.ip, build.hostnames, build.network, build.push]).toEqual(['10.125.125.101', ['lok8s.local'], 'lok8s', true]);
    expect([cache.ip, cache.hostnames, cache.network, cache.push]).toEqual(['10.125.125.102', ['lok8s.cache'], 'lok8s', true]);
    const mirrors = p.registries.filter((r) => r.role === 'mirror');
    expect(mirrors.map((m) => [m.registry, m.ip, m.network, m.scope, m.push])).toEqual([
      ['docker.io', '10.125.200.2', 'lok8s-registries', 'shared', false],
      ['quay.io', '10.125.200.3', 'lok8s-registries', 'shared', false],
      ['registry.k8s.io', '10.125.200.4', 'lok8s-registries', 'shared', false],
      ['ghcr.io', '10.125.200.5', 'lok8s-registries', 'shared', false],
    ]);
    expect(mirrors.map((m) => m.upstream)).toEqual([
      'https://registry-1.docker.io',
      'https://quay.io',
      'https://registry.k8s.io',
      'https://ghcr.io',
    ]);
  });

  it('N.lok8s.dev puts build and cache on 10.125.N.0/24', () => {
    const p = plan(spec('p50', '', '50.lok8s.dev'));
    expect(byName(p, 'build').ip).toBe('10.125.50.101');
    expect(byName(p, 'cache').ip).toBe('10.125.50.102');
    expect(p.networks.find((n) => n.role === 'project')).toMatchObject({ name: 'p50', subnet: '10.125.50.0/24', gateway: '10.125.50.1' });
    // Shared mirrors do not move with the project.
    expect(byName(p, 'io-docker').ip).toBe('10.125.200.2');
  });

  it('a custom domain uses spec.network for the project subnet and names', () => {
    const p = plan(spec('ex', '  network:\n    name: ex-net\n    cidr: 10.126.9.0/24\n', 'dev.example.test'));
    expect(byName(p, 'build')).toMatchObject({ ip: '10.126.9.101', network: 'ex-net', containerName: 'ex-net-registry-build' });
    expect(byName(p, 'cache')).toMatchObject({ ip: '10.126.9.102', network: 'ex-net', containerName: 'ex-net-registry-cache' });
    expect(p.project.slot).toBeNull();
  });

  it('with shared.enabled false mirrors sit on the project subnet from .103 and there is no shared network', () => {
    const p = plan(spec('solo', '  registries:\n    shared:\n      enabled: false\n', '60.lok8s.dev'));
    expect(mirrorIps(p)).toEqual({
      'io-docker': '10.125.60.103',
      'io-quay': '10.125.60.104',
      'io-k8s': '10.125.60.105',
      'io-ghcr': '10.125.60.106',
    });
    for (const m of p.registries.filter((r) => r.role === 'mirror')) {
      expect(m).toMatchObject({
        network: 'solo',
        scope: 'project',
        containerName: `solo-mirror-${m.name}`,
        volume: `solo-mirror-${m.name}-data`,
      });
    }
    expect(p.networks.map((n) => n.role)).toEqual(['project']);
  });

  it('project mirrors take .103.. in the same order whatever the list order', () => {
    const body = (names: string[]): string => `${mirrorList(names)}    shared:\n      enabled: false\n`;
    const a = plan(spec('solo', body(['zeta', 'alpha', 'io-quay'])));
    const b = plan(spec('solo', body(['alpha', 'io-quay', 'zeta'])));
    expect(mirrorIps(a)).toEqual(mirrorIps(b));
    expect(mirrorIps(a)).toEqual({ 'io-quay': '10.125.125.103', alpha: '10.125.125.104', zeta: '10.125.125.105' });
  });

  it('a custom shared network gives mirrors .2.. of its subnet', () => {
    const p = plan(spec('lok8s', '  registries:\n    shared:\n      network:\n        name: hb2-shared\n        cidr: 10.126.250.0/24\n'));
    expect(Object.values(mirrorIps(p))).toEqual(['10.126.250.2', '10.126.250.3', '10.126.250.4', '10.126.250.5']);
    expect(byName(p, 'io-quay').network).toBe('hb2-shared');
    expect(p.networks.find((n) => n.role === 'shared')).toMatchObject({
      name: 'hb2-shared',
      subnet: '10.126.250.0/24',
      bridgeName: 'hb2-shared',
    });
  });

  it.each([
    [true, 443, 'https'],
    [false, 80, 'http'],
  ] as const)('tls %s: every registry listens on %i with %s', (tls, port, scheme) => {
    const p = plan(spec('lok8s', `  registries:\n    tls: ${tls}\n`));
    expect(p.registries).toHaveLength(6);
    for (const r of p.registries) {
      expect([r.port, r.scheme, r.endpoint]).toEqual([port, scheme, `${scheme}://${r.ip}`]);
      const config = parseYaml(r.config);
      expect(config.http.addr).toBe(`:${port}`);
      expect(Boolean(config.http.tls)).toBe(tls);
      expect(r.tlsDir === null).toBe(!tls);
      expect(r.labels[LABELS.scheme]).toBe(scheme);
    }
    expect(p.tls.enabled).toBe(tls);
  });

  it('registry:2 configs: mirrors proxy their upstream, build and cache accept pushes (no proxy)', () => {
    const p = plan(spec('lok8s'));
    for (const r of p.registries) {
      const config = parseYaml(r.config);
      if (r.role === 'mirror') expect(config.proxy).toEqual({ remoteurl: r.upstream });
      else expect(config.proxy).toBeUndefined();
      expect(config.http.tls).toEqual({
        certificate: expect.stringMatching(/^\/etc\/lo\/tls\//),
        key: expect.stringMatching(/^\/etc\/lo\/tls\//),
      });
      expect(r.config).not.toMatch(/password|username/);
    }
  });
});

describe('shared-address stability', () => {
  const observedOf = (p: Plan, project: string): ObservedShared => ({
    mirrors: p.registries
      .filter((r) => r.role === 'mirror')
      .map((r) => ({ name: r.name, ip: r.ip, url: r.upstream!, registry: r.registry!, project, scheme: r.scheme })),
    usedAddresses: [],
  });

  it('running mirrors keep their addresses; new ones get the lowest free address from .2', () => {
    const observed: ObservedShared = {
      mirrors: [
        { name: 'io-quay', ip: '10.125.200.9', url: 'https://quay.io', registry: 'quay.io', project: 'other', scheme: 'https' },
        {
          name: 'foreign',
          ip: '10.125.200.2',
          url: 'https://f.example.test',
          registry: 'f.example.test',
          project: 'other',
          scheme: 'https',
        },
      ],
    };
    expect(mirrorIps(plan(spec('lok8s'), observed))).toEqual({
      'io-docker': '10.125.200.3',
      'io-quay': '10.125.200.9',
      'io-k8s': '10.125.200.4',
      'io-ghcr': '10.125.200.5',
    });
  });

  it('addresses used by anything else on the shared network are skipped; others are ignored', () => {
    const observed: ObservedShared = { mirrors: [], usedAddresses: ['10.125.200.3', '10.125.200.5', '10.125.125.2', '10.125.200.200'] };
    expect(Object.values(mirrorIps(plan(spec('lok8s'), observed)))).toEqual([
      '10.125.200.2',
      '10.125.200.4',
      '10.125.200.6',
      '10.125.200.7',
    ]);
  });

  it('two projects listing the same mirrors in different orders get identical addresses', () => {
    const names = ['io-ghcr', 'corp-b', 'io-docker', 'corp-a'];
    const a = plan(spec('pa', mirrorList(names), '20.lok8s.dev'));
    const b = plan(spec('pb', mirrorList([...names].reverse()), '21.lok8s.dev'));
    expect(mirrorIps(a)).toEqual(mirrorIps(b));
    // and the same again when the second project plans while the first one's mirrors run
    expect(mirrorIps(plan(spec('pb', mirrorList([...names].reverse()), '21.lok8s.dev'), observedOf(a, 'pa')))).toEqual(mirrorIps(a));
  });

  it('a second project adding a mirror keeps the running ones and takes the next free address', () => {
    const a = plan(spec('pa', mirrorList(['corp-b', 'corp-c']), '20.lok8s.dev'));
    expect(mirrorIps(a)).toEqual({ 'corp-b': '10.125.200.2', 'corp-c': '10.125.200.3' });
    // 'corp-a' sorts first, but the running mirrors keep .2 and .3.
    const b = plan(spec('pb', mirrorList(['corp-c', 'corp-a', 'corp-b']), '21.lok8s.dev'), observedOf(a, 'pa'));
    expect(mirrorIps(b)).toEqual({ 'corp-a': '10.125.200.4', 'corp-b': '10.125.200.2', 'corp-c': '10.125.200.3' });
  });

  it('same mirror name with another URL is an error naming the project and both URLs', () => {
    const a = plan(spec('pa', mirrorList(['corp-a']), '20.lok8s.dev'));
    const other = spec(
      'pb',
      '  registries:\n    mirrors:\n      - name: corp-a\n        url: https://elsewhere.example.test\n',
      '21.lok8s.dev',
    );
    const err = (() => {
      try {
        plan(other, observedOf(a, 'pa'));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(PlanConflictError);
    const e = err as PlanConflictError;
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('project pa');
    expect(e.message).toContain('https://corp-a.example.test');
    expect(e.message).toContain('https://elsewhere.example.test');
    expect(e.message).toContain('/specs/pb.yaml: spec.registries.mirrors[0].url: ');
    expect(e.hint).toBeTruthy();
  });

  it('a trailing slash is not a different URL', () => {
    const a = plan(spec('pa', mirrorList(['corp-a']), '20.lok8s.dev'));
    const obs = observedOf(a, 'pa');
    obs.mirrors[0]!.url += '/';
    expect(mirrorIps(plan(spec('pb', mirrorList(['corp-a']), '21.lok8s.dev'), obs))).toEqual(mirrorIps(a));
  });

  it('tls that differs from the running shared mirrors is a clear error', () => {
    const a = plan(spec('pa', '', '20.lok8s.dev'));
    expect(() => plan(spec('pb', '  registries:\n    tls: false\n', '21.lok8s.dev'), observedOf(a, 'pa'))).toThrow(
      /spec\.registries\.tls is false but the shared mirrors already run with tls: true \(mirror io-docker, created by project pa\)/,
    );
    // Without shared mirrors the running ones do not matter.
    expect(() =>
      plan(spec('pb', '  registries:\n    tls: false\n    shared:\n      enabled: false\n', '21.lok8s.dev'), observedOf(a, 'pa')),
    ).not.toThrow();
  });

  it('mirrors with other credentials variables conflict; the labels carry names only, never values', () => {
    const creds =
      '  registries:\n    mirrors:\n      - name: corp\n        url: https://corp.example\n        credentials:\n          usernameEnv: CORP_USER\n          passwordEnv: CORP_TOKEN\n';
    const a = plan(spec('pa', creds, '20.lok8s.dev'));
    const corp = byName(a, 'corp');
    expect(corp.labels['dev.lok8s.lo.credentials']).toBe('CORP_USER/CORP_TOKEN');
    expect(corp.labels['dev.lok8s.lo.created-by']).toBe('pa');
    const observed: ObservedShared = {
      mirrors: [
        {
          name: 'corp',
          ip: corp.ip,
          url: 'https://corp.example',
          registry: 'corp.example',
          project: 'pa',
          scheme: 'https',
          credentials: 'CORP_USER/CORP_TOKEN',
        },
      ],
    };
    expect(() => plan(spec('pb', creds, '21.lok8s.dev'), observed)).not.toThrow();
    expect(() =>
      plan(spec('pb', mirrorList(['corp']), '21.lok8s.dev'), {
        mirrors: [{ ...observed.mirrors[0]!, url: 'https://corp.example.test', registry: 'corp.example.test' }],
      }),
    ).toThrow(
      'shared mirror "corp" already runs for project pa with credentials from $CORP_USER and $CORP_TOKEN; this spec asks for no credentials',
    );
  });

  it('strict: false (status, teardown) plans past conflicts with the running mirrors, keeping their addresses', () => {
    const a = plan(spec('pa', '', '20.lok8s.dev'));
    const observed = observedOf(a, 'pa');
    const conflicting = spec('pb', '  registries:\n    tls: false\n', '21.lok8s.dev');
    expect(() => plan(conflicting, observed)).toThrow(PlanConflictError);
    const loose = planCluster(conflicting, { paths: PATHS, observed, strict: false });
    expect(mirrorIps(loose)).toEqual(mirrorIps(a));
  });

  it('no free address left is an error', () => {
    const used = Array.from({ length: 126 }, (_, i) => `10.125.200.${i + 2}`);
    expect(() => plan(spec('lok8s'), { mirrors: [], usedAddresses: used })).toThrow(PlanConflictError);
    expect(() => plan(spec('lok8s'), { mirrors: [], usedAddresses: used })).toThrow(/no free shared mirror address for "io-docker"/);
  });
});

describe('names and labels', () => {
  it('container and volume names: lok8s-registry-<name> shared mirrors, <network>-registry-<role> and <network>-mirror-<name> otherwise', () => {
    const p = plan(spec('proj', '', '30.lok8s.dev'));
    expect(p.registries.map((r) => [r.containerName, r.volume])).toEqual([
      ['proj-registry-build', 'proj-registry-build-data'],
      ['proj-registry-cache', 'proj-registry-cache-data'],
      ['lok8s-registry-io-docker', 'lok8s-registry-io-docker-data'],
      ['lok8s-registry-io-quay', 'lok8s-registry-io-quay-data'],
      ['lok8s-registry-io-k8s', 'lok8s-registry-io-k8s-data'],
      ['lok8s-registry-io-ghcr', 'lok8s-registry-io-ghcr-data'],
    ]);
  });

  it('bridge names are the network name when it fits, else a stable derived name of at most 15 characters', () => {
    const p = plan(spec('lok8s'));
    const [project, shared] = p.networks;
    expect(project!.bridgeName).toBe('lok8s');
    expect('lok8s-registries'.length).toBeGreaterThan(15);
    expect(shared!.bridgeName).toMatch(/^br-lo[0-9a-f]{10}$/);
    expect(shared!.bridgeName).toBe(sharedBridgeName('lok8s-registries'));
    expect(sharedBridgeName('lok8s-registries')).not.toBe(sharedBridgeName('lok8s-registriez'));
    expect(sharedBridgeName('short-name')).toBe('short-name');
    for (const n of p.networks) expect(n.bridgeName.length).toBeLessThanOrEqual(15);
  });

  it('networks get a gateway at .1 and a Docker dynamic range above the static addresses', () => {
    const p = plan(spec('lok8s'));
    expect(p.networks.map((n) => [n.subnet, n.gateway, n.ipRange])).toEqual([
      ['10.125.125.0/24', '10.125.125.1', '10.125.125.128/25'],
      ['10.125.200.0/24', '10.125.200.1', '10.125.200.128/25'],
    ]);
  });

  it('labels are on every network and registry, with extra labels for tests', () => {
    const p = planCluster(spec('proj', '', '30.lok8s.dev'), { paths: PATHS, extraLabels: { 'dev.lok8s.lo.test-run': 'r1' } });
    for (const o of [...p.networks, ...p.registries]) {
      const shared = ('scope' in o ? o.scope : o.role) === 'shared';
      expect(o.labels).toMatchObject({
        [LABELS.managedBy]: 'lo',
        [LABELS.project]: shared ? '_shared' : 'proj',
        [LABELS.scope]: shared ? 'shared' : 'project',
        [LABELS.version]: expect.any(String),
        [LABELS.specHash]: expect.stringMatching(/^[0-9a-f]{16}$/),
        'dev.lok8s.lo.test-run': 'r1',
      });
    }
    for (const n of p.networks) expect(n.labels[LABELS.role]).toBe('network');
    for (const r of p.registries) {
      expect(r.labels[LABELS.role]).toBe(r.role);
      if (r.role === 'mirror') {
        expect(r.labels).toMatchObject({ [LABELS.mirror]: r.name, [LABELS.registry]: r.registry, [LABELS.upstream]: r.upstream });
      }
    }
  });

  it('the spec-hash label changes when a registry changes and only then', () => {
    const a = plan(spec('lok8s'));
    const b = plan(spec('lok8s', '  registries:\n    tls: false\n'));
    const c = plan(spec('lok8s', '  nodes:\n    workers: 0\n'));
    expect(byName(a, 'build').labels[LABELS.specHash]).not.toBe(byName(b, 'build').labels[LABELS.specHash]);
    expect(byName(a, 'build').labels[LABELS.specHash]).toBe(byName(c, 'build').labels[LABELS.specHash]);
  });

  it('cluster nodes follow kind names', () => {
    const p = plan(spec('proj', '  nodes:\n    controlPlane: 3\n    workers: 2\n'));
    expect(p.cluster.nodes).toEqual([
      { name: 'proj-control-plane', role: 'control-plane' },
      { name: 'proj-control-plane2', role: 'control-plane' },
      { name: 'proj-control-plane3', role: 'control-plane' },
      { name: 'proj-worker', role: 'worker' },
      { name: 'proj-worker2', role: 'worker' },
    ]);
    expect(p.cluster.image).toBe('kindest/node:v1.34.0');
  });
});

describe('TLS subject names', () => {
  it('name only lo: every registry IP and lok8s.local/lok8s.cache, never a mirrored registry name', () => {
    const p = plan(spec('lok8s'));
    expect(p.tls.subjectNames).toEqual([
      '10.125.125.101',
      '10.125.125.102',
      '10.125.200.2',
      '10.125.200.3',
      '10.125.200.4',
      '10.125.200.5',
      'lok8s.cache',
      'lok8s.local',
    ]);
    const mirrored = p.registries.filter((r) => r.role === 'mirror').map((r) => r.registry!);
    expect(mirrored).toContain('quay.io');
    for (const c of p.tls.certificates) for (const m of mirrored) expect(c.names).not.toContain(m);
  });

  it('a mirror of a corporate host with a port names only its IP', () => {
    const p = plan(
      spec(
        'lok8s',
        mirrorList(['corp-a', 'corp-b'])
          .replace('https://corp-a.example.test', 'https://corp.example.test:5000')
          .replace('https://corp-b.example.test', 'https://corp.example.test:5001'),
      ),
    );
    expect(p.registries.filter((r) => r.role === 'mirror').map((r) => r.registry)).toEqual([
      'corp.example.test:5000',
      'corp.example.test:5001',
    ]);
    expect(p.tls.subjectNames.filter((n) => n.startsWith('corp.'))).toEqual([]);
    expect(p.tls.certificates.find((c) => c.id === 'shared-corp-a')!.names).toEqual(['10.125.200.2']);
    // hosts.toml directories keep the port: containerd looks them up by host:port.
    expect(p.containerd.hosts.map((h) => h.host)).toContain('corp.example.test:5000');
  });

  it('the project certificate covers its own registries only; each shared mirror has its own', () => {
    const p = plan(spec('lok8s'));
    const project = p.tls.certificates.find((c) => c.id === 'project')!;
    expect(project.names).toEqual(['10.125.125.101', '10.125.125.102', 'lok8s.cache', 'lok8s.local']);
    expect(project.usedBy).toEqual(['lok8s-registry-build', 'lok8s-registry-cache']);
    const quay = p.tls.certificates.find((c) => c.id === 'shared-io-quay')!;
    expect(quay.names).toEqual(['10.125.200.3']);
    expect(quay.usedBy).toEqual(['lok8s-registry-io-quay']);
    expect(p.tls.certificates).toHaveLength(5);
    for (const r of p.registries) expect(p.tls.certificates.some((c) => c.id === r.certificateId)).toBe(true);
  });

  it('project identity: the id hashes the spec directory and domain; a lok8s project network never takes the shared mirror names', () => {
    const at = (file: string): Plan => plan({ ...spec('same'), file });
    const a = at('/a/clusters/x/cluster.lok8s.yaml');
    const b = at('/b/clusters/x/cluster.lok8s.yaml');
    expect(a.project.specDir).toBe('/a/clusters/x');
    expect(a.project.id).toMatch(/^[0-9a-f]{16}$/);
    expect(a.project.id).not.toBe(b.project.id);
    expect(a.project.specHash).toBe(b.project.specHash);
    const build = a.registries.find((r) => r.role === 'build')!;
    expect(build.labels[LABELS.projectId]).toBe(a.project.id);
    expect(build.labels[LABELS.specDir]).toBe('/a/clusters/x');
    expect(a.networks.find((n) => n.role === 'project')!.labels[LABELS.projectId]).toBe(a.project.id);
    // shared objects belong to no single project
    expect(a.networks.find((n) => n.role === 'shared')!.labels[LABELS.projectId]).toBeUndefined();

    const sharedNames = plan(spec('lok8s', ''))
      .registries.filter((r) => r.scope === 'shared')
      .map((r) => r.containerName);
    const solo = plan(spec('lok8s', '  registries:\n    shared:\n      enabled: false\n'));
    const names = solo.registries.map((r) => r.containerName);
    expect(sharedNames.length).toBeGreaterThan(0);
    expect(names.filter((n) => sharedNames.includes(n))).toEqual([]);
    // one scheme for every unshared mirror: <network>-mirror-<mirror>
    expect(names).toContain('lok8s-mirror-io-docker');
    const soloSpec = spec('solo', '  registries:\n    shared:\n      enabled: false\n', '60.lok8s.dev');
    const solo2 = plan(soloSpec);
    expect(solo2.registries.filter((r) => r.role === 'mirror').map((r) => [r.containerName, r.volume])).toContainEqual([
      'solo-mirror-io-docker',
      'solo-mirror-io-docker-data',
    ]);
    // mirrors lo made under the earlier names (observed by their labels) keep their names and volumes: no recreate
    const kept = plan(soloSpec, {
      mirrors: [],
      projectMirrors: [
        { name: 'io-docker', containerName: 'solo-registry-io-docker' },
        // a kept name may never be a shared mirror's
        { name: 'io-quay', containerName: 'lok8s-registry-io-quay' },
      ],
    });
    expect([byName(kept, 'io-docker').containerName, byName(kept, 'io-docker').volume]).toEqual([
      'solo-registry-io-docker',
      'solo-registry-io-docker-data',
    ]);
    expect(byName(kept, 'io-quay').containerName).toBe('solo-mirror-io-quay');
    expect(byName(kept, 'io-k8s').containerName).toBe(byName(solo2, 'io-k8s').containerName);
  });

  it('no project network may start with lok8s-registry: its registries could take shared mirror names', () => {
    for (const [body, path] of [
      ['  network:\n    name: lok8s-registry1\n', 'spec.network.name'],
      ['  network:\n    name: lok8s-registry\n', 'spec.network.name'],
    ] as const) {
      let err: unknown;
      try {
        spec('proj', body, '61.lok8s.dev');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.filter((i) => i.path === path).map((i) => i.message)).toContainEqual(
        expect.stringContaining('the prefix of the shared mirror containers'),
      );
    }
    expect(() => spec('lok8s-registry', '', '62.lok8s.dev')).toThrow(/metadata\.name|prefix of the shared mirror/);
    // a name that only shares part of the prefix is fine
    expect(() => spec('lok8s-registri', '', '63.lok8s.dev')).not.toThrow();
  });

  it('with shared mirrors off the project certificate names the project mirrors by IP only', () => {
    const p = plan(spec('lok8s', '  registries:\n    shared:\n      enabled: false\n'));
    const project = p.tls.certificates.find((c) => c.id === 'project')!;
    const mirrors = p.registries.filter((r) => r.role === 'mirror');
    expect(mirrors.length).toBeGreaterThan(0);
    expect(project.names).toEqual([...new Set(p.registries.flatMap((r) => [r.ip, ...r.hostnames]))].sort());
    expect(project.names.filter((n) => /[a-z]/.test(n))).toEqual(['lok8s.cache', 'lok8s.local']);
  });

  it('without TLS there are no names and no certificates', () => {
    const p = plan(spec('lok8s', '  registries:\n    tls: false\n'));
    expect(p.tls.subjectNames).toEqual([]);
    expect(p.tls.certificates).toEqual([]);
    expect(p.registries.every((r) => r.certificateId === null)).toBe(true);
  });
});

describe('files and determinism', () => {
  it('plan.files lists every path the plan writes, once', () => {
    for (const p of [
      plan(spec('lok8s', '  nodes:\n    workers: 2\n')),
      plan(spec('lok8s', '  registries:\n    tls: false\n    shared:\n      enabled: false\n')),
    ]) {
      const files = p.files.map((f) => f.path);
      expect(new Set(files).size).toBe(files.length);
      const written = [
        ...p.containerd.hosts.map((h) => h.path),
        ...p.registries.flatMap((r) => [r.configPath, ...(r.replica ? [r.replica.configPath, r.replica.supervisorPath] : [])]),
        ...p.tls.certificates.flatMap((c) => [c.certPath, c.keyPath]),
        ...(p.containerd.caFile ? [p.containerd.caFile] : []),
        ...(p.p2p.enabled ? [p.p2p.keyPath] : []),
      ];
      expect(new Set(files)).toEqual(new Set([...written, `${p.paths.projectDir}/kind-config.yaml`]));
      for (const f of p.files) expect(f.path.startsWith(`${PATHS.stateDir}/`)).toBe(true);
      for (const f of p.files.filter((x) => x.kind === 'key' || x.kind === 'p2p-key')) expect(f.mode).toBe(0o600);
    }
  });

  it('paths live under the state dir and the CA root', () => {
    const p = plan(spec('proj'));
    expect(p.paths).toEqual({
      stateDir: '/state/lo',
      projectDir: '/state/lo/projects/proj',
      sharedDir: '/state/lo/shared',
      caRoot: '/state/mkcert',
    });
    expect([p.tls.caCertPath, p.tls.caKeyPath]).toEqual(['/state/mkcert/rootCA.pem', '/state/mkcert/rootCA-key.pem']);
    expect(byName(p, 'build').configPath).toBe('/state/lo/projects/proj/registries/build/config.yml');
    expect(byName(p, 'io-k8s').configPath).toBe('/state/lo/shared/registries/io-k8s/config.yml');
  });

  it('the same input gives a deep-equal plan, and JSON round-trips', () => {
    const text = '  nodes:\n    workers: 1\n' + mirrorList(['b', 'a', 'io-docker']);
    const a = plan(spec('proj', text));
    const b = plan(spec('proj', text));
    expect(b).toEqual(a);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
    expect(a.project.specHash).toBe(b.project.specHash);
    expect(plan(spec('proj', '  nodes:\n    workers: 2\n')).project.specHash).not.toBe(a.project.specHash);
  });
});
