/**
 * `lo why IMAGE` end to end: a two-node P2P cluster (kind stand-in, real containerd nodes, real agents, a
 * real registry:2 mirror of a registry:2 "upstream" on a test network). The resolution runs inside the node,
 * so each answer below is what that node's containerd reaches: its own P2P agent on 127.0.0.1, the mirror
 * over TLS with lo's CA, and the default endpoint, which must never be tried here (no internet; asserted).
 * Subnets from 10.160.0.0/16, names `lopv…`.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil } from '../support/poll.mjs';
import { docker } from '../helpers/docker.js';
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
import type { Plan } from '../../src/plan/types.js';
import type { WhyResult } from '../../src/usecases/why.js';

let ws: ProvisionWorkspace;
let spec: ProjectSpec;
let file: string;
let repo: string;
let upstreamIp: string;
let upstreamName: string;
let upstreamDigest: string;

const why = async (args: string[]): Promise<{ code: number; result: WhyResult; stderr: string }> => {
  const r = await lo(ws, ['--config', file, 'why', ...args, '--json']);
  return { code: r.code, result: JSON.parse(r.stdout) as WhyResult, stderr: r.stderr };
};

beforeAll(async () => {
  ws = provisionWorkspace();
  ws.env.LO_P2P_BASE_IMAGE = 'lo-test/node:containerd';
  const hex = ws.runId.slice('lopv-'.length);
  const bed = await seededUpstream(ws, { network: `lopvw${hex}`, image: 'why' });
  const shared = bed.shared;
  upstreamIp = bed.upstreamIp;
  upstreamName = bed.upstreamName;
  repo = bed.repo;
  const head = await fetch(`http://${upstreamIp}:5000/v2/${repo}/manifests/v1`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  upstreamDigest = head.headers.get('docker-content-digest')!;
  spec = testProject(ws, 'y', {
    shared,
    mirrors: [{ name: `${ws.runId}-whydock`, url: `http://${upstreamIp}:5000`, registry: 'docker.io' }],
    workers: 1,
    p2p: true,
  });
  file = writeProjectSpec(ws, spec);
  const r = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
  expect(r.code, r.stderr).toBe(0);
  // The agents start last; wait (bounded) until each answers inside its node before asking lo why.
  for (const node of [`${spec.name}-control-plane`, `${spec.name}-worker`]) {
    const code = await pollUntil(
      async () =>
        String(
          (
            await execa('docker', ['exec', node, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:30020/v2/'], {
              reject: false,
            })
          ).stdout,
        ),
      (c) => c === '200',
      { timeoutMs: 30_000, everyMs: 300 },
    );
    expect(code, `P2P agent on ${node}`).toBe('200');
  }
}, 400_000);

afterAll(async () => {
  await cleanupProvisionRun(ws, [spec?.name].filter(Boolean) as string[]);
});

describe('lo why', () => {
  it('names the certs.d entry and every host in order; the mirror answers (cache miss first, then hit); the upstream is never tried', async () => {
    const ref = `${repo.replace(/^library\//, '')}:v1`; // short form: normalised to docker.io/library/…
    const first = await why([ref]);
    expect(first.code, first.stderr).toBe(0);
    const r = first.result;
    expect(r.normalized).toBe(`docker.io/${repo}:v1`);
    expect(r.node).toBe(`${spec.name}-control-plane`);
    expect(r.certsDir).toEqual({
      tried: ['docker.io', '_default'],
      matched: 'docker.io',
      file: '/etc/containerd/certs.d/docker.io/hosts.toml',
    });
    const mirror = r.hops.find((h) => h.role === 'mirror')!;
    // The project's cache (pinned images, /v2/docker.io/…) before the mirror; the mirror's read-only replica
    // (docs/offline.md) after it, named after it.
    expect(r.hops.map((h) => h.role)).toEqual(['p2p', 'cache', 'mirror', 'replica', 'upstream']);
    expect(r.hops[3]).toMatchObject({ name: spec.mirrors[0]!.name, outcome: 'not tried' });
    expect(r.hops[0]).toMatchObject({ origin: 'http://127.0.0.1:30020', outcome: 'miss', status: 404 });
    expect(r.hops[1]).toMatchObject({ name: 'cache', outcome: 'miss', status: 404 });
    expect(r.hops[1]!.url).toMatch(new RegExp(`^https://10\\.160\\.\\d+\\.102/v2/docker\\.io/${repo}/manifests/v1\\?ns=docker\\.io$`));
    expect(mirror).toMatchObject({ name: spec.mirrors[0]!.name, outcome: 'answered', status: 200, cache: 'miss', digest: upstreamDigest });
    // The server lo writes is the mirror's upstream (here the test's registry:2): containerd's last resort.
    expect(r.hops[4]).toMatchObject({ origin: `http://${upstreamIp}:5000`, source: 'server', outcome: 'not tried' });
    expect(r.answeredBy).toMatchObject({ index: 3, role: 'mirror' });
    expect(r.digest).toBe(upstreamDigest);
    expect(r.findings.filter((f) => f.severity === 'fail')).toEqual([]);
    expect(typeof mirror.ms).toBe('number');

    // The proxy kept the manifest it fetched: the same question is now a cache hit.
    const again = (await why([ref])).result;
    expect(again.hops.find((h) => h.role === 'mirror')).toMatchObject({ outcome: 'answered', cache: 'hit', digest: upstreamDigest });

    const text = await lo(ws, ['--config', file, 'why', ref]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('certs.d   /etc/containerd/certs.d/docker.io/hosts.toml');
    expect(text.stdout).toMatch(/3\. https:\/\/10\.160\.\d+\.\d+\s+answered 200, cache hit/);
    expect(text.stdout).toContain(`digest ${upstreamDigest}`);
  });

  it('the worker is answered by its P2P agent once the control plane pulled the image', async () => {
    const ref = `docker.io/${repo}:v1`;
    const pulled = await pullInNode(`${spec.name}-control-plane`, ref);
    expect(pulled.code, pulled.out).toBe(0);
    const r = await pollUntil(
      async () => (await why([ref, '--node', `${spec.name}-worker`])).result,
      (w) => w.answeredBy?.role === 'p2p',
      { timeoutMs: 60_000, everyMs: 1000 },
    );
    expect(r.node).toBe(`${spec.name}-worker`);
    expect(r.hops[0]).toMatchObject({ role: 'p2p', outcome: 'answered', status: 200, digest: upstreamDigest });
    expect(r.hops.slice(1).every((h) => h.outcome === 'not tried')).toBe(true);
  });

  it('an image nobody has: every host misses, the upstream is skipped with --no-upstream, exit 1', async () => {
    const r = await why([`docker.io/${repo}:nope`, '--no-upstream']);
    expect(r.code).toBe(1);
    expect(r.result.answeredBy).toBeNull();
    expect(r.result.hops.map((h) => h.outcome)).toEqual(['miss', 'miss', 'miss', 'miss', 'skipped']);
    // A miss in the cache is one fast 404 from a registry on the project network.
    expect(r.result.hops[1]).toMatchObject({ role: 'cache', status: 404 });
    expect(r.result.hops[1]!.ms!).toBeLessThan(1000);
  });

  it('a bad reference or node is bad input (exit 2), naming the nodes there are', async () => {
    const bad = await lo(ws, ['--config', file, 'why', 'UPPER/Case']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('not a valid repository name component');
    const node = await lo(ws, ['--config', file, 'why', 'nginx', '--node', 'nope']);
    expect(node.code).toBe(2);
    expect(node.stderr).toContain(`${spec.name}-control-plane`);
  });

  it('a pinned image in the cache pulls by tag over CRI with the mirror and the upstream stopped; the cache served it', async () => {
    const plan = JSON.parse((await lo(ws, ['--config', file, 'plan', '--json'])).stdout) as Plan;
    const cache = plan.registries.find((r) => r.role === 'cache')!;
    const mirror = plan.registries.find((r) => r.role === 'mirror')!;
    // Pin: copy a locally built image into the cache under docker.io/library/<name> (verified TLS, lo's CA).
    const certDir = join(ws.dir, 'pin-certs');
    mkdirSync(certDir, { recursive: true });
    copyFileSync(plan.tls.caCertPath, join(certDir, 'ca.crt'));
    const name = `${ws.runId}-pinned`;
    const img = await makeTinyImage(ws, 'pinned', '1.27');
    await execa('skopeo', [
      'copy',
      '--quiet',
      '--dest-cert-dir',
      certDir,
      `docker-daemon:${img}`,
      `docker://${cache.ip}/docker.io/library/${name}:1.27`,
    ]);
    // The mirror's one container runs both its proxy and its read-only replica (docs/offline.md).
    for (const c of [mirror.containerName, upstreamName]) await docker.getContainer(c).stop({ t: 1 });

    const ref = `docker.io/library/${name}:1.27`;
    const w = await why([ref, '--no-upstream']);
    expect(w.code, w.stderr).toBe(0);
    expect(w.result.answeredBy).toMatchObject({ index: 2, role: 'cache', name: 'cache' });
    const pull = await pullInNode(`${spec.name}-worker`, ref);
    expect(pull.code, pull.out).toBe(0);
    // The route: the cache's access log has the node's containerd resolving the tag under /v2/docker.io/…
    // and fetching the blobs (200); the upstream (stopped, its log kept) never heard of the image, and the
    // mirror's container is still stopped.
    const logs = async (c: string): Promise<string> => String((await execa('docker', ['logs', c], { all: true, reject: false })).all);
    const cacheLog = await logs(cache.containerName);
    const path = `/v2/docker\\.io/library/${name}`;
    expect(cacheLog).toMatch(new RegExp(`"HEAD ${path}/manifests/1\\.27\\?ns=docker\\.io HTTP/[\\d.]+" 200 \\d+ "" "containerd/`));
    expect(cacheLog).toMatch(new RegExp(`"GET ${path}/blobs/sha256:[0-9a-f]{64}\\?ns=docker\\.io HTTP/[\\d.]+" 200 \\d+ "" "containerd/`));
    expect(await logs(upstreamName)).not.toContain(name);
    expect((await docker.getContainer(mirror.containerName).inspect()).State.Running).toBe(false);
  });
});
