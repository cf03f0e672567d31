/**
 * Shared network and mirrors across projects on the real engine: a shared network with another subnet is an
 * error that removes nothing, two projects running `up` at the same time both succeed and share one network
 * and one set of mirrors, clean with and without --shared, a clear message when Docker is unreachable, and a
 * shared mirror of a private upstream is neither reused nor recreated by a project naming another CA.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Action } from '../../src/apply/types.js';
import { observeSharedOrNothing, registryClean, registryDown, registryStatus, registryUp } from '../../src/usecases/registry.js';
import { observeShared } from '../../src/adapters/docker/observeShared.js';
import { loadSpec } from '../../src/spec/loadSpec.js';
import { connectDocker } from '../../src/adapters/docker/client.js';
import { LoError } from '../../src/errors/loError.js';
import { LABELS } from '../../src/plan/labels.js';
import {
  cleanupRun,
  clients,
  docker,
  inspectContainer,
  runLo,
  TEST_RUN_LABEL,
  specYaml,
  workspace,
  type SpecInput,
  type Workspace,
  attachMirrorLogsOnFailure,
} from '../helpers/docker.js';
import { makeTestCa } from '../helpers/tls.js';

let ws: Workspace;
let p1: SpecInput;
let p2: SpecInput;
let f1: string;
let f2: string;
const changed = (actions: Action[]): Action[] => actions.filter((a) => a.action !== 'noop');

beforeAll(() => {
  ws = workspace();
  const id = ws.runId;
  const sharedName = `${id}s`;
  // Same mirrors, listed in different orders by the two projects.
  const m = (n: string): { name: string; url: string; registry: string } => ({
    name: `${id}-${n}`,
    url: `http://10.140.20.200:5000/${n}`,
    registry: `${n}.example`,
  });
  p1 = { name: `${id}1`, cidr: '10.140.21.0/24', sharedName, sharedCidr: '10.140.20.0/24', mirrors: [m('one'), m('two')] };
  p2 = { name: `${id}2`, cidr: '10.140.22.0/24', sharedName, sharedCidr: '10.140.20.0/24', mirrors: [m('two'), m('one')] };
  f1 = ws.writeSpec(p1);
  f2 = ws.writeSpec(p2);
});

afterAll(async () => {
  await cleanupRun(ws);
});

attachMirrorLogsOnFailure(() => ws);

describe('shared network and mirrors', () => {
  it('a shared network with another subnet is an error naming both subnets and the ways out; nothing is created or removed', async () => {
    const id = ws.runId;
    const other = `${id}x`;
    await docker.createNetwork({
      Name: other,
      CheckDuplicate: true,
      Labels: { [TEST_RUN_LABEL]: id },
      IPAM: { Config: [{ Subnet: '10.140.29.0/24' }] },
    });
    const bystander = await docker.createContainer({
      name: `${id}-bystander`,
      Image: 'registry:2',
      Labels: { [TEST_RUN_LABEL]: id },
      HostConfig: { NetworkMode: other },
    });
    await bystander.start();
    const spec: SpecInput = { ...p1, name: `${id}m`, cidr: '10.140.23.0/24', sharedName: other };
    const file = ws.writeSpec(spec);

    const err = await registryUp({ config: file }, ws.deps).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LoError);
    expect((err as LoError).code).toBe('E_NETWORK_MISMATCH');
    expect((err as LoError).message).toBe(
      `network ${other} exists with subnet 10.140.29.0/24, but the plan needs 10.140.20.0/24; nothing was changed`,
    );
    expect((err as LoError).hint).toContain('lo registry clean --shared');
    expect((err as LoError).hint).toContain('spec.registries.shared.network.cidr: 10.140.29.0/24');

    const cli = await runLo(['registry', 'up', '--config', file], ws.env);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('exists with subnet 10.140.29.0/24, but the plan needs 10.140.20.0/24');

    // Nothing removed, nothing created.
    const net = await docker.getNetwork(other).inspect();
    expect(net.IPAM?.Config?.[0]?.Subnet).toBe('10.140.29.0/24');
    expect(Object.values(net.Containers ?? {}).map((c) => c.Name)).toEqual([`${id}-bystander`]);
    expect(await clients.networks.inspect(spec.name)).toBeNull();
    const made = await docker.listContainers({ all: true, filters: { label: [`${LABELS.managedBy}=lo`, `${TEST_RUN_LABEL}=${id}`] } });
    expect(made).toEqual([]);
    await bystander.remove({ force: true, v: true });
    await docker.getNetwork(other).remove();
  });

  it('two projects running up at the same time both succeed and share one network and one set of mirrors', async () => {
    const id = ws.runId;
    const [r1, r2] = await Promise.all([registryUp({ config: f1 }, ws.deps), registryUp({ config: f2 }, ws.deps)]);
    // Same addresses for the mirrors whatever the list order.
    const ips = (r: typeof r1): string[] =>
      r.plan.registries
        .filter((x) => x.role === 'mirror')
        .map((x) => `${x.name}=${x.ip}`)
        .sort();
    expect(ips(r1)).toEqual([`${id}-one=10.140.20.2`, `${id}-two=10.140.20.3`]);
    expect(ips(r2)).toEqual(ips(r1));

    // Exactly one creator per shared object; the other saw it as already there.
    for (const name of [p1.sharedName, `lok8s-registry-${id}-one`, `lok8s-registry-${id}-two`]) {
      const kinds = [r1, r2].map((r) => r.actions.find((a) => a.name === name)!);
      expect(kinds.map((a) => a.action).sort()).toEqual(['create', 'noop']);
    }
    const nets = await docker.listNetworks({ filters: { name: [p1.sharedName] } });
    expect(nets.filter((n) => n.Name === p1.sharedName)).toHaveLength(1);
    const mirrors = await docker.listContainers({ filters: { label: [`${LABELS.role}=mirror`, `${TEST_RUN_LABEL}=${id}`] } });
    expect(mirrors.map((c) => c.Names[0]).sort()).toEqual([`/lok8s-registry-${id}-one`, `/lok8s-registry-${id}-two`]);
    for (const p of [p1, p2]) {
      expect((await inspectContainer(`${p.name}-registry-build`))?.State.Running).toBe(true);
      expect((await inspectContainer(`${p.name}-registry-cache`))?.State.Running).toBe(true);
    }

    // `lo plan`'s lookup over the socket without dockerode (src/adapters/docker/socketLookup.ts) sees what
    // dockerode sees, and the plan process keeps the running mirrors where they are.
    const spec = await loadSpec({ config: f1 });
    const viaDockerode = await observeShared(clients, spec);
    expect(viaDockerode.mirrors.map((m) => `${m.name}=${m.ip}`).sort()).toEqual(ips(r1));
    expect(await observeSharedOrNothing(ws.env)(spec)).toEqual(viaDockerode);
    const plan = await runLo(['plan', '--config', f1, '--json'], ws.env);
    expect(plan.code, plan.stderr).toBe(0);
    expect((JSON.parse(plan.stdout) as typeof r1.plan).registries.map((r) => `${r.name}=${r.ip}`)).toEqual(
      r1.plan.registries.map((r) => `${r.name}=${r.ip}`),
    );

    // Concurrent re-runs: nothing to do for either.
    const again = await Promise.all([registryUp({ config: f1 }, ws.deps), registryUp({ config: f2 }, ws.deps)]);
    expect(again.flatMap((r) => changed(r.actions))).toEqual([]);
  });

  it('a spec that conflicts with the running shared mirrors names the creating project; status and down still work', async () => {
    const id = ws.runId;
    const base = { sharedName: p1.sharedName, sharedCidr: p1.sharedCidr };
    const otherUrl = ws.writeSpec({
      ...base,
      name: `${id}3`,
      cidr: '10.140.24.0/24',
      mirrors: [{ name: `${id}-one`, url: 'http://10.140.20.201:5000/other', registry: 'one.example' }],
    });
    const urlErr = await registryUp({ config: otherUrl }, ws.deps).then(
      () => null,
      (e: unknown) => e as LoError,
    );
    expect(urlErr?.code).toBe('E_PLAN_CONFLICT');
    expect(urlErr?.message).toMatch(
      new RegExp(
        `shared mirror "${id}-one" already runs for project ${id}[12] with url http://10\\.140\\.20\\.200:5000/one; this spec asks for http://10\\.140\\.20\\.201:5000/other`,
      ),
    );
    const creds = ws.writeSpec({
      ...base,
      name: `${id}4`,
      cidr: '10.140.25.0/24',
      mirrors: [{ ...p1.mirrors![0]!, credentials: { usernameEnv: 'LODK_USER', passwordEnv: 'LODK_TOKEN' } }],
    });
    const credErr = await registryUp({ config: creds }, ws.deps).then(
      () => null,
      (e: unknown) => e as LoError,
    );
    expect(credErr?.message).toContain('with no credentials; this spec asks for credentials from $LODK_USER and $LODK_TOKEN');
    const tls = ws.writeSpec({ ...base, name: `${id}5`, cidr: '10.140.26.0/24', mirrors: p1.mirrors!, tls: true });
    const tlsErr = await registryUp({ config: tls }, ws.deps).then(
      () => null,
      (e: unknown) => e as LoError,
    );
    expect(tlsErr?.message).toMatch(
      new RegExp(
        `spec\\.registries\\.tls is true but the shared mirrors already run with tls: false \\(mirror ${id}-\\w+, created by project ${id}[12]\\)`,
      ),
    );
    // Looking and tearing down must not be blocked by the conflict the error tells the user to clean up.
    const st = await registryStatus({ config: tls }, { ...ws.deps, shared: true });
    expect(
      st.registries
        .filter((r) => r.role === 'mirror')
        .map((r) => r.containerName)
        .sort(),
    ).toEqual([`lok8s-registry-${id}-one`, `lok8s-registry-${id}-two`]);
    expect(st.registries.filter((r) => r.role === 'mirror').every((r) => r.state !== 'missing')).toBe(true);
    const down = await registryDown({ config: tls }, ws.deps);
    expect(down.actions.filter((a) => a.action === 'remove')).toEqual([]);
    const cli = await runLo(['registry', 'status', '--config', tls, '--shared', '--json'], ws.env);
    expect(cli.code, cli.stderr).toBe(0);
  });

  it('clean without --shared leaves the shared mirrors and the other project alone', async () => {
    const id = ws.runId;
    const r = await registryClean({ config: f1 }, ws.deps);
    expect(
      r.actions
        .filter((a) => a.kind === 'container')
        .map((a) => a.name)
        .sort(),
    ).toEqual([`${p1.name}-registry-build`, `${p1.name}-registry-cache`]);
    expect(await inspectContainer(`lok8s-registry-${id}-one`)).not.toBeNull();
    expect(await inspectContainer(`${p2.name}-registry-build`)).not.toBeNull();
    expect(await clients.volumes.inspect(`lok8s-registry-${id}-one-data`)).not.toBeNull();
    expect(await clients.volumes.inspect(`${p2.name}-registry-build-data`)).not.toBeNull();
  });

  it("clean --shared removes the mirrors and their volumes; another project's node keeps the shared network alive", async () => {
    const id = ws.runId;
    // A stand-in for project 2's kind node: on its project network and connected to the shared network.
    const node = await docker.createContainer({
      name: `${id}-p2-node`,
      Image: 'registry:2',
      Labels: { [TEST_RUN_LABEL]: id },
      HostConfig: { NetworkMode: p2.name },
    });
    await node.start();
    await clients.networks.connect(p2.sharedName, `${id}-p2-node`);

    const cli = await runLo(['registry', 'clean', '--config', f1, '--shared', '--json'], ws.env);
    expect(cli.code).toBe(0);
    const doc = JSON.parse(cli.stdout) as { actions: Action[] };
    expect(doc.actions.map((a) => `${a.action} ${a.kind} ${a.name}`)).toEqual(
      expect.arrayContaining([
        `remove container lok8s-registry-${id}-one`,
        `remove container lok8s-registry-${id}-two`,
        `remove volume lok8s-registry-${id}-one-data`,
        `remove volume lok8s-registry-${id}-two-data`,
      ]),
    );
    expect(doc.actions.find((a) => a.kind === 'network' && a.name === p1.sharedName)).toEqual({
      kind: 'network',
      name: p1.sharedName,
      action: 'noop',
      reason: `kept: still attached: ${id}-p2-node`,
    });
    const text = await runLo(['registry', 'clean', '--config', f1, '--shared'], ws.env);
    expect(text.stdout).toContain(`unchanged      network     ${p1.sharedName}  (kept: still attached: ${id}-p2-node)`);
    expect(await clients.networks.inspect(p1.sharedName)).not.toBeNull();
    // Project 2's own registries were not touched.
    expect((await inspectContainer(`${p2.name}-registry-build`))?.State.Running).toBe(true);

    await node.remove({ force: true, v: true });
    const last = await registryClean({ config: f2 }, { ...ws.deps, shared: true });
    expect(
      last.actions
        .filter((a) => a.kind === 'network')
        .map((a) => `${a.action} ${a.name}`)
        .sort(),
    ).toEqual([`remove ${p2.name}`, `remove ${p2.sharedName}`]);
    expect(await clients.networks.inspect(p1.sharedName)).toBeNull();
    const left = await docker.listContainers({ all: true, filters: { label: [`${TEST_RUN_LABEL}=${id}`] } });
    expect(left).toEqual([]);
  });

  it('Docker unreachable: a clear error naming the socket tried, with a hint; `lo plan` still works', async () => {
    const env = { ...ws.env, DOCKER_HOST: 'unix:///nonexistent' };
    for (const cmd of [['up'], ['status'], ['down'], ['clean', '--shared']]) {
      const r = await runLo(['registry', ...cmd, '--config', f1], env);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain('cannot reach the Docker engine at unix:///nonexistent');
      expect(r.stderr).toMatch(/hint\s+start dockerd .*set DOCKER_HOST/);
    }
    const json = await runLo(['registry', 'status', '--config', f1, '--json'], env);
    expect(JSON.parse(json.stdout).error).toMatchObject({ code: 'E_DOCKER_UNREACHABLE', exitCode: 4 });
    const err = await connectDocker({ env: { DOCKER_HOST: 'unix:///nonexistent' } }).catch((e: unknown) => e);
    expect((err as LoError).code).toBe('E_DOCKER_UNREACHABLE');

    const started = Date.now();
    const plan = await runLo(['plan', '--config', f1, '--json'], env);
    expect(plan.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(JSON.parse(plan.stdout).registries.length).toBe(4);
  });
});

describe('a shared mirror of a private upstream and its CA (issue 14)', () => {
  /** A project in its own directory whose mirror `corp` names `ca` (or no CA) as its upstream's CA. */
  function project(name: string, cidr: string, ca: { file: string; pem: string } | null): string {
    const id = ws.runId;
    const dir = join(ws.dir, name);
    mkdirSync(dir, { recursive: true });
    const doc = parseYaml(
      specYaml({
        name,
        cidr,
        sharedName: `${id}c`,
        sharedCidr: '10.140.27.0/24',
        // The shared network's gateway is this machine; nothing listens on port 1, so the proxy's start-up
        // request is refused at once and never leaves the machine (the replica serves meanwhile).
        mirrors: [{ name: `${id}-corp`, url: 'https://10.140.27.1:1', registry: 'harbor.corp.test' }],
      }),
    ) as { spec: { registries: { mirrors: Array<Record<string, unknown>> } } };
    if (ca) {
      writeFileSync(join(dir, ca.file), ca.pem);
      doc.spec.registries.mirrors[0]!.tls = { caFile: ca.file };
    }
    const file = join(dir, 'cluster.lok8s.yaml');
    writeFileSync(file, stringify(doc));
    return file;
  }
  const makeCa = (name: string): string => readFileSync(makeTestCa(ws.dir, name).crt, 'utf8');
  const sha = (pem: string): string => createHash('sha256').update(pem).digest('hex');

  it('the same CA content (another path) reuses the mirror; another CA or none stops up and lo plan with exit 2, the mirror untouched', async () => {
    const id = ws.runId;
    const caA = makeCa(`${id}-corp-ca`);
    const caB = makeCa(`${id}-other-ca`);
    const fa = project(`${id}a`, '10.140.32.0/24', { file: 'corp-ca.pem', pem: caA });
    const ra = await registryUp({ config: fa }, ws.deps);
    const mirrorName = `lok8s-registry-${id}-corp`;
    expect(ra.actions.find((a) => a.name === mirrorName)?.action).toBe('create');
    const made = await inspectContainer(mirrorName);
    expect(made?.Config.Labels[LABELS.upstreamAccess]).toBe(`ca=sha256:${sha(caA)}`);
    expect(JSON.stringify(made?.Config.Labels)).not.toContain('corp-ca.pem');

    // Another project, the same CA copied to another path: the running mirror is used as it is.
    const fb = project(`${id}b`, '10.140.33.0/24', { file: 'copy-of-corp.pem', pem: caA });
    const rb = await registryUp({ config: fb }, ws.deps);
    expect(rb.actions.find((a) => a.name === mirrorName)).toMatchObject({ action: 'noop' });

    // Another CA: refused in-process, by `lo registry up` and by `lo plan` (its own socket lookup reads the label).
    const fc = project(`${id}d`, '10.140.34.0/24', { file: 'other-ca.pem', pem: caB });
    const err = await registryUp({ config: fc }, ws.deps).then(
      () => null,
      (e: unknown) => e as LoError,
    );
    expect(err?.code).toBe('E_PLAN_CONFLICT');
    expect(err?.message).toBe(
      `${fc}: spec.registries.mirrors[0].tls.caFile: shared mirror "${id}-corp" already runs for project ${id}a with upstream CA sha256:${sha(caA).slice(0, 16)}…; this spec names ${join(ws.dir, `${id}d`, 'other-ca.pem')} (upstream CA sha256:${sha(caB).slice(0, 16)}…)`,
    );
    for (const args of [['registry', 'up'], ['plan']]) {
      const cli = await runLo([...args, '--config', fc], ws.env);
      expect(cli.code, cli.stderr).toBe(2);
      expect(cli.stderr).toContain(`already runs for project ${id}a with upstream CA sha256:${sha(caA).slice(0, 16)}…`);
      expect(cli.stderr).toContain('the same CA (the same file content) in both specs');
    }
    const none = project(`${id}n`, '10.140.34.0/24', null);
    const noneErr = await registryUp({ config: none }, ws.deps).then(
      () => null,
      (e: unknown) => e as LoError,
    );
    expect(noneErr?.message).toContain(`with upstream CA sha256:${sha(caA).slice(0, 16)}…; this spec names no upstream CA`);

    // Nothing changed: the same container, still with project a's CA; the refused projects made nothing.
    const after = await inspectContainer(mirrorName);
    expect(after?.Id).toBe(made?.Id);
    expect(after?.Config.Labels[LABELS.upstreamAccess]).toBe(`ca=sha256:${sha(caA)}`);
    expect(await clients.networks.inspect(`${id}d`)).toBeNull();
    expect(await clients.networks.inspect(`${id}n`)).toBeNull();
    // Looking is not blocked by the conflict.
    const st = await runLo(['registry', 'status', '--config', fc, '--shared', '--json'], ws.env);
    expect(st.code, st.stderr).toBe(0);

    // A new CA in the spec of the project that created the mirror is refused as well (project b still uses
    // it with the old one); moving to it is: down --shared (the cache volume stays), then up.
    writeFileSync(join(ws.dir, `${id}a`, 'corp-ca.pem'), caB);
    await expect(registryUp({ config: fa }, ws.deps)).rejects.toThrow(
      `already runs for project ${id}a with upstream CA sha256:${sha(caA).slice(0, 16)}…`,
    );
    const down = await runLo(['registry', 'down', '--shared', '--config', fa], ws.env);
    expect(down.code, down.stderr).toBe(0);
    const renewed = await registryUp({ config: fa }, ws.deps);
    expect(renewed.actions.find((a) => a.name === mirrorName)?.action).toBe('create');
    expect(renewed.actions.find((a) => a.name === `${mirrorName}-data`)?.action).toBe('noop');
    expect((await inspectContainer(mirrorName))?.Config.Labels[LABELS.upstreamAccess]).toBe(`ca=sha256:${sha(caB)}`);
    const rc = await registryUp({ config: fc }, ws.deps);
    expect(rc.actions.find((a) => a.name === mirrorName)).toMatchObject({ action: 'noop' });

    for (const f of [fb, fc, fa]) await registryClean({ config: f }, { ...ws.deps, shared: true });
    expect(await inspectContainer(mirrorName)).toBeNull();
  });
});
