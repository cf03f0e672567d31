/**
 * `lo provision` end to end on the real Docker engine with the kind and kubectl stand-ins
 * (test/fixtures/bin): node containers run real containerd (2.1 like kind v0.30's nodes; the stand-in's
 * LO_FAKE_KIND_NODE_IMAGE picks 1.6 or 1.7) with kind's base config.toml plus lo's containerdConfigPatches,
 * and every pull below is a CRI PullImage, as the kubelet's: containerd finds the hosts.toml files lo wrote
 * through config_path and talks TLS verified with lo's CA. The "internet" is a registry:2 on the shared
 * network seeded with skopeo; each pull's route is checked (the mirror has it, the upstream never saw the node).
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileTree } from '../support/fileTree.js';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/plan/types.js';
import { renderConfigMaps } from '../../src/plan/render/renderConfigMaps.js';
import { criClient } from '../helpers/cri.js';
import { docker, TEST_RUN_LABEL } from '../helpers/docker.js';
import {
  cleanupProvisionRun,
  ctr,
  kubectlCalls,
  lo,
  makeTinyImage,
  provisionWorkspace,
  pullInNode,
  readInNode,
  registryGet,
  upstreamNetwork,
  testProject,
  writeProjectSpec,
  type ProjectSpec,
  type ProvisionWorkspace,
} from '../helpers/kind.js';

let ws: ProvisionWorkspace;
let specA: ProjectSpec;
let specB: ProjectSpec;
let fileA: string;
let fileB: string;
let planA: Plan;
let ca: string;
const upstreamHost = { ip: '', url: '' };
const repos = { alpine: '', fallback: '', airgap: '', after: '', quay: '', k8s: '', bypass: '' };

const nodeA = (): { cp: string; worker: string } => ({ cp: `${specA.name}-control-plane`, worker: `${specA.name}-worker` });
const mirror = (suffix: string): Plan['registries'][number] => planA.registries.find((r) => r.name === `${ws.runId}-${suffix}`)!;

async function skopeoCopy(src: string, dest: string, extra: string[]): Promise<void> {
  await execa('skopeo', ['copy', '--quiet', ...extra, src, dest], { timeout: 60_000 });
}

async function planOf(file: string): Promise<Plan> {
  const r = await lo(ws, ['--config', file, 'plan', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Plan;
}

async function containerId(name: string): Promise<string | null> {
  try {
    return (await docker.getContainer(name).inspect()).Id;
  } catch {
    return null;
  }
}

/** The node's address on the shared network, where the mirrors and the test upstream live. */
async function sharedIp(node: string): Promise<string> {
  return (await docker.getContainer(node).inspect()).NetworkSettings.Networks[specA.shared.name]!.IPAddress;
}

/** Did the upstream serve `repo` to `node` directly (its access log has the node's address and the repo)? */
async function upstreamSawNode(repo: string, node: string): Promise<boolean> {
  const ip = await sharedIp(node);
  const logs = String(await docker.getContainer(`${ws.runId}-upstream`).logs({ stdout: true, stderr: true }));
  return logs.split('\n').some((l) => l.includes(`/v2/${repo}/`) && l.includes(ip));
}

/** Where a pull of `repo` by `node` went: through the mirror (its catalog has it) and/or to the upstream. */
async function routeOf(repo: string, node: string, m: Plan['registries'][number]): Promise<{ mirror: boolean; upstream: boolean }> {
  const catalog = await registryGet(`${m.endpoint}/v2/_catalog`, ca);
  return { mirror: (catalog.body.repositories ?? []).includes(repo), upstream: await upstreamSawNode(repo, node) };
}

beforeAll(async () => {
  ws = provisionWorkspace();
  const hex = ws.runId.slice('lopv-'.length);
  // The shared network exists before lo runs (the test upstream lives on it); lo finds it with the planned subnet.
  const { shared, upstreamIp } = await upstreamNetwork(ws, { network: `lopvs${hex}`, upstreamName: `${ws.runId}-upstream` });
  upstreamHost.ip = upstreamIp;
  upstreamHost.url = `http://${upstreamIp}:5000`;

  // Seed the upstream: the repository paths containerd asks a docker.io / quay.io / registry.k8s.io mirror for.
  repos.alpine = `library/${ws.runId}-alpine`;
  repos.fallback = `library/${ws.runId}-fallback`;
  repos.airgap = `library/${ws.runId}-airgap`;
  repos.after = `library/${ws.runId}-after`;
  repos.bypass = `library/${ws.runId}-bypass`;
  repos.quay = `lopv/${ws.runId}-quay`;
  repos.k8s = `${ws.runId}-pause`;
  for (const [key, repo] of Object.entries(repos)) {
    const img = await makeTinyImage(ws, key);
    await skopeoCopy(`docker-daemon:${img}`, `docker://${upstreamHost.ip}:5000/${repo}:v1`, ['--dest-tls-verify=false']);
  }

  const mirrors = [
    { name: `${ws.runId}-dock`, url: upstreamHost.url, registry: 'docker.io' },
    { name: `${ws.runId}-quay`, url: upstreamHost.url, registry: 'quay.io' },
    { name: `${ws.runId}-k8s`, url: upstreamHost.url, registry: 'registry.k8s.io' },
  ];
  specA = testProject(ws, 'a', {
    shared,
    mirrors,
    workers: 1,
  });
  // The second project uses the real slot of 50.lok8s.dev: 10.125.50.0/24.
  specB = { name: `lopvb${hex}`, domain: '50.lok8s.dev', shared, mirrors };
  fileA = writeProjectSpec(ws, specA);
  fileB = writeProjectSpec(ws, specB);
});

afterAll(async () => {
  await cleanupProvisionRun(ws, [specA?.name, specB?.name].filter(Boolean) as string[]);
});

describe('lo provision (real Docker, kind stand-in, real containerd in the nodes)', () => {
  it('creates networks, TLS, registries, certs.d, the cluster, connects the nodes and applies the ConfigMaps', async () => {
    // --dry-run first: observe + diff, nothing made (no file, no container); the run then does exactly that
    const files = fileTree(ws.stateDir, ws.caRoot);
    const containers = (await docker.listContainers({ all: true, filters: { label: [`${TEST_RUN_LABEL}=${ws.runId}`] } })).map((c) => c.Id);
    const dry = await lo(ws, ['--config', fileA, 'provision', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const dryRes = JSON.parse(dry.stdout) as { dryRun: boolean; steps: Array<{ step: string; actions: unknown[] }> };
    expect(dryRes.dryRun).toBe(true);
    expect(fileTree(ws.stateDir, ws.caRoot)).toEqual(files);
    expect((await docker.listContainers({ all: true, filters: { label: [`${TEST_RUN_LABEL}=${ws.runId}`] } })).map((c) => c.Id)).toEqual(
      containers,
    );
    const r = await lo(ws, ['--config', fileA, 'provision', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    const stepsOf = (x: typeof dryRes, names: string[]) =>
      x.steps.filter((s) => names.includes(s.step)).map((s) => ({ step: s.step, actions: s.actions }));
    const compared = ['networks', 'tls', 'certs.d', 'registries', 'kind', 'configmaps'];
    expect(stepsOf(dryRes, compared)).toEqual(stepsOf(res, compared));
    expect(res.steps.map((s: { step: string }) => s.step)).toEqual([
      'validate',
      'networks',
      'tls',
      'certs.d',
      'registries',
      'kind',
      'connect',
      'configmaps',
      'p2p',
    ]);
    for (const step of ['validate', 'networks', 'tls', 'certs.d', 'registries', 'kind', 'connect', 'configmaps'])
      expect(r.stderr).toContain(step);
    expect(res.changed).toBe(true);
    // The fresh CA (temp CAROOT) is not trusted by this host: one warning with the exact command.
    expect(res.warnings).toHaveLength(1);
    expect(res.warnings[0]).toMatch(/does not trust lo's CA.*`(sudo env CAROOT=\S+ )?lo --config \S+ trust --yes`/);
    expect(r.stderr.split('does not trust').length - 1).toBe(1);
    expect(res.cluster.nodes).toEqual([nodeA().cp, nodeA().worker]);
    planA = await planOf(fileA);
    ca = readFileSync(planA.tls.caCertPath, 'utf8');
    const build = planA.registries.find((x) => x.role === 'build')!;
    expect(res.push).toEqual({ push: `docker push ${build.ip}/myapp:dev`, image: 'lok8s.local/myapp:dev' });

    // Nodes: kind's names and labels, on the project network (KIND_EXPERIMENTAL_DOCKER_NETWORK) and the shared one.
    for (const [node, role] of [
      [nodeA().cp, 'control-plane'],
      [nodeA().worker, 'worker'],
    ] as const) {
      const info = await docker.getContainer(node).inspect();
      expect(info.Config.Labels['io.x-k8s.kind.cluster']).toBe(specA.name);
      expect(info.Config.Labels['io.x-k8s.kind.role']).toBe(role);
      expect(info.Config.Labels['dev.lok8s.test.kind-image']).toBe(planA.cluster.image);
      expect(Object.keys(info.NetworkSettings.Networks).sort()).toEqual([specA.network!.name, specA.shared.name].sort());
      const mount = info.Mounts.find((m) => m.Destination === '/etc/containerd/certs.d')!;
      expect(mount).toMatchObject({ Type: 'bind', Source: planA.containerd.certsDir, RW: false });
      // containerd's config is kind's base config with lo's containerdConfigPatches merged in.
      const toml = parseToml(await readInNode(node, '/etc/containerd/config.toml')) as any;
      const cri = toml.plugins['io.containerd.grpc.v1.cri'];
      expect(cri.registry).toEqual({ config_path: '/etc/containerd/certs.d' });
      expect(cri.max_concurrent_downloads).toBe(4);
      expect(cri.containerd.discard_unpacked_layers).toBe(true); // kind's, untouched without P2P
      expect(cri.sandbox_image).toMatch(/^registry\.k8s\.io\/pause:/); // kind's base is there
    }
    expect(statSync(planA.cluster.kubeconfigPath).mode & 0o777).toBe(0o600);

    // The ConfigMaps went through kubectl exactly as rendered from the plan.
    const applies = kubectlCalls(ws).filter((c) => c.argv.includes('apply'));
    expect(applies).toHaveLength(1);
    expect(applies[0]!.argv).toEqual(['--kubeconfig', planA.cluster.kubeconfigPath, 'apply', '--filename', '-']);
    expect(applies[0]!.objects).toEqual(renderConfigMaps(planA));
    const hosting = applies[0]!.objects!.find((o) => o.metadata.name === 'local-registry-hosting')!;
    expect(hosting.data['localRegistryHosting.v1']).toContain(`host: ${build.ip}`);
    expect(hosting.data['localRegistryHosting.v1']).toContain('hostFromContainerRuntime: lok8s.local');
  });

  it('nodes pull docker.io, quay.io and registry.k8s.io images through the mirrors over verified TLS', async () => {
    for (const host of ['docker.io', 'quay.io', 'registry.k8s.io']) {
      const toml = readFileSync(join(planA.containerd.certsDir, host, 'hosts.toml'), 'utf8');
      expect(toml).toContain(`server = "${upstreamHost.url}"`);
      expect(toml).toContain('ca = "/etc/containerd/certs.d/_lo/ca.crt"');
      expect(toml).not.toContain('skip_verify');
    }
    const cases = [
      { ref: `docker.io/${repos.alpine}:v1`, mirror: mirror('dock'), repo: repos.alpine },
      { ref: `quay.io/${repos.quay}:v1`, mirror: mirror('quay'), repo: repos.quay },
      { ref: `registry.k8s.io/${repos.k8s}:v1`, mirror: mirror('k8s'), repo: repos.k8s },
    ];
    for (const c of cases) {
      const before = await registryGet(`${c.mirror.endpoint}/v2/_catalog`, ca);
      expect(before.body.repositories ?? []).not.toContain(c.repo);
      const pull = await pullInNode(nodeA().worker, c.ref);
      expect(pull.code, pull.out).toBe(0);
      // The mirror (read over HTTPS with only lo's CA) now holds what the node pulled, and the upstream never
      // heard from the node: the request went through the mirror.
      expect(await routeOf(c.repo, nodeA().worker, c.mirror)).toEqual({ mirror: true, upstream: false });
    }
    // Control: the same mirror without lo's hosts.toml (ctr with no hosts dir: system CAs only) is refused,
    // so TLS really is verified.
    const direct = await ctr(nodeA().cp, ['images', 'pull', `${mirror('dock').ip}/${repos.alpine}:v1`]);
    expect(direct.code).not.toBe(0);
    expect(direct.out).toMatch(/x509|certificate/i);
  });

  it('the route check catches a hosts.toml without the mirror: the pull then goes straight to the upstream', async () => {
    // A deliberately broken hosts.toml (the mirror's [host] table removed, server kept) on the running node.
    const file = join(planA.containerd.certsDir, 'docker.io', 'hosts.toml');
    const good = readFileSync(file, 'utf8');
    const broken = parseToml(good) as Record<string, any>;
    // The project's cache (pinned images), the proxy, then its read-only replica (docs/offline.md).
    const cache = planA.registries.find((x) => x.role === 'cache')!;
    expect(Object.keys(broken.host)).toEqual([`${cache.endpoint}/v2/docker.io`, mirror('dock').endpoint, mirror('dock').replica!.endpoint]);
    delete broken.host;
    writeFileSync(file, stringifyToml(broken));
    try {
      const pull = await pullInNode(nodeA().worker, `docker.io/${repos.bypass}:v1`);
      expect(pull.code, pull.out).toBe(0);
      expect(await routeOf(repos.bypass, nodeA().worker, mirror('dock'))).toEqual({ mirror: false, upstream: true });
    } finally {
      writeFileSync(file, good);
    }
  });

  it('an image pushed from the host to the build registry pulls in the node as lok8s.local/...', async () => {
    const build = planA.registries.find((x) => x.role === 'build')!;
    const certDir = join(ws.dir, 'push-certs');
    mkdirSync(certDir, { recursive: true });
    writeFileSync(join(certDir, 'ca.crt'), ca);
    const img = await makeTinyImage(ws, 'app', 'dev');
    await skopeoCopy(`docker-daemon:${img}`, `docker://${build.ip}/lopv/app:dev`, ['--dest-cert-dir', certDir]);
    const { stdout } = await execa('skopeo', ['inspect', '--cert-dir', certDir, `docker://${build.ip}/lopv/app:dev`]);
    const digest = (JSON.parse(stdout) as { Digest: string }).Digest;

    const pull = await pullInNode(nodeA().worker, 'lok8s.local/lopv/app:dev');
    expect(pull.code, pull.out).toBe(0);
    // The kubelet's view (CRI ImageStatus): the tag lok8s.local/... and the digest pushed to the build registry.
    const cri = await criClient(nodeA().worker);
    try {
      const image = await cri.status('lok8s.local/lopv/app:dev');
      expect(image?.repoTags).toContain('lok8s.local/lopv/app:dev');
      expect(image?.repoDigests).toContain(`lok8s.local/lopv/app@${digest}`);
    } finally {
      cri.close();
    }
  });

  it('falls back to the upstream (hosts.toml server) when the mirror is down and the default endpoint is on', async () => {
    const dock = mirror('dock');
    await docker.getContainer(dock.containerName).stop({ t: 1 });
    const pull = await pullInNode(nodeA().cp, `docker.io/${repos.fallback}:v1`);
    expect(pull.code, pull.out).toBe(0);
    expect((await docker.getContainer(dock.containerName).inspect()).State.Running).toBe(false);
    // The upstream served it to the node's address on the shared network.
    expect(await upstreamSawNode(repos.fallback, nodeA().cp)).toBe(true);
  });

  it('refreshes certs.d in place: a changed hosts.toml reaches the running nodes (air-gapped: no fallback)', async () => {
    const dirIno = statSync(planA.containerd.certsDir).ino;
    const started = (await docker.getContainer(nodeA().cp).inspect()).State.StartedAt;
    writeProjectSpec(ws, { ...specA, disableDefaultEndpoint: true });
    const r = await lo(ws, ['--config', fileA, 'provision', '--json']);
    expect(r.code, r.stderr).toBe(0);

    expect(statSync(planA.containerd.certsDir).ino).toBe(dirIno);
    expect((await docker.getContainer(nodeA().cp).inspect()).State.StartedAt).toBe(started);
    const onHost = readFileSync(join(planA.containerd.certsDir, 'docker.io', 'hosts.toml'), 'utf8');
    expect(onHost).not.toContain(upstreamHost.url);
    expect(await readInNode(nodeA().cp, '/etc/containerd/certs.d/docker.io/hosts.toml')).toBe(onHost);

    // provision restarted the stopped mirror; stop it again: without a default endpoint there is no fallback.
    const dock = mirror('dock');
    await docker.getContainer(dock.containerName).stop({ t: 1 });
    const pull = await pullInNode(nodeA().cp, `docker.io/${repos.airgap}:v1`);
    expect(pull.code).not.toBe(0);

    writeProjectSpec(ws, specA);
    const back = await lo(ws, ['--config', fileA, 'provision', '--json']);
    expect(back.code, back.stderr).toBe(0);
    expect((await docker.getContainer(dock.containerName).inspect()).State.Running).toBe(true);
    expect(await readInNode(nodeA().cp, '/etc/containerd/certs.d/docker.io/hosts.toml')).toContain(upstreamHost.url);
    const again = await pullInNode(nodeA().cp, `docker.io/${repos.airgap}:v1`);
    expect(again.code, again.out).toBe(0);
  });

  it('a re-run is a no-op', async () => {
    const appliesBefore = kubectlCalls(ws).filter((c) => c.argv.includes('apply')).length;
    const ids = await Promise.all(planA.registries.map((x) => containerId(x.containerName)));
    const r = await lo(ws, ['--config', fileA, 'provision', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.changed).toBe(false);
    const notNoop = res.steps
      .flatMap((s: { actions: Array<{ action: string }> }) => s.actions)
      .filter((a: { action: string }) => a.action !== 'noop');
    expect(notNoop).toEqual([]);
    expect(kubectlCalls(ws).filter((c) => c.argv.includes('apply')).length).toBe(appliesBefore);
    expect(await Promise.all(planA.registries.map((x) => containerId(x.containerName)))).toEqual(ids);
    console.log(`[provision e2e] no-op re-run of lo provision: ${r.ms} ms`);
    expect(r.ms).toBeLessThan(20_000);
  });

  it('a second project (50.lok8s.dev) shares the mirrors and has its own build and cache', async () => {
    const mirrorIds = await Promise.all(['dock', 'quay', 'k8s'].map((s) => containerId(mirror(s).containerName)));
    const r = await lo(ws, ['--config', fileB, 'provision', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const planB = await planOf(fileB);
    expect(planB.registries.filter((x) => x.role !== 'mirror').map((x) => x.ip)).toEqual(['10.125.50.101', '10.125.50.102']);
    expect(planB.registries.filter((x) => x.role === 'mirror').map((x) => x.ip)).toEqual(
      planA.registries.filter((x) => x.role === 'mirror').map((x) => x.ip),
    );
    expect(await Promise.all(['dock', 'quay', 'k8s'].map((s) => containerId(mirror(s).containerName)))).toEqual(mirrorIds);

    const nodeB = `${specB.name}-control-plane`;
    const pull = await pullInNode(nodeB, `docker.io/${repos.alpine}:v1`);
    expect(pull.code, pull.out).toBe(0);

    // B's build registry is B's own: an image pushed there is not in A's.
    const certDir = join(ws.dir, 'push-certs');
    const img = await makeTinyImage(ws, 'only-b', 'dev');
    await skopeoCopy(`docker-daemon:${img}`, 'docker://10.125.50.101/lopv/only-b:dev', ['--dest-cert-dir', certDir]);
    expect((await pullInNode(nodeB, 'lok8s.local/lopv/only-b:dev')).code).toBe(0);
    expect((await pullInNode(nodeA().worker, 'lok8s.local/lopv/only-b:dev')).code).not.toBe(0);
    const catalogA = await registryGet(`${planA.registries.find((x) => x.role === 'build')!.endpoint}/v2/_catalog`, ca);
    expect(catalogA.body.repositories).toEqual(['lopv/app']);
  });

  it('lo destroy of one project leaves the other working', async () => {
    const planB = await planOf(fileB);
    const refused = await lo(ws, ['--config', fileB, 'destroy']);
    expect(refused.code).toBe(2);
    expect(await containerId(`${specB.name}-control-plane`)).not.toBeNull();

    const mirrorIds = await Promise.all(['dock', 'quay', 'k8s'].map((s) => containerId(mirror(s).containerName)));
    const r = await lo(ws, ['--config', fileB, 'destroy', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(await containerId(`${specB.name}-control-plane`)).toBeNull();
    for (const x of planB.registries.filter((y) => y.scope === 'project')) {
      expect(await containerId(x.containerName)).toBeNull();
      // volumes are kept without --volumes
      expect((await docker.getVolume(x.volume).inspect()).Name).toBe(x.volume);
    }
    expect(await Promise.all(['dock', 'quay', 'k8s'].map((s) => containerId(mirror(s).containerName)))).toEqual(mirrorIds);

    const pull = await pullInNode(nodeA().worker, `docker.io/${repos.after}:v1`);
    expect(pull.code, pull.out).toBe(0);
    expect(await routeOf(repos.after, nodeA().worker, mirror('dock'))).toEqual({ mirror: true, upstream: false });
    expect((await pullInNode(nodeA().cp, 'lok8s.local/lopv/app:dev')).code).toBe(0);
  });

  it('lo doctor checks Docker, kind, kubectl, the CA and every registry', async () => {
    const r = await lo(ws, ['--config', fileA, 'doctor', '--json']);
    const res = JSON.parse(r.stdout);
    expect(r.code, r.stdout).toBe(0);
    expect(res.ok).toBe(true);
    const names = res.checks.map((c: { name: string }) => c.name);
    for (const n of ['spec', 'docker', 'kind', 'kubectl', 'cluster', ...planA.registries.map((x) => `registry ${x.name}`)])
      expect(names).toContain(n);

    // With a mirror down, doctor fails, names it and says how to fix it.
    await docker.getContainer(mirror('quay').containerName).stop({ t: 1 });
    const bad = await lo(ws, ['--config', fileA, 'doctor', '--json']);
    expect(bad.code).toBe(1);
    const check = JSON.parse(bad.stdout).checks.find((c: { name: string }) => c.name === `registry ${ws.runId}-quay`);
    expect(check.status).toBe('fail');
    expect(check.fix).toMatch(/lo provision/);
  });
});
