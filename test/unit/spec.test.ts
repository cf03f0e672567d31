import { mkdtemp, mkdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MIRRORS, MAX_SLOT, MIN_SLOT } from '../../src/spec/constants.js';
import { loadSpec } from '../../src/spec/loadSpec.js';
import { BUILT_IN_SPEC, parseSpec } from '../../src/spec/parseSpec.js';
import { slotOf } from '../../src/spec/slot.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { ConfigError, LoError } from '../../src/errors/loError.js';

const FILE = 'test.yaml';
const head = (name: string, domain?: string): string =>
  `apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: ${name}\nspec:\n${domain ? `  cluster:\n    domain: ${domain}\n` : ''}`;

describe('slot rule', () => {
  it('lok8s.dev is slot 125', () => {
    expect(slotOf('lok8s.dev')).toEqual({ slot: 125 });
  });

  it('N.lok8s.dev is slot N for every N in 2..199', () => {
    for (let n = MIN_SLOT; n <= MAX_SLOT; n++) {
      if (n === 125) continue;
      expect(slotOf(`${n}.lok8s.dev`)).toEqual({ slot: n });
    }
    expect(MIN_SLOT).toBe(2);
    expect(MAX_SLOT).toBe(199);
  });

  it.each([
    ['0.lok8s.dev', /slot 0 is out of range/],
    ['1.lok8s.dev', /slot 1 is out of range/],
    ['200.lok8s.dev', /slot 200 is out of range/],
    ['999.lok8s.dev', /slot 999 is out of range/],
    ['125.lok8s.dev', /belongs to lok8s\.dev/],
    ['050.lok8s.dev', /leading zero/],
    ['007.lok8s.dev', /leading zero/],
    ['00.lok8s.dev', /leading zero/],
    ['abc.lok8s.dev', /is not a slot domain/],
    ['5.x.lok8s.dev', /is not a slot domain/],
  ])('%s has no slot', (domain, problem) => {
    const r = slotOf(domain);
    expect(r.slot).toBeNull();
    expect('problem' in r && r.problem).toMatch(problem);
    expect('hint' in r && r.hint).toBeTruthy();
  });

  it('other domains have no slot and no problem', () => {
    expect(slotOf('dev.example.test')).toEqual({ slot: null });
    expect(slotOf('lok8s.dev.example.test')).toEqual({ slot: null });
    expect(slotOf('xlok8s.dev')).toEqual({ slot: null });
  });

  it('a slot domain gives the project subnet 10.125.N.0/24 and network name metadata.name', () => {
    const s = parseSpec(head('p50', '50.lok8s.dev'), { file: FILE });
    expect(s.slot).toBe(50);
    expect(s.network).toEqual({ name: 'p50', cidr: '10.125.50.0/24' });
    const s199 = parseSpec(head('p199', '199.lok8s.dev'), { file: FILE });
    expect(s199.network.cidr).toBe('10.125.199.0/24');
  });

  it('other domains need spec.network and then use it', () => {
    expect(() => parseSpec(head('ex', 'dev.example.test'), { file: FILE })).toThrow(ConfigError);
    const s = parseSpec(`${head('ex', 'dev.example.test')}  network:\n    name: ex-net\n    cidr: 10.126.7.0/24\n`, { file: FILE });
    expect(s.slot).toBeNull();
    expect(s.network).toEqual({ name: 'ex-net', cidr: '10.126.7.0/24' });
  });

  it('a slot domain may still override its network', () => {
    const s = parseSpec(`${head('p60', '60.lok8s.dev')}  network:\n    name: p60-net\n    cidr: 10.126.60.0/24\n`, { file: FILE });
    expect(s.slot).toBe(60);
    expect(s.network).toEqual({ name: 'p60-net', cidr: '10.126.60.0/24' });
  });

  it('the domain defaults to the directory the file is in', () => {
    const s = parseSpec(head('p70'), { file: FILE, domain: '70.lok8s.dev' });
    expect(s.domain).toBe('70.lok8s.dev');
    expect(s.network.cidr).toBe('10.125.70.0/24');
  });
});

describe('defaults', () => {
  it('fills every default of a minimal lok8s.dev spec', () => {
    const s = parseSpec(head('lok8s'), { file: FILE });
    expect(s).toEqual({
      file: FILE,
      name: 'lok8s',
      domain: 'lok8s.dev',
      slot: 125,
      kubernetesVersion: 'v1.34.0',
      network: { name: 'lok8s', cidr: '10.125.125.0/24' },
      nodes: { controlPlane: 1, workers: 0, hostPorts: [], maxConcurrentDownloads: 3 },
      registries: {
        tls: true,
        disableDefaultEndpoint: false,
        hosts: {},
        shared: { enabled: true, network: { name: 'lok8s-registries', cidr: '10.125.200.0/24' } },
        mirrors: [
          { name: 'io-docker', url: 'https://registry-1.docker.io', registry: 'docker.io' },
          { name: 'io-quay', url: 'https://quay.io', registry: 'quay.io' },
          { name: 'io-k8s', url: 'https://registry.k8s.io', registry: 'registry.k8s.io' },
          { name: 'io-ghcr', url: 'https://ghcr.io', registry: 'ghcr.io' },
        ],
        p2p: {
          enabled: false,
          port: 30020,
          routerPort: 30021,
          metricsPort: 30022,
          dataPort: 30023,
          resolveTimeoutMs: 20,
          resolveLatest: false,
          resolveTags: [],
          dialTimeout: '200ms',
        },
      },
      warnings: [],
    });
  });

  it('absent mirrors means the four defaults; mirrors: [] means none', () => {
    const absent = parseSpec(`${head('a')}  registries:\n    tls: true\n`, { file: FILE });
    expect(absent.registries.mirrors.map((m) => [m.name, m.registry])).toEqual([
      ['io-docker', 'docker.io'],
      ['io-quay', 'quay.io'],
      ['io-k8s', 'registry.k8s.io'],
      ['io-ghcr', 'ghcr.io'],
    ]);
    expect(absent.registries.mirrors.map((m) => m.url)).toEqual(DEFAULT_MIRRORS.map((m) => m.url));
    const none = parseSpec(`${head('a')}  registries:\n    mirrors: []\n`, { file: FILE });
    expect(none.registries.mirrors).toEqual([]);
  });

  it('a mirror registry defaults to the URL host, or the fixed name for a default mirror name', () => {
    const s = parseSpec(
      `${head('a')}  registries:\n    mirrors:\n      - name: io-docker\n        url: https://mirror.example.test/\n      - name: corp\n        url: http://registry.corp.test:5000\n      - name: named\n        url: https://x.example.test\n        registry: y.example.test\n`,
      { file: FILE },
    );
    expect(s.registries.mirrors).toEqual([
      { name: 'io-docker', url: 'https://mirror.example.test', registry: 'docker.io' },
      { name: 'corp', url: 'http://registry.corp.test:5000', registry: 'registry.corp.test:5000' },
      { name: 'named', url: 'https://x.example.test', registry: 'y.example.test' },
    ]);
  });

  it('credentials keep only environment variable names', () => {
    const s = parseSpec(
      `${head('a')}  registries:\n    mirrors:\n      - name: corp\n        url: https://r.corp.test\n        credentials:\n          usernameEnv: CORP_USER\n          passwordEnv: CORP_TOKEN\n`,
      { file: FILE },
    );
    expect(s.registries.mirrors[0]!.credentials).toEqual({ usernameEnv: 'CORP_USER', passwordEnv: 'CORP_TOKEN' });
  });

  it.each([
    [1, 0, undefined, false],
    [1, 1, undefined, true],
    [3, 0, undefined, true],
    [2, 5, undefined, true],
    [1, 3, false, false],
    [1, 0, true, true],
  ])('p2p.enabled with %i control-plane, %i workers, explicit %s -> %s', (cp, w, explicit, expected) => {
    const p2p = explicit === undefined ? '' : `  registries:\n    p2p:\n      enabled: ${explicit}\n`;
    const s = parseSpec(`${head('a')}  nodes:\n    controlPlane: ${cp}\n    workers: ${w}\n${p2p}`, { file: FILE });
    expect(s.registries.p2p.enabled).toBe(expected);
  });
});

describe('loadSpec', () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'lo-h2-spec-'));
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it('uses the built-in default for lok8s.dev when no file exists', async () => {
    const s = await loadSpec({ cwd });
    expect(s.file).toBe('<built-in lok8s.dev>');
    expect(s.name).toBe('lok8s');
    expect(s.domain).toBe('lok8s.dev');
    expect(s.slot).toBe(125);
    expect(s.registries.mirrors.map((m) => m.registry)).toEqual(['docker.io', 'quay.io', 'registry.k8s.io', 'ghcr.io']);
  });

  it('the built-in default equals clusters/lok8s.dev/cluster.lok8s.yaml', async () => {
    const committed = await loadSpec({ cwd: process.cwd() });
    expect(committed.file).toBe(join(process.cwd(), 'clusters', 'lok8s.dev', 'cluster.lok8s.yaml'));
    const builtIn = await loadSpec({ cwd });
    expect({ ...builtIn, file: '', specDir: '' }).toEqual({ ...committed, file: '', specDir: '' });
    // the project's identity: the spec file's real directory (a symlinked path is the same project)
    expect(committed.specDir).toBe(await realpath(join(process.cwd(), 'clusters', 'lok8s.dev')));
    const link = join(cwd, 'linked');
    await symlink(join(process.cwd(), 'clusters', 'lok8s.dev'), link);
    expect((await loadSpec({ config: join(link, 'cluster.lok8s.yaml'), cwd })).specDir).toBe(committed.specDir);
    expect(parseSpec(BUILT_IN_SPEC, { file: 'x' }).registries.mirrors).toEqual(committed.registries.mirrors);
  });

  it('the built-in default is the same project as the committed clusters/lok8s.dev spec in that directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lo-h13b-id-'));
    try {
      const builtIn = planCluster(await loadSpec({ cwd: dir }), { paths: { stateDir: dir, caRoot: dir } });
      expect(builtIn.project.file).toBe('<built-in lok8s.dev>');
      expect(builtIn.project.specDir).toBe(join(await realpath(dir), 'clusters', 'lok8s.dev'));
      // commit the spec there: the project id (the ownership label) stays, so lo adopts its own objects
      await mkdir(join(dir, 'clusters', 'lok8s.dev'), { recursive: true });
      await writeFile(
        join(dir, 'clusters', 'lok8s.dev', 'cluster.lok8s.yaml'),
        await readFile(join(process.cwd(), 'clusters', 'lok8s.dev', 'cluster.lok8s.yaml')),
      );
      const fromFile = planCluster(await loadSpec({ cwd: dir }), { paths: { stateDir: dir, caRoot: dir } });
      expect(fromFile.project.file).toBe(join(dir, 'clusters', 'lok8s.dev', 'cluster.lok8s.yaml'));
      expect(fromFile.project.id).toBe(builtIn.project.id);
      expect(fromFile.project.specDir).toBe(builtIn.project.specDir);
      expect(fromFile.registries.find((r) => r.role === 'build')!.labels).toEqual(
        builtIn.registries.find((r) => r.role === 'build')!.labels,
      );
      // another directory is another project
      const elsewhere = planCluster(await loadSpec({ cwd }), { paths: { stateDir: dir, caRoot: dir } });
      expect(elsewhere.project.id).not.toBe(builtIn.project.id);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the committed default starts with a yaml-language-server schema comment', async () => {
    const text = await readFile(join(process.cwd(), 'clusters', 'lok8s.dev', 'cluster.lok8s.yaml'), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../../schemas/cluster.lok8s.schema.json');
  });

  it('reads clusters/<domain>/cluster.lok8s.yaml under the working directory', async () => {
    const dir = join(cwd, 'clusters', '50.lok8s.dev');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'cluster.lok8s.yaml'), head('p50'));
    const s = await loadSpec({ cwd, domain: '50.lok8s.dev' });
    expect(s.domain).toBe('50.lok8s.dev');
    expect(s.network.cidr).toBe('10.125.50.0/24');
    expect(s.file).toBe(join(dir, 'cluster.lok8s.yaml'));
  });

  it('reads --config relative to the working directory', async () => {
    await writeFile(join(cwd, 'other.yaml'), head('p51', '51.lok8s.dev'));
    const s = await loadSpec({ cwd, config: 'other.yaml' });
    expect(s.slot).toBe(51);
  });

  it('a missing file for another domain is an error with exit code 2', async () => {
    const err = await loadSpec({ cwd, domain: '60.lok8s.dev' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoError);
    expect((err as LoError).code).toBe('E_CONFIG_NOT_FOUND');
    expect((err as LoError).exitCode).toBe(2);
    expect((err as LoError).message).toContain(join(cwd, 'clusters', '60.lok8s.dev', 'cluster.lok8s.yaml'));
    expect((err as LoError).hint).toContain('clusters/60.lok8s.dev/cluster.lok8s.yaml');
  });

  it('a missing --config file is an error with exit code 2, even for lok8s.dev', async () => {
    const err = await loadSpec({ cwd, config: 'nope.yaml' }).catch((e: unknown) => e);
    expect((err as LoError).code).toBe('E_CONFIG_NOT_FOUND');
    expect((err as LoError).exitCode).toBe(2);
  });

  it('rejects a domain argument that is not a domain', async () => {
    const err = await loadSpec({ cwd, domain: '../../etc' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues[0]!.path).toBe('domain');
  });

  it('a file whose domain differs from its directory is rejected', async () => {
    const dir = join(cwd, 'clusters', '52.lok8s.dev');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'cluster.lok8s.yaml'), head('p52', '53.lok8s.dev'));
    const err = await loadSpec({ cwd, domain: '52.lok8s.dev' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      expect.objectContaining({ path: 'spec.cluster.domain', line: 7, file: join(dir, 'cluster.lok8s.yaml') }),
    ]);
  });
});
