// Helpers of the Docker benchmarks (registry, offline, images): not a section (files starting with `_` are skipped).
import { removeRunObjects, startRegistry } from '../test/support/dockerRun.mjs';
import { eventually } from '../test/support/poll.mjs';

/** Retries fn until it resolves (bounded: 30 s unless told). */
export function waitFor(fn, timeoutMs = 30_000) {
  return eventually(fn, timeoutMs);
}

/** A Prometheus text page (an agent's /metrics) as a map of `name{labels}` to value (3 s at most). */
export async function scrapeMetrics(url) {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(3000) })).text();
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Removes every container (with its volumes), volume, network and image of the bench run (test/support/dockerRun.mjs). */
export async function cleanupLabelled(docker, runId) {
  await removeRunObjects(docker, runId);
}

/**
 * The shared network of a bench project (lo's own client, from the plan) and a registry:2 "upstream" on it at
 * `ip`, answering before the mirrors start (a proxy exits at start when its upstream does not answer).
 */
export async function startUpstream(docker, { plan, runId, ip }) {
  const { clientsFor } = await import('../dist/adapters/docker/index.js');
  const net = plan.networks.find((n) => n.role === 'shared');
  await clientsFor({ docker, target: 'bench' }).networks.ensure(net);
  await startRegistry(docker, { runId, name: `${runId}-upstream`, network: net.name, ip });
}
