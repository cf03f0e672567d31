/**
 * Registries with TLS (the default) on the real engine: certificates from ensureTls, HTTPS verified against
 * lo's CA only (skopeo with a cert dir holding the CA, no insecure flags), status probing over verified TLS,
 * and a re-issued certificate recreating exactly the containers that serve it.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criClient, criPull } from '../helpers/cri.js';
import { NODE_IMAGE, nodeContainerdConfig } from '../helpers/p2p.js';
import type { Action } from '../../src/apply/types.js';
import { loadCa } from '../../src/apply/tls/ca.js';
import { certificateNames, issueLeaf } from '../../src/apply/tls/leaf.js';
import { registryStatus, registryUp } from '../../src/usecases/registry.js';
import {
  seedSharedUpstream,
  cleanupRun,
  docker,
  eventually,
  inspectContainer,
  makeImage,
  manifestDigest,
  pullToDir,
  skopeo,
  workspace,
  type SpecInput,
  type Workspace,
  attachMirrorLogsOnFailure,
} from '../helpers/docker.js';

let ws: Workspace;
let spec: SpecInput;
let specFile: string;
let certDir: string;
let upstreamDigest: string;
const changed = (actions: Action[]): Action[] => actions.filter((a) => a.action !== 'noop');

beforeAll(async () => {
  ws = workspace();
  const id = ws.runId;
  spec = {
    name: `${id}t`,
    cidr: '10.140.30.0/24',
    sharedName: `${id}s`,
    sharedCidr: '10.140.31.0/24',
    tls: true,
    mirrors: [{ name: `${id}-hub`, url: 'http://10.140.31.200:5000', registry: 'docker.io' }],
  };
  specFile = ws.writeSpec(spec);
  upstreamDigest = (await seedSharedUpstream(ws, spec, '10.140.31.200')).digest;
});

afterAll(async () => {
  await cleanupRun(ws);
});

attachMirrorLogsOnFailure(() => ws);

describe('registries with TLS', () => {
  it("up issues the certificates and serves HTTPS that verifies against lo's CA only", async () => {
    const id = ws.runId;
    const { actions, plan } = await registryUp({ config: specFile }, ws.deps);
    expect(actions.filter((a) => a.kind === 'certificate').map((a) => a.action)).toEqual(['create', 'create']);
    // up returns once every container it started answers /v2/ over verified TLS: the mirror's proxy too (its
    // upstream answers), so the checks below find its port open at once (no retry loop around them).
    expect(
      actions
        .filter((a) => a.kind === 'container')
        .map((a) => `${a.name}:${a.serving}`)
        .sort(),
    ).toEqual([`${spec.name}-registry-build:serving`, `${spec.name}-registry-cache:serving`, `lok8s-registry-${id}-hub:serving`].sort());
    const build = (await inspectContainer(`${spec.name}-registry-build`))!;
    expect(build.Mounts.map((m) => `${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort()).toEqual([
      '/etc/lo/registry:ro',
      '/etc/lo/tls:ro',
      '/var/lib/registry:rw',
    ]);
    expect(statSync(plan.tls.certificates[0]!.keyPath).mode & 0o777).toBe(0o600);
    // the CA copy in the certs.d tree, for the nodes
    expect(readFileSync(plan.containerd.caFile!, 'utf8')).toBe(readFileSync(plan.tls.caCertPath, 'utf8'));

    certDir = join(ws.dir, 'certs');
    mkdirSync(certDir);
    writeFileSync(join(certDir, 'ca.crt'), readFileSync(plan.tls.caCertPath));

    // Without the CA, verification fails: TLS is really checked.
    await expect(skopeo(['inspect', '--raw', `docker://10.140.31.2/library/${id}:v1`])).rejects.toThrow(/x509|certificate/);
    // Through the mirror over verified HTTPS: the upstream's manifest and blobs.
    expect(await manifestDigest(`10.140.31.2/library/${id}:v1`, ['--cert-dir', certDir])).toBe(upstreamDigest);
    const pulled = await pullToDir(ws, `10.140.31.2/library/${id}:v1`, ['--src-cert-dir', certDir]);
    expect(pulled.layers).toHaveLength(1);
    // Push to the build registry (lok8s.local's address) and read it back, verified.
    const app = await makeImage(ws, 'app', 'v1');
    await skopeo(['copy', '--quiet', '--dest-cert-dir', certDir, `docker-daemon:${app}`, 'docker://10.140.30.101/app:v1']);
    const back = await pullToDir(ws, '10.140.30.101/app:v1', ['--src-cert-dir', certDir]);
    expect(back.layers).toHaveLength(1);
  });

  it('a second up changes nothing; status reads catalogs over verified TLS', async () => {
    const { actions } = await registryUp({ config: specFile }, ws.deps);
    expect(changed(actions)).toEqual([]);
    const s = await registryStatus({ config: specFile }, { ...ws.deps, shared: true });
    expect(s.registries.map((r) => `${r.name}:${r.health}:${(r.catalog ?? []).join(',')}`).sort()).toEqual(
      ['build:running:app', 'cache:running:', `${ws.runId}-hub:running:library/${ws.runId}`].sort(),
    );
  });

  it('a containerd node with the certs.d tree pulls docker.io/library/<x> from the mirror over verified TLS', async () => {
    const id = ws.runId;
    const plan = ws.plan(spec);
    // A kind-like node: containerd 2.1 from lo-test/node with kind's config.toml plus lo's patches, the certs.d
    // tree mounted read-only, on the shared network. The pull is the kubelet's: CRI PullImage.
    const config = join(ws.dir, 'node-config.toml');
    writeFileSync(config, nodeContainerdConfig(plan));
    const node = await docker.createContainer({
      name: `${id}-node`,
      Image: NODE_IMAGE,
      Labels: { 'dev.lok8s.lo.test-run': id },
      HostConfig: {
        NetworkMode: spec.sharedName,
        CapAdd: ['SYS_ADMIN'],
        SecurityOpt: ['seccomp=unconfined'],
        Tmpfs: { '/run': '' },
        Mounts: [
          { Type: 'bind', Source: plan.containerd.certsDir, Target: '/etc/containerd/certs.d', ReadOnly: true },
          { Type: 'bind', Source: config, Target: '/etc/containerd/config.toml', ReadOnly: true },
        ],
      },
    });
    // Like a kind node, also on the project network: hosts.toml lists the project's cache registry first.
    await docker.getNetwork(spec.name).connect({ Container: `${id}-node` });
    await node.start();
    await eventually(() => execa('docker', ['exec', `${id}-node`, 'ctr', 'version'], { timeout: 60_000 }));
    // With the upstream stopped, only the mirror can answer (hosts.toml falls back to the upstream server).
    await docker.getContainer(`${id}-upstream`).stop({ t: 1 });
    try {
      const ref = `docker.io/library/${id}@${upstreamDigest}`;
      const pulled = await criPull(`${id}-node`, ref);
      expect(pulled.code, pulled.out).toBe(0);
      const cri = await criClient(`${id}-node`);
      try {
        expect((await cri.status(ref))?.repoDigests).toContain(ref);
      } finally {
        cri.close();
      }
    } finally {
      await docker.getContainer(`${id}-upstream`).start();
      await node.remove({ force: true, v: true });
    }
  });

  it('a project certificate with the old names (a mirrored registry) is re-issued: build and cache only are recreated', async () => {
    const id = ws.runId;
    const plan = ws.plan(spec);
    const inode = statSync(plan.containerd.certsDir).ino;
    const mirrorId = (await inspectContainer(`lok8s-registry-${id}-hub`))!.Id;
    // What lo wrote before certificates named only lo: the project leaf also named docker.io (same CA).
    const project = plan.tls.certificates.find((c) => c.id === 'project')!;
    const ca = (await loadCa({ caRoot: plan.tls.caRoot, certPath: plan.tls.caCertPath, keyPath: plan.tls.caKeyPath }))!;
    const old = await issueLeaf({ ...project, names: [...project.names, 'docker.io'] }, ca, new Date());
    writeFileSync(project.keyPath, old.keyPem, { mode: 0o600 });
    writeFileSync(project.certPath, old.certPem);
    // And a second mirror: its own certificate is created, the first mirror's is kept.
    const more: SpecInput = {
      ...spec,
      mirrors: [...spec.mirrors!, { name: `${id}-q`, url: 'http://10.140.31.200:5000', registry: 'quay.example' }],
    };
    ws.writeSpec(more);
    const { actions } = await registryUp({ config: specFile }, ws.deps);
    const c = (name: string): Action | undefined => actions.find((a) => a.kind === 'container' && a.name === name);
    expect(c(`${spec.name}-registry-build`)).toMatchObject({ action: 'recreate', reason: 'configuration or certificate changed' });
    expect(c(`${spec.name}-registry-cache`)).toMatchObject({ action: 'recreate', reason: 'configuration or certificate changed' });
    expect(c(`lok8s-registry-${id}-q`)?.action).toBe('create');
    expect(c(`lok8s-registry-${id}-hub`)?.action).toBe('noop');
    expect((await inspectContainer(`lok8s-registry-${id}-hub`))!.Id).toBe(mirrorId);
    expect(
      actions
        .filter((a) => a.kind === 'certificate')
        .map((a) => a.action)
        .sort(),
    ).toEqual(['create', 'noop', 'recreate']);
    expect(statSync(plan.containerd.certsDir).ino).toBe(inode);
    const reissued = readFileSync(project.certPath, 'utf8');
    expect(certificateNames(reissued)).toEqual([...project.names].sort());
    expect(project.names.some((n) => n.includes('docker') || n.includes('quay'))).toBe(false);
    // Idempotent afterwards, to the byte.
    expect(changed((await registryUp({ config: specFile }, ws.deps)).actions)).toEqual([]);
    expect(readFileSync(project.certPath, 'utf8')).toBe(reissued);
    // The re-issued certificate is served and verifies; the pushed image survived in the kept volume.
    expect(await eventually(() => skopeo(['inspect', '--raw', '--cert-dir', certDir, 'docker://10.140.30.101/app:v1']))).toContain(
      'layers',
    );
  });
});
