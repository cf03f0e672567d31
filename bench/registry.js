/**
 * Registry benchmarks (issue 4), measured side by side in one run:
 *  1. cold `lo registry up` of the default 6 registries (lok8s.dev: build, cache, 4 mirrors on 10.125.x) vs the
 *     same networks, volumes and containers created by sequential `docker` CLI commands (target <= 0.4), and vs
 *     the engine's floor: the six `docker run -d` in parallel, networks and volumes made beforehand (target <= 1.15);
 *  2. a no-op re-run vs one `docker ps` (target <= 3);
 *  3. `lo registry status` vs one `docker ps` (target <= 3); both as CLI processes vs `node -e 0` plus the same
 *     work in-process (target <= 2); status with one registry frozen and one stopped vs one probe timeout plus
 *     status with all running (target <= 1.2: the probes run in parallel);
 *  4. a warm pull of a cached image through a mirror vs straight from its upstream (target <= 1.2).
 * BENCH_REGISTRY_COLD_ONLY=1 runs part 1 only. The docker CLI is used for the baseline only. Everything is labelled with a bench run id and removed at the end.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import { cleanupLabelled, startUpstream, waitFor } from './_docker.js';

const sh = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const LO = join(root, 'bin', 'lo.js');
const RUN_LABEL = 'dev.lok8s.lo.test-run';

const { registryUp, registryStatus, registryClean } = await import('../dist/usecases/registry.js');
const { loadPlan } = await import('../dist/usecases/plan.js');

export async function run(report) {
  const runId = `lodk-bench-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), `${runId}-`));
  const paths = { stateDir: join(dir, 'state'), caRoot: join(dir, 'caroot') };
  const extraLabels = { [RUN_LABEL]: runId };
  const deps = { paths, extraLabels };
  // The CLI's code cache in the bench's own directory: warmed by an untimed run before the timed ones (as bench/cli.js
  // does), so the samples are the CLI as it runs every day, not the first run after a build.
  const env = {
    ...process.env,
    LO_STATE_DIR: paths.stateDir,
    CAROOT: paths.caRoot,
    LO_EXTRA_LABELS: `${RUN_LABEL}=${runId}`,
    XDG_CACHE_HOME: join(dir, 'cache'),
  };
  delete env.LO_COMPILE_CACHE;
  const docker = new Docker();
  const defaultOpts = { domain: 'lok8s.dev', cwd: dir }; // no clusters/ in dir: the built-in default spec
  try {
    await coldUp(report, { docker, dir, deps, env, defaultOpts, runId });
    if (process.env.BENCH_REGISTRY_COLD_ONLY === '1') return; // the cold up alone (its ratios), for quick runs
    const bench = await benchProject(report, { docker, dir, deps, runId });
    await noopAndStatus(report, { deps, bench });
    await warmPull(report, { dir, bench, runId, deps, docker });
  } finally {
    await registryClean(defaultOpts, { ...deps, shared: true }).catch(() => undefined);
    await cleanupLabelled(docker, runId);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------ 1. cold up

async function coldUp(report, { docker, dir, deps, env, defaultOpts, runId }) {
  report.heading('cold up: default 6 registries (lok8s.dev, TLS) vs sequential docker CLI');
  const { plan } = await loadPlan(defaultOpts, deps);
  for (const n of plan.networks) {
    if (
      await docker
        .getNetwork(n.name)
        .inspect()
        .then(
          () => true,
          () => false,
        )
    ) {
      report.note(`skipped: network ${n.name} already exists on this engine (not the bench's to remove)`);
      return;
    }
  }
  // Certificates are issued once per machine/project, not per `up`: issue them first, then measure Docker work.
  const t0 = performance.now();
  await registryUp(defaultOpts, deps);
  report.note(`first up incl. CA and 5 certificates: ${((performance.now() - t0) / 1000).toFixed(2)} s (not part of the ratio)`);
  await registryClean(defaultOpts, { ...deps, shared: true });
  await sh('node', [LO, 'registry', 'up', '--json'], { env, cwd: dir }); // fills the CLI's code cache (registry-up)
  await registryClean(defaultOpts, { ...deps, shared: true });

  const dockerCommands = baselineCommands(plan);
  report.note(
    `baseline: ${dockerCommands.length} sequential docker commands (${plan.networks.length} networks, ${plan.registries.length} volumes, ${plan.registries.length} containers)`,
  );
  const lo = [];
  const inproc = [];
  const cli = [];
  const floor = [];
  const networkAndVolumeCommands = dockerCommands.filter((a) => a[0] !== 'run');
  const runCommands = dockerCommands.filter((a) => a[0] === 'run');
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    await sh('node', [LO, 'registry', 'up', '--json'], { env, cwd: dir });
    lo.push(performance.now() - t);
    await registryClean(defaultOpts, { ...deps, shared: true });

    t = performance.now();
    await registryUp(defaultOpts, deps);
    inproc.push(performance.now() - t);
    await registryClean(defaultOpts, { ...deps, shared: true });

    t = performance.now();
    for (const args of dockerCommands) await sh('docker', args);
    cli.push(performance.now() - t);
    await cleanupLabelled(docker, runId);

    for (const args of networkAndVolumeCommands) await sh('docker', args);
    t = performance.now();
    await Promise.all(runCommands.map((args) => sh('docker', args)));
    floor.push(performance.now() - t);
    await cleanupLabelled(docker, runId);
  }
  const a = report.sample('lo registry up (CLI process, cold)', lo);
  const b = report.sample('applyRegistries in-process (cold)', inproc);
  const c = report.sample('sequential docker CLI (same objects)', cli);
  report.ratio('cold up: lo CLI / docker CLI', a, c, { target: 0.4 });
  report.ratio('cold up: lo in-process / docker CLI', b, c, { target: 0.4 });
  const f = report.sample('engine floor: 6 parallel docker run -d (networks, volumes exist)', floor);
  report.ratio('cold up: lo CLI / engine floor', a, f, { target: 1.15 });
  report.ratio('cold up: lo in-process / engine floor', b, f, { target: 1.15 });
  report.note('lo also creates the 2 networks and 6 volumes the floor gets for free');
}

function labelArgs(labels) {
  return Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
}

/** The docker CLI equivalent of what lo creates for the plan. */
function baselineCommands(plan) {
  const cmds = [];
  for (const n of plan.networks) {
    cmds.push([
      'network',
      'create',
      '--driver',
      'bridge',
      '--subnet',
      n.subnet,
      '--gateway',
      n.gateway,
      '--ip-range',
      n.ipRange,
      '-o',
      `com.docker.network.bridge.name=${n.bridgeName}`,
      ...labelArgs(n.labels),
      n.name,
    ]);
  }
  for (const r of plan.registries) cmds.push(['volume', 'create', ...labelArgs(r.labels), r.volume]);
  for (const r of plan.registries) {
    cmds.push([
      'run',
      '-d',
      '--name',
      r.containerName,
      '--network',
      r.network,
      '--ip',
      r.ip,
      '--restart',
      'always',
      ...labelArgs(r.labels),
      '--mount',
      `type=bind,src=${r.configDir},dst=/etc/lo/registry,readonly`,
      ...(r.tlsDir ? ['--mount', `type=bind,src=${r.tlsDir},dst=/etc/lo/tls,readonly`] : []),
      '--mount',
      `type=volume,src=${r.volume},dst=/var/lib/registry`,
      r.image,
      '/etc/lo/registry/config.yml',
    ]);
  }
  return cmds;
}

// ------------------------------------------------------------------ a project whose mirrors really work

async function benchProject(report, { docker, dir, deps, runId }) {
  // 6 registries like the default (build, cache, 4 mirrors), TLS on, mirrors in front of a local upstream.
  const shared = 'lodk-bench-sh';
  const upstreamIp = '10.140.251.200';
  const names = ['docker.io', 'quay.io', 'registry.k8s.io', 'ghcr.io'];
  const spec = {
    apiVersion: 'cluster.lok8s.dev/v1beta1',
    kind: 'Lo',
    metadata: { name: 'lodk-bench' },
    spec: {
      cluster: { domain: 'bench.test' },
      network: { name: 'lodk-bench', cidr: '10.140.250.0/24' },
      registries: {
        tls: true,
        shared: { network: { name: shared, cidr: '10.140.251.0/24' } },
        mirrors: names.map((registry, i) => ({ name: `lodk-bench-m${i}`, url: `http://${upstreamIp}:5000`, registry })),
      },
    },
  };
  const file = join(dir, 'bench.yaml');
  writeFileSync(file, stringify(spec));
  const opts = { config: file };
  const { plan } = await loadPlan(opts, deps);
  // The upstream must answer before the mirrors start.
  await startUpstream(docker, { plan, runId, ip: upstreamIp });
  await registryUp(opts, deps);
  const caDir = join(dir, 'certs');
  mkdirSync(caDir);
  writeFileSync(join(caDir, 'ca.crt'), readFileSync(plan.tls.caCertPath));
  const mirror = plan.registries.find((r) => r.registry === 'docker.io');
  await waitFor(() =>
    sh('skopeo', ['inspect', '--raw', '--cert-dir', caDir, `docker://${mirror.ip}/library/none:x`]).catch((e) => {
      if (!/manifest unknown|not found/i.test(e.stderr ?? '')) throw e;
    }),
  );
  return { opts, plan, upstream: `${upstreamIp}:5000`, mirror: mirror.ip, caDir };
}

// ----------------------------------------------------------------------------------- 2./3. no-op, status

async function noopAndStatus(report, { deps, bench }) {
  report.heading('no-op re-run and status (6 registries, TLS) vs one `docker ps`');
  const check = await registryUp(bench.opts, deps);
  const changed = check.actions.filter((a) => a.action !== 'noop');
  if (changed.length > 0) report.note(`warning: re-run was not a no-op: ${changed.map((a) => a.name).join(', ')}`);
  const ps = [];
  const noop = [];
  const status = [];
  const noopCli = [];
  const statusCli = [];
  const node0 = [];
  const env = { ...process.env, LO_STATE_DIR: deps.paths.stateDir, CAROOT: deps.paths.caRoot };
  for (let i = 0; i < 7; i++) {
    let t = performance.now();
    await sh('docker', ['ps']);
    ps.push(performance.now() - t);
    t = performance.now();
    const r = await registryUp(bench.opts, deps);
    noop.push(performance.now() - t);
    if (r.actions.some((a) => a.action !== 'noop')) throw new Error('no-op run changed something');
    t = performance.now();
    const s = await registryStatus(bench.opts, { ...deps, shared: true });
    status.push(performance.now() - t);
    if (s.registries.some((x) => x.health !== 'running'))
      throw new Error(`status: ${s.registries.map((x) => `${x.name}=${x.health}`).join(' ')}`);
    if (i < 3) {
      t = performance.now();
      await sh('node', ['-e', '0']);
      node0.push(performance.now() - t);
      t = performance.now();
      await sh('node', [LO, 'registry', 'up', '--config', bench.opts.config], { env });
      noopCli.push(performance.now() - t);
      t = performance.now();
      await sh('node', [LO, 'registry', 'status', '--shared', '--config', bench.opts.config], { env });
      statusCli.push(performance.now() - t);
    }
  }
  const p = report.sample('docker ps (CLI process)', ps);
  const n = report.sample('no-op up, in-process (connect, observe, reconcile)', noop);
  const s = report.sample('status --shared, in-process (6 TLS catalog probes)', status);
  const nc = report.sample('lo registry up (CLI process, no-op)', noopCli);
  const sc = report.sample('lo registry status --shared (CLI process)', statusCli);
  report.ratio('no-op up in-process / docker ps', n, p, { target: 3 });
  report.ratio('status in-process / docker ps', s, p, { target: 3 });
  report.ratio('no-op up CLI process / docker ps', nc, p, { target: 3 });
  report.ratio('status CLI process / docker ps', sc, p, { target: 3 });
  const n0 = report.sample('node -e 0', node0);
  report.ratio('no-op up CLI / (node -e 0 + in-process no-op)', nc.median, n0.median + n.median, { target: 2 });
  report.ratio('status CLI / (node -e 0 + in-process status)', sc.median, n0.median + s.median, { target: 2 });
  report.note(
    'CLI-process numbers include Node.js start-up and loading every command module (0.4 s idle, more under load); `docker ps` is a Go binary that starts in ~10 ms',
  );

  // Status with one registry frozen (paused: its port accepts, nothing answers) and one stopped: the probes
  // run in parallel, so it costs about one probe timeout (1.5 s) more than status with all running, not one per
  // registry. (This was a timed assertion in test/e2e/registry.test.ts; timings belong here.)
  const build = bench.plan.registries.find((r) => r.role === 'build').containerName;
  const cache = bench.plan.registries.find((r) => r.role === 'cache').containerName;
  const frozen = [];
  await sh('docker', ['stop', '-t', '1', cache]);
  await sh('docker', ['pause', build]);
  try {
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const st = await registryStatus(bench.opts, { ...deps, shared: true });
      frozen.push(performance.now() - t);
      const health = Object.fromEntries(st.registries.map((x) => [x.name, x.health]));
      if (health.build !== 'running but unreachable' || health.cache !== 'not running')
        throw new Error(`status with build frozen, cache stopped: ${JSON.stringify(health)}`);
    }
  } finally {
    await sh('docker', ['unpause', build]);
    await sh('docker', ['start', cache]);
  }
  const f = report.sample('status --shared, in-process, build frozen and cache stopped', frozen);
  report.ratio('status with a frozen registry / (1.5 s probe timeout + status all running)', f.median, 1500 + s.median, { target: 1.2 });
}

// ------------------------------------------------------------------------------------------ 4. warm pull

async function warmPull(report, { dir, bench, runId, deps, docker }) {
  report.heading('warm pull of a cached 64 MiB image: through a mirror vs straight from the upstream');
  // A 64 MiB single-layer image, made offline.
  const img = join(dir, 'img');
  mkdirSync(img);
  writeFileSync(join(img, 'blob.bin'), randomBytes(64 * 1024 * 1024));
  const ref = `${runId}/pull:v1`;
  await sh('sh', ['-c', `tar -C "${img}" -c . | docker import - ${ref}`]);
  await sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `docker-daemon:${ref}`, `docker://${bench.upstream}/library/bench:v1`]);

  // Like for like: a plain-HTTP private mirror (tls: false, shared off) of the same upstream, which is also
  // attached to that project's network.
  const http = await httpMirrorProject({ dir, deps, docker, runId, upstreamContainer: `${runId}-upstream` });

  const copy = (src, flags, n) => ['copy', '--quiet', ...flags, `docker://${src}/library/bench:v1`, `dir:${join(dir, `p${n}`)}`];
  const viaTls = (n) => copy(bench.mirror, ['--src-cert-dir', bench.caDir], n);
  const viaHttp = (n) => copy(http.mirror, ['--src-tls-verify=false'], n);
  const direct = (n) => copy(bench.upstream, ['--src-tls-verify=false'], n);
  await sh('skopeo', viaTls('warm1')); // fills the mirrors' caches
  await sh('skopeo', viaHttp('warm2'));
  const samples = { tls: [], http: [], up: [] };
  for (let i = 0; i < 5; i++) {
    for (const [k, args] of [
      ['up', direct],
      ['http', viaHttp],
      ['tls', viaTls],
    ]) {
      const t = performance.now();
      await sh('skopeo', args(`${k}${i}`));
      samples[k].push(performance.now() - t);
      rmSync(join(dir, `p${k}${i}`), { recursive: true, force: true });
    }
  }
  const u = report.sample('skopeo copy from the upstream (plain HTTP)', samples.up);
  const h = report.sample('skopeo copy via a cached mirror (plain HTTP)', samples.http);
  const t = report.sample('skopeo copy via a cached mirror (TLS, verified)', samples.tls);
  report.ratio('warm pull: HTTP mirror / HTTP upstream (like for like)', h, u, { target: 1.2 });
  report.ratio('warm pull: TLS mirror / HTTP upstream', t, u);
  report.note('by tag: the mirror (registry:2 proxy) still asks the upstream for the tag, then serves blobs from its cache');
}

async function httpMirrorProject({ dir, deps, docker, upstreamContainer }) {
  const net = 'lodk-bench2';
  const spec = {
    apiVersion: 'cluster.lok8s.dev/v1beta1',
    kind: 'Lo',
    metadata: { name: net },
    spec: {
      cluster: { domain: 'bench2.test' },
      network: { name: net, cidr: '10.140.252.0/24' },
      registries: {
        tls: false,
        shared: { enabled: false },
        mirrors: [{ name: 'lodk-bench-h', url: 'http://10.140.252.200:5000', registry: 'docker.io' }],
      },
    },
  };
  const file = join(dir, 'bench2.yaml');
  writeFileSync(file, stringify(spec));
  const { plan } = await loadPlan({ config: file }, deps);
  const { clientsFor } = await import('../dist/adapters/docker/index.js');
  const clients = clientsFor({ docker, target: 'bench' });
  await clients.networks.ensure(plan.networks[0]);
  await clients.networks.connect(net, upstreamContainer, '10.140.252.200');
  await registryUp({ config: file }, deps);
  const mirror = plan.registries.find((r) => r.role === 'mirror');
  await waitFor(() => fetch(`http://${mirror.ip}/v2/`));
  return { mirror: `${mirror.ip}:80`, opts: { config: file } };
}
