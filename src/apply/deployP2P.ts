import { createHash } from 'node:crypto';
import { shellCommand } from '../util/shell.js';
import type { ContainerSpec, DockerClients } from '../adapters/docker/index.js';
import { LoError } from '../errors/loError.js';
import { AGENT_ROLE, foreignOwnerOf, LABELS, MANAGED_BY } from '../plan/labels.js';
import type { Plan } from '../plan/types.js';
import type { Action } from './action.js';
import { specHash } from '../util/hash.js';
import type { AgentOptions } from '../agent/options.js';
import { agentBaseOptions, agentCommand, forwardOnlyOptions } from '../plan/planP2P.js';
import { ensureAgentImage } from './agentImage.js';
import { ensureSwarmKey } from '../agent/swarmKey.js';

export { AGENT_KEY_PATH, NODE_CONTAINERD_SOCKET, NODE_CONTENT_DIR, NODE_ROOT } from '../plan/planP2P.js';

export interface DeployP2PDeps {
  docker: Pick<DockerClients, 'containers'>;
  /** Image with node and lo (entrypoint `lo`, or set `entrypoint`). */
  image: string;
  /** Command that runs `lo` in the image; default: the image's entrypoint. */
  entrypoint?: string[];
  /** Extra binds for the agent container (tests mount the repository). */
  binds?: string[];
  /**
   * containerd's socket as the agent sees it. Default: through the node's root, `/proc/1/root/run/containerd/
   * containerd.sock` (the agent shares the node's PID namespace). containerd's `tcp_address` listener is no
   * alternative: it only serves the CRI, not the images/content/events services the agent needs.
   */
  containerdAddress?: string;
  /** containerd's content directory as the agent sees it (default: through the node's root, as above). */
  contentDir?: string;
  namespace?: string;
  uploadBytesPerSecond?: number;
  extraLabels?: Record<string, string>;
}

interface NodeInfo {
  name: string;
  id: string;
  ip: string;
}

async function inspectNode(docker: Pick<DockerClients, 'containers'>, name: string, network: string): Promise<NodeInfo> {
  const info = await docker.containers.inspect(name);
  if (!info) throw new LoError('E_STEP', `node ${name} does not exist`, { hint: `check the cluster with \`kind get nodes\`` });
  const ip = info.networks[network]?.ip || Object.values(info.networks).find((n) => n.ip)?.ip;
  if (!ip)
    throw new LoError('E_STEP', `node ${name} has no IP address on ${network}`, {
      hint: `check it with \`${shellCommand(['docker', 'inspect', name])}\``,
    });
  return { name, id: info.id, ip };
}

/** `source:target[:ro]`, as `docker run -v` takes it. */
function parseBind(bind: string): ContainerSpec['binds'][number] {
  const [source = '', target = '', opts = ''] = bind.split(':');
  return { source, target, readOnly: opts.split(',').includes('ro') };
}

function agentLabels(plan: Plan): string[] {
  return [`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.project}=${plan.project.name}`, `${LABELS.role}=${AGENT_ROLE}`];
}

type AgentOverrides = Pick<DeployP2PDeps, 'containerdAddress' | 'contentDir' | 'namespace' | 'uploadBytesPerSecond'>;

/** The plan's agent options with the deploy-time overrides of a test bed (socket, content dir, upload pace). */
function withOverrides(options: Partial<AgentOptions>, deps: AgentOverrides): Partial<AgentOptions> {
  return {
    ...options,
    ...(deps.containerdAddress ? { containerd: deps.containerdAddress } : {}),
    ...(deps.contentDir ? { contentDir: deps.contentDir } : {}),
    ...(deps.namespace ? { namespace: deps.namespace } : {}),
    ...(deps.uploadBytesPerSecond ? { uploadLimit: deps.uploadBytesPerSecond } : {}),
  };
}

/** The agent command for a node outside the plan (test beds), with peers by address. */
export function agentArgs(plan: Plan, self: NodeInfo, nodes: NodeInfo[], deps: AgentOverrides): string[] {
  // A forward-only agent (P2P off, rewrites on) has no peers: every planned agent has the same options.
  const planned = plan.p2p.agents[0]?.options;
  if (plan.p2p.forwardOnly) return agentCommand(withOverrides(planned ?? forwardOnlyOptions(plan.p2p, ''), deps));
  const peers = nodes.filter((n) => n.name !== self.name).map((n) => `${n.ip}:${plan.p2p.routerPort}`);
  const rewrites = planned?.rewrites ? { rewrites: planned.rewrites, hostsDir: planned.hostsDir } : {};
  return agentCommand(withOverrides({ ...agentBaseOptions(plan.p2p, plan.registries), ...rewrites, peers }, deps));
}

/**
 * Runs one agent per node as a sidecar container that shares the node's network namespace (containerd reaches
 * it at 127.0.0.1:<port>, like Spegel's hostNetwork DaemonSet) and its PID namespace, so the agent reaches the
 * node's containerd socket and content directory through /proc/1/root — kind nodes keep the socket on a tmpfs
 * /run that no volume can share. Reading another container's /proc/1/root needs CAP_SYS_PTRACE, and, where
 * AppArmor confines containers, an unconfined profile (docker-default only allows ptrace between its own
 * peers; kind nodes are unconfined). Reconciled by label and spec hash: unchanged agents are left alone,
 * changed, stopped ones (or ones whose node was recreated) recreated, agents of removed nodes removed. A node
 * restart kills its agent (shared PID namespace); the restart policy brings it back unless Docker tries before
 * the node runs again, and then the next `lo provision` does (`lo doctor` reports it).
 */
export async function deployP2P(plan: Plan, nodeNames: string[], deps: DeployP2PDeps): Promise<Action[]> {
  const actions: Action[] = [];
  const docker = deps.docker;
  const existing = await docker.containers.list(agentLabels(plan));
  // P2P off and no rewrite: no agent runs; those an earlier run started (P2P on, or a rewrite since removed) go.
  if (plan.p2p.agents.length === 0) return removeAgents(plan, docker, existing);
  // A forward-only agent (P2P off, rewrites on) has no libp2p: no swarm key is created or mounted.
  let keyDigest: string | null = null;
  if (!plan.p2p.forwardOnly) {
    const { created, psk } = await ensureSwarmKey(plan.p2p.keyPath);
    // A digest of the key (never the key) is part of each agent's spec hash: a changed key recreates the agents,
    // which read it only at start.
    keyDigest = createHash('sha256').update(psk).digest('hex');
    actions.push({ kind: 'p2p key', name: plan.p2p.keyPath, action: created ? 'create' : 'noop' });
  }
  const nodes = await Promise.all(nodeNames.map((n) => inspectNode(docker, n, plan.cluster.network)));
  for (const node of nodes) {
    // The plan holds every agent's command (peers by node name); nodes the plan does not know get one by address.
    const planned = plan.p2p.agents.find((a) => a.node === node.name);
    const cmd = planned ? agentCommand(withOverrides(planned.options, deps)) : agentArgs(plan, node, nodes, deps);
    const binds = [...(keyDigest ? [`${plan.p2p.keyPath}:${plan.p2p.agentKeyPath}:ro`] : []), ...(deps.binds ?? [])];
    // The node's container id is part of the hash: a recreated node needs a new agent in its new namespace. The
    // command holds the rewrites, so changed rules recreate the agents too.
    const hash = specHash({ image: deps.image, entrypoint: deps.entrypoint ?? null, cmd, binds, node: node.id, key: keyDigest });
    const name = planned?.containerName ?? `${node.name}-lo-p2p`;
    const found = existing.find((c) => c.labels[LABELS.node] === node.name);
    if (found && found.labels[LABELS.specHash] === hash && found.status === 'running') {
      actions.push({ kind: 'p2p agent', name, action: 'noop' });
      continue;
    }
    if (found) await docker.containers.remove(found.id);
    const { state, created } = await docker.containers.create({
      name,
      image: deps.image,
      ...(deps.entrypoint ? { entrypoint: deps.entrypoint } : {}),
      cmd,
      labels: {
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.project]: plan.project.name,
        [LABELS.projectId]: plan.project.id,
        [LABELS.specDir]: plan.project.specDir,
        [LABELS.role]: AGENT_ROLE,
        [LABELS.specHash]: hash,
        [LABELS.node]: node.name,
        ...(deps.extraLabels ?? {}),
      },
      network: `container:${node.id}`,
      pid: `container:${node.id}`,
      capAdd: ['SYS_PTRACE'],
      securityOpt: ['apparmor=unconfined'],
      binds: binds.map(parseBind),
      volumes: [],
      restart: 'unless-stopped',
    });
    if (!created && state.labels[LABELS.specHash] !== hash) {
      throw new LoError('E_STEP', `a container named ${name} exists and is not the current agent of node ${node.name}`, {
        hint: `remove it (\`${shellCommand(['docker', 'rm', '-f', name])}\`) and run \`lo provision\` again`,
      });
    }
    await docker.containers.start(state.id);
    const reason = plan.p2p.forwardOnly ? 'forward-only: rewrites, P2P off' : `peers ${nodes.length - 1}`;
    actions.push({ kind: 'p2p agent', name, action: found ? 'recreate' : 'create', reason });
  }
  for (const c of existing) {
    if (!nodes.some((n) => n.name === c.labels[LABELS.node])) {
      await docker.containers.remove(c.id);
      actions.push({ kind: 'p2p agent', name: c.name, action: 'remove' });
    }
  }
  return actions;
}

export interface P2PHookOptions {
  docker: () => Promise<Pick<DockerClients, 'containers' | 'images'>>;
  /** Base image for the agent image (default node:20-bookworm-slim); see agentImage.ts. */
  baseImage?: string;
  /** Use this image instead of building one. */
  image?: string;
  containerdAddress?: string;
  extraLabels?: Record<string, string>;
  /** How long a started agent may take to listen (default AGENT_READY_TIMEOUT_MS). */
  readyTimeoutMs?: number;
}

/** The `p2p` step for `lo provision` (ProvisionDeps['p2p']): builds the agent image if needed, then deploys. */
export function createP2PHook(opts: P2PHookOptions): (plan: Plan, nodes: string[]) => Promise<Action[]> {
  return async (plan, nodes) => {
    const docker = await opts.docker();
    const actions: Action[] = [];
    let image = opts.image;
    // No agent to run (P2P off, no rewrite): no image to build, only leftovers to remove.
    if (!image && plan.p2p.agents.length === 0) image = '';
    else if (!image) {
      const built = await ensureAgentImage(docker, { baseImage: opts.baseImage, extraLabels: opts.extraLabels });
      image = built.image;
      actions.push({ kind: 'image', name: image, action: built.built ? 'create' : 'noop' });
    }
    const deployed = await deployP2P(plan, nodes, {
      docker,
      image,
      containerdAddress: opts.containerdAddress,
      extraLabels: opts.extraLabels,
    });
    actions.push(...deployed);
    // containerd lists the agent first: until it listens, a pull skips it (a refused connect), which for a
    // rewritten name means the original name is pulled. So the step ends when every new agent listens.
    const started = deployed.filter((a) => a.kind === 'p2p agent' && (a.action === 'create' || a.action === 'recreate'));
    await Promise.all(started.map((a) => waitAgentListening(docker, a.name, opts.readyTimeoutMs ?? AGENT_READY_TIMEOUT_MS)));
    return actions;
  };
}

/** How long an agent may take to listen after its start (the P2P agent loads libp2p first: ~3 s here). */
export const AGENT_READY_TIMEOUT_MS = 60_000;

/**
 * Waits until an agent logs its start line (`lo p2p agent…: registry on …`, written once its registry port
 * listens), read through Docker (so it works wherever the engine is, node addresses reachable or not). Bounded;
 * an agent that exits or stays silent is a step failure naming its last log lines.
 */
async function waitAgentListening(docker: Pick<DockerClients, 'containers'>, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let logs = '';
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    logs = await docker.containers.logs(name, { tail: 200 }).catch(() => '');
    if (/lo p2p agent[^\n]*: registry on /.test(logs)) return;
    const state = await docker.containers.inspect(name);
    if (!state || state.status !== 'running' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, delay));
  }
  const last = logs.trim().split('\n').slice(-5).join('\n');
  throw new LoError('E_STEP', `the P2P agent ${name} did not start listening within ${Math.round(timeoutMs / 1000)} s`, {
    hint: `see why with \`${shellCommand(['docker', 'logs', name])}\`${last ? `; its last lines:\n${last}` : ''}`,
  });
}

/** Removes the project's agents (another project's of the same metadata.name stays), as actions. */
async function removeAgents(
  plan: Plan,
  docker: Pick<DockerClients, 'containers'>,
  found: Awaited<ReturnType<DockerClients['containers']['list']>>,
): Promise<Action[]> {
  const actions: Action[] = [];
  for (const c of found) {
    if (foreignOwnerOf(plan.project.id, c.labels) !== null) continue;
    await docker.containers.remove(c.id);
    actions.push({ kind: 'p2p agent', name: c.name || c.id, action: 'remove', reason: 'P2P off and no rewrite configured' });
  }
  return actions;
}

/** The project's agent containers: which node each serves and whether it runs (for `lo doctor`). */
export async function listP2PAgents(
  plan: Plan,
  docker: Pick<DockerClients, 'containers'>,
): Promise<Array<{ node: string; agent: string; running: boolean }>> {
  const found = await docker.containers.list(agentLabels(plan));
  return found.map((c) => ({ node: c.labels[LABELS.node] ?? '', agent: c.name || c.id, running: c.status === 'running' }));
}

/** Removes the project's agent containers (for `lo destroy`; kind deleting the nodes leaves them dangling). */
export async function removeP2P(plan: Plan, docker: Pick<DockerClients, 'containers'>, opts: { dryRun?: boolean } = {}): Promise<Action[]> {
  const found = await docker.containers.list(agentLabels(plan));
  // The diff: every agent of the project goes, but another project's of the same metadata.name (by its
  // project id label) stays. A dry run stops here.
  const actions = found.map((c): Action => {
    const other = foreignOwnerOf(plan.project.id, c.labels);
    return other === null
      ? { kind: 'p2p agent', name: c.name || c.id, action: 'remove' }
      : { kind: 'p2p agent', name: c.name || c.id, action: 'noop', reason: `kept: belongs to the project in ${other}` };
  });
  if (opts.dryRun) return actions;
  for (const c of found) if (foreignOwnerOf(plan.project.id, c.labels) === null) await docker.containers.remove(c.id);
  return actions;
}
