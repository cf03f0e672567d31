/**
 * The reconcile decisions of the registry and P2P executors, against the in-memory Docker
 * (test/support/fakeDocker.ts). The dockerode implementation of the same interfaces is tested against the
 * real engine by the e2e tests.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileTree } from '../support/fileTree.js';
import { generateSwarmKey } from '../../src/agent/swarmKey.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyRegistries, previewRegistries, type Action } from '../../src/apply/applyRegistries.js';
import { stepView } from '../../src/apply/action.js';
import { deployP2P, listP2PAgents, removeP2P } from '../../src/apply/deployP2P.js';
import { connectNodes } from '../../src/apply/connectNodes.js';
import { inspectKindNodes, kubernetesNodes } from '../../src/adapters/docker/inspectKindNodes.js';
import { LoError } from '../../src/errors/loError.js';
import { AGENT_ROLE, KIND_LABELS, LABELS } from '../../src/plan/labels.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import type { ClusterSpec } from '../../src/spec/types.js';
import { createLog } from '../../src/runtime/log.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { FakeDocker } from '../support/fakeDocker.js';
import { observeShared } from '../../src/adapters/docker/observeShared.js';
import { clusterOwner } from '../../src/usecases/provisionDeps.js';
import { diffCluster } from '../../src/usecases/destroy.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lo-reconcile-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

type PlanOpts = { mirrorUrl?: string; tls?: boolean; workers?: number; specDir?: string; shared?: boolean };

/** The test project's spec (shared mirrors on unless `shared: false`). */
function specOf(o: PlanOpts = {}): ClusterSpec {
  const text = JSON.stringify({
    apiVersion: 'cluster.lok8s.dev/v1beta1',
    kind: 'Lo',
    metadata: { name: 'lorc' },
    spec: {
      cluster: { domain: 'rc.test' },
      network: { name: 'lorc', cidr: '10.141.10.0/24' },
      ...(o.workers !== undefined ? { nodes: { workers: o.workers } } : {}),
      registries: {
        tls: o.tls ?? false,
        shared: { enabled: o.shared ?? true, network: { name: 'lorc-shared', cidr: '10.141.11.0/24' } },
        mirrors: [{ name: 'lorc-hub', url: o.mirrorUrl ?? 'http://10.141.11.250:5000', registry: 'docker.io' }],
      },
    },
  });
  return parseSpec(text, { file: join(o.specDir ?? dir, 'spec.yaml') });
}

function plan(o: PlanOpts = {}): Plan {
  return planCluster(specOf(o), {
    paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') },
  });
}

function fakeWithImages(p: Plan): FakeDocker {
  const fake = new FakeDocker();
  for (const ref of new Set(p.registries.map((r) => r.image))) fake.addImage(ref);
  return fake;
}

const containers = (actions: Action[]): Action[] => actions.filter((a) => a.kind === 'container');
const mirrorOf = (p: Plan) => p.registries.find((r) => r.role === 'mirror')!;

describe('applyRegistries: reconcile decisions', () => {
  it('missing -> create (networks, volumes, containers, running, at their addresses); a second run is all noop', async () => {
    const p = plan();
    const fake = fakeWithImages(p);
    const first = await applyRegistries(p, { docker: fake });
    expect(first.filter((a) => a.kind === 'network').map((a) => a.action)).toEqual(['create', 'create']);
    // One container per registry; a mirror's runs its supervisor (proxy + read-only replica) under /bin/sh.
    expect(containers(first).map((a) => [a.name, a.action])).toEqual(p.registries.map((r) => [r.containerName, 'create']));
    for (const r of p.registries) {
      const c = fake.container(r.containerName)!;
      expect(c.running).toBe(true);
      expect(c.networks[r.network]).toEqual({ ip: r.ip });
      expect(c.networkMode).toBe(r.network);
      const spec = fake.containerStore.get(c.id)!.spec!;
      if (r.replica) {
        expect(spec.entrypoint).toEqual(['/bin/sh']);
        expect(spec.cmd).toEqual(['/etc/lo/registry/mirror.sh']);
      } else {
        expect(spec.entrypoint).toBeUndefined();
        expect(spec.cmd).toEqual(['/etc/lo/registry/config.yml']);
      }
      expect(c.volumes.map((v) => v.name)).toEqual([r.volume]);
      expect(c.labels[LABELS.managedBy]).toBe('lo');
    }
    expect(fake.ops.filter((o) => o.startsWith('create volume'))).toHaveLength(p.registries.length);

    const opsBefore = fake.ops.length;
    const second = await applyRegistries(p, { docker: fake });
    expect(second.filter((a) => a.action !== 'noop')).toEqual([]);
    // nothing but the idempotent image check touched Docker
    expect(fake.ops.slice(opsBefore).filter((o) => !o.startsWith('pull image'))).toEqual([]);
  });

  it('drifted spec hash -> recreate that container only, keeping its volume', async () => {
    const fake = fakeWithImages(plan());
    await applyRegistries(plan(), { docker: fake });
    const p2 = plan({ mirrorUrl: 'http://10.141.11.251:5000' });
    const m = mirrorOf(p2);
    const before = fake.container(m.containerName)!;
    const actions = await applyRegistries(p2, { docker: fake });
    expect(containers(actions).filter((a) => a.action !== 'noop')).toEqual([
      { kind: 'container', name: m.containerName, action: 'recreate', reason: 'configuration or certificate changed' },
    ]);
    const after = fake.container(m.containerName)!;
    expect(after.id).not.toBe(before.id);
    expect(after.volumes).toEqual(before.volumes);
    expect(fake.volumeStore.has(m.volume)).toBe(true);
    expect(fake.ops.some((o) => o.startsWith('remove volume'))).toBe(false);
  });

  it('a moved image tag, a stopped container and a wrong address each recreate, keeping the volume', async () => {
    const p = plan();
    const fake = fakeWithImages(p);
    await applyRegistries(p, { docker: fake });
    const [a, b, c] = p.registries;

    fake.addImage(a!.image); // the tag now names another image
    const moved = await applyRegistries(p, { docker: fake });
    expect(containers(moved).every((x) => x.action === 'recreate' && x.reason === `image ${a!.image} changed`)).toBe(true);

    await fake.containers.stop(b!.containerName);
    // c is the mirror: one container, holding the address itself.
    fake.container(c!.containerName)!.networks[c!.network] = { ip: '10.141.11.77' };
    const actions = await applyRegistries(p, { docker: fake });
    const byName = new Map(containers(actions).map((x) => [x.name, x]));
    expect(byName.get(b!.containerName)).toMatchObject({ action: 'recreate', reason: 'container was exited' });
    expect(byName.get(c!.containerName)).toMatchObject({ action: 'recreate', reason: `address 10.141.11.77 -> ${c!.ip}` });
    expect(byName.get(a!.containerName)).toMatchObject({ action: 'noop' });
    for (const r of [b!, c!]) {
      expect(fake.container(r.containerName)!.running).toBe(true);
      expect(fake.container(r.containerName)!.volumes.map((v) => v.name)).toEqual([r.volume]);
    }
    expect(fake.ops.some((o) => o.startsWith('remove volume'))).toBe(false);
  });

  it('created but not started (a concurrent lo between create and start): started, reported noop', async () => {
    const p = plan();
    const fake = fakeWithImages(p);
    await applyRegistries(p, { docker: fake });
    const r = p.registries[0]!;
    const c = fake.container(r.containerName)!;
    Object.assign(fake.containerStore.get(c.id)!.state, { status: 'created', running: false });
    const actions = await applyRegistries(p, { docker: fake });
    expect(containers(actions).find((a) => a.name === r.containerName)).toEqual({
      kind: 'container',
      name: r.containerName,
      action: 'noop',
      reason: 'started (was created)',
    });
    expect(fake.container(r.containerName)!.id).toBe(c.id);
    expect(fake.container(r.containerName)!.running).toBe(true);
  });

  it('network of the plan name with another subnet -> typed error (exit 2), nothing created or written', async () => {
    const p = plan();
    const fake = fakeWithImages(p);
    fake.addNetwork({ name: 'lorc', subnet: '10.99.0.0/24' });
    const err = await applyRegistries(p, { docker: fake }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoError);
    expect((err as LoError).code).toBe('E_NETWORK_MISMATCH');
    expect((err as LoError).exitCode).toBe(2);
    expect((err as Error).message).toContain('network lorc exists with subnet 10.99.0.0/24, but the plan needs 10.141.10.0/24');
    expect(fake.ops).toEqual([]);
    for (const r of p.registries) expect(existsSync(r.configPath)).toBe(false);
    expect(existsSync(p.containerd.certsDir)).toBe(false);
  });

  it("another project's objects (same metadata.name, other spec directory) -> typed error naming its spec, nothing changed", async () => {
    const mine = plan({ mirrorUrl: 'http://10.141.11.250:5000' });
    const fake = fakeWithImages(mine);
    await applyRegistries(mine, { docker: fake });
    const before = [...fake.ops];
    const theirs = plan({ specDir: join(dir, 'elsewhere') });
    expect(theirs.project.name).toBe(mine.project.name);
    expect(theirs.project.id).not.toBe(mine.project.id);
    const err = await applyRegistries(theirs, { docker: fake }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoError);
    expect((err as LoError).code).toBe('E_PROJECT_CONFLICT');
    expect((err as LoError).exitCode).toBe(2);
    expect((err as Error).message).toContain(`belongs to another project named lorc (spec in ${dir})`);
    expect((err as LoError).hint).toContain('metadata.name');
    expect(fake.ops).toEqual(before);
  });

  it("destroy, status and P2P removal of a same-named project leave the other's cluster and agents", async () => {
    const mine = plan();
    const fake = fakeWithImages(mine);
    await applyRegistries(mine, { docker: fake });
    const theirs = plan({ specDir: join(dir, 'elsewhere') });
    // the kind cluster of that name sits on the network labelled as mine
    const node = fake.addContainer({
      name: 'lorc-control-plane',
      labels: { [KIND_LABELS.cluster]: 'lorc', [KIND_LABELS.role]: 'control-plane' },
      networks: { lorc: { ip: '10.141.10.2' } },
    });
    expect(await clusterOwner(theirs, fake)).toBe(`its network lorc belongs to the project in ${dir}`);
    expect(await clusterOwner(mine, fake)).toBeNull();
    expect(diffCluster(theirs, ['lorc'], `its network lorc belongs to the project in ${dir}`)).toEqual([
      { kind: 'cluster', name: 'lorc', action: 'noop', reason: `kept: its network lorc belongs to the project in ${dir}` },
    ]);
    // a cluster of that name whose nodes are on no network of the project (plain kind, another spec) is not ours either
    fake.containerStore.delete(node.id);
    fake.addContainer({ name: 'lorc-control-plane', labels: { [KIND_LABELS.cluster]: 'lorc' }, networks: { kind: { ip: '172.18.0.2' } } });
    expect(await clusterOwner(mine, fake)).toBe("its nodes are not on this project's network lorc");

    // P2P agents labelled with my id stay when the other project removes its agents
    fake.addContainer({
      name: 'lorc-control-plane-lo-p2p',
      labels: {
        [LABELS.project]: 'lorc',
        [LABELS.managedBy]: 'lo',
        [LABELS.role]: AGENT_ROLE,
        [LABELS.projectId]: mine.project.id,
        [LABELS.specDir]: dir,
      },
    });
    const before = fake.ops.length;
    expect(await removeP2P(theirs, fake)).toEqual([
      { kind: 'p2p agent', name: 'lorc-control-plane-lo-p2p', action: 'noop', reason: `kept: belongs to the project in ${dir}` },
    ]);
    expect(fake.ops.length).toBe(before);
  });

  it("shared mirrors off: an unshared mirror made under an earlier name keeps it (observed by labels); another project's is not adopted", async () => {
    const mine = specOf({ shared: false });
    const paths = { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') };
    const fresh = planCluster(mine, { paths });
    const mirror = fresh.registries.find((r) => r.role === 'mirror')!;
    expect(mirror.containerName).toBe('lorc-mirror-lorc-hub');
    // what an earlier lo made: lorc-registry-hub with its volume, labelled as this project's
    const fake = fakeWithImages(fresh);
    const old = { ...mirror.labels };
    fake.addContainer({ name: 'lorc-registry-lorc-hub', labels: old, networks: { lorc: { ip: mirror.ip } } });
    const observed = await observeShared(fake, mine);
    expect(observed.projectMirrors).toEqual([{ name: 'lorc-hub', containerName: 'lorc-registry-lorc-hub' }]);
    const kept = planCluster(mine, { paths, observed }).registries.find((r) => r.role === 'mirror')!;
    expect([kept.containerName, kept.volume]).toEqual(['lorc-registry-lorc-hub', 'lorc-registry-lorc-hub-data']);
    // the same container seen from another spec directory (same metadata.name) is not that project's to keep
    const theirs = specOf({ shared: false, specDir: join(dir, 'elsewhere') });
    expect((await observeShared(fake, theirs)).projectMirrors).toEqual([]);
  });

  it('objects without a project id (made by an older lo) are adopted: noop, not recreated', async () => {
    const p = plan();
    const fake = fakeWithImages(p);
    await applyRegistries(p, { docker: fake });
    for (const r of p.registries.filter((x) => x.scope === 'project')) {
      const labels = fake.container(r.containerName)!.labels;
      expect(labels[LABELS.projectId]).toBe(p.project.id);
      expect(labels[LABELS.specDir]).toBe(dir);
      delete labels[LABELS.projectId];
      delete labels[LABELS.specDir];
    }
    const again = await applyRegistries(plan({ specDir: join(dir, 'elsewhere') }), { docker: fake }).catch((e: unknown) => e);
    // the network still says whose it is
    expect((again as LoError).code).toBe('E_PROJECT_CONFLICT');
    expect(containers(await applyRegistries(p, { docker: fake })).every((a) => a.action === 'noop')).toBe(true);
  });

  it("a container of the registry's name that lo did not create is never replaced", async () => {
    const p = plan();
    const fake = fakeWithImages(p);
    const r = p.registries[0]!;
    fake.addContainer({ name: r.containerName, labels: { owner: 'someone' } });
    const err = await applyRegistries(p, { docker: fake }).catch((e: unknown) => e);
    expect((err as Error).message).toContain(`a container named ${r.containerName} exists and was not created by lo`);
    expect(fake.container(r.containerName)!.labels).toEqual({ owner: 'someone' });
  });

  it('the CA copy in certs.d is written once: create on the first run, noop on the second', async () => {
    const p = plan({ tls: true });
    const fake = fakeWithImages(p);
    const caFile = p.containerd.caFile!;
    const first = (await applyRegistries(p, { docker: fake })).filter((a) => a.name === caFile);
    expect(first).toEqual([{ kind: 'file', name: caFile, action: 'create' }]);
    const second = (await applyRegistries(p, { docker: fake })).filter((a) => a.name === caFile);
    expect(second).toEqual([{ kind: 'file', name: caFile, action: 'noop' }]);
  });

  it('every Docker call goes through the debug log: creating…, created… (ms), failed…', async () => {
    const p = plan();
    const lines: string[] = [];
    const fake = new FakeDocker(createLog({ write: (l) => lines.push(l) }));
    const r = p.registries[0]!;
    // registry:2 is missing and cannot be pulled: the failure is logged, then reported
    await expect(applyRegistries(p, { docker: fake })).rejects.toThrow(/could not be pulled/);
    expect(lines).toContain(`[lo] creating network lorc (10.141.10.0/24)…\n`);
    expect(lines.some((l) => /^\[lo\] created network lorc \(10\.141\.10\.0\/24\) \(\d+ ms\)\n$/.test(l))).toBe(true);
    expect(lines).toContain(`[lo] failed to pull image ${r.image}: image ${r.image} is not present and could not be pulled: offline\n`);
  });
});

/** What the fake engine holds: networks, containers (state and spec), volumes, images. */
function engineState(fake: FakeDocker): string {
  return JSON.stringify([[...fake.networkStore], [...fake.containerStore], [...fake.volumeStore], [...fake.imageStore]]);
}

describe('registry --dry-run: observe + diff, the same actions the run then takes', () => {
  async function dryThenReal(p: Plan, fake: FakeDocker): Promise<Action[]> {
    const files = fileTree(dir);
    const engine = engineState(fake);
    const ops = fake.ops.length;
    const dry = await previewRegistries(p, { docker: fake });
    // changed nothing: no Docker call but inspect/list, no file, directory, key or certificate written
    expect(fake.ops.slice(ops)).toEqual([]);
    expect(engineState(fake)).toBe(engine);
    expect(fileTree(dir)).toEqual(files);
    const real = await applyRegistries(p, { docker: fake });
    expect(dry).toEqual(real);
    return real;
  }

  it('fresh (TLS on: CA, certificates, CA copy): every create the run makes, nothing made by the dry run', async () => {
    const p = plan({ tls: true });
    const real = await dryThenReal(p, fakeWithImages(p));
    expect(real.filter((a) => a.action !== 'create')).toEqual([]);
    expect(real.filter((a) => a.kind === 'certificate').length).toBe(p.tls.certificates.length);
    expect(real.some((a) => a.name === p.containerd.caFile)).toBe(true);
  });

  it('drift: new config, a stopped container, a stale hosts.toml, a new certificate name: the same recreates and removes', async () => {
    const p = plan({ tls: true });
    const fake = fakeWithImages(p);
    await applyRegistries(p, { docker: fake });
    expect((await dryThenReal(p, fake)).filter((a) => a.action !== 'noop')).toEqual([]);

    const p2 = plan({ tls: true, mirrorUrl: 'http://10.141.11.251:5000' });
    await fake.containers.stop(p2.registries[0]!.containerName);
    const stale = join(p2.containerd.certsDir, 'old.example', 'hosts.toml');
    writeFileSync(join(p2.containerd.certsDir, p2.containerd.hosts[0]!.host, 'hosts.toml'), '# Written by lo\nedited\n');
    rmSync(p2.registries[1]!.configPath);
    mkdirSync(join(p2.containerd.certsDir, 'old.example'));
    writeFileSync(stale, '# Written by lo\nserver = "https://old.example"\n');
    // a certificate whose names no longer match is re-issued, and the container using it recreated
    const p3: Plan = {
      ...p2,
      tls: {
        ...p2.tls,
        certificates: p2.tls.certificates.map((c, i) => (i === 0 ? { ...c, names: [...c.names, 'extra.lok8s.local'] } : c)),
      },
    };
    const real = await dryThenReal(p3, fake);
    const changedOnes = real.filter((a) => a.action !== 'noop').map((a) => `${a.action} ${a.kind} ${a.name}`);
    expect(changedOnes).toEqual(
      expect.arrayContaining([
        `recreate certificate ${p3.tls.certificates[0]!.certPath}`,
        `recreate file ${p3.containerd.hosts[0]!.path}`,
        `create file ${p3.registries[1]!.configPath}`,
        `remove file ${stale}`,
        `recreate container ${p3.registries[0]!.containerName}`,
        `recreate container ${mirrorOf(p3).containerName}`,
      ]),
    );
    expect(existsSync(stale)).toBe(false);
    // and the run after is all noop, the dry run agreeing
    expect((await dryThenReal(p3, fake)).filter((a) => a.action !== 'noop')).toEqual([]);
  });
});

describe('P2P agents: reconcile decisions', () => {
  function cluster(p: Plan, fake: FakeDocker): string[] {
    fake.addImage('lo-agent:test');
    fake.addNetwork({ name: p.cluster.network, subnet: '10.141.10.0/24' });
    return p.cluster.nodes.map((n, i) => {
      fake.addContainer({
        name: n.name,
        labels: { [KIND_LABELS.role]: n.role },
        networks: { [p.cluster.network]: { ip: `10.141.10.${10 + i}` } },
      });
      return n.name;
    });
  }

  it('missing -> one agent per node in its namespaces; same -> noop; recreated node or stopped agent -> recreate; gone node -> remove', async () => {
    const p = plan({ workers: 2 });
    const fake = new FakeDocker();
    const nodes = cluster(p, fake);
    const deps = { docker: fake, image: 'lo-agent:test' };

    const first = await deployP2P(p, nodes, deps);
    expect(stepView(first[0]!)).toEqual({ action: 'create', object: `p2p key ${p.p2p.keyPath}` });
    expect(first.slice(1).map((a) => a.action)).toEqual(['create', 'create', 'create']);
    for (const n of nodes) {
      const agent = fake.containerStore.get(fake.container(`${n}-lo-p2p`)!.id)!;
      const node = fake.container(n)!;
      expect(agent.state.running).toBe(true);
      expect(agent.state.labels[LABELS.role]).toBe(AGENT_ROLE);
      expect(agent.state.labels[LABELS.node]).toBe(n);
      expect(agent.spec).toMatchObject({ network: `container:${node.id}`, pid: `container:${node.id}`, restart: 'unless-stopped' });
      expect(agent.spec!.binds).toEqual([{ source: p.p2p.keyPath, target: '/etc/lo/p2p/swarm.key', readOnly: true }]);
    }
    expect((await deployP2P(p, nodes, deps)).map((a) => a.action)).toEqual(['noop', 'noop', 'noop', 'noop']);

    // a changed swarm key recreates every agent (they read it at start); the label holds no key material
    const oldHash = fake.container(`${nodes[0]}-lo-p2p`)!.labels[LABELS.specHash];
    writeFileSync(p.p2p.keyPath, generateSwarmKey(), { mode: 0o600 });
    expect((await deployP2P(p, nodes, deps)).map((a) => a.action)).toEqual(['noop', 'recreate', 'recreate', 'recreate']);
    const agent0 = fake.container(`${nodes[0]}-lo-p2p`)!;
    expect(agent0.labels[LABELS.specHash]).not.toBe(oldHash);
    const key = readFileSync(p.p2p.keyPath, 'utf8').split('\n')[2]!;
    expect(JSON.stringify(agent0.labels)).not.toContain(key);
    expect((await deployP2P(p, nodes, deps)).map((a) => a.action)).toEqual(['noop', 'noop', 'noop', 'noop']);

    // node 1 recreated by kind (new container id), node 2's agent stopped
    const n1 = fake.container(nodes[1]!)!;
    await fake.containers.remove(n1.id);
    fake.addContainer({ name: n1.name, labels: n1.labels, networks: n1.networks });
    await fake.containers.stop(`${nodes[2]}-lo-p2p`);
    const third = await deployP2P(p, nodes, deps);
    expect(third.map(stepView).map((a) => `${a.action} ${a.object}`)).toEqual([
      `noop p2p key ${p.p2p.keyPath}`,
      `noop p2p agent ${nodes[0]}-lo-p2p`,
      `recreate p2p agent ${nodes[1]}-lo-p2p`,
      `recreate p2p agent ${nodes[2]}-lo-p2p`,
    ]);

    const fewer = await deployP2P(p, nodes.slice(0, 2), deps);
    expect(
      fewer
        .map(stepView)
        .filter((a) => a.action === 'remove')
        .map((a) => a.object),
    ).toEqual([`p2p agent ${nodes[2]}-lo-p2p`]);
    expect((await listP2PAgents(p, fake)).map((a) => [a.node, a.running])).toEqual([
      [nodes[0], true],
      [nodes[1], true],
    ]);
    expect((await removeP2P(p, fake)).map((a) => a.action)).toEqual(['remove', 'remove']);
    expect(await listP2PAgents(p, fake)).toEqual([]);
  });

  it("connectNodes attaches each node once; kind's load balancer is no Kubernetes node; a missing node is named", async () => {
    const p = plan({ workers: 1 });
    const fake = new FakeDocker();
    const nodes = cluster(p, fake);
    fake.addNetwork({ name: 'lorc-shared', subnet: '10.141.11.0/24' });
    fake.addContainer({ name: 'lorc-external-load-balancer', labels: { [KIND_LABELS.role]: 'external-load-balancer' } });
    expect(kubernetesNodes(await inspectKindNodes(fake.containers, [...nodes, 'lorc-external-load-balancer']))).toEqual(nodes);
    expect((await connectNodes(fake, nodes, 'lorc-shared')).map((a) => a.action)).toEqual(['create', 'create']);
    expect((await connectNodes(fake, nodes, 'lorc-shared')).map((a) => a.action)).toEqual(['noop', 'noop']);
    const err = await connectNodes(fake, ['lorc-ghost'], 'lorc-shared').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoError);
    expect((err as Error).message).toBe('cannot connect node lorc-ghost to network lorc-shared: no such container');
    await expect(inspectKindNodes(fake.containers, ['lorc-ghost'])).rejects.toThrow(
      /kind lists node lorc-ghost, but Docker has no such container/,
    );
  });
});
