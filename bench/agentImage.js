/**
 * The P2P agent image (issue 15): its first build, a no-op call (the content hash matches an image that exists:
 * what every `lo provision` with P2P after the first one pays), the same call from a second checkout of another
 * lo version with the same agent content (must be a no-op: the tag is keyed by what the image holds, not by lo),
 * and the idle RSS of agents run from that image (target <= 64 MiB). The base is the offline test bed's node
 * image under a tag of this run's own, so the content hash (which covers the base reference) is new and the
 * first call really builds. For the RSS, two containerd nodes (lo-test/node:containerd-2.1, kind-shaped: /var a
 * volume, /run a tmpfs) get one agent each from the image, deployed as `lo provision` does (deployP2P, sidecars in
 * the nodes' network and PID namespaces, connected to each other); the RSS is read from the agents' /metrics
 * after they have connected and settled. Everything created carries dev.lok8s.lo.test-run=<id> and is removed at
 * the end. Needs Docker.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Docker from 'dockerode';
import { cleanupLabelled, scrapeMetrics, waitFor } from './_docker.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const BASE = process.env.LO_FAKE_KIND_NODE_IMAGE || 'lo-test/node:containerd-2.1';
const RUN_LABEL = 'dev.lok8s.lo.test-run';
const MiB = 1 << 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Two kind-shaped containerd nodes with one agent each from `image`; the agents' idle RSS in MiB. */
async function idleRss(docker, clients, image, runId, labels, dir) {
  const { parseSpec } = await dist('spec/parseSpec.js');
  const { planCluster } = await dist('plan/planCluster.js');
  const { deployP2P } = await dist('apply/deployP2P.js');
  const project = `lobai-${runId.slice(-6)}`; // a Linux bridge name: at most 15 characters
  await docker.createNetwork({ Name: project, Labels: labels });
  const spec = parseSpec(
    JSON.stringify({
      apiVersion: 'cluster.lok8s.dev/v1beta1',
      kind: 'Lo',
      metadata: { name: project },
      spec: {
        cluster: { domain: `${project}.test` },
        network: { name: project, cidr: '10.170.250.0/24' },
        nodes: { controlPlane: 1, workers: 1 },
        registries: { tls: false, shared: { enabled: false }, mirrors: [], p2p: { enabled: true } },
      },
    }),
    { file: join(dir, 'cluster.lok8s.yaml') },
  );
  const plan = planCluster(spec, { paths: { stateDir: join(dir, 'state'), caRoot: join(dir, 'ca') }, extraLabels: labels });
  const names = plan.cluster.nodes.map((n) => n.name);
  for (const name of names) {
    const c = await docker.createContainer({
      name,
      Image: BASE,
      Labels: labels,
      HostConfig: {
        NetworkMode: project,
        CapAdd: ['SYS_ADMIN'],
        SecurityOpt: ['seccomp=unconfined'],
        Mounts: [{ Type: 'volume', Target: '/var', VolumeOptions: { Labels: labels } }],
        Tmpfs: { '/run': '' },
      },
    });
    await c.start();
  }
  await deployP2P(plan, names, { docker: clients, image, extraLabels: labels });
  const urls = [];
  for (const name of names)
    urls.push(
      `http://${(await docker.getContainer(name).inspect()).NetworkSettings.Networks[project].IPAddress}:${plan.p2p.metricsPort}/metrics`,
    );
  await waitFor(async () => {
    for (const u of urls)
      if ((await scrapeMetrics(u)).get('lo_p2p_peers') !== 1) throw new Error(`the agents did not connect to each other (${u})`);
  }, 60_000);
  await sleep(5000); // settled: advertised, first GCs done
  const rss = [];
  for (const u of urls) rss.push((await scrapeMetrics(u)).get('lo_p2p_process_resident_memory_bytes') / MiB);
  return rss;
}

export async function run(report) {
  const { clientsFor } = await dist('adapters/docker/index.js');
  const { AGENT_BUNDLE_DIR, ensureAgentImage } = await dist('apply/agentImage.js');
  const docker = new Docker();
  const clients = clientsFor({ docker, target: 'unix:///var/run/docker.sock' });
  const runId = `lo-bench-agent-${randomBytes(3).toString('hex')}`;
  const labels = { [RUN_LABEL]: runId };
  const base = `lo-bench-agent-base:${runId}`;
  await docker.getImage(BASE).tag({ repo: 'lo-bench-agent-base', tag: runId });
  const dir = await mkdtemp(join(tmpdir(), 'lo-bench-agent-'));
  let image;
  try {
    const opts = { baseImage: base, extraLabels: labels };
    const first = await report.time(
      'agent image: first build (new content hash)',
      async () => {
        const r = await ensureAgentImage(clients, opts);
        if (!r.built) throw new Error(`${r.image} existed already: not a first build`);
        image = r.image;
      },
      { runs: 1 },
    );
    const noop = await report.time(
      'agent image: no-op (image with this content hash exists)',
      async () => {
        const r = await ensureAgentImage(clients, opts);
        if (r.built) throw new Error('rebuilt an unchanged image');
      },
      { runs: 5 },
    );
    // Another checkout: another lo version and CLI, the same agent bundle.
    const other = join(dir, 'other-checkout');
    await cp(join(ROOT, AGENT_BUNDLE_DIR), join(other, AGENT_BUNDLE_DIR), { recursive: true });
    await writeFile(join(other, 'package.json'), JSON.stringify({ name: 'lo', version: '99.0.0' }));
    await writeFile(join(other, 'dist', 'bundle', 'lo.cjs'), '// another CLI\n');
    const second = await report.time(
      'agent image: second checkout, other version, same agent',
      async () => {
        const r = await ensureAgentImage(clients, { ...opts, root: other });
        if (r.built || r.image !== image) throw new Error(`a second checkout built ${r.image} (have ${image})`);
      },
      { runs: 5 },
    );
    report.value('agent image first build', first.median / 1000, 's');
    report.value('agent image no-op', noop.median, 'ms');
    report.value('agent image no-op from a second checkout of another version', second.median, 'ms');

    report.heading('agent idle RSS: two containerd nodes, one agent each from the image, connected (from /metrics)');
    const rss = await idleRss(docker, clients, image, runId, labels, dir);
    report.note(`agents' RSS: ${rss.map((r) => r.toFixed(1)).join(', ')} MiB`);
    report.value('agent RSS idle (image, connected, nothing served), max of 2', Math.max(...rss), 'MiB', { target: 64 });
  } finally {
    await cleanupLabelled(docker, runId);
    await rm(dir, { recursive: true, force: true });
    if (image)
      await docker
        .getImage(image)
        .remove({ force: true })
        .catch(() => undefined);
    await docker
      .getImage(base)
      .remove()
      .catch(() => undefined);
  }
}
