/** Label keys on every Docker object lo creates. Status, clean and drift detection read these, never names. */
export const LABEL_PREFIX = 'dev.lok8s.lo';
export const LABELS = {
  managedBy: `${LABEL_PREFIX}.managed-by`,
  project: `${LABEL_PREFIX}.project`,
  /** On project objects: which project owns them (a hash of the spec's directory and the domain; plan.project.id). */
  projectId: `${LABEL_PREFIX}.project-id`,
  /** On project objects: the directory of the owning project's spec (conflict messages name it). */
  specDir: `${LABEL_PREFIX}.spec-dir`,
  scope: `${LABEL_PREFIX}.scope`,
  role: `${LABEL_PREFIX}.role`,
  mirror: `${LABEL_PREFIX}.mirror`,
  registry: `${LABEL_PREFIX}.registry`,
  upstream: `${LABEL_PREFIX}.upstream`,
  scheme: `${LABEL_PREFIX}.scheme`,
  /** On shared mirrors: the project whose spec created it (conflict messages name it). */
  createdBy: `${LABEL_PREFIX}.created-by`,
  /** On mirrors: the credential variable NAMES (`USER_VAR/PASS_VAR`, empty without credentials). */
  credentials: `${LABEL_PREFIX}.credentials`,
  /** On mirrors: how lo reaches the upstream beyond credentials, `ca=sha256:<hex of the CA's content>` (empty: no CA). */
  upstreamAccess: `${LABEL_PREFIX}.upstream-access`,
  specHash: `${LABEL_PREFIX}.spec-hash`,
  version: `${LABEL_PREFIX}.version`,
  /** On P2P agent containers: the kind node the agent serves. */
  node: `${LABEL_PREFIX}.node`,
  /** On the P2P agent image: the hash of what it was built from. */
  contentHash: `${LABEL_PREFIX}.content-hash`,
  /** On everything a test run creates (test helpers add it through extraLabels; cleanup removes by it). */
  testRun: `${LABEL_PREFIX}.test-run`,
} as const;
export const MANAGED_BY = 'lo';
/** Project label value on objects shared by all projects (shared network and mirrors). */
export const SHARED_PROJECT = '_shared';

export type Scope = 'shared' | 'project';

/** Role label values of the P2P agent containers and of their image. */
export const AGENT_ROLE = 'p2p-agent';
export const AGENT_IMAGE_ROLE = 'p2p-agent-image';

/** kind's labels on its node containers (kind sets them; lo only reads them). */
export const KIND_LABELS = {
  cluster: 'io.x-k8s.kind.cluster',
  role: 'io.x-k8s.kind.role',
} as const;

/**
 * The owner an object's labels name when it is not the project `projectId`: its spec directory (or its id).
 * Null when it is that project's, or carries no id (made before lo labelled owners: adopted).
 */
export function foreignOwnerOf(projectId: string | undefined, labels: Record<string, string>): string | null {
  const id = labels[LABELS.projectId];
  if (id === undefined || id === projectId) return null;
  return labels[LABELS.specDir] ?? `project id ${id}`;
}
