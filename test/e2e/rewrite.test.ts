/**
 * Image-name rewrites end to end (issue 14, K3s's `mirrors.<registry>.rewrite`): a single-node cluster (kind
 * stand-in, real containerd 2.1, CRI pulls) with P2P off and a rewrite on docker.io, so lo runs a forward-only
 * node agent. A registry:2 of the test's own (plain HTTP, on a network of the test's own) holds only
 * `mirrorproject/rancher-images/pause:3.6` and `library/<other>:v1`; docker.io points at it with the default
 * endpoint disabled, so nothing can reach the real docker.io. Proven: `docker.io/rancher/pause:3.6` is fetched
 * as `mirrorproject/rancher-images/pause:3.6` (the upstream's access log) and stored under its original name
 * with the upstream's digest; `docker.io/library/<other>:v1` is requested unchanged and the agent counted a
 * no-match; a second provision changes nothing; a changed rule recreates the agent and removing the rewrite
 * removes it. Then the same rewrite with P2P on (two nodes): the worker gets the layers from its peer.
 * Subnets from 10.160.0.0/16, names `lopv…`.
 */
import { randomInt } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criPull } from '../helpers/cri.js';
import { docker, manifestDigest } from '../helpers/docker.js';
import {
  cleanupProvisionRun,
  ctr,
  lo,
  makeTinyImage,
  provisionWorkspace,
  readInNode,
  seededUpstream,
  type ProvisionWorkspace,
} from '../helpers/kind.js';
import { metric, scrape } from '../helpers/p2p.js';

const RULE = { '^rancher/(.*)': 'mirrorproject/rancher-images/$1' };
const AGENT = 'http://127.0.0.1:30020';

let ws: ProvisionWorkspace;
let name: string;
let network: { name: string; cidr: string };
/** The test's network (lo's shared network): the upstream and, connected by lo, the node. */
let sharedNet: { name: string; cidr: string };
let upstream: { ip: string; container: string; other: string };
let file: string;
let pauseDigest: string;
let provisioned: { code: number; stdout: string; stderr: string };

/** The spec: docker.io only through the test's upstream, with the rewrite rules given (none: no rewrite). */
function writeSpec(rewrite: Record<string, string> | null, project = { name, network, file, workers: 0, p2p: false }): void {
  writeFileSync(
    project.file,
    stringify({
      apiVersion: 'cluster.lok8s.dev/v1beta1',
      kind: 'Lo',
      metadata: { name: project.name },
      spec: {
        cluster: { domain: `${project.name}.test` },
        network: project.network,
        nodes: { controlPlane: 1, workers: project.workers },
        registries: {
          shared: { enabled: true, network: sharedNet },
          mirrors: [],
          hosts: {
            'docker.io': {
              endpoints: [{ url: `http://${upstream.ip}:5000` }],
              disableDefaultEndpoint: true,
              ...(rewrite ? { rewrite } : {}),
            },
          },
          p2p: { enabled: project.p2p },
        },
      },
    }),
  );
}
const node = (): string => `${name}-control-plane`;
const agentName = (): string => `${node()}-lo-p2p`;
const logsOf = async (container: string): Promise<string> =>
  String((await execa('docker', ['logs', container], { all: true, reject: false })).all ?? '');
const esc = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

async function agents(): Promise<Array<{ name: string; state: string; id: string }>> {
  const found = await docker.listContainers({
    all: true,
    filters: { label: [`dev.lok8s.lo.project=${name}`, 'dev.lok8s.lo.role=p2p-agent'] },
  });
  return found.map((c) => ({ name: c.Names[0]!.replace(/^\//, ''), state: c.State, id: c.Id }));
}

type Step = { step: string; status: string; actions?: Array<{ action: string; object: string; detail?: string }> };
const p2pStep = (stdout: string): Step => (JSON.parse(stdout) as { steps: Step[] }).steps.find((s) => s.step === 'p2p')!;
/** The p2p step's agent actions (the step also reports the agent image). */
const agentActions = (stdout: string): Step['actions'] => (p2pStep(stdout).actions ?? []).filter((a) => a.object.startsWith('p2p agent '));

beforeAll(async () => {
  ws = provisionWorkspace();
  ws.env.LO_P2P_BASE_IMAGE = 'lo-test/node:containerd';
  const hex = ws.runId.slice('lopv-'.length);
  name = `lopvw${hex}`;
  network = { name, cidr: `10.160.${10 + randomInt(90)}.0/24` };
  const bed = await seededUpstream(ws, { network: `lopvx${hex}`, image: 'other' });
  sharedNet = bed.shared;
  upstream = { ip: bed.upstreamIp, container: bed.upstreamName, other: bed.repo };
  // The upstream holds the rewritten name only: `rancher/pause` does not exist there.
  const pause = await makeTinyImage(ws, 'pause', '3.6');
  const dest = `${upstream.ip}:5000/mirrorproject/rancher-images/pause:3.6`;
  await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `docker-daemon:${pause}`, `docker://${dest}`]);
  pauseDigest = await manifestDigest(dest);
  file = join(ws.dir, 'cluster.lok8s.yaml');
  writeSpec(RULE);
  provisioned = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
}, 400_000);

afterAll(async () => {
  await cleanupProvisionRun(ws, [name, p2pName].filter(Boolean));
});
let p2pName = '';

describe('image-name rewrites (issue 14)', () => {
  it('P2P off with a rewrite: one forward-only agent, no swarm key, listed first in docker.io/hosts.toml', async () => {
    expect(provisioned.code, provisioned.stderr).toBe(0);
    const step = p2pStep(provisioned.stdout);
    expect(step.status).toBe('done');
    expect(agentActions(provisioned.stdout)).toEqual([
      { action: 'create', object: `p2p agent ${agentName()}`, detail: 'forward-only: rewrites, P2P off' },
    ]);
    // No swarm key is made for a forward-only agent.
    expect(step.actions!.filter((a) => a.object.startsWith('p2p key'))).toEqual([]);
    const plan = JSON.parse((await lo(ws, ['--config', file, 'plan', '--json'])).stdout);
    expect(plan.p2p.forwardOnly).toBe(true);
    // No mirror of lo's could take the pull: docker.io has only the test's upstream behind the agent.
    expect(plan.registries.filter((r: { role: string }) => r.role === 'mirror')).toEqual([]);
    expect(existsSync(plan.p2p.keyPath)).toBe(false);
    const found = await agents();
    expect(found).toEqual([expect.objectContaining({ name: agentName(), state: 'running' })]);
    const info = await docker.getContainer(agentName()).inspect();
    expect(info.Config.Cmd).toContain('--forward-only');
    expect(info.Config.Cmd).not.toContain('--key');
    expect(info.HostConfig.Binds ?? []).toEqual([]);
    const hostsToml = await readInNode(node(), '/etc/containerd/certs.d/docker.io/hosts.toml');
    const hosts = [...hostsToml.matchAll(/^\[host\."([^"]+)"\]/gm)].map((m) => m[1]);
    expect(hosts[0]).toBe(AGENT);
    expect(hosts[hosts.length - 1]).toBe(`http://${upstream.ip}:5000`);
    expect(hostsToml).toMatch(new RegExp(`^server = "http://${esc(upstream.ip)}:5000"`, 'm'));
  });

  it('docker.io/rancher/pause:3.6 is fetched as mirrorproject/rancher-images/pause:3.6 and stored under its original name', async () => {
    const pulled = await criPull(node(), 'docker.io/rancher/pause:3.6');
    expect(pulled.code, pulled.out).toBe(0);
    const log = await logsOf(upstream.container);
    // The route: the upstream served the rewritten name, manifest and blobs, to the node (the agent shares its
    // network namespace); the original name never reached it.
    expect(log).toMatch(/"(GET|HEAD) \/v2\/mirrorproject\/rancher-images\/pause\/manifests\/3\.6 HTTP\/1\.1" 200/);
    expect(log).toMatch(/"GET \/v2\/mirrorproject\/rancher-images\/pause\/blobs\/sha256:[0-9a-f]{64} HTTP\/1\.1" 200/);
    expect(log).not.toMatch(/\/v2\/rancher\/pause\//);
    // The node reaches the upstream on the test's network (lo connected it): the requests came from there.
    const nodeIp = (await docker.getContainer(node()).inspect()).NetworkSettings.Networks[sharedNet.name]!.IPAddress;
    expect(log).toMatch(new RegExp(`remoteaddr="?${esc(nodeIp)}:\\d+"?.*uri="?/v2/mirrorproject/rancher-images/pause/manifests/3\\.6`));
    const images = await ctr(node(), ['images', 'ls']);
    expect(images.code, images.out).toBe(0);
    const line = images.out.split('\n').find((l) => l.startsWith('docker.io/rancher/pause:3.6 '));
    expect(line, images.out).toBeDefined();
    expect(line).toContain(pauseDigest);
    expect(images.out).not.toMatch(/mirrorproject\/rancher-images/);
  });

  it('a name no rule matches is pulled unchanged, and the agent counted the no-match', async () => {
    const ref = `docker.io/${upstream.other}:v1`;
    const pulled = await criPull(node(), ref);
    expect(pulled.code, pulled.out).toBe(0);
    const log = await logsOf(upstream.container);
    // containerd asked the upstream itself, under the original name (?ns=docker.io: a mirror host).
    expect(log).toMatch(new RegExp(`"HEAD ${esc(`/v2/${upstream.other}/manifests/v1?ns=docker.io`)} HTTP/1\\.1" 200 .*"containerd/`));
    const nodeIp = (await docker.getContainer(node()).inspect()).NetworkSettings.Networks[network.name]!.IPAddress;
    const m = await scrape(`http://${nodeIp}:30022/metrics`);
    expect(metric(m, 'lo_p2p_forwards_total', { registry: 'docker.io', result: 'rewrite-nomatch' })).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'lo_p2p_forwards_total', { registry: 'docker.io', result: 'ok' })).toBeGreaterThanOrEqual(1);
  });

  it('a second provision changes nothing', async () => {
    const again = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
    expect(again.code, again.stderr).toBe(0);
    const steps = (JSON.parse(again.stdout) as { steps: Step[] }).steps;
    expect(steps.flatMap((s) => s.actions ?? []).filter((a) => a.action !== 'noop')).toEqual([]);
  });

  it('a changed rule recreates the agent; removing the last rewrite (P2P off) removes it and the hosts.toml entry', async () => {
    const before = (await agents())[0]!.id;
    writeSpec({ ...RULE, '^team/(.*)': 'mirror/team-$1' });
    const changed = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
    expect(changed.code, changed.stderr).toBe(0);
    expect(agentActions(changed.stdout)).toEqual([expect.objectContaining({ action: 'recreate', object: `p2p agent ${agentName()}` })]);
    const now = await agents();
    expect(now.map((a) => a.state)).toEqual(['running']);
    expect(now[0]!.id).not.toBe(before);

    writeSpec(null);
    const removed = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
    expect(removed.code, removed.stderr).toBe(0);
    expect(agentActions(removed.stdout)).toEqual([expect.objectContaining({ action: 'remove', object: `p2p agent ${agentName()}` })]);
    expect(await agents()).toEqual([]);
    expect(await readInNode(node(), '/etc/containerd/certs.d/docker.io/hosts.toml')).not.toContain(AGENT);
    const last = await lo(ws, ['--config', file, 'provision', '--json'], 300_000);
    expect(p2pStep(last.stdout).status).toBe('skipped');
  });
});

/**
 * The same rewrite with P2P on (two nodes): the agents carry the rules besides their peers and key. The
 * control plane pulls through the rewrite from the upstream; the worker gets the same image, the layers from
 * the control plane's agent (its served-bytes counter moves), and stores it under the original name too.
 */
describe('image-name rewrites with P2P on (issue 14)', () => {
  let project: { name: string; network: { name: string; cidr: string }; file: string; workers: number; p2p: boolean };
  let result: { code: number; stdout: string; stderr: string };
  const cp = (): string => `${project.name}-control-plane`;
  const worker = (): string => `${project.name}-worker`;

  beforeAll(async () => {
    p2pName = `lopvy${ws.runId.slice('lopv-'.length)}`;
    // Another /24 than the first project's.
    const third = Number(network.cidr.split('.')[2]);
    project = {
      name: p2pName,
      network: { name: p2pName, cidr: `10.160.${third >= 50 ? third - 40 : third + 40}.0/24` },
      file: join(ws.dir, 'p2p.lok8s.yaml'),
      workers: 1,
      p2p: true,
    };
    writeSpec(RULE, project);
    result = await lo(ws, ['--config', project.file, 'provision', '--json'], 300_000);
  }, 400_000);

  it('every node runs a P2P agent with the rewrites, and the worker gets the image from its peer', async () => {
    expect(result.code, result.stderr).toBe(0);
    expect(agentActions(result.stdout)!.map((a) => a.action)).toEqual(['create', 'create']);
    const plan = JSON.parse((await lo(ws, ['--config', project.file, 'plan', '--json'])).stdout);
    expect(plan.p2p.forwardOnly).toBe(false);
    for (const a of plan.p2p.agents) {
      expect(a.command).toContain('--rewrites');
      expect(a.command).toContain('--key');
    }
    const first = await criPull(cp(), 'docker.io/rancher/pause:3.6');
    expect(first.code, `${first.out}\n${await logsOf(`${cp()}-lo-p2p`)}`).toBe(0);
    const cpIp = (await docker.getContainer(cp()).inspect()).NetworkSettings.Networks[sharedNet.name]!.IPAddress;
    expect(await logsOf(upstream.container)).toMatch(
      new RegExp(`remoteaddr="?${esc(cpIp)}:\\d+"?.*uri="?/v2/mirrorproject/rancher-images/pause/manifests/3\\.6`),
    );
    const cpMetrics = `http://${(await docker.getContainer(cp()).inspect()).NetworkSettings.Networks[project.network.name]!.IPAddress}:30022/metrics`;
    const servedBefore = metric(await scrape(cpMetrics), 'lo_p2p_bytes_served_total');
    // The worker's agent finds the control plane's copy through the DHT once it has advertised it: bounded wait.
    let second = { code: 1, out: '' };
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      second = await criPull(worker(), 'docker.io/rancher/pause:3.6');
      if (second.code !== 0) break;
      if (metric(await scrape(cpMetrics), 'lo_p2p_bytes_served_total') > servedBefore) break;
      // Pulled from the upstream before the peer was known: remove it and try again.
      await ctr(worker(), ['images', 'rm', '--sync', 'docker.io/rancher/pause:3.6']);
      await ctr(worker(), ['content', 'prune', 'references']);
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(second.code, second.out).toBe(0);
    expect(metric(await scrape(cpMetrics), 'lo_p2p_bytes_served_total')).toBeGreaterThan(servedBefore);
    const images = await ctr(worker(), ['images', 'ls']);
    const line = images.out.split('\n').find((l) => l.startsWith('docker.io/rancher/pause:3.6 '));
    expect(line, images.out).toContain(pauseDigest);
  });
});
