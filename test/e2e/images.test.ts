/**
 * `lo images` end to end (issue 12): a one-node cluster (kind stand-in, a real containerd node pulling over
 * CRI), the project's real registry:2 cache, a real registry:2 mirror of a registry:2 "upstream" the test
 * runs on its own network (never the internet). Images are pinned from the mirror into the cache, then the
 * mirror and the upstream are stopped and the node pulls by tag; the cache's access log proves the route.
 * Subnets from 10.160.0.0/16, names `lopv…`.
 */
import { createHash, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil } from '../support/poll.mjs';
import { docker, waitHttp } from '../helpers/docker.js';
import {
  cleanupProvisionRun,
  lo,
  makeTinyImage,
  provisionWorkspace,
  pullInNode,
  seededUpstream,
  testProject,
  writeProjectSpec,
  type ProjectSpec,
  type ProvisionWorkspace,
} from '../helpers/kind.js';
import type { Plan, RegistryPlan } from '../../src/plan/types.js';

let ws: ProvisionWorkspace;
let spec: ProjectSpec;
let file: string;
let plan: Plan;
let cache: RegistryPlan;
let mirror: RegistryPlan;
let upstream: string;
let upstreamName: string;
let repo: string;
let node: string;

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const loJson = async <T>(args: string[], timeout?: number): Promise<{ code: number; r: T; stderr: string }> => {
  const out = await lo(ws, ['--config', file, ...args, '--json'], timeout);
  return { code: out.code, r: JSON.parse(out.stdout || '{}') as T, stderr: out.stderr };
};
const logs = async (c: string): Promise<string> => String((await execa('docker', ['logs', c], { all: true, reject: false })).all);

/** Pushes a blob to the test's plain-HTTP upstream (POST, then one PUT with the body and its digest). */
async function pushBlob(r: string, body: Buffer<ArrayBuffer>): Promise<{ digest: string; size: number }> {
  const digest = sha(body);
  const start = await fetch(`http://${upstream}:5000/v2/${r}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location')!, `http://${upstream}:5000`);
  location.searchParams.set('digest', digest);
  const res = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body });
  expect(res.status, await res.text()).toBe(201);
  return { digest, size: body.length };
}

/** A two-platform OCI index (linux/amd64, linux/arm64: one tiny random layer each) at `<r>:<tag>` upstream; its digest. */
async function pushIndex(r: string, tag: string): Promise<string> {
  const children = [];
  for (const architecture of ['amd64', 'arm64']) {
    const dir = join(ws.dir, `layer-${architecture}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'arch.txt'), `${architecture} ${ws.runId} ${randomInt(1e9)}\n`);
    const tar = (await execa('tar', ['-C', dir, '-c', 'arch.txt'], { encoding: 'buffer' })).stdout;
    const layer = await pushBlob(r, Buffer.from(tar));
    const config = await pushBlob(
      r,
      Buffer.from(JSON.stringify({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })),
    );
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    );
    const put = await fetch(`http://${upstream}:5000/v2/${r}/manifests/${sha(m)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: m,
    });
    expect(put.status).toBe(201);
    children.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha(m),
      size: m.length,
      platform: { os: 'linux', architecture },
    });
  }
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: children }),
  );
  const put = await fetch(`http://${upstream}:5000/v2/${r}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
    body: index,
  });
  expect(put.status).toBe(201);
  return sha(index);
}

/** HEAD a manifest in the cache over TLS verified with lo's CA (curl in the node, which has the CA): its digest or null. */
async function cacheDigest(r: string, ref: string): Promise<string | null> {
  const out = await execa(
    'docker',
    [
      'exec',
      node,
      'curl',
      '-sI',
      '--cacert',
      `${plan.containerd.nodeCertsDir}/_lo/ca.crt`,
      '-H',
      'accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json',
      `${cache.endpoint}/v2/${r}/manifests/${ref}`,
    ],
    { reject: false },
  );
  if (!/^HTTP\/[\d.]+ 200/.test(out.stdout)) return null;
  return /docker-content-digest:\s*(\S+)/i.exec(out.stdout)?.[1] ?? null;
}

beforeAll(async () => {
  ws = provisionWorkspace();
  const hex = ws.runId.slice('lopv-'.length);
  const bed = await seededUpstream(ws, { network: `lopvi${hex}`, image: 'img' });
  upstream = bed.upstreamIp;
  upstreamName = bed.upstreamName;
  repo = bed.repo;
  spec = testProject(ws, 'j', {
    shared: bed.shared,
    mirrors: [{ name: `${ws.runId}-imgdock`, url: `http://${upstream}:5000`, registry: 'docker.io' }],
    workers: 0,
    p2p: false,
    disableDefaultEndpoint: true,
  });
  file = writeProjectSpec(ws, spec);
  const r = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
  expect(r.code, r.stderr).toBe(0);
  plan = JSON.parse((await lo(ws, ['--config', file, 'plan', '--json'])).stdout) as Plan;
  cache = plan.registries.find((x) => x.role === 'cache')!;
  mirror = plan.registries.find((x) => x.role === 'mirror')!;
  node = `${spec.name}-control-plane`;
}, 400_000);

afterAll(async () => {
  await cleanupProvisionRun(ws, [spec?.name].filter(Boolean) as string[]);
});

interface Added {
  images: Array<{
    ref: string;
    cacheRef: string;
    digest: string;
    alreadyPinned: boolean;
    from: string;
    manifests: number;
    blobsCopied: number;
    blobsSkipped: number;
    bytesTotal: number;
  }>;
}
interface Listed {
  registries: Array<{
    name: string;
    role: string;
    images: Array<{ ref: string; digest: string; size: number; platforms?: string[] }>;
    error?: string;
  }>;
}

describe('lo images', () => {
  let tinyDigest: string;
  let indexDigest: string;
  const multi = (): string => `library/${ws.runId}-multi`;

  it('add copies by tag from the mirror into the cache under docker.io/…; a second add copies nothing', async () => {
    const ref = `${repo.replace(/^library\//, '')}:v1`;
    const up = await fetch(`http://${upstream}:5000/v2/${repo}/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    tinyDigest = up.headers.get('docker-content-digest')!;
    const dry = await loJson<Added & { dryRun: boolean }>(['images', 'add', ref, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.r).toMatchObject({
      dryRun: true,
      images: [{ ref: `docker.io/${repo}:v1`, digest: tinyDigest, alreadyPinned: false, blobsCopied: 0 }],
    });
    expect(await cacheDigest(`docker.io/${repo}`, 'v1')).toBeNull();
    const a = await loJson<Added>(['images', 'add', ref]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.r.images).toHaveLength(1);
    expect(a.r.images[0]).toMatchObject({ ref: `docker.io/${repo}:v1`, digest: tinyDigest, manifests: 1, blobsCopied: 2, blobsSkipped: 0 });
    expect(a.r.images[0]!.cacheRef).toBe(`${cache.ip}/docker.io/${repo}:v1`);
    expect(await cacheDigest(`docker.io/${repo}`, 'v1')).toBe(tinyDigest);
    // The bytes came through the mirror (its log), which asked the upstream.
    expect(await logs(mirror.containerName)).toContain(`/v2/${repo}/manifests/v1`);
    const again = await loJson<Added>(['images', 'add', ref]);
    expect(again.r.images[0]).toMatchObject({ digest: tinyDigest, blobsCopied: 0, blobsSkipped: 2 });
  });

  it('add copies every platform of an index with its digest unchanged; --platform copies one', async () => {
    indexDigest = await pushIndex(multi(), '1.0');
    const a = await loJson<Added>(['images', 'add', `docker.io/${multi()}:1.0`]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.r.images[0]).toMatchObject({ digest: indexDigest, manifests: 3, blobsCopied: 4 });
    expect(await cacheDigest(`docker.io/${multi()}`, '1.0')).toBe(indexDigest);
    const one = await loJson<Added>(['images', 'add', `docker.io/${multi()}:1.0`, '--platform', 'linux/arm64']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.r.images[0]!.manifests).toBe(1);
    expect(one.r.images[0]!.digest).not.toBe(indexDigest);
    // The tag now names the arm64 manifest; put the index back for the tests below.
    expect((await loJson<Added>(['images', 'add', `docker.io/${multi()}:1.0`])).r.images[0]!.digest).toBe(indexDigest);
    const bad = await lo(ws, ['--config', file, 'images', 'add', `docker.io/${multi()}:1.0`, '--platform', 'linux/s390x']);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain('has no linux/s390x image (it has linux/amd64, linux/arm64)');
  });

  it('add refuses a registry the project has no mirror for, and bad references, all at once (exit 2)', async () => {
    const r = await lo(ws, ['--config', file, 'images', 'add', 'quay.io/x/y:1', 'UPPER:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('quay.io/x/y:1: the project has no mirror for quay.io (mirrors: docker.io)');
    expect(r.stderr).toContain('"UPPER" in "UPPER:1" is not a valid repository name component');
  });

  it('ls lists the pinned images with digests and sizes, and what the mirror cached', async () => {
    const l = await loJson<Listed>(['images', 'ls']);
    expect(l.code, l.stderr).toBe(0);
    const c = l.r.registries.find((x) => x.role === 'cache')!;
    expect(c.images.map((i) => i.ref).sort()).toEqual([`docker.io/${multi()}:1.0`, `docker.io/${repo}:v1`].sort());
    expect(c.images.find((i) => i.ref.endsWith(':1.0'))).toMatchObject({ digest: indexDigest, platforms: ['linux/amd64', 'linux/arm64'] });
    expect(c.images.every((i) => i.size > 0)).toBe(true);
    const m = l.r.registries.find((x) => x.role === 'mirror')!;
    expect(m.error).toBeUndefined();
    expect(m.images.map((i) => i.ref)).toContain(`docker.io/${repo}:v1`);
    const text = await lo(ws, ['--config', file, 'images', 'ls']);
    expect(text.stdout).toMatch(new RegExp(`docker\\.io/${repo}:v1\\s+sha256:`));
  });

  it('a pinned image pulls by tag over CRI with the mirror and the upstream stopped; the cache served it', async () => {
    for (const c of [mirror.containerName, upstreamName]) await docker.getContainer(c).stop({ t: 1 });
    const pull = await pullInNode(node, `docker.io/${repo}:v1`);
    expect(pull.code, pull.out).toBe(0);
    const multiPull = await pullInNode(node, `docker.io/${multi()}:1.0`);
    expect(multiPull.code, multiPull.out).toBe(0);
    const cacheLog = await logs(cache.containerName);
    const path = `/v2/docker\\.io/${repo}`;
    expect(cacheLog).toMatch(new RegExp(`"HEAD ${path}/manifests/v1\\?ns=docker\\.io HTTP/[\\d.]+" 200 \\d+ "" "containerd/`));
    expect(cacheLog).toMatch(new RegExp(`"GET ${path}/blobs/sha256:[0-9a-f]{64}\\?ns=docker\\.io HTTP/[\\d.]+" 200 \\d+ "" "containerd/`));
    expect((await docker.getContainer(mirror.containerName).inspect()).State.Running).toBe(false);
  });

  it('rm deletes the manifest from the cache; rm of what is not there is exit 2 naming it', async () => {
    const extra = await makeTinyImage(ws, 'gone', '1');
    const certDir = `${ws.dir}/pin-certs`;
    await execa('mkdir', ['-p', certDir]);
    await execa('cp', [plan.tls.caCertPath, `${certDir}/ca.crt`]);
    await execa('skopeo', [
      'copy',
      '--quiet',
      '--dest-cert-dir',
      certDir,
      `docker-daemon:${extra}`,
      `docker://${cache.ip}/docker.io/library/${ws.runId}-gone:1`,
    ]);
    expect(await cacheDigest(`docker.io/library/${ws.runId}-gone`, '1')).toMatch(/^sha256:/);
    const dryRm = await lo(ws, ['--config', file, 'images', 'rm', `${ws.runId}-gone:1`, '--dry-run']);
    expect(dryRm.stdout).toContain(`would remove docker.io/library/${ws.runId}-gone:1`);
    expect(await cacheDigest(`docker.io/library/${ws.runId}-gone`, '1')).toMatch(/^sha256:/);
    const rm = await loJson<{ removed: Array<{ ref: string; digest: string }> }>(['images', 'rm', `${ws.runId}-gone:1`]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.r.removed[0]!.ref).toBe(`docker.io/library/${ws.runId}-gone:1`);
    expect(await cacheDigest(`docker.io/library/${ws.runId}-gone`, '1')).toBeNull();
    const again = await lo(ws, ['--config', file, 'images', 'rm', `${ws.runId}-gone:1`]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`not in the cache: docker.io/library/${ws.runId}-gone:1`);
  });

  it('load takes a docker save archive, an OCI layout archive and a .tar.zst one into the cache; the node pulls each by tag (upstream down)', async () => {
    const saved = await makeTinyImage(ws, 'saved', '2.0');
    const savedTar = join(ws.dir, 'saved.tar');
    await execa('docker', ['save', '-o', savedTar, saved]);
    const oci = await makeTinyImage(ws, 'ocimg', '3.0');
    const ociTar = join(ws.dir, 'ocimg.tar');
    const ociRef = `docker.io/library/${ws.runId}-ocimg:3.0`;
    await execa('skopeo', ['copy', '--quiet', `docker-daemon:${oci}`, `oci-archive:${ociTar}:${ociRef}`]);
    // K3s's air-gap tarball shape: an OCI archive compressed by the zstd CLI (told by its magic bytes)
    const zst = await makeTinyImage(ws, 'zstimg', '4.0');
    const zstRef = `docker.io/library/${ws.runId}-zstimg:4.0`;
    const zstPlain = join(ws.dir, 'zstimg.tar');
    const zstTar = join(ws.dir, 'k3s-airgap-images-amd64.tar.zst');
    await execa('skopeo', ['copy', '--quiet', `docker-daemon:${zst}`, `oci-archive:${zstPlain}:${zstRef}`]);
    await execa('zstd', ['-q', '-19', '--rm', zstPlain, '-o', zstTar]);
    expect(readFileSync(zstTar).subarray(0, 4).toString('hex')).toBe('28b52ffd');
    const dry = await loJson<{ dryRun: boolean; images: Array<{ ref: string }> }>([
      'images',
      'load',
      savedTar,
      ociTar,
      zstTar,
      '--dry-run',
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.r.images.map((i) => i.ref)).toEqual([`docker.io/${saved}`, ociRef, zstRef]);
    expect(await cacheDigest(`docker.io/library/${ws.runId}-ocimg`, '3.0')).toBeNull();
    expect(await cacheDigest(`docker.io/library/${ws.runId}-zstimg`, '4.0')).toBeNull();
    const l = await loJson<{ images: Array<{ ref: string; digest: string; cacheRef: string }> }>([
      'images',
      'load',
      savedTar,
      ociTar,
      zstTar,
    ]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.r.images.map((i) => i.ref)).toEqual([`docker.io/${saved}`, ociRef, zstRef]);
    expect(await cacheDigest(`docker.io/library/${ws.runId}-zstimg`, '4.0')).toBe(l.r.images[2]!.digest);
    for (const i of l.r.images) {
      const pull = await pullInNode(node, i.ref);
      expect(pull.code, pull.out).toBe(0);
    }
    const cacheLog = await logs(cache.containerName);
    expect(cacheLog).toMatch(
      new RegExp(`"HEAD /v2/docker\\.io/${saved.replace(/:.*/, '')}/manifests/2\\.0\\?ns=docker\\.io HTTP/[\\d.]+" 200`),
    );
    // The staging repository of each load let go of its blobs: ls shows only images.
    const ls = await loJson<Listed>(['images', 'ls']);
    const refs = ls.r.registries.find((x) => x.role === 'cache')!.images.map((i) => i.ref);
    expect(refs).toEqual(expect.arrayContaining([`docker.io/${saved}`, ociRef, zstRef]));
    expect(refs.some((r) => r.includes('lo-staging'))).toBe(false);
    const bad = await lo(ws, ['--config', file, 'images', 'load', file]);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain(`cannot load ${file}`);
  });

  it('lock -> export -> the cache registry and its volume wiped -> load -> the node pulls again, with no upstream', async () => {
    const dryLock = await loJson<{ dryRun: boolean; change: string; images: string[] }>(['images', 'lock', '--dry-run']);
    expect(dryLock.r).toMatchObject({ dryRun: true, change: 'create' });
    expect(existsSync(join(ws.dir, 'images.lock.yaml'))).toBe(false);
    const lock = await loJson<{ file: string; images: string[] }>(['images', 'lock']);
    expect(lock.code, lock.stderr).toBe(0);
    expect(lock.r.file).toBe(join(ws.dir, 'images.lock.yaml'));
    expect(lock.r.images).toContain(`docker.io/${repo}:v1@${tinyDigest}`);
    expect(lock.r.images).toContain(`docker.io/${multi()}:1.0@${indexDigest}`);
    const archive = join(ws.dir, 'project.tar');
    const ex = await loJson<{ images: Array<{ ref: string; digest: string }>; blobs: number }>(['images', 'export', archive]);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.r.images).toEqual(expect.arrayContaining([{ ref: `docker.io/${multi()}:1.0`, digest: indexDigest }]));

    const c = await docker.getContainer(cache.containerName).inspect();
    await docker.getContainer(cache.containerName).remove({ force: true });
    await docker.getVolume(cache.volume).remove();
    expect(c.Mounts.some((m) => m.Name === cache.volume)).toBe(true);
    const up = await lo(ws, ['--config', file, 'registry', 'up', '--json']);
    expect(up.code, up.stderr).toBe(0);
    expect(await cacheDigest(`docker.io/${repo}`, 'v1')).toBeNull();

    const load = await loJson<{ images: Array<{ ref: string; digest: string }> }>(['images', 'load', archive]);
    expect(load.code, load.stderr).toBe(0);
    expect(await cacheDigest(`docker.io/${multi()}`, '1.0')).toBe(indexDigest);
    const cri = await import('../helpers/cri.js');
    const client = await cri.criClient(node);
    try {
      for (const ref of [`docker.io/${repo}:v1`, `docker.io/${multi()}:1.0`]) await client.remove(ref);
    } finally {
      client.close();
    }
    for (const ref of [`docker.io/${repo}:v1`, `docker.io/${multi()}:1.0`]) {
      const pull = await pullInNode(node, ref);
      expect(pull.code, pull.out).toBe(0);
    }
    expect(await logs(cache.containerName)).toMatch(
      new RegExp(`"GET /v2/docker\\.io/${repo}/blobs/sha256:[0-9a-f]{64}\\?ns=docker\\.io HTTP/[\\d.]+" 200`),
    );
  });

  it('doctor (disableDefaultEndpoint) names a locked image that is in neither the cache nor a mirror; add --from-lock pins the lock', async () => {
    const lockFile = join(ws.dir, 'images.lock.yaml');
    const lockText = readFileSync(lockFile, 'utf8');
    const missing = `docker.io/library/${ws.runId}-nothere:1@sha256:${'0'.repeat(64)}`;
    writeFileSync(lockFile, lockText.replace('images:\n', `images:\n  - ${missing}\n`));
    const d = await lo(ws, ['--config', file, 'doctor', '--json']);
    expect(d.code).toBe(1);
    const check = (JSON.parse(d.stdout) as { checks: Array<{ name: string; status: string; detail: string }> }).checks.find(
      (x) => x.name === 'pinned-images',
    )!;
    expect(check.status).toBe('fail');
    expect(check.detail).toContain(`1 of ${lockText.split('\n  - ').length} images`);
    expect(check.detail).toContain(missing);

    // Back to the real lock: every image is in the cache now, so the check passes.
    writeFileSync(lockFile, lockText);
    const ok = JSON.parse((await lo(ws, ['--config', file, 'doctor', '--json'])).stdout) as {
      checks: Array<{ name: string; status: string }>;
    };
    expect(ok.checks.find((x) => x.name === 'pinned-images')!.status).toBe('ok');

    // With the mirror and the upstream back, --from-lock pins by digest: what a removed image was, it is again.
    // (`lo registry up` above started the mirror again; the upstream is still stopped)
    for (const c of [upstreamName, mirror.containerName])
      if (!(await docker.getContainer(c).inspect()).State.Running) await docker.getContainer(c).start();
    await waitHttp(`http://${upstream}:5000/v2/`);
    const rm = await lo(ws, ['--config', file, 'images', 'rm', `docker.io/${repo}:v1`]);
    expect(rm.code, rm.stderr).toBe(0);
    // the mirror's proxy restarts once its upstream answers
    const add = await pollUntil(
      () => loJson<Added>(['images', 'add', '--from-lock']),
      (a) => a.code === 0,
      { timeoutMs: 60_000, everyMs: 1000 },
    );
    expect(add.code, add.stderr).toBe(0);
    expect(add.r.images.find((i) => i.ref === `docker.io/${repo}:v1@${tinyDigest}`)).toMatchObject({
      digest: tinyDigest,
      alreadyPinned: false,
      from: mirror.name,
    });
    // The loaded images (never in the mirror) are in the cache at their locked digests: nothing to copy.
    expect(add!.r.images.find((i) => i.ref === `docker.io/${multi()}:1.0@${indexDigest}`)).toMatchObject({
      digest: indexDigest,
      alreadyPinned: true,
    });
    expect(await cacheDigest(`docker.io/${repo}`, 'v1')).toBe(tinyDigest);
  });
});
