/**
 * The P2P agent image (issue 15): its first build and a no-op call (the content hash matches an image that
 * exists: what every `lo provision` with P2P after the first one pays). The base is the offline test bed's node
 * image under a tag of this run's own, so the content hash (which covers the base) is new and the first call
 * really builds; both the image and the tag are removed at the end. Needs Docker.
 */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';

const BASE = process.env.LO_FAKE_KIND_NODE_IMAGE || 'lo-test/node:containerd-2.1';
const RUN_LABEL = 'dev.lok8s.lo.test-run';

export async function run(report) {
  const { clientsFor } = await import('../dist/adapters/docker/index.js');
  const { ensureAgentImage } = await import('../dist/apply/agentImage.js');
  const docker = new Docker();
  const clients = clientsFor({ docker, target: 'unix:///var/run/docker.sock' });
  const runId = `lo-bench-agent-${randomBytes(3).toString('hex')}`;
  const base = `lo-bench-agent-base:${runId}`;
  await docker.getImage(BASE).tag({ repo: 'lo-bench-agent-base', tag: runId });
  let image;
  try {
    const opts = { baseImage: base, extraLabels: { [RUN_LABEL]: runId } };
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
    report.value('agent image first build', first.median / 1000, 's');
    report.value('agent image no-op', noop.median, 'ms');
  } finally {
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
