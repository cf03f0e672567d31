// Helpers of the Docker benchmarks (registry, offline, images): not a section (files starting with `_` are skipped).
const RUN_LABEL = 'dev.lok8s.lo.test-run';

/** Retries fn until it resolves (bounded). */
export async function waitFor(fn, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Removes every container (with its volumes), volume and network labelled with the bench run id, and images tagged `<runId>/…`. */
export async function cleanupLabelled(docker, runId) {
  const filters = { label: [`${RUN_LABEL}=${runId}`] };
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
  await Promise.all(
    volumes.map((v) =>
      docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined),
    ),
  );
  const networks = await docker.listNetworks({ filters });
  await Promise.all(
    networks.map((n) =>
      docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined),
    ),
  );
  // By tag, never by ID (a tag may point at a shared image).
  const images = await docker.listImages({ filters: { reference: [`${runId}/*`] } });
  const tags = images.flatMap((i) => i.RepoTags ?? []).filter((t) => t.startsWith(`${runId}/`));
  for (const t of tags)
    await docker
      .getImage(t)
      .remove()
      .catch(() => undefined);
}

/**
 * The shared network of a bench project (lo's own client, from the plan) and a registry:2 "upstream" on it at
 * `ip`, answering before the mirrors start (a proxy exits at start when its upstream does not answer).
 */
export async function startUpstream(docker, { plan, runId, ip }) {
  const { clientsFor } = await import('../dist/adapters/docker/index.js');
  const net = plan.networks.find((n) => n.role === 'shared');
  await clientsFor({ docker, target: 'bench' }).networks.ensure(net);
  const up = await docker.createContainer({
    name: `${runId}-upstream`,
    Image: 'registry:2',
    Labels: { [RUN_LABEL]: runId },
    HostConfig: { NetworkMode: net.name },
    NetworkingConfig: { EndpointsConfig: { [net.name]: { IPAMConfig: { IPv4Address: ip } } } },
  });
  await up.start();
  await waitFor(() => fetch(`http://${ip}:5000/v2/`));
}
