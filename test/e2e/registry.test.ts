/**
 * `lo registry` on the real engine, one project with a shared mirror in front of a real upstream registry:2:
 * create, idempotent re-run, pulls through the mirror, push/read back on the build registry, drift recreating
 * only the affected container while volumes and data survive, status (running / stopped / unreachable) as
 * text and JSON, down keeping volumes, clean with and without --shared.
 */
import { readFileSync, statSync } from 'node:fs';
import { fileTree } from '../support/fileTree.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Action } from '../../src/apply/types.js';
import { registryClean, registryUp } from '../../src/usecases/registry.js';
import { connectClients } from '../../src/adapters/docker/index.js';
import { LABELS } from '../../src/plan/labels.js';
import {
  seedSharedUpstream,
  cleanupRun,
  clients,
  docker,
  eventually,
  inspectContainer,
  makeImage,
  manifestDigest,
  pullToDir,
  pushToRegistry,
  runLo,
  skopeo,
  workspace,
  type SpecInput,
  type Workspace,
  attachMirrorLogsOnFailure,
} from '../helpers/docker.js';

let ws: Workspace;
let spec: SpecInput;
let specFile: string;
let upstream: { name: string; url: string; ip: string };
let upstreamDigest: string;
const credsEnv = { LODK_USER: 'lodk-user', LODK_PASS: 'first-secret-value' };
/** The registry image, through a tag of this run (so a test can move the tag to a new image ID). */
let registryImage: string;
const cliEnv = (): NodeJS.ProcessEnv => ({ ...ws.env, ...credsEnv, LO_REGISTRY_IMAGE: registryImage });

const byName = (actions: Action[], kind: Action['kind'], name: string): Action | undefined =>
  actions.find((a) => a.kind === kind && a.name === name);
const changed = (actions: Action[]): Action[] => actions.filter((a) => a.action !== 'noop');
/** The actions without what only a real run can know: whether the containers it started answered (`serving`). */
const unserved = (actions: Action[]): Action[] => actions.map(({ serving: _serving, ...a }) => a);

beforeAll(async () => {
  ws = workspace();
  const id = ws.runId;
  spec = {
    name: `${id}a`,
    cidr: '10.140.10.0/24',
    sharedName: `${id}s`,
    sharedCidr: '10.140.11.0/24',
    tls: false,
    mirrors: [
      {
        name: `${id}-hub`,
        url: 'http://10.140.11.200:5000',
        registry: 'docker.io',
        credentials: { usernameEnv: 'LODK_USER', passwordEnv: 'LODK_PASS' },
      },
    ],
  };
  specFile = ws.writeSpec(spec);
  registryImage = `${id}/registry:2`;
  await docker.getImage('registry:2').tag({ repo: `${id}/registry`, tag: '2' });
  ({ upstream, digest: upstreamDigest } = await seedSharedUpstream(ws, spec, '10.140.11.200'));
});

afterAll(async () => {
  await docker
    .getContainer(`${ws?.runId}a-registry-build`)
    .unpause()
    .catch(() => undefined);
  await cleanupRun(ws);
});

const up = (o: { dryRun?: boolean } = {}) =>
  registryUp({ config: specFile }, { ...ws.deps, registryImage, env: { ...process.env, ...credsEnv }, ...o });

/** The run's containers (id, state, start time), volumes and networks on the engine. */
async function engineObjects(): Promise<string> {
  const filters = { label: [`dev.lok8s.lo.test-run=${ws.runId}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const { Volumes } = await docker.listVolumes({ filters });
  const networks = await docker.listNetworks({ filters: { name: [spec.name, spec.sharedName] } });
  const started = await Promise.all(containers.map(async (c) => (await docker.getContainer(c.Id).inspect()).State.StartedAt));
  return JSON.stringify([
    containers.map((c, i) => `${c.Names.join()} ${c.Id} ${c.State} ${started[i]}`).sort(),
    (Volumes ?? []).map((v) => v.Name).sort(),
    networks.map((n) => `${n.Name} ${n.Id}`).sort(),
  ]);
}

attachMirrorLogsOnFailure(() => ws);

describe('lo registry up on a real engine', () => {
  it('creates the project network, volumes and registry containers the plan lists', async () => {
    // --dry-run first: observe + diff only, then the run takes exactly those actions
    const files = fileTree(ws.deps.paths.stateDir, ws.deps.paths.caRoot);
    const engine = await engineObjects();
    const dry = await up({ dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(fileTree(ws.deps.paths.stateDir, ws.deps.paths.caRoot)).toEqual(files);
    expect(await engineObjects()).toBe(engine);
    const { actions, plan } = await up();
    expect(dry.actions).toEqual(unserved(actions));
    const id = ws.runId;
    expect(byName(actions, 'network', spec.name)?.action).toBe('create');
    expect(byName(actions, 'network', spec.sharedName)?.action).toBe('noop');
    for (const r of plan.registries) {
      expect(byName(actions, 'container', r.containerName)?.action).toBe('create');
      expect(byName(actions, 'volume', r.volume)?.action).toBe('create');
    }
    expect(plan.registries.map((r) => r.containerName).sort()).toEqual(
      [`${id}a-registry-build`, `${id}a-registry-cache`, `lok8s-registry-${id}-hub`].sort(),
    );

    const net = await docker.getNetwork(spec.name).inspect();
    expect(net.IPAM?.Config?.[0]).toMatchObject({ Subnet: '10.140.10.0/24', Gateway: '10.140.10.1', IPRange: '10.140.10.128/25' });
    expect(net.Options?.['com.docker.network.bridge.name']).toBe(spec.name);

    const build = (await inspectContainer(`${id}a-registry-build`))!;
    expect(build.State.Running).toBe(true);
    expect(build.HostConfig.RestartPolicy?.Name).toBe('always');
    expect(build.NetworkSettings.Networks[spec.name]?.IPAddress).toBe('10.140.10.101');
    expect(build.Config.Labels[LABELS.managedBy]).toBe('lo');
    expect(build.Config.Labels[LABELS.role]).toBe('build');
    expect(build.Config.Labels[LABELS.project]).toBe(spec.name);
    expect(build.Config.Labels['dev.lok8s.lo.test-run']).toBe(id);
    expect(build.Mounts.map((m) => `${m.Type}:${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort()).toEqual([
      'bind:/etc/lo/registry:ro',
      'volume:/var/lib/registry:rw',
    ]);

    const mirror = (await inspectContainer(`lok8s-registry-${id}-hub`))!;
    // One container holds the mirror's address; its supervisor runs the proxy and the read-only replica (docs/offline.md).
    expect(mirror.NetworkSettings.Networks[spec.sharedName]?.IPAddress).toBe('10.140.11.2');
    expect(mirror.Config.Entrypoint).toEqual(['/bin/sh']);
    expect(mirror.Config.Cmd).toEqual(['/etc/lo/registry/mirror.sh']);
    expect(await inspectContainer(`lok8s-registry-${id}-hub-replica`)).toBeNull();
    expect(mirror.Config.Labels[LABELS.upstream]).toBe('http://10.140.11.200:5000');
    // Credentials are in the 0600 file only, never in labels.
    const cfg = plan.registries.find((r) => r.role === 'mirror')!.configPath;
    expect(statSync(cfg).mode & 0o777).toBe(0o600);
    expect(readFileSync(cfg, 'utf8')).toContain('first-secret-value');
    expect(JSON.stringify(mirror.Config.Labels)).not.toContain('first-secret-value');
  });

  it('pulls docker.io/library/<x> through the mirror: the seeded manifest and blobs', async () => {
    const id = ws.runId;
    // The mirror serves docker.io's namespace: library/<x> as containerd asks for docker.io/library/<x>.
    expect(await manifestDigest(`10.140.11.2:80/library/${id}:v1`)).toBe(upstreamDigest);
    const pulled = await pullToDir(ws, `10.140.11.2:80/library/${id}:v1`);
    expect(pulled.layers.length).toBe(1);
    for (const digest of pulled.layers) {
      const blob = readFileSync(join(pulled.dir, digest.replace('sha256:', '')));
      expect(`sha256:${createHash('sha256').update(blob).digest('hex')}`).toBe(digest);
    }
    const fromUpstream = await pullToDir(ws, `10.140.11.200:5000/library/${id}:v1`);
    expect(pulled.layers).toEqual(fromUpstream.layers);
  });

  it('is idempotent: a second up returns only noops and says so', async () => {
    const { actions } = await up();
    expect(changed(actions)).toEqual([]);
    expect(actions.length).toBeGreaterThan(10);
    const cli = await runLo(['registry', 'up', '--config', specFile], cliEnv());
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^nothing to do: \d+ objects already match the plan$/m);
    const json = await runLo(['registry', 'up', '--config', specFile, '--json'], cliEnv());
    const doc = JSON.parse(json.stdout) as { changed: boolean; actions: Action[] };
    expect(doc.changed).toBe(false);
    expect(doc.actions.every((a) => a.action === 'noop')).toBe(true);
  });

  it('--dry-run lists what would change and changes nothing', async () => {
    const build = (await inspectContainer(`${ws.runId}a-registry-build`))!;
    await docker.getContainer(build.Id).stop({ t: 1 });
    const files = fileTree(ws.deps.paths.stateDir, ws.deps.paths.caRoot);
    const dry = await runLo(['registry', 'up', '--config', specFile, '--dry-run'], cliEnv());
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would recreate container   ${ws.runId}a-registry-build  (container was exited)`);
    const json = JSON.parse((await runLo(['registry', 'up', '--config', specFile, '--dry-run', '--json'], cliEnv())).stdout) as {
      dryRun: boolean;
      actions: Action[];
    };
    expect(json.dryRun).toBe(true);
    expect(changed(json.actions).map((a) => `${a.action} ${a.name}`)).toEqual([`recreate ${ws.runId}a-registry-build`]);
    // observe + diff only: the container was neither replaced nor started, no file was touched
    const after = (await inspectContainer(`${ws.runId}a-registry-build`))!;
    expect(after.Id).toBe(build.Id);
    expect(after.State.Running).toBe(false);
    expect(fileTree(ws.deps.paths.stateDir, ws.deps.paths.caRoot)).toEqual(files);
    // the run then takes the actions the dry run printed, and only those
    const real = JSON.parse((await runLo(['registry', 'up', '--config', specFile, '--json'], cliEnv())).stdout) as { actions: Action[] };
    expect(unserved(real.actions)).toEqual(json.actions);
    expect((await inspectContainer(`${ws.runId}a-registry-build`))!.State.Running).toBe(true);
  });

  it('accepts pushes on the build registry and reads them back', async () => {
    const app = await makeImage(ws, 'app', 'v1', 8192);
    await pushToRegistry(app, '10.140.10.101:80/app:v1');
    const back = await pullToDir(ws, '10.140.10.101:80/app:v1');
    expect(back.layers.length).toBe(1);
    const catalog = (await (await fetch('http://10.140.10.101/v2/_catalog')).json()) as { repositories: string[] };
    expect(catalog.repositories).toContain('app');
  });

  it('recreates only drifted containers (stopped, moved, new config) and keeps their volumes and data', async () => {
    const id = ws.runId;
    const before = Object.fromEntries(
      await Promise.all(['a-registry-build', 'a-registry-cache'].map(async (n) => [n, (await inspectContainer(`${id}${n}`))!.Id] as const)),
    );
    const mirrorBefore = (await inspectContainer(`lok8s-registry-${id}-hub`))!.Id;
    const appDigest = await manifestDigest('10.140.10.101:80/app:v1');

    // build: stopped; cache: moved to another address
    await docker.getContainer(`${id}a-registry-build`).stop({ t: 1 });
    await docker.getNetwork(spec.name).disconnect({ Container: `${id}a-registry-cache`, Force: true });
    await docker
      .getNetwork(spec.name)
      .connect({ Container: `${id}a-registry-cache`, EndpointConfig: { IPAMConfig: { IPv4Address: '10.140.10.120' } } });

    const { actions } = await up();
    expect(
      changed(actions)
        .map((a) => `${a.kind} ${a.name} ${a.action}`)
        .sort(),
    ).toEqual([`container ${id}a-registry-build recreate`, `container ${id}a-registry-cache recreate`]);
    expect(byName(actions, 'container', `${id}a-registry-build`)?.reason).toBe('container was exited');
    expect(byName(actions, 'container', `${id}a-registry-cache`)?.reason).toBe('address 10.140.10.120 -> 10.140.10.102');
    expect((await inspectContainer(`${id}a-registry-build`))!.Id).not.toBe(before['a-registry-build']);
    expect((await inspectContainer(`${id}a-registry-cache`))!.Id).not.toBe(before['a-registry-cache']);
    expect((await inspectContainer(`${id}a-registry-cache`))!.NetworkSettings.Networks[spec.name]?.IPAddress).toBe('10.140.10.102');
    expect((await inspectContainer(`lok8s-registry-${id}-hub`))!.Id).toBe(mirrorBefore);
    // The pushed image survived in the kept volume.
    expect(await eventually(() => manifestDigest('10.140.10.101:80/app:v1'))).toBe(appDigest);

    // mirror: a new upstream password changes its config -> only the mirror is recreated, its cache stays.
    credsEnv.LODK_PASS = 'second-secret-value';
    const { actions: again } = await up();
    expect(
      changed(again)
        .map((a) => `${a.kind} ${a.name} ${a.action}`)
        .sort(),
    ).toEqual([
      `container lok8s-registry-${id}-hub recreate`,
      `file ${ws.plan(spec).registries.find((r) => r.role === 'mirror')!.configPath} recreate`,
    ]);
    expect(byName(again, 'container', `lok8s-registry-${id}-hub`)?.reason).toBe('configuration or certificate changed');
    expect(byName(again, 'volume', `lok8s-registry-${id}-hub-data`)?.action).toBe('noop');
    // registry:2 (distribution 2.8) asks the upstream for its auth challenge when it starts and exits when
    // that fails, so wait until the recreated mirror serves before taking the upstream away.
    await eventually(() => manifestDigest(`10.140.11.2:80/library/${id}:v1`));
    // With the upstream stopped, the recreated mirror still serves the cached image from its volume.
    await docker.getContainer(upstream.name).stop({ t: 1 });
    try {
      const cached = await eventually(() => pullToDir(ws, `10.140.11.2:80/library/${id}@${upstreamDigest}`));
      expect(cached.layers.length).toBe(1);
    } finally {
      await docker.getContainer(upstream.name).start();
    }
  });

  it('a new image behind the same reference recreates every container using it, keeping volumes and data', async () => {
    const id = ws.runId;
    const before = (await docker.getImage(registryImage).inspect()).Id;
    // `docker commit` gives the same content a new image ID and moves this run's tag to it.
    await docker.getContainer(`${id}a-registry-build`).commit({ repo: `${id}/registry`, tag: '2' });
    expect((await docker.getImage(registryImage).inspect()).Id).not.toBe(before);
    const { actions } = await up();
    expect(
      changed(actions)
        .map((a) => `${a.action} ${a.name} (${a.reason})`)
        .sort(),
    ).toEqual(
      [`${id}a-registry-build`, `${id}a-registry-cache`, `lok8s-registry-${id}-hub`]
        .map((n) => `recreate ${n} (image ${registryImage} changed)`)
        .sort(),
    );
    expect(actions.filter((a) => a.kind === 'volume').every((a) => a.action === 'noop')).toBe(true);
    expect(await eventually(() => manifestDigest('10.140.10.101:80/app:v1'))).toMatch(/^sha256:/);
    await eventually(() => manifestDigest(`10.140.11.2:80/library/${id}:v1`));
  });

  it('a registry image without /bin/sh is refused for the mirror (exit 5, the fix named) and no container is touched', async () => {
    const id = ws.runId;
    // This run's registry image with /bin/sh taken out (same binary and entrypoint): fine for build and cache,
    // not for the mirror's supervisor.
    const noShell = `${id}/noshell:2`;
    await execa('sh', [
      '-c',
      `c=$(docker create ${registryImage}) && docker export "$c" | tar --delete -f - bin/sh | docker import --change 'ENTRYPOINT ["/bin/registry","serve"]' - ${noShell}; s=$?; docker rm -v "$c" >/dev/null; exit $s`,
    ]);
    const names = [`${id}a-registry-build`, `${id}a-registry-cache`, `lok8s-registry-${id}-hub`];
    const before = await Promise.all(names.map(async (n) => (await inspectContainer(n))!.Id));
    const r = await runLo(['registry', 'up', '--config', specFile], { ...cliEnv(), LO_REGISTRY_IMAGE: noShell });
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain(`image ${noShell} has no /bin/sh`);
    expect(r.stderr).toContain('LO_REGISTRY_IMAGE');
    expect(await Promise.all(names.map(async (n) => (await inspectContainer(n))!.Id))).toEqual(before);
    // the look-up container is gone
    expect(
      await docker.listContainers({ all: true, filters: { label: [`${LABELS.role}=image-check`, `dev.lok8s.lo.test-run=${id}`] } }),
    ).toEqual([]);
    // and the image with a shell still is a no-op
    expect(changed((await up()).actions)).toEqual([]);
  });

  it("the image check (/bin/sh look-up) leaves no volume behind: registry:2's VOLUME goes with its container", async () => {
    const id = ws.runId;
    const images = (await connectClients({ env: process.env })).images;
    const since = Math.floor(Date.now() / 1000) - 1;
    expect(await images.hasPath(registryImage, '/bin/sh', { [LABELS.role]: 'image-check', 'dev.lok8s.lo.test-run': id })).toBe(true);
    expect(await images.hasPath(registryImage, '/no/such/file', { [LABELS.role]: 'image-check', 'dev.lok8s.lo.test-run': id })).toBe(false);
    const until = Math.floor(Date.now() / 1000) + 1;
    // the volumes created meanwhile (Docker reports them as events), of which none may be left unused
    // (the event stream ends at `until`)
    const events = (await docker.getEvents({ since, until, filters: { type: ['volume'], event: ['create'] } })) as NodeJS.ReadableStream;
    let text = '';
    for await (const chunk of events) text += String(chunk);
    const created = text
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { Actor: { ID: string } }).Actor.ID);
    expect(created.length).toBeGreaterThanOrEqual(2); // the check could fail: each look-up made one
    const dangling = (await docker.listVolumes({ filters: { dangling: ['true'] } })).Volumes.map((v) => v.Name);
    expect(created.filter((v) => dangling.includes(v))).toEqual([]);
  });

  it('status: running registries show their catalog, a stopped one "not running", a frozen one "running but unreachable"', async () => {
    const id = ws.runId;
    const env = cliEnv();
    // all running
    const ok = JSON.parse((await runLo(['registry', 'status', '--config', specFile, '--shared', '--json'], env)).stdout) as {
      registries: Array<{
        name: string;
        containerName: string;
        address: string;
        network: string;
        state: string;
        health: string;
        catalog: string[] | null;
      }>;
    };
    const build = ok.registries.find((r) => r.name === 'build')!;
    expect(build).toMatchObject({
      containerName: `${id}a-registry-build`,
      address: '10.140.10.101',
      network: spec.name,
      state: 'running',
      health: 'running',
    });
    expect(build.catalog).toEqual(['app']);
    expect(ok.registries.find((r) => r.name === `${id}-hub`)).toMatchObject({
      address: '10.140.11.2',
      network: spec.sharedName,
      health: 'running',
      catalog: [`library/${id}`],
    });
    // without --shared: project registries only
    const own = JSON.parse((await runLo(['registry', 'status', '--config', specFile, '--json'], env)).stdout) as {
      registries: Array<{ name: string }>;
    };
    expect(own.registries.map((r) => r.name).sort()).toEqual(['build', 'cache']);

    await docker.getContainer(`${id}a-registry-cache`).stop({ t: 1 });
    await docker.getContainer(`${id}a-registry-build`).pause();
    try {
      // (How long this takes, probes in parallel with a short timeout, is measured by `npm run bench`: registry.)
      const [text, json] = await Promise.all([
        runLo(['registry', 'status', '--config', specFile, '--shared'], env),
        runLo(['registry', 'status', '--config', specFile, '--shared', '--json'], env),
      ]);
      const doc = JSON.parse(json.stdout) as typeof ok;
      expect(doc.registries.find((r) => r.name === 'cache')).toMatchObject({ state: 'exited', health: 'not running', catalog: null });
      expect(doc.registries.find((r) => r.name === 'build')).toMatchObject({
        state: 'paused',
        health: 'running but unreachable',
        catalog: null,
      });
      expect(doc.registries.find((r) => r.name === `${id}-hub`)).toMatchObject({ health: 'running' });
      const line = (name: string): string => text.stdout.split('\n').find((l) => l.includes(name)) ?? '';
      expect(line(`${id}a-registry-cache`)).toMatch(/10\.140\.10\.102\s+\S+\s+exited\s+(?:-|[\d.]+ \S+)\s+not running$/);
      expect(line(`${id}a-registry-build`)).toMatch(/paused\s+(?:-|[\d.]+ \S+)\s+running but unreachable \(no answer within \d+ ms\)$/);
      expect(line(`lok8s-registry-${id}-hub`)).toMatch(/running\s+(?:-|[\d.]+ \S+)\s+catalog: library\/lodk-/);
      expect(text.stdout.split('\n')[1]).toMatch(/^REGISTRY\s+CONTAINER\s+ADDRESS\s+NETWORK\s+STATE\s+DISK\s+CATALOG$/);
    } finally {
      await docker.getContainer(`${id}a-registry-build`).unpause();
    }
    const { actions } = await up();
    expect(changed(actions).map((a) => a.name)).toEqual([`${id}a-registry-cache`]);
  });

  it('down removes the project containers and keeps volumes (and the shared mirror without --shared)', async () => {
    const id = ws.runId;
    const down = await runLo(['registry', 'down', '--config', specFile, '--json'], cliEnv());
    expect(down.code).toBe(0);
    const doc = JSON.parse(down.stdout) as { actions: Action[] };
    expect(doc.actions.map((a) => `${a.action} ${a.name}`).sort()).toEqual([
      `remove ${id}a-registry-build`,
      `remove ${id}a-registry-cache`,
    ]);
    expect(await inspectContainer(`${id}a-registry-build`)).toBeNull();
    expect(await inspectContainer(`lok8s-registry-${id}-hub`)).not.toBeNull();
    for (const v of [`${id}a-registry-build-data`, `${id}a-registry-cache-data`]) expect(await clients.volumes.inspect(v)).not.toBeNull();
    // up again: the pushed image is still there
    const { actions } = await up();
    expect(
      changed(actions)
        .map((a) => `${a.action} ${a.name}`)
        .sort(),
    ).toEqual([`create ${id}a-registry-build`, `create ${id}a-registry-cache`]);
    expect(await eventually(() => skopeo(['inspect', '--tls-verify=false', 'docker://10.140.10.101:80/app:v1']))).toContain('"Digest"');
  });

  it('clean removes project containers and volumes; --shared also the mirror, keeping the network while others are attached', async () => {
    const id = ws.runId;
    const clean = await runLo(['registry', 'clean', '--config', specFile], cliEnv());
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain(`removed        volume      ${id}a-registry-build-data`);
    expect(clean.stdout).toContain(`removed        network     ${spec.name}`);
    expect(await clients.volumes.inspect(`${id}a-registry-build-data`)).toBeNull();
    expect(await clients.volumes.inspect(`${id}a-registry-cache-data`)).toBeNull();
    expect(await inspectContainer(`lok8s-registry-${id}-hub`)).not.toBeNull();
    expect(await clients.volumes.inspect(`lok8s-registry-${id}-hub-data`)).not.toBeNull();

    const shared = await registryClean({ config: specFile }, { ...ws.deps, registryImage, shared: true });
    expect(shared.actions.map((a) => `${a.action} ${a.kind} ${a.name}`)).toEqual(
      expect.arrayContaining([`remove container lok8s-registry-${id}-hub`, `remove volume lok8s-registry-${id}-hub-data`]),
    );
    expect(shared.actions.find((a) => a.kind === 'network' && a.name === spec.sharedName)).toEqual({
      kind: 'network',
      name: spec.sharedName,
      action: 'noop',
      reason: `kept: still attached: ${upstream.name}`,
    });
    expect(await clients.networks.inspect(spec.sharedName)).not.toBeNull();

    await docker.getContainer(upstream.name).remove({ force: true, v: true });
    const last = await registryClean({ config: specFile }, { ...ws.deps, registryImage, shared: true });
    expect(last.actions).toEqual([{ kind: 'network', name: spec.sharedName, action: 'remove' }]);
    expect(await clients.networks.inspect(spec.sharedName)).toBeNull();
  });
});
