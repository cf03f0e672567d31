/**
 * Project identity on the real engine: two spec directories with the same metadata.name are two projects.
 * The second `registry up` stops with exit 2 naming the first's spec directory and changes nothing of the
 * first (container ids, volumes); `registry clean` in the second leaves the first's containers and volumes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryClean, registryUp } from '../../src/usecases/registry.js';
import { LABELS } from '../../src/plan/labels.js';
import { cleanupRun, docker, runLo, specYaml, workspace, type SpecInput, type Workspace } from '../helpers/docker.js';

let ws: Workspace;
let spec: SpecInput;
const dirs = { a: '', b: '' };
const fileIn = (d: string): string => join(d, 'cluster.lok8s.yaml');

beforeAll(() => {
  ws = workspace();
  spec = { name: `${ws.runId}i`, cidr: '10.140.40.0/24', sharedName: `${ws.runId}s`, sharedCidr: '10.140.41.0/24', sharedEnabled: false };
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

    // the owner still reconciles its own objects: all noop
    const again = await registryUp({ config: fileIn(dirs.a) }, { ...ws.deps });
    expect(again.actions.filter((a) => a.kind === 'container' && a.action !== 'noop')).toEqual([]);
  });
});
