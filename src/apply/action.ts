/**
 * The one action type of lo: what an executor did, or (from a diff, for `--dry-run`) would do. Every
 * executor returns these: the registry executor (networks, volumes, containers, files, certificates) and
 * provision's other steps (the kind cluster, kubeconfig, node connections, ConfigMaps, P2P key, image and
 * agents). `lo registry` prints and `--json`s them as they are; provision and destroy report them per step
 * through `stepView`, the one mapping site.
 */
export interface Action {
  kind: ActionKind;
  /** What it acted on, e.g. a container name, a file path, `lok8s-control-plane -> lok8s-registries`. */
  name: string;
  action: ActionVerb;
  reason?: string;
  /** Registry containers an apply (re)started, when it waited for them (ApplyDeps.serving): what answered. */
  serving?: ServingState;
}

/**
 * - `serving`: the registry's port answered /v2/.
 * - `serving offline`: a mirror whose proxy did not answer but whose read-only replica did (the proxy waits for
 *   its upstream; its supervisor retries it, docs/offline.md).
 * - `not verified`: the address is not routed from this machine (Docker Desktop, a remote engine).
 */
export type ServingState = 'serving' | 'serving offline' | 'not verified';

export type ActionVerb = 'create' | 'recreate' | 'update' | 'noop' | 'remove' | 'warn';
export type ActionKind =
  | 'network'
  | 'volume'
  | 'container'
  | 'file'
  | 'certificate'
  | 'cluster'
  | 'kubeconfig'
  | 'node'
  | 'configmap'
  | 'p2p key'
  | 'p2p agent'
  | 'image';

/** An action as a provision or destroy step reports it (`steps[].actions[]` in their `--json`). */
export interface StepAction {
  action: ActionVerb;
  /** `<kind> <name>`, e.g. `cluster lok8s`, `node lok8s-control-plane -> lok8s-registries`. */
  object: string;
  detail?: string;
}

/** The step view of an action: the one place an Action becomes a StepAction. */
export function stepView(a: Action): StepAction {
  return { action: a.action, object: `${a.kind} ${a.name}`, ...(a.reason ? { detail: a.reason } : {}) };
}
