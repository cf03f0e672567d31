/**
 * Shared helpers for lo's registry e2e tests on the real Docker engine. Everything a test creates carries
 * `dev.lok8s.lo.test-run=<id>` and is removed by `cleanupRun`, even when the test fails. Addresses come from
 * the 10.140.0.0/16 block; names start with `lodk-`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import Docker from 'dockerode';
import { beforeEach, type TestContext } from 'vitest';
import { stringify } from 'yaml';
import { LABELS } from '../../src/plan/labels.js';
import { clientsFor, type DockerClients } from '../../src/adapters/docker/index.js';
import { parseSpec } from '../../src/spec/parseSpec.js';
import { planCluster } from '../../src/plan/planCluster.js';
import type { Plan } from '../../src/plan/types.js';
import type { LoPaths } from '../../src/runtime/paths.js';
import { removeRunObjects, startRegistry, waitHttp } from '../support/dockerRun.mjs';
import { eventually } from '../support/poll.mjs';

export const TEST_RUN_LABEL = LABELS.testRun;
export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
export const LO_BIN = join(REPO_ROOT, 'bin', 'lo.js');

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });
export const clients: DockerClients = clientsFor({ docker, target: 'unix:///var/run/docker.sock' });

export function newRunId(): string {
  return `lodk-${randomBytes(3).toString('hex')}`;
}

export interface SpecInput {
  /** Project name = network name (<= 15 chars). */
  name: string;
  cidr: string;
  sharedName: string;
  sharedCidr: string;
  mirrors?: Array<{ name: string; url: string; registry?: string; credentials?: { usernameEnv: string; passwordEnv: string } }>;
  sharedEnabled?: boolean;
  tls?: boolean;
}

export function specYaml(s: SpecInput): string {
  return stringify({
    apiVersion: 'cluster.lok8s.dev/v1beta1',
    kind: 'Lo',
    metadata: { name: s.name },
    spec: {
      cluster: { domain: `${s.name}.test` },
      network: { name: s.name, cidr: s.cidr },
      registries: {
        tls: s.tls ?? false,
        shared: { enabled: s.sharedEnabled ?? true, network: { name: s.sharedName, cidr: s.sharedCidr } },
        mirrors: s.mirrors ?? [],
      },
    },
  });
}

/** A test workspace: temp dir with lo's state dir and CAROOT, the run id, and a spec writer. */
export interface Workspace {
  runId: string;
  dir: string;
  paths: LoPaths;
  extraLabels: Record<string, string>;
  /** Writes the spec to <dir>/<name>.yaml and returns the path. */
  writeSpec(s: SpecInput): string;
  /** The plan lo would make for a spec (nothing observed). */
  plan(s: SpecInput): Plan;
  /** Environment for running the `lo` binary against this workspace. */
  env: NodeJS.ProcessEnv;
  /** Deps for the in-process core functions. */
  deps: { paths: LoPaths; extraLabels: Record<string, string>; connect: () => Promise<DockerClients> };
}

export function workspace(runId = newRunId()): Workspace {
  const dir = mkdtempSync(join(tmpdir(), `${runId}-`));
  const paths = { stateDir: join(dir, 'state'), caRoot: join(dir, 'caroot') };
  const extraLabels = { [TEST_RUN_LABEL]: runId };
  return {
    runId,
    dir,
    paths,
    extraLabels,
    writeSpec(s) {
      const file = join(dir, `${s.name}.yaml`);
      writeFileSync(file, specYaml(s));
      return file;
    },
    plan(s) {
      const spec = parseSpec(specYaml(s), { file: join(dir, `${s.name}.yaml`) });
      return planCluster(spec, { paths, extraLabels });
    },
    env: {
      ...process.env,
      LO_STATE_DIR: paths.stateDir,
      CAROOT: paths.caRoot,
      LO_EXTRA_LABELS: `${TEST_RUN_LABEL}=${runId}`,
      FORCE_COLOR: '0',
    },
    deps: { paths, extraLabels, connect: async () => clients },
  };
}

/** Runs `node bin/lo.js ...`; never throws on a non-zero exit. */
export async function runLo(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('node', [LO_BIN, ...args], { env, reject: false, cwd: REPO_ROOT, timeout: 60_000 });
  return { code: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** Removes every container, volume, network and image of this run (removeRunObjects), and the temp dir. */
export async function cleanupRun(ws: Workspace | undefined): Promise<void> {
  if (!ws) return;
  await removeRunObjects(docker, ws.runId);
  rmSync(ws.dir, { recursive: true, force: true });
}

/** Starts a plain-HTTP registry:2 on `network` at `ip` (port 5000), labelled with the run id. */
export async function startUpstream(
  ws: Workspace,
  name: string,
  network: string,
  ip: string,
): Promise<{ name: string; url: string; ip: string }> {
  return startRegistry(docker, { runId: ws.runId, name, network, ip });
}

export { waitHttp };

/**
 * The upstream of a registry test: the spec's shared network, created first with lo's own network client from
 * the plan (what `up` would create; the upstream must answer before a mirror starts), a registry:2 `<runId>-upstream`
 * on it at `ip`, holding one tiny image as `library/<runId>:v1`; with that manifest's digest.
 */
export async function seedSharedUpstream(
  ws: Workspace,
  spec: SpecInput,
  ip: string,
): Promise<{ upstream: { name: string; url: string; ip: string }; digest: string }> {
  await clients.networks.ensure(ws.plan(spec).networks.find((n) => n.role === 'shared')!);
  const upstream = await startUpstream(ws, `${ws.runId}-upstream`, spec.sharedName, ip);
  const ref = `${ip}:5000/library/${ws.runId}:v1`;
  await pushToRegistry(await makeImage(ws, 'seed', 'v1'), ref);
  return { upstream, digest: await manifestDigest(ref) };
}

/**
 * Makes a tiny single-layer image with `docker import` (random content, so a unique digest) named
 * `<runId>/<name>:<tag>` in the local engine, and returns its reference.
 */
export async function makeImage(ws: Pick<Workspace, 'dir' | 'runId'>, name: string, tag = 'v1', sizeBytes = 4096): Promise<string> {
  const root = join(ws.dir, `img-${name}-${tag}`);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'payload.bin'), randomBytes(sizeBytes));
  writeFileSync(join(root, 'hello.txt'), `${name}:${tag} from ${ws.runId}\n`);
  const ref = `${ws.runId}/${name}:${tag}`;
  await execa('sh', ['-c', `tar -C "${root}" -c . | docker import - ${ref}`]);
  return ref;
}

/** skopeo with plain HTTP allowed (test registries without TLS). */
export async function skopeo(args: string[]): Promise<string> {
  const r = await execa('skopeo', args, { timeout: 60_000 });
  return r.stdout;
}

/** Copies a local engine image into a registry (`host:port/repo:tag`), plain HTTP. */
export async function pushToRegistry(localRef: string, dest: string): Promise<void> {
  await skopeo(['copy', '--quiet', '--dest-tls-verify=false', `docker-daemon:${localRef}`, `docker://${dest}`]);
}

/** The raw manifest digest of `host:port/repo:tag` (plain HTTP). */
export async function manifestDigest(ref: string, extra: string[] = ['--tls-verify=false']): Promise<string> {
  const out = await skopeo(['inspect', ...extra, `docker://${ref}`]);
  return (JSON.parse(out) as { Digest: string }).Digest;
}

/** Copies `docker://ref` into an OCI dir layout; returns the layer digests found in its manifest. */
export async function pullToDir(
  ws: Workspace,
  ref: string,
  extra: string[] = ['--src-tls-verify=false'],
): Promise<{ dir: string; layers: string[]; manifest: string }> {
  const dir = join(ws.dir, `pull-${randomBytes(3).toString('hex')}`);
  await skopeo(['copy', '--quiet', ...extra, `docker://${ref}`, `dir:${dir}`]);
  const { readFileSync } = await import('node:fs');
  const manifest = readFileSync(join(dir, 'manifest.json'), 'utf8');
  const layers = (JSON.parse(manifest) as { layers: Array<{ digest: string }> }).layers.map((l) => l.digest);
  return { dir, layers, manifest };
}

export async function inspectContainer(name: string): Promise<Docker.ContainerInspectInfo | null> {
  try {
    return await docker.getContainer(name).inspect();
  } catch {
    return null;
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Retries `fn` until it resolves (a just-recreated registry needs a moment to listen); bounded (test/support/poll.mjs). */
export { eventually };

/**
 * The log of every mirror container of this run (role mirror, and the old layout's replica), last lines,
 * without the per-request access lines: what the supervisor said (`lo: pull-through proxy exited …`) and what
 * each registry logged at start.
 */
export async function mirrorLogs(ws: Workspace, tail = 200): Promise<string> {
  const filters = { label: [`${TEST_RUN_LABEL}=${ws.runId}`] };
  const all = await docker.listContainers({ all: true, filters });
  const mirrors = all.filter((c) => ['mirror', 'replica'].includes(c.Labels[LABELS.role] ?? ''));
  const parts = await Promise.all(
    mirrors.map(async (c) => {
      const raw = await execa('docker', ['logs', '--timestamps', '--tail', String(tail), c.Id], { reject: false, all: true });
      const lines = (raw.all ?? '').split('\n').filter((l) => !l.includes('msg="response completed"'));
      return `----- docker logs ${c.Names[0]?.replace(/^\//, '')} (${c.State}, ${c.Status}) -----\n${lines.join('\n')}`;
    }),
  );
  return parts.join('\n');
}

/**
 * Registers, for every test of the file, a failure handler that prints the mirror containers' logs: a mirror
 * failure is diagnosed from what its supervisor and registries said, after the run is gone.
 */
export function attachMirrorLogsOnFailure(getWs: () => Workspace | undefined): void {
  beforeEach((ctx: TestContext) => {
    ctx.onTestFailed(async () => {
      const ws = getWs();
      if (!ws) return;
      const logs = await mirrorLogs(ws).catch((err: unknown) => `(mirror logs unavailable: ${(err as Error).message})`);
      console.error(`[${ctx.task.name}] failed; mirror logs:\n${logs || '(no mirror containers)'}`);
    });
  });
}
