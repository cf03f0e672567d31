/**
 * Pinned-image benchmarks (issue 12), on the real engine, with a registry:2 upstream the bench runs:
 *  1. `lo images add` throughput (lo's streaming copier, src/adapters/oci/copyImage.ts, in-process) vs
 *     `skopeo copy` of 64 MiB images, both from the project's mirror (warmed first) into the cache over TLS
 *     verified with lo's CA, a new image per run and copier (target: lo >= 0.8x skopeo's MiB/s);
 *     one `lo images add` CLI run is noted as well;
 *  2. `lo images load` of a 32 MiB and a 256 MiB `docker save` archive as CLI processes: peak RSS of each
 *     (target for 256 MiB: <= 150 MiB) and its growth with the archive (target <= 1.25x: flat), and MiB/s.
 * Everything is labelled with a bench run id and removed at the end.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
const RSS_CHILD = join(root, 'bench', '_rssChild.js');
const RUN_LABEL = 'dev.lok8s.lo.test-run';
const MiB = 1 << 20;

const { registryUp, registryClean } = await import('../dist/usecases/registry.js');
const { loadPlan } = await import('../dist/usecases/plan.js');
const { copyImage } = await import('../dist/adapters/oci/copyImage.js');
const { RegistryClient } = await import('../dist/adapters/oci/registryClient.js');

export async function run(report) {
  const runId = `lodk-bimg-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), `${runId}-`));
  const paths = { stateDir: join(dir, 'state'), caRoot: join(dir, 'caroot') };
  const deps = { paths, extraLabels: { [RUN_LABEL]: runId } };
  const env = { ...process.env, LO_STATE_DIR: paths.stateDir, CAROOT: paths.caRoot, LO_EXTRA_LABELS: `${RUN_LABEL}=${runId}` };
  const docker = new Docker();
  const images = []; // tagged <runId>/…: cleanupLabelled removes them
  let opts;
  try {
    const bed = await project({ docker, dir, deps, runId });
    opts = bed.opts;
    await addThroughput(report, { ...bed, dir, env, runId, images });
    await loadMemory(report, { ...bed, dir, env, runId, images });
  } finally {
    if (opts) await registryClean(opts, { ...deps, shared: true }).catch(() => undefined);
    await cleanupLabelled(docker, runId);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A project (cache + one docker.io mirror, TLS) in front of a registry:2 upstream of the bench's own. */
async function project({ docker, dir, deps, runId }) {
  const upstreamIp = '10.140.253.200';
  const shared = 'lodk-bimg-sh';
  const spec = {
    apiVersion: 'cluster.lok8s.dev/v1beta1',
    kind: 'Lo',
    metadata: { name: 'lodk-bimg' },
    spec: {
      cluster: { domain: 'bimg.test' },
      network: { name: 'lodk-bimg', cidr: '10.140.252.0/24' },
      registries: {
        tls: true,
        shared: { network: { name: shared, cidr: '10.140.253.0/24' } },
        mirrors: [{ name: `${runId}-m`, url: `http://${upstreamIp}:5000`, registry: 'docker.io' }],
      },
    },
  };
  const file = join(dir, 'bimg.yaml');
  writeFileSync(file, stringify(spec));
  const opts = { config: file };
  const { plan } = await loadPlan(opts, deps);
  // The upstream must answer before the mirrors start.
  await startUpstream(docker, { plan, runId, ip: upstreamIp });
  await registryUp(opts, deps);
  const caDir = join(dir, 'certs');
  mkdirSync(caDir);
  const ca = readFileSync(plan.tls.caCertPath, 'utf8');
  writeFileSync(join(caDir, 'ca.crt'), ca);
  const cache = plan.registries.find((r) => r.role === 'cache');
  const mirror = plan.registries.find((r) => r.role === 'mirror');
  await waitFor(async () => {
    const r = await fetch(`http://${upstreamIp}:5000/v2/`);
    if (!r.ok) throw new Error('upstream');
    await sh('skopeo', ['inspect', '--raw', '--cert-dir', caDir, `docker://${mirror.ip}/library/none:x`]).catch((e) => {
      if (!/manifest unknown|not found/i.test(e.stderr ?? '')) throw e;
    });
  });
  return { opts, file, plan, ca, caDir, cache, mirror, upstream: `${upstreamIp}:5000` };
}

/** A local image of one random layer of `mib` MiB (docker import), labelled for removal. */
async function randomImage(dir, runId, name, mib) {
  const d = join(dir, `img-${name}`);
  mkdirSync(d, { recursive: true });
  await sh('sh', ['-c', `head -c ${mib * MiB} /dev/urandom > "${d}/payload.bin"`]);
  const ref = `${runId}/${name}:v1`;
  await sh('sh', ['-c', `tar -C "${d}" -c . | docker import -c 'LABEL ${RUN_LABEL}=${runId}' - ${ref}`]);
  rmSync(d, { recursive: true, force: true });
  return ref;
}

/** Reads every blob of an image from the mirror once (the proxy stores what it fetched from the upstream). */
async function warm(client, repo) {
  const m = await client.getManifest(repo, 'v1');
  const doc = JSON.parse(m.bytes.toString('utf8'));
  for (const b of [doc.config, ...doc.layers]) {
    const body = await client.getBlob(repo, b.digest);
    for await (const _ of body) void _;
  }
}

async function addThroughput(report, { dir, runId, images, caDir, ca, cache, mirror, upstream, file, env }) {
  report.heading('lo images add (streaming copier) vs skopeo copy: 64 MiB images, mirror -> cache, TLS');
  // One image of its own per run and copier: skopeo remembers where it saw a blob (its blob-info cache) and
  // would mount it from an earlier copy instead of copying, and lo skips blobs the destination has.
  const src = new RegistryClient(mirror.endpoint, { ca });
  const dst = new RegistryClient(cache.endpoint, { ca });
  const runs = 3;
  try {
    for (let i = 0; i < runs; i++)
      for (const who of ['lo', 'sk']) {
        const img = await randomImage(dir, runId, `add-${who}-${i}`, 64);
        images.push(img);
        await sh('skopeo', [
          'copy',
          '--quiet',
          '--dest-tls-verify=false',
          `docker-daemon:${img}`,
          `docker://${upstream}/library/bench-${who}-${i}:v1`,
        ]);
        await warm(src, `library/bench-${who}-${i}`);
      }
    const lo = [];
    const sk = [];
    let size = 0;
    for (let i = 0; i < runs; i++) {
      let t = performance.now();
      const s = await copyImage(
        { client: src, repo: `library/bench-lo-${i}`, ref: 'v1' },
        { client: dst, repo: `bench/lo-${i}`, tag: 'v1' },
      );
      lo.push(performance.now() - t);
      if (s.bytesCopied !== s.bytesTotal) throw new Error(`lo copied ${s.bytesCopied} of ${s.bytesTotal} bytes`);
      size = s.bytesTotal;
      t = performance.now();
      await sh('skopeo', [
        'copy',
        '--quiet',
        '--src-cert-dir',
        caDir,
        '--dest-cert-dir',
        caDir,
        `docker://${mirror.ip}/library/bench-sk-${i}:v1`,
        `docker://${cache.ip}/bench/skopeo-${i}:v1`,
      ]);
      sk.push(performance.now() - t);
    }
    report.note(`image: ${(size / MiB).toFixed(1)} MiB (config and one random layer), a different one per run`);
    const loT = report.sample('lo copier, 64 MiB mirror -> cache', lo);
    const skT = report.sample('skopeo copy, same size and route', sk);
    report.value('lo images add throughput', size / MiB / (loT.median / 1000), 'MiB/s');
    report.value('skopeo copy throughput', size / MiB / (skT.median / 1000), 'MiB/s');
    report.ratio('lo images add throughput / skopeo copy', skT.median, loT.median, { target: 0.8, op: '>=' });
    // The CLI as users run it (start-up, plan, one copy into the pinned repository) for the record.
    const t = performance.now();
    await sh('node', [LO, '--config', file, 'images', 'add', 'docker.io/library/bench-lo-0:v1', '--json'], { env });
    report.note(
      `one \`lo images add\` CLI run of a 64 MiB image (its blobs already in the cache's store): ${((performance.now() - t) / 1000).toFixed(2)} s`,
    );
  } finally {
    src.close();
    dst.close();
  }
}

/** Runs `lo images load FILE` as a CLI process; its wall time and peak RSS. */
function loadOnce(file, archive, env) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn('node', [RSS_CHILD, '--config', file, 'images', 'load', archive, '--json'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (b) => (err += b));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = performance.now() - t;
      const kb = Number(/LO_BENCH_MAXRSS_KB=(\d+)/.exec(err)?.[1]);
      if (code !== 0 || !kb) return reject(new Error(`lo images load ${archive}: exit ${code}: ${err.slice(-500)}`));
      resolve({ ms, rssMiB: kb / 1024 });
    });
  });
}

async function loadMemory(report, { dir, runId, images, file, env }) {
  report.heading('lo images load: docker save archives of 32 MiB and 256 MiB, peak RSS of the CLI process');
  const results = {};
  for (const mib of [32, 256]) {
    const img = await randomImage(dir, runId, `load${mib}`, mib);
    images.push(img);
    const archive = join(dir, `load${mib}.tar`);
    await sh('docker', ['save', '-o', archive, img]);
    const bytes = statSync(archive).size;
    const r = await loadOnce(file, archive, env);
    rmSync(archive, { force: true });
    results[mib] = r;
    report.note(
      `${mib} MiB image: archive ${(bytes / MiB).toFixed(0)} MiB loaded in ${(r.ms / 1000).toFixed(2)} s, peak RSS ${r.rssMiB.toFixed(0)} MiB`,
    );
    if (mib === 256) report.value('lo images load 256 MiB archive throughput', bytes / MiB / (r.ms / 1000), 'MiB/s');
  }
  report.value('lo images load 256 MiB archive: peak RSS', results[256].rssMiB, 'MiB', { target: 150 });
  report.ratio('load peak RSS, 256 MiB / 32 MiB archive (flat)', results[256].rssMiB, results[32].rssMiB, { target: 1.25 });
}
