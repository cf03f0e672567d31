/**
 * `lo provision` with the P2P node mirror, end to end through the CLI: a two-node cluster (kind stand-in,
 * real containerd 2.1, CRI pulls) gets one agent sidecar per node; an image pulled on the control plane through
 * the mirror is pulled on the worker through P2P with the mirror and its upstream stopped (the control plane's
 * served-bytes counter moves); a re-run is a no-op and
 * `lo destroy` removes the agents. LO_P2P_BASE_IMAGE points the agent image at the offline node image.
 * Subnets from 10.160.0.0/16, names `lopv…`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil } from '../support/poll.mjs';
import { docker } from '../helpers/docker.js';
import {
  cleanupProvisionRun,
  lo,
  provisionWorkspace,
  pullInNode,
  seededUpstream,
  testProject,
  writeProjectSpec,
  type ProjectSpec,
  type ProvisionWorkspace,
} from '../helpers/kind.js';
import { agentRequests, metric, scrape } from '../helpers/p2p.js';

const NODE_IMAGE = 'lo-test/node:containerd';
let ws: ProvisionWorkspace;
let spec: ProjectSpec;
let file: string;
let repo: string;
let upstreamName: string;

async function agents(project: string): Promise<Array<{ name: string; node: string; state: string }>> {
  const found = await docker.listContainers({
    all: true,
    filters: { label: [`dev.lok8s.lo.project=${project}`, 'dev.lok8s.lo.role=p2p-agent'] },
  });
  return found
    .map((c) => ({ name: c.Names[0]!.replace(/^\//, ''), node: c.Labels['dev.lok8s.lo.node']!, state: c.State }))
    .sort((a, b) => (a.node < b.node ? -1 : 1));
}

beforeAll(async () => {
  ws = provisionWorkspace();
  ws.env.LO_P2P_BASE_IMAGE = NODE_IMAGE;
  const hex = ws.runId.slice('lopv-'.length);
  const bed = await seededUpstream(ws, { network: `lopvq${hex}`, image: 'p2p' });
  const { shared, upstreamIp } = bed;
  upstreamName = bed.upstreamName;
  repo = bed.repo;
  spec = testProject(ws, 'p', {
    shared,
    mirrors: [{ name: `${ws.runId}-p2pdock`, url: `http://${upstreamIp}:5000`, registry: 'docker.io' }],
    workers: 1,
    p2p: true,
  });
  file = writeProjectSpec(ws, spec);
});

afterAll(async () => {
  await cleanupProvisionRun(ws, [spec?.name].filter(Boolean) as string[]);
});

describe('lo provision with the P2P node mirror', () => {
  it('runs one agent sidecar per node as the last step', async () => {
    const r = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    const p2p = res.steps.find((s: { step: string }) => s.step === 'p2p');
    expect(p2p.status).toBe('done');
    expect(p2p.actions.filter((a: { action: string }) => a.action === 'create').length).toBeGreaterThanOrEqual(2);
    const found = await agents(spec.name);
    expect(found.map((a) => a.node)).toEqual([`${spec.name}-control-plane`, `${spec.name}-worker`]);
    expect(found.every((a) => a.state === 'running')).toBe(true);
  });

  it('the worker pulls through P2P what the control plane pulled, with the mirror and upstream stopped', async () => {
    const ref = `docker.io/${repo}:v1`;
    const first = await pullInNode(`${spec.name}-control-plane`, ref);
    expect(first.code, first.out).toBe(0);
    const mirror = `lok8s-registry-${spec.mirrors[0]!.name}`;
    const workerAgent = (await agents(spec.name)).find((a) => a.node === `${spec.name}-worker`)!.name;
    // The worker's agent finds the control plane's copy through the DHT before the sources go away (asked from
    // inside the worker: the registry port listens on its 127.0.0.1 only).
    const status = await pollUntil(
      async () => (await agentRequests(workerAgent, 30020, [{ path: `/v2/${repo}/manifests/v1?ns=docker.io`, method: 'HEAD' }]))[0]!.status,
      (s) => s === 200,
      { timeoutMs: 60_000, everyMs: 500 },
    );
    expect(status).toBe(200);
    await docker.getContainer(mirror).stop({ t: 0 });
    await docker.getContainer(upstreamName).stop({ t: 0 });
    // The route: the bytes came from the control plane's agent (its served-bytes counter moves).
    const cp = await docker.getContainer(`${spec.name}-control-plane`).inspect();
    // The metrics port (30022) is on the node's addresses: readable from the host.
    const cpMetrics = `http://${cp.NetworkSettings.Networks[spec.network!.name]!.IPAddress}:30022/metrics`;
    const servedBefore = metric(await scrape(cpMetrics), 'lo_p2p_bytes_served_total');
    const second = await pullInNode(`${spec.name}-worker`, ref);
    expect(second.code, second.out).toBe(0);
    expect(metric(await scrape(cpMetrics), 'lo_p2p_bytes_served_total')).toBeGreaterThan(servedBefore + 2048);
    await docker.getContainer(mirror).start();
    await docker.getContainer(upstreamName).start();
  });

  it('a stopped agent (e.g. after its node restarted) is named by lo doctor and started again by lo provision', async () => {
    const node = `${spec.name}-worker`;
    const ip = (): Promise<string> =>
      docker
        .getContainer(node)
        .inspect()
        .then((i) => i.NetworkSettings.Networks[spec.network!.name]!.IPAddress);
    const answers = async (within: number): Promise<boolean> => {
      const url = `http://${await ip()}:30022/metrics`;
      const status = await pollUntil(
        async () => (await fetch(url, { signal: AbortSignal.timeout(1000) }).catch(() => null))?.status,
        (s) => s === 200,
        { timeoutMs: within, everyMs: 300 },
      );
      return status === 200;
    };
    const p2pCheck = async (): Promise<{ status: string; detail: string; fix?: string }> => {
      const d = await lo(ws, ['--config', file, 'doctor', '--json']);
      return JSON.parse(d.stdout).checks.find((c: { name: string }) => c.name === 'p2p');
    };
    expect((await p2pCheck()).status).toBe('ok');

    // A node restart kills its agent (it shares the node's PID namespace). Docker's restart policy brings it
    // back only when the node is running again by then; either way lo provision repairs it.
    await docker.getContainer(node).restart({ t: 1 });
    await answers(5_000);
    const agent = (await agents(spec.name)).find((a) => a.node === node)!;
    // Stopped either way: the node restart may already have left it stopped (Docker answers 304 then).
    await docker
      .getContainer(agent.name)
      .stop({ t: 1 })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 304) throw err;
      });
    const check = await p2pCheck();
    expect(check).toMatchObject({ status: 'fail', fix: 'run `lo provision` to start the agents again' });
    expect(check.detail).toContain(`no running P2P agent on ${node}`);

    const fixed = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(await answers(30_000)).toBe(true);
    expect((await p2pCheck()).status).toBe('ok');
  });

  it('a re-run leaves the agents alone, and lo destroy removes them', async () => {
    const before = await agents(spec.name);
    const again = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
    expect(again.code, again.stderr).toBe(0);
    const p2p = JSON.parse(again.stdout).steps.find((s: { step: string }) => s.step === 'p2p');
    expect(p2p.actions.map((a: { action: string }) => a.action)).toEqual(p2p.actions.map(() => 'noop'));
    expect((await agents(spec.name)).map((a) => a.name)).toEqual(before.map((a) => a.name));

    const d = await lo(ws, ['--config', file, 'destroy', '--yes', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(await agents(spec.name)).toEqual([]);
  });
});
