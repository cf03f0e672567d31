/**
 * P2P node mirror benchmark (`npm run bench`, or `node bench/p2p.js` after `npm run build`).
 *
 * Sets up, on the real Docker engine in 10.170.122-241.x: an upstream registry:2 and a pull-through mirror,
 * three containerd nodes (lo-test/node:containerd) with one lo agent each (deployP2P, sidecar in the node's
 * network namespace). Node 1 fetches two images with one random layer of 64 MiB and 256 MiB through the
 * agent-first hosts.toml. Then it measures:
 *   - blob throughput: the 256 MiB layer from node 1's agent (its containerd content store) vs the same blob
 *     from registry:2's storage, same client, same network path, interleaved runs (target >= 0.8x);
 *   - the agent's RSS while serving 64 MiB and 256 MiB (locally and relayed by node 2): must not grow with size;
 *   - DHT resolve latency: time to the first provider for keys held by the nodes, from a libp2p peer that
 *     joins the swarm with the cluster key (target p50 <= 20 ms), and the agents' own HEAD-through-peer latency.
 * Everything created carries dev.lok8s.lo.test-run=<id> and is removed at the end, also on failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Docker from 'dockerode';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const RUN_LABEL = 'dev.lok8s.lo.test-run';
const MiB = 1 << 20;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, timeoutMs = 60_000, every = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

async function execIn(container, cmd, timeoutMs = 300_000) {
  const ex = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  let out = '';
  const sink = new PassThrough();
  sink.on('data', (c) => (out += c.toString()));
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${cmd.join(' ')} timed out`)), timeoutMs);
    stream.on('end', () => (clearTimeout(t), resolve()));
    stream.on('error', reject);
  });
  const info = await ex.inspect();
  if (info.ExitCode !== 0) throw new Error(`${cmd.join(' ')} in ${container} exited ${info.ExitCode}: ${out.slice(-1500)}`);
  return out;
}

async function scrape(url) {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(3000) })).text();
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** GETs a URL, discards the body, returns { ms, bytes }. */
function download(url) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get(url, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`GET ${url}: ${res.statusCode}`));
        }
        let bytes = 0;
        res.on('data', (c) => (bytes += c.length));
        res.on('end', () => resolve({ ms: performance.now() - t0, bytes }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** Writes `bytes` random bytes to a file and returns its sha256 digest. */
function randomFile(path, bytes) {
  const h = createHash('sha256');
  const fd = openSync(path, 'w');
  for (let left = bytes; left > 0; left -= 4 * MiB) {
    const b = randomBytes(Math.min(left, 4 * MiB));
    h.update(b);
    writeSync(fd, b);
  }
  closeSync(fd);
  return `sha256:${h.digest('hex')}`;
}

/** Monolithic blob upload (OCI distribution POST + PUT), streamed from a file. */
async function pushBlob(base, repo, file, digest, size) {
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
  const loc = new URL(start.headers.get('location'), base);
  loc.searchParams.set('digest', digest);
  await new Promise((resolve, reject) => {
    const req = http.request(
      loc,
      { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': size } },
      (res) => {
        res.resume();
        if (res.statusCode === 201) resolve();
        else reject(new Error(`upload ${digest}: ${res.statusCode}`));
      },
    );
    req.on('error', reject);
    createReadStream(file).pipe(req);
  });
}

async function pushImage(base, repo, tag, dir, layerBytes) {
  const layerFile = join(dir, `${repo.replace(/\W/g, '_')}.layer`);
  const layer = randomFile(layerFile, layerBytes);
  await pushBlob(base, repo, layerFile, layer, layerBytes);
  rmSync(layerFile);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer] }, config: {} }),
  );
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const cfgFile = join(dir, 'config.json');
  writeFileSync(cfgFile, config);
  await pushBlob(base, repo, cfgFile, configDigest, config.length);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerBytes }],
  });
  const r = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (r.status !== 201) throw new Error(`manifest ${repo}:${tag}: ${r.status}`);
  return { layer, config: configDigest, manifest: r.headers.get('docker-content-digest') };
}

async function removeRun(runLabel) {
  const filters = { label: [`${RUN_LABEL}=${runLabel}`] };
  const cs = await docker.listContainers({ all: true, filters });
  cs.sort((a, b) => Number(b.Labels['dev.lok8s.lo.role'] === 'p2p-agent') - Number(a.Labels['dev.lok8s.lo.role'] === 'p2p-agent'));
  for (const c of cs)
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
  for (const n of await docker.listNetworks({ filters }))
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => {});
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? [])
    await docker
      .getVolume(v.Name)
      .remove()
      .catch(() => {});
}

/** Samples the agent's RSS (from its own /metrics) every 25 ms while `fn` runs; returns the peak in MiB. */
async function peakRss(metricsUrl, fn) {
  let peak = 0;
  let stop = false;
  const sampler = (async () => {
    while (!stop) {
      const m = await scrape(metricsUrl).catch(() => null);
      if (m) peak = Math.max(peak, m.get('lo_p2p_process_resident_memory_bytes') ?? 0);
      await sleep(25);
    }
  })();
  try {
    await fn();
  } finally {
    stop = true;
    await sampler;
  }
  return peak / MiB;
}

export async function run(report) {
  const { parseSpec } = await dist('spec/parseSpec.js');
  const { planCluster } = await dist('plan/planCluster.js');
  const { applyCertsDir } = await dist('apply/certsDir.js');
  const { deployP2P } = await dist('apply/deployP2P.js');
  const { clientsFor } = await dist('adapters/docker/index.js');
  const { Libp2pRouter } = await dist('agent/libp2pRouter.js');
  const { readSwarmKey } = await dist('agent/swarmKey.js');
  const { digestKey, tagKey } = await dist('agent/keys.js');

  const id = randomBytes(3).toString('hex');
  const runLabel = `lop2p-bench-${id}`;
  const labels = { [RUN_LABEL]: runLabel };
  const dir = mkdtempSync(join(tmpdir(), `lop2p-bench-${id}-`));
  const project = `lop2p-${id}`;
  const shared = `lop2ps-${id}`;
  let router = null;
  try {
    let x = 0;
    for (let attempt = 0; attempt < 20 && !x; attempt++) {
      const cand = 122 + 2 * Math.floor(Math.random() * 59);
      try {
        await docker.createNetwork({ Name: project, Labels: labels, IPAM: { Config: [{ Subnet: `10.170.${cand}.0/24` }] } });
      } catch (e) {
        if (/overlap/i.test(e.message)) continue;
        throw e;
      }
      try {
        await docker.createNetwork({ Name: shared, Labels: labels, IPAM: { Config: [{ Subnet: `10.170.${cand + 1}.0/24` }] } });
        x = cand;
      } catch (e) {
        await docker
          .getNetwork(project)
          .remove()
          .catch(() => {});
        if (!/overlap/i.test(e.message)) throw e;
      }
    }
    if (!x) throw new Error('no free /24 pair in 10.170.122-241');
    const upstreamIp = `10.170.${x + 1}.250`;
    const upstream = `http://${upstreamIp}:5000`;
    const spec = parseSpec(
      JSON.stringify({
        apiVersion: 'cluster.lok8s.dev/v1beta1',
        kind: 'Lo',
        metadata: { name: project },
        spec: {
          cluster: { domain: `${project}.test` },
          network: { name: project, cidr: `10.170.${x}.0/24` },
          nodes: { controlPlane: 1, workers: 2 },
          registries: {
            tls: false,
            shared: { enabled: true, network: { name: shared, cidr: `10.170.${x + 1}.0/24` } },
            mirrors: [{ name: project, url: upstream, registry: 'docker.io' }],
            p2p: { enabled: true },
          },
        },
      }),
      { file: join(dir, 'cluster.lok8s.yaml') },
    );
    const plan = planCluster(spec, { paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') }, extraLabels: labels });
    await applyCertsDir(plan, null, false);
    const mirror = plan.registries.find((r) => r.role === 'mirror');
    const start = async (name, Image, network, ip, extra = {}) => {
      const c = await docker.createContainer({
        name,
        Image,
        Labels: labels,
        NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: ip ? { IPv4Address: ip } : {} } } },
        ...extra,
        HostConfig: { NetworkMode: network, ...(extra.HostConfig ?? {}) },
      });
      await c.start();
    };
    const vol = (Target) => ({ Type: 'volume', Target, VolumeOptions: { Labels: labels } });
    await start(`${project}-upstream`, 'registry:2', shared, upstreamIp, { HostConfig: { Mounts: [vol('/var/lib/registry')] } });
    await start(mirror.containerName, 'registry:2', shared, mirror.ip, {
      Env: ['REGISTRY_HTTP_ADDR=0.0.0.0:80', `REGISTRY_PROXY_REMOTEURL=${upstream}`],
      HostConfig: { Mounts: [vol('/var/lib/registry')] },
    });
    const names = plan.cluster.nodes.map((n) => n.name);
    for (const name of names) {
      await start(name, 'lo-test/node:containerd', project, '', {
        HostConfig: {
          CapAdd: ['SYS_ADMIN'],
          SecurityOpt: ['seccomp=unconfined'],
          Binds: [`${plan.containerd.certsDir}:/etc/containerd/certs.d:ro`],
          // Shaped like kind's nodes: /var a volume, /run (containerd's socket) a tmpfs.
          Mounts: [vol('/var')],
          Tmpfs: { '/run': '' },
        },
      });
      await docker.getNetwork(shared).connect({ Container: name });
    }
    for (const name of names) await waitFor(`containerd in ${name}`, async () => (await execIn(name, ['ctr', 'version']), true), 20_000);
    await deployP2P(plan, names, {
      docker: clientsFor({ docker, target: 'bench' }),
      image: 'lo-test/node:containerd',
      entrypoint: ['/usr/local/bin/node', '/opt/lo/bin/lo.js'],
      binds: [`${ROOT}:/opt/lo:ro`],
      extraLabels: labels,
    });
    const ips = [];
    for (const name of names) ips.push((await docker.getContainer(name).inspect()).NetworkSettings.Networks[project].IPAddress);
    const agent = (i) => `http://${ips[i]}:${plan.p2p.port}`;
    await waitFor('agents connected', async () => {
      for (let i = 0; i < 3; i++) if ((await scrape(`${agent(i)}/metrics`)).get('lo_p2p_peers') !== 2) return false;
      return true;
    });

    report.note('seeding the upstream with two images (one random layer each: 64 MiB and 256 MiB)');
    await waitFor('upstream', async () => (await fetch(`${upstream}/v2/`)).ok, 20_000);
    const img64 = await pushImage(upstream, 'lop2p/b64', '1', dir, 64 * MiB);
    const img256 = await pushImage(upstream, 'lop2p/b256', '1', dir, 256 * MiB);
    for (const ref of ['docker.io/lop2p/b64:1', 'docker.io/lop2p/b256:1']) {
      await execIn(names[0], ['ctr', '-n', 'k8s.io', 'content', 'fetch', '--hosts-dir', '/etc/containerd/certs.d', ref]);
    }
    await waitFor('node 2 finds the 256 MiB layer through the DHT', async () => {
      const r = await fetch(`${agent(1)}/v2/lop2p/b256/blobs/${img256.layer}`, { method: 'HEAD' });
      return r.status === 200;
    });

    report.heading('blob throughput: 256 MiB layer, agent (containerd content store) vs registry:2 (its storage)');
    const regUrl = `${upstream}/v2/lop2p/b256/blobs/${img256.layer}`;
    const agentUrl = `${agent(0)}/v2/lop2p/b256/blobs/${img256.layer}`;
    await download(regUrl);
    await download(agentUrl);
    const regMs = [];
    const agentMs = [];
    for (let i = 0; i < 5; i++) {
      regMs.push((await download(regUrl)).ms);
      agentMs.push((await download(agentUrl)).ms);
    }
    const reg = report.sample('registry:2 GET 256 MiB blob', regMs);
    const ag = report.sample('lo agent GET 256 MiB blob (local content)', agentMs);
    report.value('registry:2 throughput', (256 * 1000) / reg.median, 'MiB/s');
    report.value('agent throughput', (256 * 1000) / ag.median, 'MiB/s');
    report.ratio('agent / registry:2 throughput (higher is better)', reg.median, ag.median, { target: 0.8, op: '>=' });
    const relay = report.sample('node 2 agent relaying the 256 MiB blob from node 1', [
      (await download(`${agent(1)}/v2/lop2p/b256/blobs/${img256.layer}`)).ms,
      (await download(`${agent(1)}/v2/lop2p/b256/blobs/${img256.layer}`)).ms,
      (await download(`${agent(1)}/v2/lop2p/b256/blobs/${img256.layer}`)).ms,
    ]);
    report.value('relayed throughput (verified while streaming)', (256 * 1000) / relay.median, 'MiB/s');

    report.heading('agent memory (RSS, from its /metrics) while serving');
    const idle = (await scrape(`${agent(0)}/metrics`)).get('lo_p2p_process_resident_memory_bytes') / MiB;
    report.value('node 1 agent RSS idle', idle, 'MiB');
    const m64 = await peakRss(`${agent(0)}/metrics`, () => download(`${agent(0)}/v2/lop2p/b64/blobs/${img64.layer}`));
    const m256 = await peakRss(`${agent(0)}/metrics`, () => download(agentUrl));
    report.value('node 1 agent peak RSS serving 64 MiB (local)', m64, 'MiB');
    report.value('node 1 agent peak RSS serving 256 MiB (local)', m256, 'MiB');
    report.value('RSS growth 64 -> 256 MiB blob (local)', m256 - m64, 'MiB', { target: 16 });
    const r64 = await peakRss(`${agent(1)}/metrics`, () => download(`${agent(1)}/v2/lop2p/b64/blobs/${img64.layer}`));
    const r256 = await peakRss(`${agent(1)}/metrics`, () => download(`${agent(1)}/v2/lop2p/b256/blobs/${img256.layer}`));
    report.value('node 2 agent peak RSS relaying 64 MiB', r64, 'MiB');
    report.value('node 2 agent peak RSS relaying 256 MiB', r256, 'MiB');
    report.value('RSS growth 64 -> 256 MiB blob (relayed)', r256 - r64, 'MiB', { target: 16 });

    report.heading('DHT resolve latency (time to the first provider)');
    router = await Libp2pRouter.start({
      port: 0,
      registryPort: plan.p2p.port,
      psk: await readSwarmKey(plan.p2p.keyPath),
      bootstrap: ips.map((ip) => `${ip}:${plan.p2p.routerPort}`),
      host: `10.170.${x}.1`,
    });
    await waitFor('bench peer connected to the 3 nodes', async () => router.peerCount() === 3, 20_000);
    const keys = [
      ...[img64, img256].flatMap((i) => [i.layer, i.config, i.manifest]).map((d) => digestKey(d)),
      tagKey('docker.io', 'lop2p/b64', '1'),
      tagKey('docker.io', 'lop2p/b256', '1'),
    ];
    await waitFor('every key resolvable', async () => {
      for (const k of keys) {
        let found = false;
        for await (const _ of router.resolve(k, 2000)) {
          found = true;
          break;
        }
        if (!found) return false;
      }
      return true;
    });
    const samples = [];
    for (let round = 0; round < 40; round++) {
      for (const k of keys) {
        const t0 = performance.now();
        for await (const _ of router.resolve(k, 2000)) break;
        samples.push(performance.now() - t0);
      }
    }
    samples.sort((a, b) => a - b);
    const p = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
    report.note(`${samples.length} lookups of ${keys.length} keys (6 digests, 2 tags) from a 4th peer with the cluster key`);
    report.value('DHT resolve p50', p(0.5), 'ms', { target: 20 });
    report.value('DHT resolve p99', p(0.99), 'ms');

    const heads = [];
    for (let round = 0; round < 20; round++) {
      for (const i of [1, 2]) {
        for (const d of [img64.manifest, img256.manifest]) {
          const t0 = performance.now();
          const r = await fetch(`${agent(i)}/v2/lop2p/b64/manifests/${d}`, { method: 'HEAD' });
          heads.push(performance.now() - t0);
          if (r.status !== 200) throw new Error(`HEAD via node ${i + 1}: ${r.status}`);
        }
      }
    }
    heads.sort((a, b) => a - b);
    report.note('HEAD of a manifest through node 2/3 agents (DHT resolve + HEAD to node 1, which holds them)');
    report.value('agent HEAD via peer p50', heads[Math.floor(heads.length / 2)], 'ms');
    report.value('agent HEAD via peer p99', heads[Math.floor(heads.length * 0.99)], 'ms');
    const m2 = await scrape(`${agent(2)}/metrics`);
    const le20 = [...m2]
      .filter(([k]) => k.startsWith('lo_p2p_resolve_duration_seconds_bucket') && k.includes('found="true"') && k.includes('le="0.02"'))
      .reduce((s, [, v]) => s + v, 0);
    const all = [...m2]
      .filter(([k]) => k.startsWith('lo_p2p_resolve_duration_seconds_count') && k.includes('found="true"'))
      .reduce((s, [, v]) => s + v, 0);
    report.value("node 3 agent's own resolves finished within 20 ms", all ? (100 * le20) / all : NaN, '%');
  } finally {
    if (router) await router.stop().catch(() => {});
    await removeRun(runLabel);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { createReport } = await import('./run.js');
  const report = createReport();
  report.section('p2p');
  await run(report);
  report.summary();
}
