/** Desired state of one project, normalised from cluster.lok8s.yaml (all defaults applied). */
export interface ClusterSpec {
  /** File the spec came from, or `<built-in lok8s.dev>`. */
  file: string;
  /** The real path of the spec file's directory (set by loadSpec; part of the project id, not of the spec hash). */
  specDir?: string;
  name: string;
  domain: string;
  /** 10.125.<slot>.0/24 for lok8s.dev (125) and N.lok8s.dev (N); null for other domains. */
  slot: number | null;
  kubernetesVersion: string;
  network: NetworkSpec;
  nodes: NodesSpec;
  registries: RegistriesSpec;
  /** What is allowed but unsafe (e.g. credentials sent over http://), one sentence each; printed on stderr. */
  warnings: string[];
}

export interface NetworkSpec {
  name: string;
  cidr: string;
}

export interface HostPortSpec {
  containerPort: number;
  hostPort: number;
  listenAddress: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

interface NodesSpec {
  controlPlane: number;
  workers: number;
  hostPorts: HostPortSpec[];
  maxConcurrentDownloads: number;
}

interface CredentialsSpec {
  usernameEnv: string;
  passwordEnv: string;
}

export interface MirrorSpec {
  name: string;
  url: string;
  /** The registry name containerd sees, e.g. docker.io. */
  registry: string;
  credentials?: CredentialsSpec;
}

export interface P2PSpec {
  enabled: boolean;
  port: number;
  routerPort: number;
  metricsPort: number;
  resolveTimeoutMs: number;
  resolveLatest: boolean;
  /** Registries whose tags the agents accept from peers (p2p.resolveTags: true = every mirrored registry). */
  resolveTags: string[];
  dialTimeout: string;
}

interface RegistriesSpec {
  tls: boolean;
  disableDefaultEndpoint: boolean;
  /** Mirror caches: disk budget per mirror volume in bytes (absent: unlimited). See docs/offline.md. */
  cache?: { maxSizeBytes?: number };
  shared: { enabled: boolean; network: NetworkSpec };
  mirrors: MirrorSpec[];
  p2p: P2PSpec;
}
