import type { NetworkPlan } from '../../plan/types.js';

/**
 * The narrow Docker clients lo's executors use, one per resource (testcontainers-node
 * `container-runtime/clients/` style). The dockerode implementations (this folder, the only place that
 * imports dockerode) turn Docker's 404/409/304 answers into state; test/support/fakeDocker.ts implements the
 * same interfaces in memory for unit tests of the reconcile decisions.
 */

/** Observed state of one Docker network. */
export interface NetworkState {
  id: string;
  name: string;
  subnet: string | null;
  gateway: string | null;
  ipRange: string | null;
  bridgeName: string | null;
  labels: Record<string, string>;
  /** Attached containers with their IPv4 address (no prefix). */
  containers: Array<{ id: string; name: string; ip: string | null }>;
}

/** Observed state of one container, as much as lo's reconciler needs. */
export interface ContainerState {
  id: string;
  name: string;
  /** created | running | paused | restarting | removing | exited | dead */
  status: string;
  running: boolean;
  imageId: string;
  labels: Record<string, string>;
  /** Network name -> configured static IPv4 (IPAMConfig) or the current address. */
  networks: Record<string, { ip: string | null }>;
  /** Named volumes mounted, by destination. */
  volumes: Array<{ name: string; destination: string }>;
  /** HostConfig.NetworkMode: a network name, or `container:<id>` when it shares another container's network. */
  networkMode: string;
}

export interface ContainerSpec {
  name: string;
  image: string;
  /** Replaces the image's entrypoint. */
  entrypoint?: string[];
  cmd?: string[];
  /** `NAME=value` pairs. */
  env?: string[];
  labels: Record<string, string>;
  /** A network name, or `container:<id>` to share another container's network namespace (then no `ip`). */
  network: string;
  ip?: string;
  /** `container:<id>` shares another container's PID namespace. */
  pid?: string;
  capAdd?: string[];
  securityOpt?: string[];
  binds: Array<{ source: string; target: string; readOnly: boolean }>;
  volumes: Array<{ name: string; target: string }>;
  restart: 'always' | 'no' | 'unless-stopped';
}

export interface VolumeState {
  name: string;
  labels: Record<string, string>;
}

export interface ImageState {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  /** When it was built, in seconds since the epoch (Docker's `Created`). */
  created?: number;
}

export interface BuildSpec {
  /** Directory holding the Dockerfile and what it copies. */
  context: string;
  /** Entries of `context` sent to the engine. */
  src: string[];
  tag: string;
  labels: Record<string, string>;
}

export interface NetworksClient {
  /** The network by name, or null when it does not exist. */
  inspect(name: string): Promise<NetworkState | null>;
  /** Creates it unless it exists (a concurrent create counts as existing); `created` says whether this call made it. */
  ensure(plan: NetworkPlan): Promise<{ state: NetworkState; created: boolean }>;
  /** False when it was already gone. */
  remove(name: string): Promise<boolean>;
  /** Attaches a container; false when it already was attached. */
  connect(network: string, container: string, ip?: string): Promise<boolean>;
  list(labels: string[]): Promise<NetworkState[]>;
}

export interface ContainersClient {
  inspect(nameOrId: string): Promise<ContainerState | null>;
  /** Containers (running or not) carrying all the given `key=value` labels. */
  list(labels: string[]): Promise<ContainerState[]>;
  /** Name already taken: the existing container with created: false (the caller compares labels). */
  create(spec: ContainerSpec): Promise<{ state: ContainerState; created: boolean }>;
  /** Already running is fine. */
  start(nameOrId: string): Promise<void>;
  /** Already stopped or gone is fine. */
  stop(nameOrId: string, timeoutSeconds?: number): Promise<void>;
  /** Force-removes it, never its named volumes; false when it was already gone. */
  remove(nameOrId: string): Promise<boolean>;
  /** Waits until it exits; its exit code. */
  wait(nameOrId: string): Promise<number>;
  /** Its log (stdout and stderr, demultiplexed), each line prefixed with Docker's RFC 3339 timestamp when asked. */
  logs(nameOrId: string, opts?: { timestamps?: boolean; tail?: number }): Promise<string>;
}

export interface VolumesClient {
  inspect(name: string): Promise<VolumeState | null>;
  ensure(name: string, labels: Record<string, string>): Promise<{ state: VolumeState; created: boolean }>;
  /** False when it was already gone; a volume in use is an error. */
  remove(name: string): Promise<boolean>;
  list(labels: string[]): Promise<VolumeState[]>;
  /**
   * Bytes used per named volume (-1 when the engine did not measure it). The engine measures it, so it works
   * where the volume's directory is not visible to lo (Docker Desktop, a remote engine).
   */
  usage(): Promise<Map<string, number>>;
}

export interface ImagesClient {
  /** The image's ID, or null when it is not present. */
  id(ref: string): Promise<string | null>;
  inspect(ref: string): Promise<ImageState | null>;
  /** The image's ID now, pulled first when missing. */
  ensure(ref: string): Promise<string>;
  /** Whether `path` exists in the image (a created, never started container carrying `labels` looks). */
  hasPath(ref: string, path: string, labels: Record<string, string>): Promise<boolean>;
  build(spec: BuildSpec): Promise<void>;
  list(labels: string[]): Promise<ImageState[]>;
  /** `in-use` when a container still uses it (Docker's 409), `absent` when it was already gone. */
  remove(ref: string): Promise<'removed' | 'absent' | 'in-use'>;
}

export interface EngineClient {
  version(): Promise<{ version: string; apiVersion: string }>;
}

/** The narrow clients over one connection. */
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecClient {
  /** Runs a command in a running container; output bounded to 4 MiB per stream. */
  exec(container: string, cmd: string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** Whether a path exists in a container's filesystem (no shell needed in the image). */
  pathExists(container: string, path: string): Promise<boolean>;
}

export interface DockerClients {
  /** Where the engine is, for messages (`unix:///var/run/docker.sock`). */
  target: string;
  networks: NetworksClient;
  volumes: VolumesClient;
  containers: ContainersClient;
  images: ImagesClient;
  engine: EngineClient;
  exec: ExecClient;
}
