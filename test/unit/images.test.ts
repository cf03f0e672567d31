import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import { parseCtrImages, parseLock, planPins, refOfCacheRepo, renderLock, cacheRepoOf, STAGING_PREFIX } from '../../src/plan/images.js';
import { parseImageRef } from '../../src/plan/imageRef.js';
import { DigestCheck, RegistryHttpError, sha256 } from '../../src/adapters/oci/registryClient.js';
import { platformMatches, withRetry } from '../../src/adapters/oci/copyImage.js';
import { dockerSaveImages, namedInIndex } from '../../src/usecases/imagesArchive.js';
import { splitDomain } from '../../src/cli/commands/images.js';
import { lockPath } from '../../src/usecases/imagesContext.js';
import { pinnedImagesCheck } from '../../src/usecases/imagesLock.js';
import { doctor } from '../../src/usecases/doctor.js';
import type { KindCli } from '../../src/adapters/kindCli.js';
import type { Kubectl } from '../../src/adapters/kubectl.js';

const PATHS = { stateDir: '/state/lo', caRoot: '/state/mkcert' };
const plan = (body = ''): ReturnType<typeof planCluster> =>
  planCluster(
    parseSpec(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: pins\nspec:\n${body}`, { file: '/p/clusters/x/c.yaml' }),
    {
      paths: PATHS,
    },
  );
const D = `sha256:${'a'.repeat(64)}`;

describe('pinned images: where a reference lives', () => {
  it('pins a short name from the docker.io mirror into the cache under docker.io/library/…', () => {
    const [p] = planPins(plan(), ['nginx:1.27']);
    expect(p).toMatchObject({
      mirror: { name: 'io-docker', endpoint: 'https://10.125.200.2' },
      sourceRepo: 'library/nginx',
      sourceRef: '1.27',
      cacheRepo: 'docker.io/library/nginx',
      tag: '1.27',
    });
    expect(p!.ref.normalized).toBe('docker.io/library/nginx:1.27');
  });

  it('asks the mirror for the digest when the reference has one, and keeps the tag for the cache', () => {
    const [p] = planPins(plan(), [`quay.io/org/app:2@${D}`]);
    expect(p).toMatchObject({ sourceRepo: 'org/app', sourceRef: D, cacheRepo: 'quay.io/org/app', tag: '2' });
    const [byDigest] = planPins(plan(), [`ghcr.io/o/a@${D}`]);
    expect(byDigest!.tag).toBeUndefined();
  });

  it('names every problem at once: bad references and registries without a mirror', () => {
    let err: Error | undefined;
    try {
      planPins(plan('  registries:\n    mirrors: []\n'), ['nginx', 'Bad:1']);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toContain('docker.io/library/nginx:latest: the project has no mirror for docker.io (mirrors: none)');
    expect(err?.message).toContain('"Bad" in "Bad:1" is not a valid repository name component');
  });

  it('reads cache repositories back as references; a port keeps its colon; staging repositories are not images', () => {
    expect(cacheRepoOf(parseImageRef('localhost:5000/a/b:1'))).toBe('localhost_5000/a/b');
    expect(refOfCacheRepo('localhost_5000/a/b')).toEqual({ registry: 'localhost:5000', repository: 'a/b' });
    expect(refOfCacheRepo('docker.io/library/nginx')).toEqual({ registry: 'docker.io', repository: 'library/nginx' });
    expect(refOfCacheRepo(`${STAGING_PREFIX}0a1b2c3d`)).toBeNull();
    expect(refOfCacheRepo('nginx')).toBeNull();
  });

  it("the cache registry's rendered config allows deletes (lo images rm); the mirrors' refuse them", () => {
    const p = plan();
    const cfg = (role: string): any => parse(p.registries.find((r) => r.role === role)!.config);
    expect(cfg('cache').storage.delete.enabled).toBe(true);
    expect(cfg('mirror').storage.delete.enabled).toBe(false);
  });

  it('the lock file sits next to the spec', () => {
    expect(lockPath(plan())).toBe('/p/clusters/x/images.lock.yaml');
  });
});

describe('the lock file', () => {
  const CTR = [
    'REF                                                 TYPE                                                 DIGEST  SIZE     PLATFORMS   LABELS',
    `docker.io/library/nginx:1.27                        application/vnd.oci.image.index.v1+json              ${D} 70.0 MiB linux/amd64 io.cri-containerd.image=managed`,
    `docker.io/library/nginx@${D}                        application/vnd.oci.image.index.v1+json              ${D} 70.0 MiB linux/amd64 io.cri-containerd.image=managed`,
    `sha256:${'b'.repeat(64)}                            application/vnd.oci.image.index.v1+json              ${D} 70.0 MiB linux/amd64 io.cri-containerd.image=managed`,
    `registry.k8s.io/pause:3.10                          application/vnd.oci.image.index.v1+json              sha256:${'c'.repeat(64)} 320 KiB linux/amd64 -`,
    'import-2024-01-01                                   application/vnd.oci.image.manifest.v1+json           junk 1 KiB - -',
    '',
  ].join('\n');

  it('takes references by tag from `ctr images ls`, with the digest they resolve to', () => {
    expect(parseCtrImages(CTR)).toEqual([`docker.io/library/nginx:1.27@${D}`, `registry.k8s.io/pause:3.10@sha256:${'c'.repeat(64)}`]);
  });

  it('renders sorted and deduplicated, and reads back', () => {
    const text = renderLock([`z.io/a:1@${D}`, `docker.io/library/nginx:1.27@${D}`, `z.io/a:1@${D}`]);
    expect(text.startsWith('# written by `lo images lock`')).toBe(true);
    expect(parseLock(text, 'l.yaml')).toEqual([`docker.io/library/nginx:1.27@${D}`, `z.io/a:1@${D}`]);
  });

  it('refuses entries without a tag and a digest, and other documents, with the entry named', () => {
    expect(() => parseLock('apiVersion: lo.lok8s.dev/images/v1\nimages: [nginx:1.27]\n', 'l.yaml')).toThrow(
      'l.yaml: images[0]: "nginx:1.27" needs both a tag and a digest',
    );
    expect(() => parseLock('images: []\n', 'l.yaml')).toThrow('expected apiVersion lo.lok8s.dev/images/v1');
    expect(() => parseLock('a: [\n', 'l.yaml')).toThrow('l.yaml: not YAML');
  });
});

describe('archives', () => {
  it('names the images of an OCI index by containerd’s annotation or a full ref.name; a bare tag is no name', () => {
    const r = namedInIndex({
      manifests: [
        {
          mediaType: 'm',
          digest: 'sha256:1',
          size: 1,
          annotations: { 'io.containerd.image.name': 'docker.io/library/a:1', 'org.opencontainers.image.ref.name': '1' },
        },
        { mediaType: 'm', digest: 'sha256:2', size: 1, annotations: { 'org.opencontainers.image.ref.name': 'quay.io/o/b:2' } },
        { mediaType: 'm', digest: 'sha256:3', size: 1, annotations: { 'org.opencontainers.image.ref.name': '3' } },
      ],
    });
    expect(r.named.map((n) => n.ref.normalized)).toEqual(['docker.io/library/a:1', 'quay.io/o/b:2']);
    expect(r.unnamed).toEqual(['sha256:3']);
  });

  it('builds a Docker manifest from docker save’s manifest.json, following linked layers', () => {
    const paths = new Map([
      ['cfg.json', { digest: 'sha256:c', size: 10 }],
      ['l1/layer.tar', { digest: 'sha256:l1', size: 100 }],
    ]);
    const [img] = dockerSaveImages(
      Buffer.from(
        JSON.stringify([{ Config: 'cfg.json', RepoTags: ['app:1', 'localhost:5000/x/app:1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]),
      ),
      paths,
      new Map([['l2/layer.tar', 'l1/layer.tar']]),
    );
    expect(img!.refs.map((r) => r.normalized)).toEqual(['docker.io/library/app:1', 'localhost:5000/x/app:1']);
    const m = JSON.parse(img!.bytes.toString('utf8'));
    expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(m.config).toEqual({ mediaType: 'application/vnd.docker.container.image.v1+json', digest: 'sha256:c', size: 10 });
    expect(m.layers.map((l: { digest: string }) => l.digest)).toEqual(['sha256:l1', 'sha256:l1']);
    expect(() => dockerSaveImages(Buffer.from(JSON.stringify([{ Config: 'nope.json', Layers: [] }])), paths)).toThrow(
      'manifest.json names nope.json, which is not in the archive',
    );
  });
});

describe('the copier', () => {
  it('checks digest and size as bytes stream through, and fails at the end when they differ', async () => {
    const data = Buffer.from('layer bytes');
    const ok = new DigestCheck(sha256(data), data.length);
    await pipeline(Readable.from([data]), ok, new Writable({ write: (_c, _e, cb) => cb() }));
    expect(ok.digest).toBe(sha256(data));
    await expect(
      pipeline(Readable.from([data]), new DigestCheck(`sha256:${'0'.repeat(64)}`), new Writable({ write: (_c, _e, cb) => cb() })),
    ).rejects.toThrow('digest mismatch');
    await expect(
      pipeline(Readable.from([data]), new DigestCheck(undefined, 3), new Writable({ write: (_c, _e, cb) => cb() })),
    ).rejects.toThrow('expected 3 bytes, got 11');
  });

  it('retries network errors and 5xx, not 4xx', async () => {
    let n = 0;
    await expect(
      withRetry(3, async () => {
        if (++n < 3) throw new RegistryHttpError('busy', 503);
        return 'ok';
      }),
    ).resolves.toBe('ok');
    expect(n).toBe(3);
    n = 0;
    await expect(
      withRetry(3, async () => {
        n++;
        throw new RegistryHttpError('nope', 404);
      }),
    ).rejects.toThrow('nope');
    expect(n).toBe(1);
  });

  it('matches platforms os/arch[/variant]', () => {
    const d = { mediaType: 'm', digest: 'd', size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } };
    expect(platformMatches(d, 'linux/arm64')).toBe(true);
    expect(platformMatches(d, 'linux/arm64/v8')).toBe(true);
    expect(platformMatches(d, 'linux/arm64/v7')).toBe(false);
    expect(platformMatches(d, 'linux/amd64')).toBe(false);
  });
});

describe('lo images arguments', () => {
  it('a last word shaped like a domain is the project; references are never taken for one', () => {
    expect(splitDomain(['nginx:1.27', '7.lok8s.dev'])).toEqual({ refs: ['nginx:1.27'], domain: '7.lok8s.dev' });
    expect(splitDomain(['nginx:1.27', 'quay.io/a/b'])).toEqual({ refs: ['nginx:1.27', 'quay.io/a/b'], domain: undefined });
    expect(splitDomain(['a.tar'])).toEqual({ refs: ['a.tar'], domain: undefined });
    expect(splitDomain(['a.tar', 'b.tar.gz'])).toEqual({ refs: ['a.tar', 'b.tar.gz'], domain: undefined });
  });
});

describe("lo doctor's pinned-images check", () => {
  const base = {
    docker: async () => ({ version: '20.10', target: 'unix:///var/run/docker.sock' }),
    kind: { version: async () => 'kind v0.33', getClusters: async () => [] } as unknown as KindCli,
    kubectl: () => ({ version: async () => 'v1.34' }) as unknown as Kubectl,
    networkExists: async () => true,
    probe: async () => 200,
  };

  it('without a lock file next to the spec: a warning that says how to make one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lo-lock-'));
    try {
      const p = planCluster(
        parseSpec(
          'apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: pins\nspec:\n  registries:\n    disableDefaultEndpoint: true\n',
          {
            file: join(dir, 'c.yaml'),
          },
        ),
        { paths: PATHS },
      );
      const c = await pinnedImagesCheck(p);
      expect(c).toMatchObject({ name: 'pinned-images', status: 'warn' });
      expect(c.detail).toContain(join(dir, 'images.lock.yaml'));
      expect(c.fix).toContain('lo images lock');
      writeFileSync(join(dir, 'images.lock.yaml'), 'images: [x]\n');
      expect(await pinnedImagesCheck(p)).toMatchObject({ status: 'fail', fix: 'run `lo images lock` again' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is one of the checks when the project is air-gapped, and a failure fails the doctor', async () => {
    const p = plan('  registries:\n    tls: false\n');
    const none = await doctor({ ...base, loadPlan: async () => p, pinnedImages: async () => null });
    expect(none.checks.some((c) => c.name === 'pinned-images')).toBe(false);
    const failed = await doctor({
      ...base,
      loadPlan: async () => p,
      pinnedImages: async () => ({ name: 'pinned-images', status: 'fail', detail: '1 of 2 images … docker.io/library/a:1@sha256:…' }),
    });
    expect(failed.ok).toBe(false);
    const broke = await doctor({
      ...base,
      loadPlan: async () => p,
      pinnedImages: async () => {
        throw new Error('boom');
      },
    });
    expect(broke.checks.find((c) => c.name === 'pinned-images')).toMatchObject({ status: 'fail', detail: 'boom' });
  });
});
