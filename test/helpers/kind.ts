/**
 * Helpers for lo's provision e2e tests: the kind and kubectl stand-ins first on PATH, a workspace with its
 * own state dir and CAROOT, CRI pulls and `ctr` inside node containers. Everything carries
 * `dev.lok8s.lo.test-run=<id>` (node containers and their volumes too: the kind stand-in adds
 * LO_EXTRA_LABELS). Addresses come from 10.160.0.0/16 (and 10.125.50.0/24 for the 50.lok8s.dev test);
 * names start with `lopv`.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { criPull } from './cri.js';
import { httpsGet } from './tls.js';
import { docker, makeImage, REPO_ROOT, TEST_RUN_LABEL } from './docker.js';
import { removeRunObjects, startRegistry } from '../support/dockerRun.mjs';

export const FAKE_BIN = join(REPO_ROOT, 'test', 'fixtures', 'bin');
export const LO_BIN = join(REPO_ROOT, 'bin', 'lo.js');

export interface ProvisionWorkspace {
  runId: string;
  dir: string;
  stateDir: string;
  caRoot: string;
  kubectlLog: string;
  env: NodeJS.ProcessEnv;
}

export function provisionWorkspace(): ProvisionWorkspace {
  const runId = `lopv-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), `${runId}-`));
  const stateDir = join(dir, 'state');
  const caRoot = join(dir, 'caroot');
  const kubectlLog = join(dir, 'kubectl.log');
  return {
    runId,
    dir,
    stateDir,
    caRoot,
    kubectlLog,
    env: {
      ...process.env,
      PATH: `${FAKE_BIN}:${process.env.PATH ?? ''}`,
      LO_STATE_DIR: stateDir,
      CAROOT: caRoot,
      LO_EXTRA_LABELS: `${TEST_RUN_LABEL}=${runId}`,
      LO_FAKE_KUBECTL_LOG: kubectlLog,
      FORCE_COLOR: '0',
    },
  };
}

export interface ProjectSpec {
  name: string;
  domain: string;
  /** Omitted for N.lok8s.dev (the slot gives the subnet). */
  network?: { name: string; cidr: string };
  shared: { name: string; cidr: string };
  mirrors: Array<{ name: string; url: string; registry: string }>;
  workers?: number;
  controlPlanes?: number;
  p2p?: boolean;
  disableDefaultEndpoint?: boolean;
  /** default true */
  tls?: boolean;
  /** default true */
  sharedEnabled?: boolean;
}

/**
 * A project of the provision tests named `lopv<letter><hex>` (hex: the run id's), with domain `<name>.test` and
 * its own network 10.160.<10-99>.0/24; `rest` gives the shared network, the mirrors and the options.
 */
export function testProject(ws: ProvisionWorkspace, letter: string, rest: Omit<ProjectSpec, 'name' | 'domain' | 'network'>): ProjectSpec {
  const name = `lopv${letter}${ws.runId.slice('lopv-'.length)}`;
  return { name, domain: `${name}.test`, network: { name, cidr: `10.160.${10 + randomInt(90)}.0/24` }, ...rest };
}

export function writeProjectSpec(ws: ProvisionWorkspace, s: ProjectSpec): string {
  const file = join(ws.dir, `${s.name}.yaml`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'cluster.lok8s.dev/v1beta1',
      kind: 'Lo',
      metadata: { name: s.name },
      spec: {
        cluster: { domain: s.domain },
        ...(s.network ? { network: s.network } : {}),
        nodes: { controlPlane: s.controlPlanes ?? 1, workers: s.workers ?? 0, maxConcurrentDownloads: 4 },
        registries: {
          tls: s.tls ?? true,
          ...(s.disableDefaultEndpoint ? { disableDefaultEndpoint: true } : {}),
          shared: { enabled: s.sharedEnabled ?? true, network: s.shared },
          mirrors: s.mirrors,
          // Nodes pulling by tag from each other with the mirror down need peers' tags (p2p.resolveTags).
          p2p: { enabled: s.p2p ?? false, ...(s.p2p ? { resolveTags: true } : {}) },
        },
      },
    }),
  );
  return file;
}

/** Runs `node bin/lo.js ...` with the stand-ins on PATH; never throws on a non-zero exit. */
export async function lo(
  ws: ProvisionWorkspace,
  args: string[],
  timeout = 180_000,
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const r = await execa('node', [LO_BIN, ...args], { env: ws.env, reject: false, cwd: ws.dir, timeout, stdin: 'ignore' });
  return { code: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Math.round(performance.now() - t0) };
}

/** `ctr -n k8s.io ...` inside a node container; never throws. */
export async function ctr(node: string, args: string[], timeout = 60_000): Promise<{ code: number; out: string }> {
  const r = await execa('docker', ['exec', node, 'ctr', '-n', 'k8s.io', ...args], { reject: false, timeout, all: true });
  return { code: r.exitCode ?? 1, out: String(r.all ?? '') };
}

/**
 * Pulls as the kubelet does: CRI PullImage over the node's containerd socket, so containerd follows the
 * config.toml the kind stand-in wrote (kind's base config + lo's containerdConfigPatches, config_path).
 */
export function pullInNode(node: string, ref: string): Promise<{ code: number; out: string }> {
  return criPull(node, ref);
}

/** Reads a file inside a node container with the node image's own node binary. */
export async function readInNode(node: string, path: string): Promise<string> {
  const r = await execa(
    'docker',
    ['exec', node, 'node', '-e', `process.stdout.write(require('fs').readFileSync(${JSON.stringify(path)}, 'utf8'))`],
    { stripFinalNewline: false },
  );
  return String(r.stdout);
}

/** The kubectl stand-in's log: one entry per call. */
export function kubectlCalls(
  ws: ProvisionWorkspace,
): Array<{ argv: string[]; stdin?: string; objects?: Array<Record<string, any>>; cluster?: string }> {
  try {
    return readFileSync(ws.kubectlLog, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/** Deletes the stand-in clusters of a run (node containers with their volumes), then the temp dir. */
export async function removeClusters(ws: ProvisionWorkspace, names: string[]): Promise<void> {
  for (const name of names) await execa('kind', ['delete', 'cluster', '--name', name], { env: ws.env, reject: false });
  const filters = { label: [`${TEST_RUN_LABEL}=${ws.runId}`, 'io.x-k8s.kind.cluster'] };
  for (const c of await docker.listContainers({ all: true, filters }))
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => undefined);
}

export function removeWorkspaceDir(ws: ProvisionWorkspace): void {
  rmSync(ws.dir, { recursive: true, force: true });
}

/** A tiny random single-layer image (2 KiB of payload) in the local engine, named <runId>/<name>:<tag>. */
export function makeTinyImage(ws: ProvisionWorkspace, name: string, tag = 'v1'): Promise<string> {
  return makeImage(ws, name, tag, 2048);
}

/** The GET JSON of an HTTPS registry endpoint verified with only lo's CA. */
export async function registryGet(url: string, caPem: string): Promise<{ status: number; body: any }> {
  const r = await httpsGet(url, { ca: caPem });
  let body: unknown = r.body;
  try {
    body = JSON.parse(r.body);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body };
}

/** Deletes the run's stand-in clusters, then everything of the run (removeRunObjects) and the temp dir. */
export async function cleanupProvisionRun(ws: ProvisionWorkspace | undefined, clusters: string[] = []): Promise<void> {
  if (!ws) return;
  await removeClusters(ws, clusters).catch(() => undefined);
  await removeRunObjects(docker, ws.runId);
  removeWorkspaceDir(ws);
}

export interface SeededUpstream {
  /** The shared registry network the test made (10.160.<200-249>.0/24, labelled with the run id). */
  shared: { name: string; cidr: string };
  /** A registry:2 "upstream" at .120 on it, plain HTTP on :5000. */
  upstreamIp: string;
  upstreamName: string;
  /** library/<runId>-<image>, pushed as :v1 (one tiny random layer). */
  repo: string;
}

/**
 * A shared registry network of the test's own (10.160.<200-249>.0/24, labelled with the run id; it exists
 * before lo runs, and lo finds it with the planned subnet) with a registry:2 "upstream" `upstreamName` at .120.
 */
export async function upstreamNetwork(
  ws: ProvisionWorkspace,
  o: { network: string; upstreamName: string },
): Promise<Omit<SeededUpstream, 'repo'>> {
  const octet = 200 + randomInt(50);
  const shared = { name: o.network, cidr: `10.160.${octet}.0/24` };
  await docker.createNetwork({
    Name: shared.name,
    Labels: { [TEST_RUN_LABEL]: ws.runId },
    IPAM: { Config: [{ Subnet: shared.cidr, Gateway: `10.160.${octet}.1`, IPRange: `10.160.${octet}.128/25` }] },
  });
  const upstreamIp = `10.160.${octet}.120`;
  await startRegistry(docker, { runId: ws.runId, name: o.upstreamName, network: shared.name, ip: upstreamIp });
  return { shared, upstreamIp, upstreamName: o.upstreamName };
}

/**
 * The common bed of the provision e2e tests: a shared network of the test's own and a registry:2 upstream
 * on it holding one tiny image, so mirrors have something real (and local) to pull through from.
 */
export async function seededUpstream(ws: ProvisionWorkspace, o: { network: string; image: string }): Promise<SeededUpstream> {
  const { shared, upstreamIp, upstreamName } = await upstreamNetwork(ws, {
    network: o.network,
    upstreamName: `${ws.runId}-${o.image}-upstream`,
  });
  const repo = `library/${ws.runId}-${o.image}`;
  const img = await makeTinyImage(ws, o.image);
  await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `docker-daemon:${img}`, `docker://${upstreamIp}:5000/${repo}:v1`]);
  return { shared, upstreamIp, upstreamName, repo };
}
