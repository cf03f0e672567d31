import type { CredentialsSpec, HostPortSpec, P2PSpec } from '../spec/types.js';
import type { AgentOptions } from '../agent/options.js';
import type { Scope } from './labels.js';
import type { ConfigMapManifest } from './render/renderConfigMaps.js';
import type { RegistryConfigInput } from './render/renderRegistryConfig.js';

/** What runs on the shared network now; the planner keeps running mirrors at their addresses. */
export interface ObservedShared {
  mirrors: ObservedMirror[];
  /** Addresses on the shared network held by anything else (kind nodes, foreign containers). */
  usedAddresses?: string[];
  /** With shared mirrors off: this project's mirror containers (by labels), so ones made under earlier names keep them. */
  projectMirrors?: ObservedProjectMirror[];
}

/** An unshared mirror of this project as it runs: its mirror name and container name (the volume is `<container>-data`). */
export interface ObservedProjectMirror {
  name: string;
  containerName: string;
}

export interface ObservedMirror {
  name: string;
  ip: string;
  url: string;
  registry?: string;
  /** Project that created it (label), for conflict messages. */
  project?: string;
  scheme?: 'http' | 'https';
  /** Credential variable names (`USER_VAR/PASS_VAR`, empty for none), when the mirror says. */
  credentials?: string;
  /** Its `upstream-access` label (`ca=sha256:<hex>`, empty for no CA), when the mirror has one. */
  upstreamAccess?: string;
}

export const EMPTY_OBSERVED: ObservedShared = { mirrors: [], usedAddresses: [] };

export interface NetworkPlan {
  role: 'project' | 'shared';
  name: string;
  subnet: string;
  gateway: string;
  /** Docker's dynamic allocation range; static registry addresses stay outside it. */
  ipRange: string;
  bridgeName: string;
  labels: Record<string, string>;
}

export type RegistryRole = 'build' | 'cache' | 'mirror';

export interface RegistryPlan {
  name: string;
  role: RegistryRole;
  scope: Scope;
  containerName: string;
  volume: string;
  network: string;
  ip: string;
  port: number;
  scheme: 'http' | 'https';
  /** How clients reach it, e.g. https://10.125.125.101 */
  endpoint: string;
  /** Pull-through upstream (mirrors only). */
  upstream?: string;
  /** Registry name containerd sees (mirrors only), e.g. docker.io. */
  registry?: string;
  /** Host names that resolve to it in containerd (build: lok8s.local, cache: lok8s.cache). */
  hostnames: string[];
  push: boolean;
  /** Env variable names with upstream credentials (never values). */
  credentials?: CredentialsSpec;
  image: string;
  /** Directory mounted read-only at /etc/lo/registry, holding config.yml. */
  configDir: string;
  configPath: string;
  /** registry:2 configuration (credentials are added by the executor, never in the plan). */
  config: string;
  /** Directory mounted read-only at /etc/lo/tls (null without TLS). */
  tlsDir: string | null;
  certificateId: string | null;
  labels: Record<string, string>;
  /** What the renderer makes `config` from; the executor renders it again with the credentials it resolves. */
  configInput: RegistryConfigInput;
  /** How the container runs (its labels are `labels`, with the container hash set at apply). */
  container: RegistryContainerPlan;
  /** Mirrors: the read-only replica serving the cache offline, a process of the mirror's container (src/plan/offline.ts). */
  replica?: ReplicaPlan;
  /**
   * Mirrors with `tls.caFile`: the spec's CA file and where lo copies it, in a directory the container's Go
   * TLS client reads besides the system CAs (`SSL_CERT_DIR`, set in `container.env`).
   */
  upstreamCa?: { source: string; path: string };
}

export interface RegistryContainerPlan {
  name: string;
  image: string;
  /** Replaces the image's entrypoint (mirrors: `/bin/sh`, running the supervisor script). */
  entrypoint?: string[];
  cmd: string[];
  /** `NAME=value` environment (mirrors with an upstream CA: SSL_CERT_DIR); never a secret. */
  env?: string[];
  network: string;
  ip: string;
  binds: Array<{ source: string; target: string; readOnly: boolean }>;
  volumes: Array<{ name: string; target: string }>;
  restart: 'always';
}

/**
 * A mirror's read-only replica: a second `registry serve` in the mirror's one container (its supervisor
 * script runs both, src/plan/render/mirrorSupervisor.ts), on the same volume and address, its own port and config.
 */
export interface ReplicaPlan {
  port: number;
  /** e.g. https://10.125.200.2:5443 */
  endpoint: string;
  configPath: string;
  config: string;
  /** The supervisor script, the mirror container's entrypoint: `<configDir>/mirror.sh`. */
  supervisorPath: string;
  supervisor: string;
}

export interface CertificatePlan {
  id: string;
  scope: Scope;
  certPath: string;
  keyPath: string;
  /** Subject alternative names: IPs and DNS names, sorted, deduplicated. */
  names: string[];
  usedBy: string[];
}

export interface TlsPlan {
  enabled: boolean;
  caRoot: string;
  caCertPath: string;
  caKeyPath: string;
  /** Every name any registry of this project answers to (the project leaf covers exactly these). */
  subjectNames: string[];
  certificates: CertificatePlan[];
}

export interface HostsFilePlan {
  /** Directory name under certs.d: a registry name, hostname or IP, or `_default` (the spec's `"*"`). */
  host: string;
  path: string;
  /** The file's TOML; a header value is its placeholder `<from $VAR>` (the executor writes the value). */
  content: string;
  /** 0644, or 0600 when the file carries a header value. */
  mode: number;
  /** Variables whose values replace the header placeholders (`<from $VAR>`) in `content` when written. */
  headerEnv?: string[];
}

/** A file the spec names (an endpoint's CA, client certificate or key) copied into the certs.d tree. */
export interface CertsFilePlan {
  /** The file as the spec names it (absolute). */
  source: string;
  /** `<certsDir>/<host>/lo-<n>-ca.crt`, `-client.cert` or `-client.key`. */
  path: string;
  /** The same file as a node sees it, named in hosts.toml. */
  nodePath: string;
  /** 0644 for certificates, 0600 for keys. */
  mode: number;
}

export interface ContainerdPlan {
  /** Host directory with the hosts.toml tree, bind-mounted read-only into every node. */
  certsDir: string;
  nodeCertsDir: string;
  /** CA copied into the tree, and its path inside a node. */
  caFile: string | null;
  nodeCaFile: string | null;
  hosts: HostsFilePlan[];
  /** Endpoint TLS files copied into the tree (spec.registries.hosts), in hosts order. */
  files: CertsFilePlan[];
  /** What `spec.registries.hosts` adds, per entry, for `lo plan` and `lo doctor` (the hosts.toml has it all). */
  endpoints: EndpointsPlan[];
}

/** One `spec.registries.hosts` entry as containerd will use it. */
export interface EndpointsPlan {
  /** The spec's key: a registry name or `*`. */
  registry: string;
  /** Its certs.d directory (`_default` for `*`). */
  host: string;
  endpoints: Array<{
    url: string;
    capabilities: Array<'pull' | 'resolve' | 'push'>;
    overridePath: boolean;
    skipVerify: boolean;
    /** The CA copy as a node sees it, or null (system CAs). */
    ca: string | null;
    clientCertificate: boolean;
    /** `Name: <from $VAR>`: names and variables, never values. */
    headers: string[];
  }>;
  /** After the endpoints: the registry's own endpoint, `null` when disabled, `per registry` for `*`. */
  defaultEndpoint: string | null;
  /** Image-name rewrites on the repository name, in order (lo's node agent applies them; listed first in hosts.toml). */
  rewrites: Array<{ pattern: string; replacement: string }>;
}

export interface ClusterNodePlan {
  name: string;
  role: 'control-plane' | 'worker';
}

export interface ClusterPlan {
  name: string;
  domain: string;
  kubernetesVersion: string;
  image: string;
  network: string;
  nodes: ClusterNodePlan[];
  hostPorts: HostPortSpec[];
  maxConcurrentDownloads: number;
  kubeconfigPath: string;
  /** Where the kind config is written, and its content (`kind create cluster --config`). */
  kindConfigPath: string;
  kindConfig: string;
}

export interface FilePlan {
  path: string;
  kind: 'hosts.toml' | 'registry-config' | 'certificate' | 'key' | 'ca' | 'p2p-key' | 'kind-config';
  mode: number;
}

export interface P2PPlan extends P2PSpec {
  /**
   * P2P is off but a rewrite is configured: the agents run only to apply the rewrites (`--forward-only`: no
   * libp2p, no swarm key, no peers).
   */
  forwardOnly: boolean;
  /** Pre-shared key for the libp2p private network of this cluster (0600, never printed). */
  keyPath: string;
  /** Agent endpoint as containerd on each node sees it (host networking). */
  endpoint: string;
  /** Where the swarm key is mounted inside each agent container. */
  agentKeyPath: string;
  /** One agent per Kubernetes node (empty when P2P is off and no rewrite is configured). */
  agents: AgentPlan[];
}

export interface AgentPlan {
  /** The kind node container it serves (shares its network and PID namespaces). */
  node: string;
  containerName: string;
  /** The agent's options (src/agent/options.ts); `command` is built from them. */
  options: Partial<AgentOptions>;
  /** The container's command: `p2p agent --port … --peers <other nodes>:<routerPort> …`. */
  command: string[];
}

export interface Plan {
  apiVersion: 'lo.lok8s.dev/plan/v1';
  project: { name: string; id: string; domain: string; slot: number | null; file: string; specDir: string; specHash: string };
  paths: { stateDir: string; projectDir: string; sharedDir: string; caRoot: string };
  networks: NetworkPlan[];
  registries: RegistryPlan[];
  tls: TlsPlan;
  containerd: ContainerdPlan;
  cluster: ClusterPlan;
  p2p: P2PPlan;
  files: FilePlan[];
  /** The registry ConfigMaps applied to the cluster. */
  configMaps: ConfigMapManifest[];
}
