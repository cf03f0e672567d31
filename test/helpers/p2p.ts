/**
 * Test bed for the P2P node mirror on the real Docker engine: a project and a shared network in 10.170.0.0/16,
 * an upstream registry:2 and a pull-through mirror registry:2 in front of it, N containerd node containers
 * (lo-test/node:containerd-2.1 unless LO_FAKE_KIND_NODE_IMAGE says otherwise; containerd reads kind's config with
 * lo's patches, and pulls go through its CRI ImageService) and one lo P2P agent per node deployed by `deployP2P` (sidecar sharing the node's
 * network namespace and volumes). Everything carries `dev.lok8s.lo.test-run=<id>` and is removed by `destroy`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { execa } from 'execa';
import { LABELS } from '../../src/plan/labels.js';
import { clientsFor } from '../../src/adapters/docker/index.js';
import { applyCertsDir } from '../../src/apply/certsDir.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import { agentArgs, createP2PHook, deployP2P } from '../../src/apply/deployP2P.js';
import { stepView, type StepAction } from '../../src/apply/action.js';
import { generateSwarmKey } from '../../src/agent/swarmKey.js';
import { renderKindConfig } from '../../src/plan/render/renderKindConfig.js';
import { parse as parseYaml } from 'yaml';
import { kindContainerdConfig } from '../fixtures/kind/containerdConfig.mjs';
import { criPull } from './cri.js';
import { removeRunObjects } from '../support/dockerRun.mjs';

export const TEST_RUN_LABEL = LABELS.testRun;
export const REPO_ROOT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
/** containerd 2.1 like kind v0.30's nodes unless LO_FAKE_KIND_NODE_IMAGE picks another (the kind stand-in's variable). */
export const NODE_IMAGE = process.env.LO_FAKE_KIND_NODE_IMAGE || 'lo-test/node:containerd-2.1';
export const REGISTRY_IMAGE = 'registry:2';
export const docker = new Docker({ socketPath: '/var/run/docker.sock' });
/** The narrow clients lo's executors take, over the same engine. */
export const clients = clientsFor({ docker, target: 'unix:///var/run/docker.sock' });

/** Runs lo inside the agent container from the bind-mounted repository (dist + node_modules). */
const AGENT_ENTRYPOINT = ['/usr/local/bin/node', '/opt/lo/bin/lo.js'];
// A node_modules that is a symlink (shared between git worktrees) is bound at its real path too, so the link
// resolves inside the container.
const NODE_MODULES = realpathSync(join(REPO_ROOT, 'node_modules'));
const AGENT_BINDS = [
  `${REPO_ROOT}:/opt/lo:ro`,
  ...(NODE_MODULES === join(REPO_ROOT, 'node_modules') ? [] : [`${NODE_MODULES}:${NODE_MODULES}:ro`]),
];

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export async function execIn(container: string, cmd: string[], timeoutMs = 60_000): Promise<ExecResult> {
  const t0 = performance.now();
  const ex = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => (stdout += c.toString()));
  err.on('data', (c: Buffer) => (stderr += c.toString()));
  docker.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      stream.destroy();
      reject(new Error(`${cmd.join(' ')} in ${container} took more than ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on('end', () => {
      clearTimeout(t);
      resolve();
    });
    stream.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  const info = await ex.inspect();
  return { code: info.ExitCode ?? -1, stdout, stderr, ms: performance.now() - t0 };
}

export interface AgentRequest {
  path: string;
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
}

export interface AgentAnswer {
  status: number;
  headers: Record<string, string>;
  bytes: number;
  /** Time of this request measured inside the node (no docker exec overhead). */
  ms: number;
  /** Connection error code (ECONNREFUSED, ...) when there was no HTTP answer. */
  error?: string;
}

const REQUEST_SCRIPT = `
const [base, reqs] = JSON.parse(process.argv[1]);
(async () => {
  const out = [];
  for (const r of reqs) {
    const t0 = performance.now();
    try {
      const res = await fetch(base + r.path, { method: r.method ?? 'GET', headers: r.headers ?? {} });
      let bytes = 0;
      for await (const c of res.body ?? []) bytes += c.length;
      out.push({ status: res.status, headers: Object.fromEntries(res.headers), bytes, ms: performance.now() - t0 });
    } catch (e) {
      out.push({ status: 0, headers: {}, bytes: 0, ms: performance.now() - t0, error: String(e.cause?.code ?? e.message) });
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

/**
 * Requests to an agent's registry from inside its node's network namespace, where the port listens on
 * 127.0.0.1 (nothing outside the node reaches it): one docker exec in the agent container, requests in order.
 */
export async function agentRequests(agent: string, port: number, reqs: AgentRequest[]): Promise<AgentAnswer[]> {
  const r = await execIn(agent, ['/usr/local/bin/node', '-e', REQUEST_SCRIPT, JSON.stringify([`http://127.0.0.1:${port}`, reqs])], 120_000);
  if (r.code !== 0) throw new Error(`requests in ${agent} exited ${r.code}: ${r.stderr.slice(-1500)}`);
  return JSON.parse(r.stdout) as AgentAnswer[];
}

export interface BedNode {
  name: string;
  agent: string;
  ip: string;
}

export interface P2PBed {
  runId: string;
  dir: string;
  plan: Plan;
  labels: Record<string, string>;
  upstream: { name: string; ip: string; url: string };
  mirror: { name: string; ip: string };
  nodes: BedNode[];
  /** CRI PullImage in a node, as the kubelet pulls (containerd follows the node's config.toml). */
  pull(node: BedNode, ref: string, timeoutMs?: number): Promise<ExecResult>;
  ctr(node: BedNode, args: string[]): Promise<ExecResult>;
  /** From the host, at `<node ip>:<metricsPort>` (the metrics port listens on the node's addresses). */
  metrics(node: BedNode): Promise<Map<string, number>>;
  /** Requests to the node's agent registry, from inside the node (see agentRequests). */
  agent(node: BedNode, reqs: AgentRequest[]): Promise<AgentAnswer[]>;
  /** Runs an ES module script with node in a new container on the project network (not a node), lo mounted at /opt/lo; its stdout. */
  outsider(script: string, timeoutMs?: number): Promise<string>;
  agentLogs(node: BedNode): Promise<string>;
  /** Creates `<name>:<tag>` locally (one random layer of `bytes`) and copies it to the upstream. */
  seed(repo: string, tags: string[], bytes: number): Promise<{ digest: string; layers: string[] }>;
  destroy(): Promise<void>;
  /** What the first deployment did (with buildImage: the provision hook's actions). */
  deployActions: StepAction[];
  /** Runs the deployment again (idempotency). */
  redeploy(): Promise<StepAction[]>;
}

/**
 * An anonymous volume mount carrying `labels`. Docker's API treats an empty Source as "anonymous" and NoCopy /
 * DriverConfig as optional; @types/dockerode marks them required, so they are given here with Docker's defaults.
 */
function labelledVolume(target: string, labels: Record<string, string>): Docker.MountSettings {
  return {
    Type: 'volume',
    Source: '',
    Target: target,
    VolumeOptions: { NoCopy: false, Labels: labels, DriverConfig: { Name: 'local', Options: {} } },
  };
}

/** The config.toml kind would write on a node of this plan (kind's base config + lo's containerdConfigPatches). */
export function nodeContainerdConfig(plan: Plan, mutate: (patches: string[]) => string[] = (p) => p): string {
  const patches = (parseYaml(renderKindConfig(plan)) as { containerdConfigPatches: string[] }).containerdConfigPatches;
  return kindContainerdConfig(mutate(patches));
}

/** Sums the samples of a metric whose labels include all of `match` ({} = all). */
export function metric(m: Map<string, number>, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const [k, v] of m) {
    const i = k.indexOf('{');
    const n = i < 0 ? k : k.slice(0, i);
    if (n !== name) continue;
    const labels = i < 0 ? '' : k.slice(i);
    if (Object.entries(match).every(([lk, lv]) => labels.includes(`${lk}="${lv}"`))) sum += v;
  }
  return sum;
}

export async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

/** The payload of Docker's multiplexed log stream (8-byte frame headers). */
function demux(b: Buffer): string {
  const parts: Buffer[] = [];
  for (let i = 0; i + 8 <= b.length;) {
    const n = b.readUInt32BE(i + 4);
    parts.push(b.subarray(i + 8, i + 8 + n));
    i += 8 + n;
  }
  return Buffer.concat(parts).toString('utf8');
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

async function createNetworkPair(
  runId: string,
  labels: Record<string, string>,
  lo: number,
  hi: number,
): Promise<{ project: string; shared: string; x: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const x = lo + 2 * Math.floor(Math.random() * ((hi - lo) / 2));
    const project = `lop2p-${runId}`;
    const shared = `lop2ps-${runId}`;
    try {
      await docker.createNetwork({ Name: project, Labels: labels, IPAM: { Config: [{ Subnet: `10.170.${x}.0/24` }] } });
    } catch (e) {
      if (/overlap|already/i.test((e as Error).message)) continue;
      throw e;
    }
    try {
      await docker.createNetwork({ Name: shared, Labels: labels, IPAM: { Config: [{ Subnet: `10.170.${x + 1}.0/24` }] } });
      return { project, shared, x };
    } catch (e) {
      await docker
        .getNetwork(project)
        .remove()
        .catch(() => {});
      if (/overlap|already/i.test((e as Error).message)) continue;
      throw e;
    }
  }
  throw new Error('no free /24 pair in 10.170.0.0/16');
}

/** Removes the bed of a run (removeRunObjects: the agents first, they live in their node's network namespace). */
export async function removeRun(runId: string): Promise<void> {
  await removeRunObjects(docker, runId);
}

export interface BedOptions {
  nodes: number;
  /** Extra nodes whose agents get a different swarm key (they still list the real nodes as peers). */
  intruders?: number;
  uploadBytesPerSecond?: number;
  /** Range of the third octet (even start) for the network pair, so e2e and bench do not collide. */
  octets?: [number, number];
  /**
   * Build the agent image with the provision hook (createP2PHook) instead of running lo from the repository
   * mounted into the test image.
   */
  buildImage?: boolean;
  /** Node (and agent base) image; default NODE_IMAGE. */
  nodeImage?: string;
  /**
   * p2p.resolveTags of the bed's spec (default true: the bed opts in, so pulls by tag with the mirror down come
   * from peers; p2p.test.ts turns it off on one agent to check lo's default).
   */
  resolveTags?: boolean | string[];
  /** Edits lo's containerdConfigPatches before they are merged into the nodes' config (broken-config tests). */
  patchConfig?: (patches: string[]) => string[];
}

export async function createP2PBed(opts: BedOptions): Promise<P2PBed> {
  const runId = randomBytes(3).toString('hex');
  const labels = { [TEST_RUN_LABEL]: `lop2p-${runId}` };
  const dir = mkdtempSync(join(tmpdir(), `lop2p-${runId}-`));
  const cleanup = async (): Promise<void> => {
    await removeRun(`lop2p-${runId}`);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const nets = await createNetworkPair(runId, labels, ...(opts.octets ?? [2, 120]));
    const upstreamIp = `10.170.${nets.x + 1}.250`;
    const spec = parseSpec(
      JSON.stringify({
        apiVersion: 'cluster.lok8s.dev/v1beta1',
        kind: 'Lo',
        metadata: { name: nets.project },
        spec: {
          cluster: { domain: `${nets.project}.test` },
          network: { name: nets.project, cidr: `10.170.${nets.x}.0/24` },
          nodes: { controlPlane: 1, workers: opts.nodes - 1 },
          registries: {
            tls: false,
            shared: { enabled: true, network: { name: nets.shared, cidr: `10.170.${nets.x + 1}.0/24` } },
            mirrors: [{ name: nets.project, url: `http://${upstreamIp}:5000`, registry: 'docker.io' }],
            p2p: { enabled: true, resolveTags: opts.resolveTags ?? true },
          },
        },
      }),
      { file: join(dir, 'cluster.lok8s.yaml') },
    );
    const plan = planCluster(spec, { paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') }, extraLabels: labels });
    await applyCertsDir(plan, null);
    const mirrorPlan = plan.registries.find((r) => r.role === 'mirror')!;

    const run = async (
      name: string,
      image: string,
      network: string,
      ip: string,
      extra: Partial<Docker.ContainerCreateOptions> = {},
    ): Promise<void> => {
      const c = await docker.createContainer({
        name,
        Image: image,
        Labels: labels,
        NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: ip ? { IPv4Address: ip } : {} } } },
        ...extra,
        HostConfig: { NetworkMode: network, ...(extra.HostConfig ?? {}) },
      });
      await c.start();
    };
    await run(`lop2p-${runId}-upstream`, REGISTRY_IMAGE, nets.shared, upstreamIp, {
      Env: ['REGISTRY_STORAGE_DELETE_ENABLED=true'],
      HostConfig: { Mounts: [labelledVolume('/var/lib/registry', labels)] },
    });
    // The project's cache registry: hosts.toml lists it before the mirror (pinned images, issue 12); here it
    // holds nothing, so it answers each manifest with one 404 and containerd moves on.
    const cachePlan = plan.registries.find((r) => r.role === 'cache')!;
    await run(cachePlan.containerName, REGISTRY_IMAGE, nets.project, cachePlan.ip, { Env: ['REGISTRY_HTTP_ADDR=0.0.0.0:80'] });
    await run(mirrorPlan.containerName, REGISTRY_IMAGE, nets.shared, mirrorPlan.ip, {
      Env: ['REGISTRY_HTTP_ADDR=0.0.0.0:80', `REGISTRY_PROXY_REMOTEURL=${mirrorPlan.upstream}`],
      HostConfig: { Mounts: [labelledVolume('/var/lib/registry', labels)] },
    });

    const nodeSpecs = [
      ...plan.cluster.nodes.map((n) => n.name),
      ...Array.from({ length: opts.intruders ?? 0 }, (_, i) => `${nets.project}-intruder${i + 1}`),
    ];
    // Each node's config.toml is what kind writes: kind's base config with lo's containerdConfigPatches.
    const nodeConfig = join(dir, 'containerd-config.toml');
    writeFileSync(nodeConfig, nodeContainerdConfig(plan, opts.patchConfig));
    const nodeImage = opts.nodeImage ?? NODE_IMAGE;
    for (const name of nodeSpecs) {
      await run(name, nodeImage, nets.project, '', {
        HostConfig: {
          CapAdd: ['SYS_ADMIN'],
          SecurityOpt: ['seccomp=unconfined'],
          Binds: [`${plan.containerd.certsDir}:/etc/containerd/certs.d:ro`, `${nodeConfig}:/etc/containerd/config.toml:ro`],
          // Shaped like kind's nodes: /var a volume, /run (containerd's socket) a tmpfs.
          Mounts: [labelledVolume('/var', labels)],
          Tmpfs: { '/run': '' },
        },
      });
      await docker.getNetwork(nets.shared).connect({ Container: name });
    }
    const ipOf = async (name: string): Promise<string> =>
      (await docker.getContainer(name).inspect()).NetworkSettings.Networks[nets.project]!.IPAddress;
    for (const name of nodeSpecs)
      await waitFor(`containerd in ${name}`, async () => (await execIn(name, ['ctr', 'version'], 10_000)).code === 0, 20_000);

    const members = plan.cluster.nodes.map((n) => n.name);
    let agentImage: string | undefined;
    const deploy = async (): Promise<StepAction[]> => {
      if (!opts.buildImage)
        return (
          await deployP2P(plan, members, {
            docker: clients,
            image: nodeImage,
            entrypoint: AGENT_ENTRYPOINT,
            binds: AGENT_BINDS,
            extraLabels: labels,
            uploadBytesPerSecond: opts.uploadBytesPerSecond,
          })
        ).map(stepView);
      // Redeploys reuse the first image: other work in this repository may rebuild dist/ in between.
      const actions = await createP2PHook({ docker: async () => clients, baseImage: nodeImage, image: agentImage, extraLabels: labels })(
        plan,
        members,
      );
      agentImage ??= actions.find((a) => a.kind === 'image')?.name;
      return actions.map(stepView);
    };
    const deployActions = await deploy();
    const nodes: BedNode[] = [];
    for (const name of members) nodes.push({ name, agent: `${name}-lo-p2p`, ip: await ipOf(name) });

    // Intruders: same agent and plan, but their own swarm key; they try to bootstrap from the real nodes.
    for (const name of nodeSpecs.slice(members.length)) {
      const keyFile = join(dir, `${name}.key`);
      writeFileSync(keyFile, generateSwarmKey(), { mode: 0o600 });
      const self = { name, id: name, ip: await ipOf(name) };
      const args = agentArgs(plan, self, [self, ...nodes.map((n) => ({ name: n.name, id: n.name, ip: n.ip }))], {
        uploadBytesPerSecond: opts.uploadBytesPerSecond,
      });
      const c = await docker.createContainer({
        name: `${name}-lo-p2p`,
        Image: nodeImage,
        Entrypoint: AGENT_ENTRYPOINT,
        Cmd: args,
        Labels: { ...labels, 'dev.lok8s.lo.role': 'p2p-agent' },
        HostConfig: {
          NetworkMode: `container:${name}`,
          PidMode: `container:${name}`,
          CapAdd: ['SYS_PTRACE'],
          Binds: [...AGENT_BINDS, `${keyFile}:/etc/lo/p2p/swarm.key:ro`],
        },
      });
      await c.start();
      nodes.push({ name, agent: `${name}-lo-p2p`, ip: self.ip });
    }
    for (const n of nodes) {
      await waitFor(
        `agent on ${n.name}`,
        async () => (await scrape(`http://${n.ip}:${plan.p2p.metricsPort}/metrics`)).size > 0,
        30_000,
      ).catch(async (e: Error) => {
        const logs = (await docker.getContainer(n.agent).logs({ stdout: true, stderr: true, tail: 50 })) as unknown as Buffer;
        const state = (await docker.getContainer(n.agent).inspect()).State;
        throw new Error(`${e.message}\nagent ${n.agent} ${state.Status} (exit ${state.ExitCode}):\n${logs.toString('utf8')}`);
      });
    }

    const bed: P2PBed = {
      runId,
      dir,
      plan,
      labels,
      upstream: { name: `lop2p-${runId}-upstream`, ip: upstreamIp, url: `http://${upstreamIp}:5000` },
      mirror: { name: mirrorPlan.containerName, ip: mirrorPlan.ip },
      nodes,
      async pull(node, ref, timeoutMs = 90_000) {
        const t0 = performance.now();
        const r = await criPull(node.name, ref, timeoutMs);
        return { code: r.code, stdout: r.code === 0 ? r.out : '', stderr: r.code === 0 ? '' : r.out, ms: performance.now() - t0 };
      },
      ctr: (node, args) => execIn(node.name, ['ctr', '-n', 'k8s.io', ...args]),
      metrics: (node) => scrape(`http://${node.ip}:${plan.p2p.metricsPort}/metrics`),
      agent: (node, reqs) => agentRequests(node.agent, plan.p2p.port, reqs),
      async outsider(script, timeoutMs = 60_000) {
        const c = await docker.createContainer({
          name: `lop2p-${runId}-outsider-${randomBytes(2).toString('hex')}`,
          Image: nodeImage,
          Entrypoint: ['/usr/local/bin/node', '--input-type=module', '-e', script],
          Labels: labels,
          // Bare imports in the script resolve from lo's node_modules.
          WorkingDir: '/opt/lo',
          HostConfig: { NetworkMode: nets.project, Binds: AGENT_BINDS },
        });
        try {
          await c.start();
          const done = (await Promise.race([
            c.wait(),
            new Promise((_, reject) => setTimeout(() => reject(new Error(`outsider script took more than ${timeoutMs} ms`)), timeoutMs)),
          ])) as { StatusCode: number };
          const out = (await c.logs({ stdout: true, stderr: false })) as unknown as Buffer;
          const err = (await c.logs({ stdout: false, stderr: true })) as unknown as Buffer;
          if (done.StatusCode !== 0) throw new Error(`outsider exited ${done.StatusCode}: ${demux(err).slice(-2000)}`);
          return demux(out);
        } finally {
          await c.remove({ force: true }).catch(() => {});
        }
      },
      async agentLogs(node) {
        const buf = (await docker.getContainer(node.agent).logs({ stdout: true, stderr: true, tail: 200 })) as unknown as Buffer;
        // Docker's multiplexed log frames start with control bytes.
        // eslint-disable-next-line no-control-regex
        return buf.toString('utf8').replace(/[\x00-\x08]/g, '');
      },
      async seed(repo, tags, bytes) {
        const work = mkdtempSync(join(dir, 'img-'));
        // Random (incompressible) content in 1 MiB pieces so memory stays flat.
        const { openSync, writeSync, closeSync } = await import('node:fs');
        const fd = openSync(join(work, 'payload.bin'), 'w');
        for (let left = bytes; left > 0; left -= 1 << 20) writeSync(fd, randomBytes(Math.min(left, 1 << 20)));
        closeSync(fd);
        await execa('tar', ['-C', work, '-cf', join(work, 'rootfs.tar'), 'payload.bin']);
        const local = `lop2p-${runId}/${repo}`;
        const { createReadStream } = await import('node:fs');
        const stream = await docker.importImage(createReadStream(join(work, 'rootfs.tar')), { repo: local, tag: tags[0] });
        await new Promise((r, j) => docker.modem.followProgress(stream, (e: Error | null) => (e ? j(e) : r(null))));
        await docker.getImage(`${local}:${tags[0]}`).tag({ repo: local, tag: tags[0] });
        for (const tag of tags) {
          await execa('skopeo', [
            'copy',
            '-q',
            '--dest-tls-verify=false',
            `docker-daemon:${local}:${tags[0]}`,
            `docker://${upstreamIp}:5000/lop2p/${repo}:${tag}`,
          ]);
        }
        await docker
          .getImage(`${local}:${tags[0]}`)
          .remove({ force: true })
          .catch(() => {});
        rmSync(work, { recursive: true, force: true });
        const res = await fetch(`http://${upstreamIp}:5000/v2/lop2p/${repo}/manifests/${tags[0]}`, {
          headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
        });
        const manifest = (await res.json()) as { layers: Array<{ digest: string }>; config: { digest: string } };
        return { digest: res.headers.get('docker-content-digest')!, layers: manifest.layers.map((l) => l.digest) };
      },
      destroy: cleanup,
      deployActions,
      redeploy: deploy,
    };
    return bed;
  } catch (e) {
    await cleanup();
    throw e;
  }
}
