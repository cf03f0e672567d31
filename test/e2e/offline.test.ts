/**
 * Issue 11 on the real engine: mirrors that hold offline. A plain-HTTP upstream registry:2 the test owns, lo's
 * shared mirror (one container: its supervisor runs the proxy and a read-only replica) in front of it, and a containerd node (lo-test/node, containerd
 * 1.6) pulling over CRI through the certs.d tree lo wrote. Run the whole file under the e2e lock; one test
 * restarts the Docker engine, only with LO_E2E_RESTART_ENGINE=1.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryStatus, registryUp } from '../../src/usecases/registry.js';
import { registryGc } from '../../src/usecases/registryGc.js';
import {
  cleanupRun,
  clients,
  docker,
  eventually,
  makeImage,
  manifestDigest,
  pushToRegistry,
  startUpstream,
  TEST_RUN_LABEL,
  workspace,
  type SpecInput,
  type Workspace,
  attachMirrorLogsOnFailure,
} from '../helpers/docker.js';
import { criPull } from '../helpers/cri.js';
import { ctr } from '../helpers/kind.js';
import { LABELS } from '../../src/plan/labels.js';

let ws: Workspace;
let spec: SpecInput;
let specFile: string;
let upstream: { name: string; url: string; ip: string };
const REG = 'offline.test';
let mirrorName: string;
let volume: string;
let node: string;
let digest: string;
/** Repositories cached by optional tests (the engine restart's), pulled again in the gc test's access order. */
const alsoCached: string[] = [];

/**
 * One pull as a node does it: CRI PullImage, as the kubelet asks (test/helpers/cri.ts), so containerd reads
 * the certs.d tree lo wrote through its config_path. The node's copy (images and content of the k8s.io
 * namespace) is removed first, so the bytes really come from a registry. Never throws; returns the time taken.
 */
async function nodePull(ref: string): Promise<{ ok: boolean; ms: number; out: string }> {
  // The node image has no shell: list, then remove with ctr itself.
  const images = (await ctr(node, ['images', 'ls', '-q'])).out.split('\n').filter(Boolean);
  if (images.length) await ctr(node, ['images', 'rm', ...images]);
  const content = (await ctr(node, ['content', 'ls', '-q'])).out.split('\n').filter(Boolean);
  if (content.length) await ctr(node, ['content', 'rm', ...content]);
  const started = performance.now();
  const r = await criPull(node, ref);
  return { ok: r.code === 0, ms: performance.now() - started, out: r.out };
}

/** Whether a TCP connect to ip:port is refused at once (rather than answered or left hanging). */
function refuses(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: ip, port, timeout: 1000 });
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('timeout', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function waitRunning(name: string, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => {
    const i = await docker.getContainer(name).inspect();
    if (!i.State.Running) throw new Error(`${name} not running`);
  }, timeoutMs);
}

/** The mirror's address on the shared network. */
async function mirrorIp(): Promise<string> {
  return (await docker.getContainer(mirrorName).inspect()).NetworkSettings.Networks[spec.sharedName]!.IPAMConfig!.IPv4Address!;
}

/** `sh mirror.sh hold|resume` in the mirror: its supervisor stops the proxy process and keeps it stopped, or lets it start. */
async function proxy(verb: 'hold' | 'resume'): Promise<void> {
  await execa('docker', ['exec', mirrorName, '/bin/sh', '/etc/lo/registry/mirror.sh', verb]);
}

async function volumePath(): Promise<string> {
  return ((await docker.getVolume(volume).inspect()) as { Mountpoint: string }).Mountpoint;
}

beforeAll(async () => {
  ws = workspace();
  const id = ws.runId;
  spec = {
    name: id,
    cidr: '10.140.167.0/24',
    sharedName: `${id}-shared`,
    sharedCidr: '10.140.168.0/24',
    tls: false,
    mirrors: [],
  };
  // The upstream lives on the shared network (an address the planner leaves alone: .200).
  await docker.createNetwork({ Name: `${id}-up`, Labels: { [TEST_RUN_LABEL]: id }, IPAM: { Config: [{ Subnet: '10.140.169.0/24' }] } });
  upstream = await startUpstream(ws, `${id}-upstream`, `${id}-up`, '10.140.169.10');
  spec.mirrors = [{ name: `${id}-hub`, url: upstream.url, registry: REG }];
  specFile = ws.writeSpec(spec);
  // The mirror cannot reach its upstream yet (another network): up waits its bound, then reports it serving
  // offline from its replica instead of failing.
  const { actions } = await registryUp({ config: specFile }, ws.deps);
  const made = actions.filter((a) => a.kind === 'container').map((a) => `${a.name}:${a.action}`);
  expect(made).toContain(`lok8s-registry-${id}-hub:create`);
  expect(made.filter((x) => x.includes('replica'))).toEqual([]);
  mirrorName = `lok8s-registry-${id}-hub`;
  const hub = actions.find((a) => a.kind === 'container' && a.name === mirrorName)!;
  expect(hub.serving).toBe('serving offline');
  expect(hub.reason).toMatch(
    /serving offline: the pull-through proxy did not answer within 15 s .*read-only replica http:\/\/[\d.]+:5080 serves the cache/,
  );
  volume = `${mirrorName}-data`;
  // The proxy reaches the upstream: connect the mirror to the upstream's network.
  await docker.getNetwork(`${id}-up`).connect({ Container: mirrorName });
  await docker.getContainer(mirrorName).restart({ t: 1 });

  const ref = await makeImage(ws, 'app', 'v1', 64 * 1024);
  await pushToRegistry(ref, `${upstream.ip}:5000/team/app:v1`);
  digest = await manifestDigest(`${upstream.ip}:5000/team/app:v1`);

  node = `${id}-node`;
  const plan = ws.plan(spec);
  await (
    await docker.createContainer({
      name: node,
      Image: 'lo-test/node:containerd',
      Labels: { [TEST_RUN_LABEL]: id },
      HostConfig: {
        NetworkMode: spec.sharedName,
        RestartPolicy: { Name: 'always' },
        CapAdd: ['SYS_ADMIN'],
        SecurityOpt: ['seccomp=unconfined'],
        Mounts: [{ Type: 'bind', Source: plan.containerd.certsDir, Target: '/etc/containerd/certs.d', ReadOnly: true }],
      },
    })
  ).start();
  // Like a kind node, also on the project network: hosts.toml lists the project's cache registry first.
  await docker.getNetwork(spec.name).connect({ Container: node });
  await eventually(() => execa('docker', ['exec', node, 'ctr', 'version']));
}, 120_000);

afterAll(async () => {
  await cleanupRun(ws);
}, 120_000);

attachMirrorLogsOnFailure(() => ws);

describe('offline mirrors (issue 11)', () => {
  it('one container per mirror, on its own network: the proxy on :80, the read-only replica on :5080 of the same address', async () => {
    const c = await docker.getContainer(mirrorName).inspect();
    expect(c.HostConfig.NetworkMode).toBe(spec.sharedName);
    expect(c.HostConfig.RestartPolicy?.Name).toBe('always');
    expect(c.Config.Entrypoint).toEqual(['/bin/sh']);
    const replicas = await docker.listContainers({ all: true, filters: { label: ['dev.lok8s.lo.role=replica'], name: [mirrorName] } });
    expect(replicas).toEqual([]);
    const ip = await mirrorIp();
    await eventually(async () => expect((await fetch(`http://${ip}:5080/v2/`)).status).toBe(200));
    await eventually(async () => expect((await fetch(`http://${ip}:80/v2/`)).status).toBe(200));
    // read-only: a push is refused
    const put = await fetch(`http://${ip}:5080/v2/x/blobs/uploads/`, { method: 'POST' });
    expect(put.status).toBeGreaterThanOrEqual(400);
  });

  it('pulls through the proxy while the upstream is up, and the replica then serves it by tag and digest', async () => {
    const r = await nodePull(`${REG}/team/app:v1`);
    expect(r.ok, r.out).toBe(true);
    const ip = await mirrorIp();
    const accept = { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' };
    expect((await fetch(`http://${ip}:5080/v2/team/app/manifests/v1`, { headers: accept })).status).toBe(200);
    expect((await fetch(`http://${ip}:5080/v2/team/app/manifests/${digest}`, { headers: accept })).status).toBe(200);
  });

  it('upstream stopped, mirror restarted: the cached image pulls by tag and by digest, fast; status says offline', async () => {
    await docker.getContainer(upstream.name).stop({ t: 1 });
    await docker.getContainer(mirrorName).restart({ t: 1 });
    // `docker restart` restarts the replica with its container: it listens within a moment.
    const ip = await mirrorIp();
    await eventually(() => fetch(`http://${ip}:5080/v2/`));
    const byTag = await nodePull(`${REG}/team/app:v1`);
    expect(byTag.ok, byTag.out).toBe(true);
    const byDigest = await nodePull(`${REG}/team/app@${digest}`);
    expect(byDigest.ok, byDigest.out).toBe(true);
    console.log(
      `[offline] cached pull after mirror restart, upstream down: tag ${byTag.ms.toFixed(0)} ms, digest ${byDigest.ms.toFixed(0)} ms`,
    );
    expect(byTag.ms).toBeLessThan(5000);
    const s = await registryStatus({ config: specFile }, { ...ws.deps, shared: true });
    const m = s.registries.find((x) => x.name === `${ws.runId}-hub`)!;
    expect(m.replica?.health).toBe('running');
    expect(m.offline).toBe(true);
    expect(m.upstreamReachable).toBe(false);
    expect(m.diskBytes).toBeGreaterThan(64 * 1024);
  }, 120_000);

  it('fallback from a stopped mirror (proxy) to the replica takes under 2 s (the port refuses, the address stays)', async () => {
    // The supervisor stops the proxy process and keeps it down (as while the upstream is unreachable at start).
    await proxy('hold');
    try {
      // The proxy's port on the address refuses at once (the replica keeps the address), so containerd
      // moves on to the replica's host entry.
      const ip = await mirrorIp();
      expect(await refuses(ip, 80)).toBe(true);
      const r = await nodePull(`${REG}/team/app:v1`);
      expect(r.ok, r.out).toBe(true);
      console.log(`[offline] pull with the proxy stopped (fallback to replica): ${r.ms.toFixed(0)} ms`);
      expect(r.ms).toBeLessThan(2000);
    } finally {
      await proxy('resume');
    }
  }, 60_000);

  it('upstream back: a new image pulls through again without lo being run (restart policy)', async () => {
    await docker.getContainer(upstream.name).start();
    await eventually(() => fetch(`${upstream.url}/v2/`));
    const ref = await makeImage(ws, 'fresh', 'v1');
    await pushToRegistry(ref, `${upstream.ip}:5000/team/fresh:v1`);
    // The proxy may be waiting out its supervisor's back-off (at most 30 s) or a TCP connect to the vanished upstream.
    const r = await eventually(async () => {
      const p = await nodePull(`${REG}/team/fresh:v1`);
      if (!p.ok) throw new Error(p.out);
      return p;
    }, 150_000);
    expect(r.ok).toBe(true);
    const s = await registryStatus({ config: specFile }, { ...ws.deps, shared: true });
    const m = s.registries.find((x) => x.name === `${ws.runId}-hub`)!;
    expect(m.health).toBe('running');
    expect(m.offline).toBe(false);
    expect(m.catalog).toEqual(expect.arrayContaining(['team/app', 'team/fresh']));
  }, 200_000);

  it('after a restart of the whole engine, offline: the cache pulls at once; the upstream back, a NEW image pulls through without lo', async () => {
    // Restarting the engine stops every container on it, the other runs' too: only when asked for.
    if (process.env.LO_E2E_RESTART_ENGINE !== '1') {
      console.log('[offline] engine restart not requested (LO_E2E_RESTART_ENGINE=1): skipped');
      return;
    }
    await docker.getContainer(upstream.name).stop({ t: 1 });
    const pid = (await execa('pgrep', ['-x', 'dockerd'], { reject: false })).stdout.split('\n')[0];
    if (!pid || process.getuid?.() !== 0) {
      console.log('[offline] dockerd is not ours to restart here (not root or not found): skipped');
      return;
    }
    process.kill(Number(pid), 'SIGTERM');
    await eventually(async () => {
      try {
        process.kill(Number(pid), 0);
      } catch {
        return;
      }
      throw new Error('dockerd still running');
    }, 60_000);
    // as scripts/testbed.sh starts it
    // Detached, no stdio of ours, every inherited descriptor above 2 closed (as scripts/testbed.sh does): dockerd
    // outlives the test and must not hold the e2e lock (flock) or vitest's pipes.
    execa(
      'bash',
      [
        '-c',
        'for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec setsid dockerd >>/var/log/lo-dockerd.log 2>&1 </dev/null',
      ],
      { detached: true, stdio: 'ignore', reject: false },
    ).unref();
    const restarted = performance.now();
    await eventually(() => docker.ping(), 60_000);
    await waitRunning(mirrorName);
    await waitRunning(node);
    await eventually(() => execa('docker', ['exec', node, 'ctr', 'version']));
    expect((await docker.getContainer(upstream.name).inspect()).State.Running).toBe(false);
    const r = await nodePull(`${REG}/team/app:v1`);
    expect(r.ok, r.out).toBe(true);
    console.log(`[offline] cached pull after an engine restart, upstream down: ${r.ms.toFixed(0)} ms`);
    const s = await registryStatus({ config: specFile }, { ...ws.deps, shared: true });
    expect(s.registries.find((x) => x.name === `${ws.runId}-hub`)!.offline).toBe(true);

    // The upstream back: an image only it has pulls through the proxy, and nobody runs lo.
    await docker.getContainer(upstream.name).start();
    await eventually(() => fetch(`${upstream.url}/v2/`));
    const ref = await makeImage(ws, 'after-restart', 'v1');
    await pushToRegistry(ref, `${upstream.ip}:5000/team/after-restart:v1`);
    const fresh = await eventually(async () => {
      const p = await nodePull(`${REG}/team/after-restart:v1`);
      if (!p.ok) throw new Error(p.out);
      return p;
    }, 120_000);
    expect(fresh.ok).toBe(true);
    alsoCached.push('after-restart');
    console.log(
      `[offline] engine restart: a new image pulled through ${((performance.now() - restarted) / 1000).toFixed(1)} s after dockerd was started, without lo`,
    );
    // Through the proxy: it cached it (the replica cannot fetch anything).
    const ip = await mirrorIp();
    expect((await (await fetch(`http://${ip}:80/v2/_catalog`)).json()) as { repositories: string[] }).toMatchObject({
      repositories: expect.arrayContaining(['team/after-restart']),
    });
  }, 240_000);

  it('no timer-driven loss: an expired scheduler entry deletes the blob with the old config, not with lo`s', async () => {
    const root = await volumePath();
    const stateFile = join(root, 'scheduler-state.json');
    // A fresh pull-through schedules entries; the scheduler saves its state every 5 s.
    const ref = await makeImage(ws, 'ttl', 'v1');
    await pushToRegistry(ref, `${upstream.ip}:5000/team/ttl:v1`);
    await eventually(async () => {
      const p = await nodePull(`${REG}/team/ttl:v1`);
      if (!p.ok) throw new Error(p.out);
    }, 90_000);
    await eventually(async () => {
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, { ExpiryData: string }>;
      if (Object.keys(state).length === 0) throw new Error('no scheduler entries yet');
    });
    const blobs = (): string[] => blobFiles(join(root, 'docker/registry/v2/blobs'));
    const before = blobs();
    expect(before.length).toBeGreaterThan(0);
    const expire = (): void => {
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, { ExpiryData: string }>;
      for (const k of Object.keys(state)) state[k]!.ExpiryData = '2020-01-01T00:00:00Z';
      writeFileSync(stateFile, JSON.stringify(state));
    };
    // lo's mirror: stop it, expire every entry (as a week later would), start it: every blob stays.
    await docker.getContainer(mirrorName).stop({ t: 1 });
    expire();
    await docker.getContainer(mirrorName).start();
    await eventually(async () => {
      const logs = (await docker.getContainer(mirrorName).logs({ stdout: true, stderr: true, since: 0 })).toString();
      if (!logs.includes('operation unsupported')) throw new Error('expiry not run yet');
    });
    expect(blobs()).toEqual(before);
    const r = await nodePull(`${REG}/team/app:v1`);
    expect(r.ok, r.out).toBe(true);

    // The old behaviour (storage.delete enabled, as lo configured mirrors before): the same expired state deletes.
    const cfgDir = join(ws.dir, 'old-proxy');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(
      join(cfgDir, 'config.yml'),
      `version: 0.1\nstorage:\n  filesystem: {rootdirectory: /var/lib/registry}\n  delete: {enabled: true}\nhttp: {addr: ":5000"}\nproxy: {remoteurl: "${upstream.url}"}\n`,
    );
    await docker.getContainer(mirrorName).stop({ t: 1 });
    expire();
    const old = await docker.createContainer({
      name: `${ws.runId}-oldproxy`,
      Image: 'registry:2',
      Cmd: ['/etc/old/config.yml'],
      Labels: { [TEST_RUN_LABEL]: ws.runId },
      HostConfig: {
        NetworkMode: `${ws.runId}-up`,
        Mounts: [
          { Type: 'bind', Source: cfgDir, Target: '/etc/old', ReadOnly: true },
          { Type: 'volume', Source: volume, Target: '/var/lib/registry' },
        ],
      },
    });
    await old.start();
    try {
      await eventually(async () => {
        if (blobs().length >= before.length) throw new Error('nothing deleted yet');
      });
      expect(blobs().length).toBeLessThan(before.length);
    } finally {
      await old.remove({ force: true });
      await docker.getContainer(mirrorName).start();
    }
  }, 120_000);

  it('gc: keeps what was used last, removes the least recently used until the budget fits, and the bytes leave the volume', async () => {
    const MiB = 1024 * 1024;
    for (const n of ['big1', 'big2']) {
      const ref = await makeImage(ws, n, 'v1', 2 * MiB);
      await pushToRegistry(ref, `${upstream.ip}:5000/team/${n}:v1`);
    }
    // Access order: big2 is pulled first and never again; everything else (ttl too) after it.
    for (const n of ['big2', 'big1', 'app', 'fresh', 'ttl', ...alsoCached]) {
      const r = await nodePull(`${REG}/team/${n}:v1`);
      expect(r.ok, r.out).toBe(true);
      await new Promise((res) => setTimeout(res, 50));
    }
    const usage = async (): Promise<number> => {
      const df = (await docker.df()) as { Volumes: Array<{ Name: string; UsageData: { Size: number } }> };
      return df.Volumes.find((v) => v.Name === volume)!.UsageData.Size;
    };
    // The proxy saves its scheduler state (a small JSON file on the volume) after a pull, on a 5 s ticker
    // (distribution 2.8 registry/proxy/scheduler: indexSaveFrequency): measure once two reads 5.5 s apart
    // agree (1 s apart could both fall before the save, and the volume then grows during the dry run).
    const settled = (): Promise<number> =>
      eventually(async () => {
        const a = await usage();
        await new Promise((res) => setTimeout(res, 5500));
        const b = await usage();
        if (a !== b) throw new Error(`volume still changing: ${a} -> ${b}`);
        return b;
      }, 30_000);
    const before = await settled();
    const budget = before - MiB;
    const root = ((await docker.getVolume(volume).inspect()) as { Mountpoint: string }).Mountpoint;
    const blobsBefore = blobFiles(join(root, 'docker/registry/v2/blobs')).sort();
    const dry = await registryGc({ config: specFile }, { ...ws.deps, shared: true, dryRun: true, maxSizeBytes: budget });
    expect(dry.mirrors).toHaveLength(1);
    expect(dry.mirrors[0]!.removed).toEqual(['team/big2']);
    // A dry run deletes nothing.
    expect(blobFiles(join(root, 'docker/registry/v2/blobs')).sort()).toEqual(blobsBefore);
    expect(await usage()).toBe(before);

    const startedAt = (await docker.getContainer(mirrorName).inspect()).State.StartedAt;
    const res = await registryGc({ config: specFile }, { ...ws.deps, shared: true, maxSizeBytes: budget });
    const m = res.mirrors[0]!;
    console.log(
      `[offline] gc: ${m.bytesBefore} -> ${m.bytesAfter} bytes (budget ${budget}), removed ${m.removed.join(', ')} in ${m.ms} ms`,
    );
    expect(m.removed).toEqual(['team/big2']);
    expect(m.kept.sort()).toEqual(['team/app', 'team/big1', 'team/fresh', 'team/ttl', ...alsoCached.map((n) => `team/${n}`)].sort());
    expect(m.freedBytes).toBeGreaterThan(1.8 * MiB);
    expect(m.bytesAfter).toBeLessThanOrEqual(budget);
    expect(await usage()).toBe(m.bytesAfter);
    // The container was never stopped (only its proxy process was held), the proxy is back, the replica still
    // serves what was kept; big2 is really gone from the storage.
    expect((await docker.getContainer(mirrorName).inspect()).State.StartedAt).toBe(startedAt);
    const ip = await mirrorIp();
    await eventually(async () => expect((await fetch(`http://${ip}:80/v2/`)).status).toBe(200));
    const accept = { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' };
    expect((await fetch(`http://${ip}:5080/v2/team/big1/manifests/v1`, { headers: accept })).status).toBe(200);
    expect((await fetch(`http://${ip}:5080/v2/team/big2/manifests/v1`, { headers: accept })).status).toBe(404);
    // gc helpers are gone
    const left = await docker.listContainers({ all: true, filters: { label: [`dev.lok8s.lo.role=gc`, `${TEST_RUN_LABEL}=${ws.runId}`] } });
    expect(left).toEqual([]);
  }, 180_000);

  it('migration: an old proxy + replica pair (the first design) becomes the one container; the volume and its cache are kept', async () => {
    const m = ws.plan(spec).registries.find((r) => r.role === 'mirror')!;
    const blobs = (root: string): string[] => blobFiles(join(root, 'docker/registry/v2/blobs'));
    const before = blobs(await volumePath());
    // The old layout, made by hand as lo made it before: `<mirror>-replica` (role replica) owns the address
    // and serves replica.yml; the proxy `<mirror>` (role mirror) runs config.yml in the replica's namespace.
    await docker.getContainer(mirrorName).remove({ force: true });
    const base = { image: 'registry:2', binds: m.container.binds, volumes: m.container.volumes, restart: 'always' as const };
    const { state: replica } = await clients.containers.create({
      ...base,
      name: `${mirrorName}-replica`,
      cmd: ['/etc/lo/registry/replica.yml'],
      labels: { ...m.labels, [LABELS.role]: 'replica', [LABELS.specHash]: 'old' },
      network: m.network,
      ip: m.ip,
    });
    await clients.containers.start(replica.id);
    const { state: proxyC } = await clients.containers.create({
      ...base,
      name: mirrorName,
      cmd: ['/etc/lo/registry/config.yml'],
      labels: { ...m.labels, [LABELS.specHash]: 'old' },
      network: `container:${replica.id}`,
    });
    await clients.containers.start(proxyC.id);
    const ip = m.ip;
    await eventually(async () => expect((await fetch(`http://${ip}:5080/v2/`)).status).toBe(200));
    // The upstream away: whatever pulls after the migration comes from the kept volume.
    await docker.getContainer(upstream.name).stop({ t: 1 });
    try {
      const { actions } = await registryUp({ config: specFile }, ws.deps);
      const cs = actions.filter((a) => a.kind === 'container' && a.action !== 'noop');
      expect(cs.map((a) => `${a.action} ${a.name}`)).toEqual([`remove ${mirrorName}-replica`, `recreate ${mirrorName}`]);
      expect(actions.find((a) => a.kind === 'volume' && a.name === volume)?.action).toBe('noop');
      // up did not fail on the proxy that cannot start offline: it says so.
      expect(cs.find((a) => a.name === mirrorName)?.serving).toBe('serving offline');
      expect(await docker.listContainers({ all: true, filters: { name: [`${mirrorName}-replica`] } })).toEqual([]);
      const now = await docker.getContainer(mirrorName).inspect();
      expect(now.Id).not.toBe(proxyC.id);
      expect(now.Config.Entrypoint).toEqual(['/bin/sh']);
      expect(now.NetworkSettings.Networks[spec.sharedName]?.IPAddress).toBe(ip);
      expect(now.Mounts.find((x) => x.Type === 'volume')?.Name).toBe(volume);
      expect(blobs(await volumePath())).toEqual(before);
      // The cache still pulls, by tag and by digest, through the node's CRI (served by the new container's replica).
      const byTag = await nodePull(`${REG}/team/app:v1`);
      expect(byTag.ok, byTag.out).toBe(true);
      const byDigest = await nodePull(`${REG}/team/app@${digest}`);
      expect(byDigest.ok, byDigest.out).toBe(true);
      // Idempotent afterwards.
      const again = await registryUp({ config: specFile }, ws.deps);
      expect(again.actions.filter((a) => a.action !== 'noop')).toEqual([]);
    } finally {
      await docker.getContainer(upstream.name).start();
    }
  }, 120_000);
});

/** Blob data files under a registry's blobs directory (the volume is local to this root-run test bed). */
function blobFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e === 'data') out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}
