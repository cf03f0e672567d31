/**
 * Project identity on the real engine: two spec directories with the same metadata.name are two projects.
 * The second `registry up` stops with exit 2 naming the first's spec directory and changes nothing of the
 * first (container ids, volumes); `registry clean`, `status`, `gc` and destroy's checks in the second leave the
 * first's containers and volumes alone. A project whose lock is held by a live lo is not changed.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { registryClean, registryGc, registryStatus, registryUp } from '../../src/usecases/registry.js';
import { clusterOwner } from '../../src/usecases/provisionDeps.js';
import { loadPlan } from '../../src/usecases/plan.js';
import { clients } from '../helpers/docker.js';
import { LABELS } from '../../src/plan/labels.js';
import { cleanupRun, docker, runLo, specYaml, workspace, type SpecInput, type Workspace } from '../helpers/docker.js';

let ws: Workspace;
let spec: SpecInput;
const dirs = { a: '', b: '' };
const fileIn = (d: string): string => join(d, 'cluster.lok8s.yaml');

beforeAll(() => {
  ws = workspace();
  spec = {
    name: `${ws.runId}i`,
    cidr: '10.140.40.0/24',
    sharedName: `${ws.runId}s`,
    sharedCidr: '10.140.41.0/24',
    sharedEnabled: false,
    // an unshared mirror (its upstream need not answer: gc in the other project must not even look at it)
    mirrors: [{ name: 'hub', url: 'http://10.140.41.250:5000', registry: 'docker.io' }],
  };
  for (const k of ['a', 'b'] as const) {
    dirs[k] = join(ws.dir, k);
    mkdirSync(dirs[k]);
    writeFileSync(fileIn(dirs[k]), specYaml(spec));
  }
});

afterAll(() => cleanupRun(ws));

const containerIds = async (): Promise<Record<string, string>> => {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.project}=${spec.name}`] } });
  return Object.fromEntries(list.map((c) => [c.Names[0]!.replace(/^\//, ''), c.Id]));
};
const volumeNames = async (): Promise<string[]> =>
  ((await docker.listVolumes({ filters: { label: [`${LABELS.project}=${spec.name}`] } })).Volumes ?? []).map((v) => v.Name).sort();

describe('two spec directories with the same metadata.name', () => {
  it("the second's up exits 2 naming the first's directory; clean there keeps the first's objects", async () => {
    const { plan } = await registryUp({ config: fileIn(dirs.a) }, { ...ws.deps });
    const ids = await containerIds();
    const volumes = await volumeNames();
    expect(Object.keys(ids).sort()).toEqual(plan.registries.map((r) => r.containerName).sort());
    expect(volumes).toEqual(plan.registries.map((r) => r.volume).sort());
    const build = await docker.getContainer(ids[`${spec.name}-registry-build`]!).inspect();
    expect(build.Config.Labels[LABELS.projectId]).toBe(plan.project.id);
    expect(build.Config.Labels[LABELS.specDir]).toBe(plan.project.specDir);

    const second = await runLo(['registry', 'up', '--config', fileIn(dirs.b)], ws.env);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`belongs to another project named ${spec.name} (spec in ${plan.project.specDir})`);
    expect(second.stderr).toContain('metadata.name');
    expect(await containerIds()).toEqual(ids);
    expect(await volumeNames()).toEqual(volumes);

    const cleaned = await registryClean({ config: fileIn(dirs.b) }, { ...ws.deps });
    expect(cleaned.actions.filter((a) => a.action === 'remove')).toEqual([]);
    expect(await containerIds()).toEqual(ids);
    expect(await volumeNames()).toEqual(volumes);

    // status in the second reports none of the first's containers as its own
    const status = await registryStatus({ config: fileIn(dirs.b) }, { ...ws.deps });
    for (const r of status.registries) {
      expect(r.health).toBe('not created');
      expect(r.catalog).toBeNull();
      expect(r.error).toContain(`belongs to the project in ${plan.project.specDir}`);
    }
    // gc in the second sweeps none of the first's mirrors (nothing created, nothing read)
    const gc = await registryGc({ config: fileIn(dirs.b) }, { ...ws.deps, maxSizeBytes: 0 });
    expect(gc.mirrors.length).toBeGreaterThan(0);
    for (const m of gc.mirrors) expect(m.skipped).toBe(`belongs to the project in ${plan.project.specDir}`);
    expect(await containerIds()).toEqual(ids);
    // destroy in the second would keep a kind cluster of that name: its network is the first's
    const { plan: planB } = await loadPlan({ config: fileIn(dirs.b) }, { paths: ws.paths, extraLabels: ws.extraLabels });
    expect(await clusterOwner(planB, clients)).toBe(`its network ${spec.name} belongs to the project in ${plan.project.specDir}`);
    expect(await clusterOwner(plan, clients)).toBeNull();

    // the owner still reconciles its own objects: all noop
    const again = await registryUp({ config: fileIn(dirs.a) }, { ...ws.deps });
    expect(again.actions.filter((a) => a.kind === 'container' && a.action !== 'noop')).toEqual([]);
  });
});

describe('the project lock', () => {
  it('registry clean while a live lo holds the lock exits 2 naming it and changes nothing', async () => {
    const { plan } = await registryUp({ config: fileIn(dirs.a) }, { ...ws.deps, dryRun: true });
    mkdirSync(plan.paths.projectDir, { recursive: true });
    const lock = join(plan.paths.projectDir, 'lock');
    // this test process is alive: its lock is not stale
    const holder = { pid: process.pid, pidStart: null, host: hostname(), since: 'now', command: 'lo provision', token: 't' };
    writeFileSync(lock, JSON.stringify(holder));
    const before = await containerIds();
    const r = await runLo(['registry', 'clean', '--config', fileIn(dirs.a)], ws.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`this project is being changed by lo provision (pid ${process.pid}, since now)`);
    expect(await containerIds()).toEqual(before);
    expect(existsSync(lock)).toBe(true);
  });
});
