import type { DockerClients } from '../adapters/docker/index.js';
import { probeAnswers } from '../adapters/registryProbe.js';
import { ExitCode, LoError } from '../errors/loError.js';
import { shellCommand } from '../util/shell.js';
import type { Plan } from '../plan/types.js';
import type { Action, ServingState } from './action.js';

/** One registry container `up` just (re)started, and where it must answer. */
export interface ServingTarget {
  /** The registry's name in the spec (`build`, `cache`, the mirror's name). */
  name: string;
  container: string;
  /** Where clients reach it (a mirror's pull-through proxy), e.g. https://10.125.200.2 */
  endpoint: string;
  /** Mirrors: the read-only replica on the same address (its own port). */
  replicaEndpoint?: string;
  /** Mirrors: the upstream the proxy asks at start, for the message. */
  upstream?: string;
}

export type { ServingState } from './action.js';

export interface ServingReport {
  name: string;
  container: string;
  endpoint: string;
  state: ServingState;
  /** From the container's start to the answer (or to giving up). */
  ms: number;
  detail?: string;
}

/** How long `up` waits for a container it started to answer, and how often it asks. */
export const SERVING_TIMEOUT_MS = 15_000;
const INTERVAL_MS = 100;
/**
 * registry:2 listens 0.1-0.3 s after its start: the first seconds are polled every 25 ms, so `up` returns within
 * ~25 ms of the answer rather than ~100 (a refused connect costs next to nothing); then every INTERVAL_MS.
 */
const FIRST_INTERVAL_MS = 25;
const FIRST_PHASE_MS = 2000;
/** Socket errors that mean "no route to that address from here", not "nothing listens yet". */
const UNROUTED = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const UNROUTED_GRACE_MS = 3000;

/**
 * The registries whose container this apply created, recreated or started (actions of applyRegistries): those
 * are the ones that may not listen yet. Pure.
 */
export function servingTargets(plan: Plan, actions: Action[]): ServingTarget[] {
  const started = new Set(
    actions
      .filter((a) => a.kind === 'container' && (a.action === 'create' || a.action === 'recreate' || a.reason?.startsWith('started')))
      .map((a) => a.name),
  );
  return plan.registries
    .filter((r) => started.has(r.containerName))
    .map((r) => ({
      name: r.name,
      container: r.containerName,
      endpoint: r.endpoint,
      ...(r.replica ? { replicaEndpoint: r.replica.endpoint } : {}),
      ...(r.upstream ? { upstream: r.upstream } : {}),
    }));
}

export interface WaitServingDeps {
  docker: DockerClients;
  /** lo's CA (PEM) when the registries serve TLS: answers are verified against it only. */
  ca?: string | null;
  timeoutMs?: number;
  intervalMs?: number;
  onProgress?: (step: string) => void;
}

/**
 * Waits, bounded, until each target answers `/v2/` on its serving port, all in parallel. A mirror whose proxy
 * does not answer in time while its replica does is reported `serving offline`, not failed; so is one whose
 * replica answers while its upstream does not answer this machine (then the proxy is not waited for). A target that
 * answers on neither port (or whose container stopped) fails the apply: exit 5, with the container's last log
 * lines. Without this wait, a client right after `up` can find the proxy's port still closed: registry:2
 * listens only after its start-up ping of the upstream (docs/offline.md).
 */
export async function waitServing(targets: ServingTarget[], deps: WaitServingDeps): Promise<ServingReport[]> {
  if (targets.length === 0) return [];
  const timeoutMs = deps.timeoutMs ?? SERVING_TIMEOUT_MS;
  const intervalMs = deps.intervalMs ?? INTERVAL_MS;
  const waiting = new Set(targets.map((t) => t.container));
  const started = Date.now();
  const say = (): void => {
    if (waiting.size)
      deps.onProgress?.(`waiting for ${[...waiting].join(', ')} to answer /v2/ (${Math.round((Date.now() - started) / 1000)} s)`);
  };
  say();
  const ticker = setInterval(say, 1000);
  try {
    return await Promise.all(
      targets.map(async (t) => {
        const r = await waitOne(t, deps, timeoutMs, intervalMs);
        waiting.delete(t.container);
        return r;
      }),
    );
  } finally {
    clearInterval(ticker);
  }
}

async function waitOne(t: ServingTarget, deps: WaitServingDeps, timeoutMs: number, intervalMs: number): Promise<ServingReport> {
  const started = Date.now();
  const until = started + timeoutMs;
  const ca = deps.ca ?? null;
  const v2 = (endpoint: string): string => new URL('/v2/', endpoint).toString();
  let lastError = 'no answer';
  let replicaAnswered = false;
  let routedOnce = false;
  let nextInspect = started + 1000;
  // The proxy listens only once its upstream answered it: when the upstream does not answer this machine
  // either, the replica answering is all there is to wait for.
  const upstreamDown = t.upstream
    ? probeAnswers(v2(t.upstream), { timeoutMs: 1500 }).then((u) => (u.ok ? null : (u.error ?? 'no answer')))
    : Promise.resolve(null);
  const report = (state: ServingState, detail?: string): ServingReport => ({
    name: t.name,
    container: t.container,
    endpoint: t.endpoint,
    state,
    ms: Date.now() - started,
    ...(detail ? { detail } : {}),
  });
  for (;;) {
    const probeMs = Math.max(200, Math.min(1000, until - Date.now()));
    const [main, replica] = await Promise.all([
      probeAnswers(v2(t.endpoint), { ca, timeoutMs: probeMs }),
      t.replicaEndpoint && !replicaAnswered ? probeAnswers(v2(t.replicaEndpoint), { ca, timeoutMs: probeMs }) : Promise.resolve(null),
    ]);
    if (main.ok) return report('serving');
    if (replica?.ok) replicaAnswered = true;
    lastError = main.error ?? lastError;
    if (replicaAnswered) {
      const down = await upstreamDown;
      if (down)
        return report(
          'serving offline',
          `its upstream ${t.upstream} does not answer from this machine (${down}); the read-only replica ${t.replicaEndpoint} serves the cache, and the pull-through proxy starts once the upstream answers it`,
        );
    }
    if (!UNROUTED.has(main.code ?? '')) routedOnce = true;
    else if (!routedOnce && Date.now() - started >= UNROUTED_GRACE_MS)
      return report('not verified', `${t.endpoint} is not reachable from this machine (${lastError})`);
    if (Date.now() >= nextInspect) {
      nextInspect = Date.now() + 1000;
      const c = await deps.docker.containers.inspect(t.container);
      if (!c || c.status === 'exited' || c.status === 'dead')
        throw await notServing(t, deps.docker, `its container is ${c?.status ?? 'gone'}`);
    }
    if (Date.now() >= until) break;
    const interval = Date.now() - started < FIRST_PHASE_MS ? Math.min(FIRST_INTERVAL_MS, intervalMs) : intervalMs;
    await new Promise((res) => setTimeout(res, Math.min(interval, Math.max(0, until - Date.now()))));
  }
  const secs = Math.round(timeoutMs / 1000);
  if (replicaAnswered)
    return report(
      'serving offline',
      `the pull-through proxy did not answer within ${secs} s (${lastError}); its read-only replica ${t.replicaEndpoint} serves the cache, and the proxy starts once ${t.upstream ?? 'its upstream'} answers`,
    );
  throw await notServing(t, deps.docker, `no answer on ${v2(t.endpoint)} within ${secs} s (${lastError})`);
}

async function notServing(t: ServingTarget, docker: DockerClients, why: string): Promise<LoError> {
  const log = await docker.containers.logs(t.container, { tail: 20 }).catch(() => '');
  const tail = log.trim() ? `; its log ends:\n${log.trimEnd()}` : '';
  return new LoError('E_STEP', `registry ${t.name} (${t.container}) is not serving: ${why}${tail}`, {
    hint: `read \`${shellCommand(['docker', 'logs', t.container])}\`, fix what it says (a custom registryImage / LO_REGISTRY_IMAGE must be a registry:2), then run \`lo registry up\` again`,
    exitCode: ExitCode.stepFailed,
  });
}
