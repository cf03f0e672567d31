import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyRegistries, previewRegistries } from '../../src/apply/applyRegistries.js';
import { observeShared } from '../../src/adapters/docker/observeShared.js';
import type { ClusterSpec } from '../../src/spec/types.js';
import { diffDown, observeTargets } from '../../src/usecases/registryDown.js';
import { FakeDocker } from '../support/fakeDocker.js';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { LABELS } from '../../src/plan/labels.js';
import { LoError } from '../../src/errors/loError.js';
import type { ContainerState } from '../../src/adapters/docker/index.js';
import { renderMirrorSupervisor } from '../../src/plan/render/mirrorSupervisor.js';
import { doctor } from '../../src/usecases/doctor.js';
import type { KindCli } from '../../src/adapters/kindCli.js';
import type { Kubectl } from '../../src/adapters/kubectl.js';

const PATHS = { stateDir: '/state/lo', caRoot: '/state/mkcert' };
const specOf = (body = ''): ClusterSpec =>
  parseSpec(`apiVersion: cluster.lok8s.dev/v1beta1\nkind: Lo\nmetadata:\n  name: lok8s\nspec:\n${body}`, { file: 't.yaml' });
function plan(body = ''): Plan {
  return planCluster(specOf(body), { paths: PATHS });
}

describe('offline mirrors: one container, proxy + read-only replica (issue 11)', () => {
  it('every mirror, and only mirrors, runs the supervisor; its replica is on the same address, volume and TLS files, its own port', () => {
    const p = plan();
    for (const r of p.registries) {
      if (r.role !== 'mirror') {
        expect(r.replica).toBeUndefined();
        expect(r.container.entrypoint).toBeUndefined();
        expect(r.container.cmd).toEqual(['/etc/lo/registry/config.yml']);
        continue;
      }
      const rep = r.replica!;
      expect(rep.endpoint).toBe(`https://${r.ip}:5443`);
      expect(rep.configPath).toBe(`${r.configDir}/replica.yml`);
      expect(rep.supervisorPath).toBe(`${r.configDir}/mirror.sh`);
      // One container, on its own network and address: no `container:` namespace to join.
      expect(r.container).toMatchObject({ entrypoint: ['/bin/sh'], cmd: ['/etc/lo/registry/mirror.sh'], network: r.network, ip: r.ip });
      expect(r.container.restart).toBe('always');
      const cfg = parseYaml(rep.config) as Record<string, any>;
      expect(cfg.proxy).toBeUndefined();
      expect(cfg.storage.maintenance.readonly.enabled).toBe(true);
      expect(cfg.storage.filesystem.rootdirectory).toBe('/var/lib/registry');
      expect(cfg.http.addr).toBe(':5443');
      const mirrorCfg = parseYaml(r.config) as Record<string, any>;
      expect(cfg.http.tls).toEqual(mirrorCfg.http.tls);
      expect(mirrorCfg.http.addr).toBe(':443');
    }
  });

  it('the supervisor serves both configs from the mounted config dir, the proxy with back-off (at once, then 1 s doubling to 30 s), and hold/resume', () => {
    const sh = renderMirrorSupervisor();
    expect(sh).toContain('/bin/registry serve /etc/lo/registry/replica.yml &');
    expect(sh).toContain('/bin/registry serve /etc/lo/registry/config.yml &');
    expect(sh).toMatch(/delay=0\n/);
    expect(sh).toContain('delay=$((delay * 2))');
    expect(sh).toContain('[ "$delay" -gt 30 ] && delay=30');
    expect(sh).toMatch(/^hold\)$/m);
    expect(sh).toMatch(/^resume\)$/m);
    // The container ends (non-zero) only when the replica does.
    expect(sh).toContain('[ "$code" -eq 0 ] && code=1');
    // Plain POSIX sh: no bash-isms (wait -n, [[ ]], arrays) for alpine's and busybox's sh.
    expect(sh).not.toMatch(/wait -n|\[\[|\$\{[a-z]+\[/);
  });

  it('the supervisor run by sh: a proxy that exits at start is retried at once, then after 1 s; TERM stops it', async () => {
    // The real script, with /bin/registry and its state dir pointed at this test's: a stub registry that logs
    // each start (ms) and exits 1 for config.yml (the proxy failing its upstream ping), sleeps for replica.yml.
    const dir = mkdtempSync(join(tmpdir(), 'lo-supervisor-'));
    try {
      const stub = join(dir, 'registry');
      writeFileSync(stub, `#!/bin/sh\ncase "$2" in *config.yml) echo "$(date +%s%N)" >>${dir}/starts; exit 1;; *) exec sleep 30;; esac\n`, {
        mode: 0o755,
      });
      const script = renderMirrorSupervisor().replaceAll('/bin/registry', stub).replaceAll('/tmp/lo-mirror', join(dir, 'run'));
      writeFileSync(join(dir, 'mirror.sh'), script);
      const child = spawn('sh', [join(dir, 'mirror.sh')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      await new Promise((r) => setTimeout(r, 2500));
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      const starts = readFileSync(join(dir, 'starts'), 'utf8')
        .trim()
        .split('\n')
        .map((n) => Number(BigInt(n) / 1_000_000n));
      expect(starts.length, stderr).toBeGreaterThanOrEqual(3);
      // at once, then after 1 s (2 s after that would be past the window)
      expect(starts[1]! - starts[0]!).toBeLessThan(500);
      expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(900);
      expect(starts.length).toBe(3);
      expect(stderr).toContain('lo: pull-through proxy exited (1), restarting in 0s');
      expect(stderr).toContain('restarting in 1s');
      // TERM stops both and the supervisor exits 0
      expect(code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without TLS the replica listens on 5080 with plain HTTP', () => {
    const p = plan('  registries:\n    tls: false\n');
    const m = p.registries.find((r) => r.role === 'mirror')!;
    expect(m.replica!.endpoint).toBe(`http://${m.ip}:5080`);
    expect((parseYaml(m.replica!.config) as Record<string, any>).http.tls).toBeUndefined();
  });

  it('no timer-driven loss: proxies refuse deletes (2.8 TTL expiry fails), build and cache still accept them', () => {
    const p = plan();
    for (const r of p.registries) {
      const cfg = parseYaml(r.config) as Record<string, any>;
      expect(cfg.storage.delete.enabled).toBe(r.role !== 'mirror');
      expect(Boolean(cfg.proxy)).toBe(r.role === 'mirror');
    }
  });

  it('the replica config and the supervisor are recorded in plan.files with mode 0600', () => {
    const p = plan();
    const m = p.registries.find((r) => r.role === 'mirror')!;
    for (const path of [m.replica!.configPath, m.replica!.supervisorPath]) {
      expect(p.files.find((f) => f.path === path)).toEqual({ path, kind: 'registry-config', mode: 0o600 });
    }
  });
});

describe('offline mirrors against the in-memory Docker', () => {
  const SHARED =
    '  registries:\n    tls: false\n    mirrors:\n      - name: lo-off-hub\n        url: http://10.141.12.250:5000\n        registry: docker.io\n';
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lo-offline-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const sharedPlan = (): Plan => planCluster(specOf(SHARED), { paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') } });

  /** lo's earlier two-container mirror: `<name>-replica` owns the address, the proxy joins its namespace. */
  function oldPair(fake: FakeDocker, m: Plan['registries'][number]): { proxy: ContainerState; replica: ContainerState } {
    fake.volumeStore.set(m.volume, { name: m.volume, labels: { ...m.labels } });
    const volumes = [{ name: m.volume, destination: '/var/lib/registry' }];
    const replica = fake.addContainer({
      name: `${m.containerName}-replica`,
      labels: { ...m.labels, [LABELS.role]: 'replica', [LABELS.specHash]: 'old' },
      networks: { [m.network]: { ip: m.ip } },
      volumes,
    });
    const proxy = fake.addContainer({
      name: m.containerName,
      labels: { ...m.labels, [LABELS.specHash]: 'old' },
      networks: {},
      networkMode: `container:${replica.id}`,
      volumes,
    });
    return { proxy, replica };
  }

  it('migration: an old proxy + replica pair becomes the one container, the volume kept; a second run is noop', async () => {
    const p = sharedPlan();
    const m = p.registries.find((r) => r.role === 'mirror')!;
    const fake = new FakeDocker();
    fake.addImage(m.image);
    const { proxy, replica } = oldPair(fake, m);
    // --dry-run names the same migration and leaves the pair in place
    const dry = await previewRegistries({ ...p, registries: [m] }, { docker: fake });
    expect(fake.ops).toEqual([]);
    const actions = await applyRegistries({ ...p, registries: [m] }, { docker: fake });
    expect(dry).toEqual(actions);
    const cs = actions.filter((a) => a.kind === 'container');
    expect(cs).toEqual([
      expect.objectContaining({ name: replica.name, action: 'remove' }),
      expect.objectContaining({ name: m.containerName, action: 'recreate' }),
    ]);
    expect(actions.find((a) => a.kind === 'volume')).toMatchObject({ name: m.volume, action: 'noop' });
    expect(fake.container(replica.name)).toBeUndefined();
    const now = fake.container(m.containerName)!;
    expect(now.id).not.toBe(proxy.id);
    expect(now.networks[m.network]).toEqual({ ip: m.ip });
    expect(now.volumes.map((v) => v.name)).toEqual([m.volume]);
    expect(fake.volumeStore.has(m.volume)).toBe(true);
    expect(fake.ops.some((o) => o.startsWith('remove volume'))).toBe(false);
    // the proxy (in the replica's namespace) is removed before the replica holding the address
    const removes = fake.ops.filter((o) => o.startsWith('remove container'));
    expect(removes[0]).toContain(proxy.id);
    const again = await applyRegistries({ ...p, registries: [m] }, { docker: fake });
    expect(again.filter((a) => a.action !== 'noop')).toEqual([]);
  });

  it('an image without /bin/sh for a mirror: exit 5 with the fix, and neither a new mirror nor an old pair is touched', async () => {
    const p = sharedPlan();
    const m = p.registries.find((r) => r.role === 'mirror')!;
    const fake = new FakeDocker();
    fake.addImage(m.image);
    fake.imagePathsMissing.set(m.image, new Set(['/bin/sh']));
    const err = (await applyRegistries({ ...p, registries: [m] }, { docker: fake }).catch((e: unknown) => e)) as LoError;
    expect(err).toBeInstanceOf(LoError);
    expect(err.code).toBe('E_REGISTRY_IMAGE');
    expect(err.exitCode).toBe(5);
    expect(err.message).toContain(`image ${m.image} has no /bin/sh`);
    expect(err.hint).toContain('LO_REGISTRY_IMAGE');
    expect(fake.container(m.containerName)).toBeUndefined();
    // An old pair stays as it was (the migration removes it only once the image can run the supervisor).
    const { proxy, replica } = oldPair(fake, m);
    await expect(applyRegistries({ ...p, registries: [m] }, { docker: fake })).rejects.toThrow(/has no \/bin\/sh/);
    expect(fake.container(replica.name)?.id).toBe(replica.id);
    expect(fake.container(m.containerName)?.id).toBe(proxy.id);
    expect(fake.ops.filter((o) => o.startsWith('remove') || o.startsWith('create container'))).toEqual([]);
    // --dry-run (observe + diff) does not look
    expect(await previewRegistries({ ...p, registries: [m] }, { docker: fake })).toBeInstanceOf(Array);
  });

  it("shared observation: the mirror holds its address; an old pair is seen at its replica's address with its proxy's labels", async () => {
    const p = sharedPlan();
    const m = p.registries.find((r) => r.role === 'mirror')!;
    const fake = new FakeDocker();
    fake.addImage(m.image);
    await applyRegistries({ ...p, registries: [m] }, { docker: fake });
    expect((await observeShared(fake, specOf(SHARED))).mirrors).toEqual([expect.objectContaining({ name: m.name, ip: m.ip })]);

    const old = new FakeDocker();
    const { proxy } = oldPair(old, m);
    // The proxy's upstream moved; the replica still carries the old label.
    old.containerStore.get(proxy.id)!.state.labels[LABELS.upstream] = 'http://10.141.12.251:5000';
    const seen = await observeShared(old, specOf(SHARED));
    expect(seen.mirrors).toEqual([expect.objectContaining({ name: m.name, ip: m.ip, url: 'http://10.141.12.251:5000' })]);
  });

  it('down --shared removes the mirror, and both containers of an old pair', async () => {
    const p = sharedPlan();
    const m = p.registries.find((r) => r.role === 'mirror')!;
    const fake = new FakeDocker();
    fake.addImage(m.image);
    await applyRegistries(p, { docker: fake });
    expect(diffDown(await observeTargets(fake, p, true)).map((a) => a.name)).toContain(m.containerName);
    expect((await observeTargets(fake, p, false)).map((c) => c.name)).not.toContain(m.containerName);

    const old = new FakeDocker();
    const { proxy, replica } = oldPair(old, m);
    expect(diffDown(await observeTargets(old, p, true)).map((a) => a.name)).toEqual([proxy.name, replica.name]);
  });
});

describe('lo doctor and an offline mirror', () => {
  const run = (answers: Record<string, number | Error>) => {
    const p = plan('  registries:\n    tls: false\n');
    return doctor({
      loadPlan: async () => p,
      docker: async () => ({ version: '20.10', target: 'unix:///var/run/docker.sock' }),
      kind: { version: async () => 'kind v0.33', getClusters: async () => [] } as unknown as KindCli,
      kubectl: () => ({ version: async () => 'v1.34' }) as unknown as Kubectl,
      networkExists: async () => true,
      probe: async (r) => {
        const a = answers[r.endpoint] ?? 200;
        if (a instanceof Error) throw a;
        return a;
      },
    }).then((d) => ({ p, d }));
  };

  it('proxy refused, replica answering: a warning that says it serves offline from the replica, not a failure', async () => {
    const p = plan('  registries:\n    tls: false\n');
    const m = p.registries.find((r) => r.role === 'mirror')!;
    const { d } = await run({ [m.endpoint]: new Error('connect ECONNREFUSED') });
    const c = d.checks.find((x) => x.name === `registry ${m.name}`)!;
    expect(c.status).toBe('warn');
    expect(c.detail).toContain(`serving offline from its read-only replica ${m.replica!.endpoint}`);
    expect(c.fix).toContain(m.upstream!);
  });

  it('proxy and replica both silent: a failure naming both', async () => {
    const p = plan('  registries:\n    tls: false\n');
    const m = p.registries.find((r) => r.role === 'mirror')!;
    const refused = new Error('connect ECONNREFUSED');
    const { d } = await run({ [m.endpoint]: refused, [m.replica!.endpoint]: refused });
    const c = d.checks.find((x) => x.name === `registry ${m.name}`)!;
    expect(c.status).toBe('fail');
    expect(c.detail).toContain(`read-only replica ${m.replica!.endpoint} does not answer either`);
  });
});
