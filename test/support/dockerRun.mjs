// A run's objects in the shared Docker engine, by its run label: shared by the tests and the benchmarks
// (bench/*.js, run by node without a build), so plain JS; types in dockerRun.d.mts.
export const RUN_LABEL = 'dev.lok8s.lo.test-run';

const ignore = () => undefined;

/**
 * Removes every container (with its anonymous volumes), volume and network labelled `dev.lok8s.lo.test-run=<runId>`,
 * the images tagged `<runId>/…` (by tag, never by ID: a run's tag may point at a shared image such as
 * registry:2) and the images labelled with the run (built during the run, e.g. the P2P agent image). Containers
 * that join another's network namespace (the P2P agents) go first. Errors are ignored: it is clean-up.
 */
export async function removeRunObjects(docker, runId) {
  const filters = { label: [`${RUN_LABEL}=${runId}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const joined = (c) => (c.HostConfig?.NetworkMode ?? '').startsWith('container:');
  for (const batch of [containers.filter(joined), containers.filter((c) => !joined(c))])
    await Promise.all(batch.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignore)));
  const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
  await Promise.all(volumes.map((v) => docker.getVolume(v.Name).remove().catch(ignore)));
  const networks = await docker.listNetworks({ filters });
  await Promise.all(networks.map((n) => docker.getNetwork(n.Id).remove().catch(ignore)));
  const tagged = await docker.listImages({ filters: { reference: [`${runId}/*`] } });
  for (const tag of tagged.flatMap((i) => i.RepoTags ?? []).filter((t) => t.startsWith(`${runId}/`)))
    await docker.getImage(tag).remove().catch(ignore);
  for (const i of await docker.listImages({ filters })) await docker.getImage(i.Id).remove({ force: true }).catch(ignore);
}

/** Polls until the URL answers (any HTTP status), bounded; each request waits 1 s at most. */
export async function waitHttp(url, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${last?.message}`);
}

/**
 * Starts a plain-HTTP registry:2 `name` on `network` at `ip` (port 5000), labelled with the run, and waits
 * (bounded) until its /v2/ answers: a pull-through proxy started against it exits when it does not answer.
 */
export async function startRegistry(docker, { runId, name, network, ip }) {
  const c = await docker.createContainer({
    name,
    Image: 'registry:2',
    Labels: { [RUN_LABEL]: runId },
    HostConfig: { NetworkMode: network },
    NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: ip } } } },
  });
  await c.start();
  const url = `http://${ip}:5000`;
  await waitHttp(`${url}/v2/`);
  return { name, url, ip };
}
