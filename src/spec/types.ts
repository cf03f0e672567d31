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

/** Variable NAMES only: usernameEnv + passwordEnv, or tokenEnv (alone or with usernameEnv). */
export interface CredentialsSpec {
  usernameEnv?: string;
  passwordEnv?: string;
  tokenEnv?: string;
}

/** TLS towards a server lo does not run (a mirror's upstream, an endpoint); file paths absolute. */
export interface TlsFilesSpec {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecureSkipVerify: boolean;
}

/** One endpoint containerd tries itself (hosts.toml `[host."url"]`). */
export interface EndpointSpec {
  /** Normalised: scheme://host[:port][/path], no trailing slash. */
  url: string;
  capabilities: Array<'pull' | 'resolve' | 'push'>;
  /** The URL has a path after /v2: containerd uses it as written (`override_path = true`). */
  overridePath: boolean;
  tls: TlsFilesSpec;
  /** Header name -> the environment variable holding its value (never the value). */
  headers: Record<string, { env: string }>;
}

/** containerd's configuration for one registry name, or for `*` (certs.d/_default). */
export interface HostSpec {
  endpoints: EndpointSpec[];
  /** Resolved: the entry's own value, else spec.registries.disableDefaultEndpoint. */
  disableDefaultEndpoint: boolean;
  /**
   * Image-name rewrites on the repository name (K3s `rewrite`), in the file's order; the first rule that changes the name wins.
   * lo's node agent applies them (upstream containerd has none). Empty: none.
   */
  rewrites: RewriteSpec[];
}

/** One rewrite rule: a Go RE2 regex (as the agent translates it to JavaScript) and a Go-style replacement (`$1`, `${1}`). */
export interface RewriteSpec {
  pattern: string;
  replacement: string;
}

export interface MirrorSpec {
  name: string;
  url: string;
  /** The registry name containerd sees, e.g. docker.io. */
  registry: string;
  credentials?: CredentialsSpec;
  /** How the mirror talks TLS to its upstream (only caFile is possible with registry:2). */
  tls?: TlsFilesSpec;
}

export interface P2PSpec {
  enabled: boolean;
  port: number;
  routerPort: number;
  metricsPort: number;
  /** TLS-PSK data port between agents (all addresses of the node). */
  dataPort: number;
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
  /** Per registry name (or `*`), in the file's order. */
  hosts: Record<string, HostSpec>;
  p2p: P2PSpec;
}
