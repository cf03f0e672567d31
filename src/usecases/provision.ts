import type { DockerClients } from '../adapters/docker/index.js';
import { connectNodes } from '../apply/connectNodes.js';
import { inspectKindNodes, kubernetesNodes } from '../adapters/docker/inspectKindNodes.js';
import { diffKindCluster, ensureKindCluster, observeKindCluster } from '../apply/ensureKindCluster.js';
import { diffAgents, diffConnect, type ObservedAgent } from '../apply/nodeDiffs.js';
import type { KindCli } from '../adapters/kindCli.js';
import { applyConfigMaps, diffConfigMaps, observeConfigMaps } from '../apply/applyConfigMaps.js';
import type { Kubectl } from '../adapters/kubectl.js';
import type { Plan } from '../plan/types.js';
import { buildRegistry, registryAddress, registryListing, type RegistryListing } from '../plan/render/renderConfigMaps.js';
import {
  runStep,
  silentReporter,
  skipStep,
  stepDone,
  StepFailedError,
  validateStep,
  type StepReporter,
  type StepResult,
} from './runSteps.js';
import type { Action } from '../apply/action.js';

/**
 * The registry executor as provision steps: one call that covers several steps (networks, TLS, certs.d,
 * registries). It reports each stage as it starts, finishes or fails, and tags each action with its step.
 */
export interface StagedSteps {
  stages: Array<{ step: string; title: string }>;
  /** With dryRun, the executor observes and returns what it would do, changing nothing. */
  run: (plan: Plan, stages: StageEvents, opts?: { dryRun?: boolean }) => Promise<Array<Action & { step: string }>>;
}

/** What the executor reports about its stages (src/apply/types.ts StageReporter, by step name). */
export interface StageEvents {
  start(step: string): void;
  done(step: string): void;
  failed(step: string, err: unknown): void;
}

export interface TrustStatus {
  trusted: boolean;
  /** What is missing, e.g. "system store", "docker certs.d/10.125.125.101". */
  missing?: string[];
  /** The exact command that fixes it (default `lo trust`). */
  command?: string;
}

export interface ProvisionDeps {
  /** Reads and validates the spec and plans (the `validate` step). */
  loadPlan: () => Promise<Plan>;
  /** networks, tls, certs.d, registries: the registry executor's stages, in order. */
  registries: StagedSteps;
  kind: KindCli;
  /** The narrow Docker clients (nodes' roles and networks). */
  docker: () => Promise<Pick<DockerClients, 'containers' | 'networks'>>;
  kubectl: (kubeconfig: string) => Kubectl;
  /** Whether the host trusts lo's CA (TLS module); absent means "cannot tell", no warning. */
  checkTrust?: (plan: Plan) => Promise<TrustStatus>;
  /**
   * P2P hook: starts the node mirror agents once the nodes exist and are connected. Supplied by the P2P
   * module (`src/apply/deployP2P.ts`); when absent and P2P is enabled, the step is reported as skipped.
   */
  p2p?: (plan: Plan, nodes: string[]) => Promise<Action[]>;
  /** The project's agent containers as they run (for the dry-run diff). */
  p2pAgents?: (plan: Plan) => Promise<ObservedAgent[]>;
  /**
   * Takes the project's lock (src/apply/projectLock.ts) once the plan is known; provision holds it until it
   * ends, so a concurrent `lo destroy` or `lo registry clean` of the project cannot interleave. Not taken
   * for dry runs (they change nothing).
   */
  lockProject?: (plan: Plan) => Promise<{ release: () => Promise<void> }>;
  reporter?: StepReporter;
}

export interface PushHint {
  /** What the host runs, e.g. `docker push 10.125.125.101/myapp:dev`. */
  push: string;
  /** What pods use, e.g. `lok8s.local/myapp:dev`. */
  image: string;
}

export interface ProvisionResult {
  project: string;
  domain: string;
  cluster: { name: string; nodes: string[]; kubeconfig: string; network: string };
  registries: RegistryListing[];
  push: PushHint;
  steps: StepResult[];
  warnings: string[];
  /** False when the run changed nothing (a re-run of a provisioned project). */
  changed: boolean;
  /** True for `--dry-run`: nothing was changed; the steps' actions are what a run would do. */
  dryRun?: boolean;
}

export const TRUST_COMMAND = 'lo trust';

/**
 * `lo provision`: validate -> networks -> TLS -> registries -> certs.d -> kind -> connect -> ConfigMaps
 * (-> P2P agents). Every step is idempotent, so a re-run only checks and returns noops.
 */
export async function provision(deps: ProvisionDeps, opts: { dryRun?: boolean } = {}): Promise<ProvisionResult> {
  const dryRun = opts.dryRun ?? false;
  const reporter = deps.reporter ?? silentReporter;
  const steps: StepResult[] = [];
  const plan = await validateStep(reporter, steps, () => deps.loadPlan());
  if (dryRun) {
    await runStaged(reporter, steps, deps.registries, plan, dryRun);
    return provisionDiff(deps, plan, steps, reporter);
  }
  // A held lock is bad input (exit 2, naming the holder), not a failed step.
  const lock = await deps.lockProject?.(plan);
  try {
    return await provisionLocked(deps, plan, steps);
  } finally {
    await lock?.release();
  }
}

async function provisionLocked(deps: ProvisionDeps, plan: Plan, steps: StepResult[]): Promise<ProvisionResult> {
  const reporter = deps.reporter ?? silentReporter;
  const warnings: string[] = [];
  const warn = (msg: string): void => {
    if (warnings.includes(msg)) return;
    warnings.push(msg);
    reporter.warn(msg);
  };
  await runStaged(reporter, steps, deps.registries, plan, false);
  if (plan.tls.enabled && deps.checkTrust) {
    const trust = await deps.checkTrust(plan).catch(() => null);
    if (trust && !trust.trusted) {
      warn(
        `this host does not trust lo's CA yet${trust.missing?.length ? ` (missing: ${trust.missing.join(', ')})` : ''}; run \`${trust.command ?? TRUST_COMMAND}\` so \`docker push\` to the build registry verifies`,
      );
    }
  }

  const c = plan.cluster;
  await runStep(reporter, steps, 'kind', `kind cluster ${c.name}`, async () => {
    const actions = await ensureKindCluster(plan, deps.kind);
    for (const a of actions) if (a.action === 'warn' && a.reason) warn(a.reason);
    return actions;
  });

  // Nodes that pull images: kind's external load balancer (HA clusters) runs no containerd.
  const listNodes = async (): Promise<string[]> => {
    const names = await deps.kind.getNodes(c.name);
    if (names.length === 0) throw new Error(`kind lists no nodes for cluster ${c.name}`);
    return kubernetesNodes(await inspectKindNodes((await deps.docker()).containers, names));
  };
  let nodes: string[] = [];
  const shared = plan.networks.find((n) => n.role === 'shared');
  if (shared) {
    await runStep(reporter, steps, 'connect', `connect nodes to ${shared.name}`, async () => {
      nodes = await listNodes();
      return connectNodes(await deps.docker(), nodes, shared.name);
    });
  } else {
    await runStep(reporter, steps, 'connect', 'list the nodes (shared mirrors are off: no shared network to connect)', async () => {
      nodes = await listNodes();
      return [];
    });
  }

  await runStep(reporter, steps, 'configmaps', 'registry ConfigMaps', () => applyConfigMaps(plan, deps.kubectl(c.kubeconfigPath)));

  // Agents run with P2P on, or forward-only for rewrites; with neither, only leftovers of an earlier run go.
  const leftovers = plan.p2p.agents.length === 0 && deps.p2p && deps.p2pAgents ? await deps.p2pAgents(plan) : [];
  if (plan.p2p.agents.length === 0 && leftovers.length === 0) skipStep(reporter, steps, 'p2p', 'P2P node mirror', NO_AGENTS);
  else if (!deps.p2p) {
    skipStep(reporter, steps, 'p2p', 'P2P node mirror', 'the P2P agent is not available in this build; nodes pull through the mirrors');
    warn(
      plan.p2p.enabled
        ? 'P2P is enabled in the spec but this build of lo cannot start the node agents; nodes pull through the mirrors only'
        : 'the spec has rewrites but this build of lo cannot start the node agents that apply them; images are pulled under their own names',
    );
  } else {
    const hook = deps.p2p;
    await runStep(reporter, steps, 'p2p', 'P2P node mirror', () => hook(plan, nodes));
  }

  return result(plan, steps, warnings, nodes);
}

const NO_AGENTS = 'spec.registries.p2p.enabled is false and no rewrite is configured';

function result(plan: Plan, steps: StepResult[], warnings: string[], nodes: string[], dryRun = false): ProvisionResult {
  const c = plan.cluster;
  const build = buildRegistry(plan);
  const changedAny = steps.some((s) => s.actions.some((a) => a.action !== 'noop' && a.action !== 'warn'));
  return {
    project: plan.project.name,
    domain: plan.project.domain,
    cluster: { name: c.name, nodes, kubeconfig: c.kubeconfigPath, network: c.network },
    registries: registryListing(plan),
    push: {
      push: `docker push ${registryAddress(build)}/myapp:dev`,
      image: `${build.hostnames[0] ?? registryAddress(build)}/myapp:dev`,
    },
    steps,
    warnings,
    changed: changedAny,
    ...(dryRun ? { dryRun } : {}),
  };
}

/**
 * `lo provision --dry-run` after the registry diff: observes kind, the nodes, the ConfigMaps and the agents,
 * compares them with the plan and returns the actions a run would take; changes nothing. Without a cluster,
 * everything after kind would be created.
 */
async function provisionDiff(deps: ProvisionDeps, plan: Plan, steps: StepResult[], reporter: StepReporter): Promise<ProvisionResult> {
  const c = plan.cluster;
  const warnings: string[] = [];
  const kind = await runStep(reporter, steps, 'kind', `kind cluster ${c.name}`, async () =>
    diffKindCluster(plan, await observeKindCluster(plan, deps.kind)),
  );
  for (const a of kind) if (a.action === 'warn' && a.reason && !warnings.includes(a.reason)) warnings.push(a.reason);
  const exists = kind.some((a) => a.kind === 'cluster' && a.name === c.name && a.action === 'noop');
  let nodes: string[] = c.nodes.map((n) => n.name);
  const shared = plan.networks.find((n) => n.role === 'shared');
  await runStep(reporter, steps, 'connect', shared ? `connect nodes to ${shared.name}` : 'list the nodes', async () => {
    if (exists) {
      const names = await deps.kind.getNodes(c.name);
      nodes = kubernetesNodes(await inspectKindNodes((await deps.docker()).containers, names));
    }
    if (!shared) return [];
    const docker = exists ? await deps.docker() : null;
    const observed = await Promise.all(
      nodes.map(async (name) => ({
        name,
        networks: docker ? Object.keys((await docker.containers.inspect(name))?.networks ?? {}) : [],
      })),
    );
    return diffConnect(observed, shared.name);
  });
  const kubeconfig = !kind.some((a) => a.kind === 'kubeconfig' && a.action === 'create');
  await runStep(reporter, steps, 'configmaps', 'registry ConfigMaps', async () =>
    diffConfigMaps(plan, exists && kubeconfig ? await observeConfigMaps(plan, deps.kubectl(c.kubeconfigPath)) : []),
  );
  const observedAgents = exists && deps.p2pAgents ? await deps.p2pAgents(plan) : [];
  if (plan.p2p.agents.length === 0 && observedAgents.length === 0) skipStep(reporter, steps, 'p2p', 'P2P node mirror', NO_AGENTS);
  else await runStep(reporter, steps, 'p2p', 'P2P node mirror', async () => diffAgents(plan, observedAgents));
  return result(plan, steps, warnings, nodes, true);
}

/**
 * Runs the registry executor as the steps networks, tls, certs.d and registries. The executor runs them
 * concurrently (each container starts once its own inputs are ready) and reports each stage's start and end,
 * so each step has its own time (from its start to its end; concurrent steps overlap). A failure names the
 * stage the executor reported it in.
 */
async function runStaged(reporter: StepReporter, results: StepResult[], staged: StagedSteps, plan: Plan, dryRun: boolean): Promise<void> {
  const title = (step: string): string => staged.stages.find((s) => s.step === step)?.title ?? step;
  const first = staged.stages[0]?.step ?? 'registries';
  reporter.start(first, staged.stages.map((s) => s.step).join(', '));
  const started = new Map<string, number>();
  const ended = new Map<string, number>();
  let failed: string | undefined;
  const t0 = performance.now();
  let actions: Array<Action & { step: string }>;
  try {
    actions = await staged.run(
      plan,
      {
        start: (step) => {
          if (!started.has(step)) started.set(step, performance.now());
        },
        done: (step) => {
          if (!ended.has(step)) ended.set(step, performance.now());
        },
        failed: (step) => {
          failed ??= step;
        },
      },
      dryRun ? { dryRun } : undefined,
    );
  } catch (err) {
    const step = failed ?? [...started.keys()].filter((s) => !ended.has(s)).pop() ?? first;
    reporter.fail(step, title(step), err);
    throw err instanceof StepFailedError ? err : new StepFailedError(step, title(step), err);
  }
  const tEnd = performance.now();
  for (const s of staged.stages) {
    const mine = actions.filter((a) => a.step === s.step).map(({ step: _step, ...a }) => a);
    const ms = Math.round((ended.get(s.step) ?? tEnd) - (started.get(s.step) ?? t0));
    stepDone(reporter, results, s.step, s.title, ms, mine);
  }
}
