import { applyRegistries, foreignOwner, previewRegistries, stageOfAction } from '../apply/applyRegistries.js';
import { KIND_LABELS } from '../plan/labels.js';
import type { LoadSpecOptions } from '../spec/loadSpec.js';
import { registryDownPlanned } from './registryDown.js';
import { registryCleanPlanned } from './registryClean.js';
import { loadPlan, type PlanDeps } from './plan.js';
import { connectClients, type DockerClients } from '../adapters/docker/index.js';
import { observeShared } from '../adapters/docker/observeShared.js';
import { kindCli } from '../adapters/kindCli.js';
import { kubectl } from '../adapters/kubectl.js';
import type { Plan } from '../plan/types.js';
import { createP2PHook, listP2PAgents, removeP2P } from '../apply/deployP2P.js';
import { checkTrust } from '../adapters/trust/check.js';
import type { DestroyDeps } from './destroy.js';
import type { DoctorDeps } from './doctor.js';
import { kindNodes, nodeContainerd } from './nodeContainerd.js';
import type { ProvisionDeps, StagedSteps, TrustStatus } from './provision.js';
import type { StepReporter } from './runSteps.js';
import { silentLog, type Log } from '../runtime/log.js';
import { lockProject } from '../apply/projectLock.js';

export interface WiringOptions {
  spec: LoadSpecOptions;
  plan: PlanDeps;
  env?: NodeJS.ProcessEnv;
  /** The debug log (from main): reaches kind, kubectl and the executors. */
  log?: Log;
  reporter?: StepReporter;
  /** Host CA trust check; default: the TLS module's read-only `checkTrust`. */
  checkTrust?: (plan: Plan) => Promise<TrustStatus>;
  /** P2P hook (P2P module); absent: the p2p step is skipped with a warning when P2P is enabled. */
  p2p?: ProvisionDeps['p2p'];
  /** `--wait`: how long to wait for another lo holding the project's lock (default: fail at once). */
  lockWaitMs?: number;
}

/** The project lock of a changing command (src/apply/projectLock.ts). */
function projectLocker(o: WiringOptions, command: string): (plan: Plan) => Promise<{ release: () => Promise<void> }> {
  return (plan) => lockProject(plan.paths.projectDir, command, o.lockWaitMs ? { waitMs: o.lockWaitMs } : {});
}

export const REGISTRY_STAGES: StagedSteps['stages'] = [
  { step: 'networks', title: 'project and shared networks' },
  { step: 'tls', title: 'CA and registry certificates' },
  { step: 'certs.d', title: 'registry config and containerd certs.d' },
  { step: 'registries', title: 'registry volumes and containers' },
];

/** The TLS module's trust check, reduced to what provision and doctor print. */
function trustCheck(o: WiringOptions): (plan: Plan) => Promise<TrustStatus> {
  if (o.checkTrust) return o.checkTrust;
  return async (plan) => {
    const r = await checkTrust(plan, { processEnv: o.env ?? {}, ...(o.spec.domain && !o.spec.config ? { domain: o.spec.domain } : {}) });
    return { trusted: r.trusted, missing: r.missing, command: r.command };
  };
}

function lazyDocker(env: NodeJS.ProcessEnv, log?: Log): () => Promise<DockerClients> {
  let clients: Promise<DockerClients> | undefined;
  return () => (clients ??= connectClients({ env, ...(log ? { log } : {}) }));
}

function planLoader(o: WiringOptions, docker: () => Promise<DockerClients>): () => Promise<Plan> {
  return async () => {
    const d = await docker();
    const { plan } = await loadPlan(o.spec, { ...o.plan, observeShared: (s) => observeShared(d, s) });
    return plan;
  };
}

/** Real dependencies of `lo provision`: the narrow Docker clients, the registry executor, kind and kubectl via execa. */
export function provisionDeps(o: WiringOptions): ProvisionDeps {
  const env = o.env ?? {};
  const log = o.log ?? silentLog;
  const docker = lazyDocker(env, log);
  return {
    loadPlan: planLoader(o, docker),
    registries: {
      stages: REGISTRY_STAGES,
      run: async (plan, stages, opts) => {
        stages.start('networks');
        let d: DockerClients;
        try {
          d = await docker();
        } catch (err) {
          stages.failed('networks', err);
          throw err;
        }
        const actions = await (opts?.dryRun ? previewRegistries : applyRegistries)(plan, { docker: d, env, log, stages, serving: {} });
        return actions.map((a) => ({ ...a, step: stageOfAction(plan, a) }));
      },
    },
    kind: kindCli({ env, log }),
    docker,
    kubectl: (kubeconfig) => kubectl({ kubeconfig, env, log }),
    checkTrust: trustCheck(o),
    // P2P agents run as sidecars of the node containers; LO_P2P_IMAGE / LO_P2P_BASE_IMAGE let offline
    // machines use a local image instead of building on node:20-bookworm-slim.
    p2p:
      o.p2p ??
      createP2PHook({
        docker,
        ...(env.LO_P2P_IMAGE ? { image: env.LO_P2P_IMAGE } : {}),
        ...(env.LO_P2P_BASE_IMAGE ? { baseImage: env.LO_P2P_BASE_IMAGE } : {}),
        ...(o.plan.extraLabels ? { extraLabels: o.plan.extraLabels } : {}),
      }),
    p2pAgents: async (plan) => listP2PAgents(plan, await docker()),
    lockProject: projectLocker(o, 'lo provision'),
    ...(o.reporter ? { reporter: o.reporter } : {}),
  };
}

export function destroyDeps(o: WiringOptions): DestroyDeps {
  const env = o.env ?? {};
  const log = o.log ?? silentLog;
  const docker = lazyDocker(env, log);
  // Tearing down must work even when the spec now conflicts with the running shared mirrors.
  const teardown: WiringOptions = { ...o, plan: { ...o.plan, strict: false } };
  return {
    loadPlan: planLoader(teardown, docker),
    kind: kindCli({ env, log }),
    // The plan destroy made once; never the shared mirrors: other projects use them (`lo registry clean --shared`).
    removeRegistries: async (plan, { volumes, dryRun }) => {
      const d = await docker();
      const r = volumes ? await registryCleanPlanned(d, plan, { dryRun }) : await registryDownPlanned(d, plan, { dryRun });
      return r.actions;
    },
    removeP2P: async (plan, opts) => removeP2P(plan, await docker(), opts),
    clusterOwner: async (plan) => clusterOwner(plan, await docker()),
    lockProject: projectLocker(o, 'lo destroy'),
    ...(o.reporter ? { reporter: o.reporter } : {}),
  };
}

/**
 * Whether the kind cluster of the plan's name belongs to another project: its network labelled with another
 * project id, or none of its nodes on this project's network (a cluster another spec, or plain kind, made).
 */
export async function clusterOwner(plan: Plan, docker: Pick<DockerClients, 'networks' | 'containers'>): Promise<string | null> {
  const net = await docker.networks.inspect(plan.cluster.network);
  const other = net ? foreignOwner(plan, net.labels) : null;
  if (other !== null) return `its network ${plan.cluster.network} belongs to the project in ${other}`;
  const nodes = await docker.containers.list([`${KIND_LABELS.cluster}=${plan.cluster.name}`]);
  if (nodes.length > 0 && nodes.every((n) => n.networks[plan.cluster.network] === undefined))
    return `its nodes are not on this project's network ${plan.cluster.network}`;
  return null;
}

export function doctorDeps(o: WiringOptions): DoctorDeps {
  const env = o.env ?? {};
  const log = o.log ?? silentLog;
  const docker = lazyDocker(env, log);
  let airGapped = false;
  return {
    // Doctor plans without Docker when the engine is down, so the other checks still run.
    loadPlan: async () => {
      const { spec, plan } = await loadPlan(o.spec, o.plan);
      airGapped = spec.registries.disableDefaultEndpoint;
      return plan;
    },
    pinnedImages: async (plan) => (airGapped ? (await import('./imagesLock.js')).pinnedImagesCheck(plan) : null),
    docker: async () => {
      const d = await docker();
      return { version: (await d.engine.version()).version, target: d.target };
    },
    networkExists: async (name) => (await (await docker()).networks.inspect(name)) !== null,
    p2pAgents: async (plan) => listP2PAgents(plan, await docker()),
    nodeContainerd: async (plan) => {
      const d = await docker();
      const nodes = (await kindNodes(d, plan.cluster.name)).filter((n) => n.running);
      return Promise.all(nodes.map((n) => nodeContainerd(d.exec, n.name, plan)));
    },
    kind: kindCli({ env, log }),
    kubectl: (kubeconfig) => kubectl({ kubeconfig, env, log }),
    checkTrust: trustCheck(o),
    env,
  };
}
