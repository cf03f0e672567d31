/**
 * `lo provision` failure paths, other topologies and the node-connect step on the real Docker engine: a
 * failing step names itself and exits 5, a re-run resumes; connecting nodes is idempotent and names the
 * node on failure; HA clusters (kind's load balancer); TLS off with project-local mirrors; destroy with and
 * without --volumes; `lo doctor` names missing tools with a fix. Subnets from 10.160.0.0/16, names `lopv…`.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepView } from '../../src/apply/action.js';
import { connectNodes } from '../../src/apply/connectNodes.js';
import { LoError } from '../../src/errors/loError.js';
import { clients, docker, TEST_RUN_LABEL, waitHttp } from '../helpers/docker.js';
import {
  cleanupProvisionRun,
  FAKE_BIN,
  lo,
  makeTinyImage,
  provisionWorkspace,
  pullInNode,
  writeProjectSpec,
  type ProjectSpec,
  type ProvisionWorkspace,
} from '../helpers/kind.js';

let ws: ProvisionWorkspace;
let spec: ProjectSpec;
let file: string;
let octet: number;

beforeAll(() => {
  ws = provisionWorkspace();
  const hex = ws.runId.slice('lopv-'.length);
  octet = 100 + randomInt(90);
  spec = {
    name: `lopvf${hex}`,
    domain: `lopvf${hex}.test`,
    network: { name: `lopvf${hex}`, cidr: `10.160.${octet}.0/24` },
    shared: { name: `lopvg${hex}`, cidr: `10.160.${octet + 60 > 255 ? octet - 60 : octet + 60}.0/24` },
    mirrors: [],
  };
  file = writeProjectSpec(ws, spec);
});

afterAll(async () => {
  await cleanupProvisionRun(ws, [spec?.name].filter(Boolean) as string[]);
});

describe('lo provision: failures name the step, a re-run resumes', () => {
  it('a failing kind create stops at step "kind" with exit 5; the re-run finishes without redoing registries', async () => {
    const badBin = join(ws.dir, 'bad-bin');
    mkdirSync(badBin, { recursive: true });
    // kind that cannot create clusters (like a missing node image); everything else is the stand-in.
    writeFileSync(
      join(badBin, 'kind'),
      `#!/bin/sh\nif [ "$1 $2" = "create cluster" ]; then echo 'ERROR: failed to create cluster: failed to pull image "kindest/node"' >&2; exit 1; fi\nexec ${FAKE_BIN}/kind "$@"\n`,
    );
    chmodSync(join(badBin, 'kind'), 0o755);
    const bad = await lo({ ...ws, env: { ...ws.env, PATH: `${badBin}:${ws.env.PATH}` } }, ['--config', file, 'provision']);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(
      /step "kind" \(kind cluster \S+\) failed: `kind create cluster --name \S+ --config \S+ --kubeconfig \S+` failed \(exit 1\)/,
    );
    expect(bad.stderr).toContain('failed to pull image "kindest/node"');
    expect(bad.stdout).toBe('');
    // Steps before kind did their work: the build registry runs.
    const build = await docker.getContainer(`${spec.name}-registry-build`).inspect();
    expect(build.State.Running).toBe(true);

    const good = await lo(ws, ['--config', file, 'provision']);
    expect(good.code, good.stderr).toBe(0);
    expect((await docker.getContainer(`${spec.name}-registry-build`).inspect()).Id).toBe(build.Id);
    // Text summary: the cluster, the registries, what to push where.
    expect(good.stdout).toContain(`cluster ${spec.name} ready`);
    expect(good.stdout).toContain(`docker push 10.160.${octet}.101/myapp:dev`);
    expect(good.stdout).toContain('image: lok8s.local/myapp:dev');
    expect(good.stdout).toMatch(new RegExp(`build\\s+build\\s+https://10\\.160\\.${octet}\\.101`));
    // Both networks on the node.
    const node = await docker.getContainer(`${spec.name}-control-plane`).inspect();
    expect(Object.keys(node.NetworkSettings.Networks).sort()).toEqual([spec.network!.name, spec.shared.name].sort());
  });

  it('connectNodes: already connected is fine, a missing node stops with its name', async () => {
    const node = `${spec.name}-control-plane`;
    expect((await connectNodes(clients, [node], spec.shared.name)).map(stepView)).toEqual([
      { action: 'noop', object: `node ${node} -> ${spec.shared.name}` },
    ]);
    await docker.getNetwork(spec.shared.name).disconnect({ Container: node });
    expect((await connectNodes(clients, [node], spec.shared.name)).map(stepView)).toEqual([
      { action: 'create', object: `node ${node} -> ${spec.shared.name}` },
    ]);
    const err = await connectNodes(clients, [node, `${spec.name}-ghost`], spec.shared.name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoError);
    expect((err as Error).message).toContain(`cannot connect node ${spec.name}-ghost to network ${spec.shared.name}`);
  });

  it('lo doctor without kind on PATH fails the kind check with the install hint', async () => {
    const r = await lo({ ...ws, env: { ...ws.env, PATH: '/usr/bin:/bin' } }, ['--config', file, 'doctor']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✖ kind\s+`kind` is not on PATH/);
    expect(r.stdout).toContain('fix: install kind: https://kind.sigs.k8s.io');
    // the registries run: reached over TLS verified with lo's CA
    expect(r.stdout).toMatch(/✔ registry build\s+https:\/\/10\.160\.\d+\.101\/v2\/ answered 200/);
    expect(r.stdout).toMatch(/✔ registry cache\s+https:\/\/10\.160\.\d+\.102\/v2\/ answered 200/);
    expect(r.stdout).toContain('1 check(s) failed');
  });
  it("HA cluster: kind's external load balancer is not treated as a node", async () => {
    const hex = ws.runId.slice('lopv-'.length);
    const ha: ProjectSpec = {
      ...spec,
      name: `lopvh${hex}`,
      domain: `lopvh${hex}.test`,
      network: { name: `lopvh${hex}`, cidr: `10.160.${octet + 1}.0/24` },
    };
    const haFile = writeProjectSpec(ws, { ...ha, controlPlanes: 2 });
    try {
      const r = await lo(ws, ['--config', haFile, 'provision', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const res = JSON.parse(r.stdout);
      const lb = await docker.getContainer(`${ha.name}-external-load-balancer`).inspect();
      expect(lb.Config.Labels['io.x-k8s.kind.role']).toBe('external-load-balancer');
      expect(res.cluster.nodes).toEqual([`${ha.name}-control-plane`, `${ha.name}-control-plane2`]);
      // nodes join the shared network, the load balancer does not need to
      expect(Object.keys(lb.NetworkSettings.Networks)).toEqual([ha.network!.name]);
      const cp2 = await docker.getContainer(`${ha.name}-control-plane2`).inspect();
      expect(Object.keys(cp2.NetworkSettings.Networks).sort()).toEqual([ha.network!.name, ha.shared.name].sort());
    } finally {
      await lo(ws, ['--config', haFile, 'destroy', '--yes', '--volumes']);
    }
  });

  it('without TLS and without shared mirrors: the mirror sits on the project network and nodes pull over http', async () => {
    const hex = ws.runId.slice('lopv-'.length);
    const cidrBase = `10.160.${octet + 2}`;
    const priv: ProjectSpec = {
      ...spec,
      name: `lopvp${hex}`,
      domain: `lopvp${hex}.test`,
      network: { name: `lopvp${hex}`, cidr: `${cidrBase}.0/24` },
      tls: false,
      sharedEnabled: false,
      mirrors: [{ name: `${ws.runId}-priv`, url: `http://${cidrBase}.120:5000`, registry: 'docker.io' }],
    };
    // The project network exists first (the test upstream lives on it), shaped as lo plans it.
    await docker.createNetwork({
      Name: priv.network!.name,
      Labels: { [TEST_RUN_LABEL]: ws.runId },
      IPAM: { Config: [{ Subnet: `${cidrBase}.0/24`, Gateway: `${cidrBase}.1`, IPRange: `${cidrBase}.128/25` }] },
    });
    const up = await docker.createContainer({
      name: `${ws.runId}-priv-upstream`,
      Image: 'registry:2',
      Labels: { [TEST_RUN_LABEL]: ws.runId },
      HostConfig: { NetworkMode: priv.network!.name },
      NetworkingConfig: { EndpointsConfig: { [priv.network!.name]: { IPAMConfig: { IPv4Address: `${cidrBase}.120` } } } },
    });
    await up.start();
    await waitHttp(`http://${cidrBase}.120:5000/v2/`);
    const img = await makeTinyImage(ws, 'priv');
    await execa('skopeo', [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `docker-daemon:${img}`,
      `docker://${cidrBase}.120:5000/library/${ws.runId}-priv:v1`,
    ]);

    const privFile = writeProjectSpec(ws, priv);
    try {
      const r = await lo(ws, ['--config', privFile, 'provision', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const res = JSON.parse(r.stdout);
      expect(res.warnings).toEqual([]); // no TLS: nothing to trust
      expect(
        res.registries.map((x: { name: string; address: string; scheme: string; shared: boolean }) => [
          x.name,
          x.address,
          x.scheme,
          x.shared,
        ]),
      ).toEqual([
        ['build', `${cidrBase}.101`, 'http', false],
        ['cache', `${cidrBase}.102`, 'http', false],
        [`${ws.runId}-priv`, `${cidrBase}.103`, 'http', false],
      ]);
      const node = `${priv.name}-control-plane`;
      expect(Object.keys((await docker.getContainer(node).inspect()).NetworkSettings.Networks)).toEqual([priv.network!.name]);
      const hosts = readFileSync(join(ws.stateDir, 'projects', priv.name, 'certs.d', 'docker.io', 'hosts.toml'), 'utf8');
      expect(hosts).toContain(`[host."http://${cidrBase}.103"]`);
      expect(hosts).not.toMatch(/\bca\s*=/);
      const pull = await pullInNode(node, `docker.io/library/${ws.runId}-priv:v1`);
      expect(pull.code, pull.out).toBe(0);
      const catalog = (await (await fetch(`http://${cidrBase}.103/v2/_catalog`)).json()) as { repositories: string[] };
      expect(catalog.repositories).toContain(`library/${ws.runId}-priv`);
    } finally {
      await lo(ws, ['--config', privFile, 'destroy', '--yes', '--volumes']);
      await up.remove({ force: true, v: true });
      await docker
        .getNetwork(priv.network!.name)
        .remove()
        .catch(() => undefined);
    }
  });

  it('lo destroy without --volumes keeps the volumes; lo destroy --volumes removes them, shared network untouched', async () => {
    const r = await lo(ws, ['--config', file, 'destroy', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('shared mirrors kept');
    expect((await docker.getVolume(`${spec.name}-registry-build-data`).inspect()).Name).toBe(`${spec.name}-registry-build-data`);
    const again = await lo(ws, ['--config', file, 'destroy', '--yes', '--volumes', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const res = JSON.parse(again.stdout);
    expect(res.steps[1].actions).toEqual([{ action: 'noop', object: `cluster ${spec.name}`, detail: 'not found' }]);
    await expect(docker.getVolume(`${spec.name}-registry-build-data`).inspect()).rejects.toThrow();
    expect((await docker.getNetwork(spec.shared.name).inspect()).Name).toBe(spec.shared.name);
    const runLabelled = await docker.listContainers({ all: true, filters: { label: [`${TEST_RUN_LABEL}=${ws.runId}`] } });
    expect(runLabelled).toEqual([]);

    // The project network is gone with --volumes: doctor says so instead of probing an address routed elsewhere.
    const doc = await lo(ws, ['--config', file, 'doctor', '--json']);
    expect(doc.code).toBe(1);
    const build = JSON.parse(doc.stdout).checks.find((c: { name: string }) => c.name === 'registry build');
    expect(build).toMatchObject({ status: 'fail', fix: 'run `lo provision` (or `lo registry up`)' });
    expect(build.detail).toContain(`network ${spec.network!.name} does not exist`);
  });
});
