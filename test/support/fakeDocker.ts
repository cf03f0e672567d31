/**
 * An in-memory Docker behind lo's narrow client interfaces (src/adapters/docker/types.ts), for unit tests of
 * the reconcile decisions. It answers as the dockerode implementation does after turning Docker's
 * 404/409/304 into state: missing -> null, name taken -> created: false, already started/stopped -> fine.
 * Every call goes through the given debug log and is recorded in `ops` ("create container x"), so tests
 * assert what was done, not only what was reported.
 */
import { LoError } from '../../src/errors/loError.js';
import type {
  BuildSpec,
  ContainerSpec,
  ContainerState,
  DockerClients,
  ImageState,
  NetworkState,
  VolumeState,
} from '../../src/adapters/docker/index.js';
import type { NetworkPlan } from '../../src/plan/types.js';
import { silentLog, type Log } from '../../src/runtime/log.js';

interface FakeContainer {
  state: ContainerState;
  spec?: ContainerSpec;
}

const matches = (labels: Record<string, string>, filters: string[]): boolean =>
  filters.every((f) => {
    const [k, ...v] = f.split('=');
    return v.length === 0 ? k! in labels : labels[k!] === v.join('=');
  });

export class FakeDocker implements DockerClients {
  readonly target = 'fake://docker';
  /** What was done, in order: `<verb> <kind> <name>`; reads (inspect, list) are not recorded. */
  readonly ops: string[] = [];
  readonly networkStore = new Map<string, NetworkState>();
  readonly containerStore = new Map<string, FakeContainer>();
  readonly volumeStore = new Map<string, VolumeState>();
  readonly imageStore = new Map<string, ImageState>();
  /** Paths `images.hasPath` says an image lacks (every path exists otherwise). */
  readonly imagePathsMissing = new Map<string, Set<string>>();
  /** Bytes `volumes.usage()` reports per volume (0 when not set). */
  readonly volumeBytes = new Map<string, number>();
  private seq = 0;

  constructor(private readonly log: Log = silentLog) {}

  private nextId(prefix: string): string {
    return `${prefix}${(++this.seq).toString(16).padStart(12, '0')}`;
  }

  private run<T>(verb: string, object: string, fn: () => T | Promise<T>, record = verb !== 'inspect' && verb !== 'list'): Promise<T> {
    return this.log.call(verb, object, async () => {
      const r = await fn();
      if (record) this.ops.push(`${verb} ${object}`);
      return r;
    });
  }

  private byNameOrId(nameOrId: string): FakeContainer | undefined {
    return this.containerStore.get(nameOrId) ?? [...this.containerStore.values()].find((c) => c.state.name === nameOrId);
  }

  // ---- test set-up helpers (no ops recorded) ----

  /** An image present in the engine (registry:2, the node image). */
  addImage(ref: string, labels: Record<string, string> = {}): ImageState {
    const img = { id: `sha256:${this.nextId('img')}`, tags: [ref], labels };
    this.imageStore.set(ref, img);
    return img;
  }

  /** A container lo did not create through the clients (a kind node, a squatter). */
  addContainer(c: Partial<ContainerState> & { name: string }): ContainerState {
    const state: ContainerState = {
      id: this.nextId('c'),
      status: 'running',
      running: true,
      imageId: '',
      labels: {},
      networks: {},
      volumes: [],
      networkMode: Object.keys(c.networks ?? {})[0] ?? 'bridge',
      ...c,
    };
    this.containerStore.set(state.id, { state });
    return state;
  }

  addNetwork(n: Partial<NetworkState> & { name: string; subnet: string }): NetworkState {
    const state: NetworkState = { id: this.nextId('n'), gateway: null, ipRange: null, bridgeName: null, labels: {}, containers: [], ...n };
    this.networkStore.set(state.name, state);
    return state;
  }

  container(name: string): ContainerState | undefined {
    return this.byNameOrId(name)?.state;
  }

  // ---- the narrow clients ----

  readonly networks: DockerClients['networks'] = {
    inspect: (name) => this.run('inspect', `network ${name}`, () => structuredClone(this.networkStore.get(name) ?? null)),
    ensure: (plan: NetworkPlan) =>
      this.run('create', `network ${plan.name} (${plan.subnet})`, () => {
        const have = this.networkStore.get(plan.name);
        if (have) return { state: structuredClone(have), created: false };
        const clash = [...this.networkStore.values()].find((n) => n.subnet === plan.subnet);
        if (clash) throw new LoError('E_DOCKER', `creating network ${plan.name}: Pool overlaps with other one on this address space`);
        const state = this.addNetwork({
          name: plan.name,
          subnet: plan.subnet,
          gateway: plan.gateway,
          ipRange: plan.ipRange,
          bridgeName: plan.bridgeName,
          labels: { ...plan.labels },
        });
        return { state: structuredClone(state), created: true };
      }),
    remove: (name) => this.run('remove', `network ${name}`, () => this.networkStore.delete(name)),
    connect: (network, container, ip) =>
      this.run('connect', `${container} to network ${network}`, () => {
        const n = this.networkStore.get(network);
        const c = this.byNameOrId(container);
        if (!n || !c)
          throw new LoError('E_DOCKER', `connecting ${container} to network ${network}: No such ${n ? 'container' : 'network'}`);
        if (c.state.networks[network]) return false;
        c.state.networks[network] = { ip: ip ?? null };
        n.containers.push({ id: c.state.id, name: c.state.name, ip: ip ?? null });
        return true;
      }),
    list: (labels) => this.run('list', 'networks', () => [...this.networkStore.values()].filter((n) => matches(n.labels, labels))),
  };

  readonly containers: DockerClients['containers'] = {
    inspect: (nameOrId) => this.run('inspect', `container ${nameOrId}`, () => structuredClone(this.byNameOrId(nameOrId)?.state ?? null)),
    list: (labels) =>
      this.run('list', 'containers', () =>
        [...this.containerStore.values()].filter((c) => matches(c.state.labels, labels)).map((c) => structuredClone(c.state)),
      ),
    create: (spec) =>
      this.run('create', `container ${spec.name}`, () => {
        const taken = this.byNameOrId(spec.name);
        if (taken) return { state: structuredClone(taken.state), created: false };
        const image = this.imageStore.get(spec.image);
        if (!image) throw new LoError('E_DOCKER', `creating container ${spec.name}: No such image: ${spec.image}`);
        for (const v of spec.volumes) if (!this.volumeStore.has(v.name)) this.volumeStore.set(v.name, { name: v.name, labels: {} });
        const shared = spec.network.startsWith('container:');
        if (!shared && !this.networkStore.has(spec.network))
          throw new LoError('E_DOCKER', `creating container ${spec.name}: network ${spec.network} not found`);
        const state: ContainerState = {
          id: this.nextId('c'),
          name: spec.name,
          status: 'created',
          running: false,
          imageId: image.id,
          labels: { ...spec.labels },
          networks: shared ? {} : { [spec.network]: { ip: spec.ip ?? null } },
          volumes: spec.volumes.map((v) => ({ name: v.name, destination: v.target })),
          networkMode: spec.network,
        };
        this.containerStore.set(state.id, { state, spec: structuredClone(spec) });
        if (!shared) this.networkStore.get(spec.network)!.containers.push({ id: state.id, name: spec.name, ip: spec.ip ?? null });
        return { state: structuredClone(state), created: true };
      }),
    start: (nameOrId) =>
      this.run('start', `container ${nameOrId}`, () => {
        const c = this.byNameOrId(nameOrId);
        if (!c) throw new LoError('E_DOCKER', `starting container ${nameOrId}: No such container`);
        c.state.status = 'running';
        c.state.running = true;
      }),
    stop: (nameOrId) =>
      this.run('stop', `container ${nameOrId}`, () => {
        const c = this.byNameOrId(nameOrId);
        if (!c) return;
        c.state.status = 'exited';
        c.state.running = false;
      }),
    remove: (nameOrId) =>
      this.run('remove', `container ${nameOrId}`, () => {
        const c = this.byNameOrId(nameOrId);
        if (!c) return false;
        this.containerStore.delete(c.state.id);
        for (const n of this.networkStore.values()) n.containers = n.containers.filter((x) => x.id !== c.state.id);
        return true;
      }),
    // Fake containers run no process: a started one "exits" at once with 0 and prints nothing.
    wait: (nameOrId) =>
      this.run('wait', `container ${nameOrId}`, () => {
        const c = this.byNameOrId(nameOrId);
        if (!c) throw new LoError('E_DOCKER', `waiting for container ${nameOrId}: No such container`);
        c.state.status = 'exited';
        c.state.running = false;
        return 0;
      }),
    logs: (nameOrId) =>
      this.run(
        'logs',
        `container ${nameOrId}`,
        () => {
          if (!this.byNameOrId(nameOrId)) throw new LoError('E_DOCKER', `reading the log of container ${nameOrId}: No such container`);
          return '';
        },
        false,
      ),
  };

  readonly volumes: DockerClients['volumes'] = {
    inspect: (name) => this.run('inspect', `volume ${name}`, () => structuredClone(this.volumeStore.get(name) ?? null)),
    ensure: (name, labels) =>
      this.run('create', `volume ${name}`, () => {
        const have = this.volumeStore.get(name);
        if (have) return { state: structuredClone(have), created: false };
        const state = { name, labels: { ...labels } };
        this.volumeStore.set(name, state);
        return { state: structuredClone(state), created: true };
      }),
    remove: (name) =>
      this.run('remove', `volume ${name}`, () => {
        if ([...this.containerStore.values()].some((c) => c.state.volumes.some((v) => v.name === name)))
          throw new LoError('E_DOCKER', `removing volume ${name}: volume is in use`);
        return this.volumeStore.delete(name);
      }),
    list: (labels) => this.run('list', 'volumes', () => [...this.volumeStore.values()].filter((v) => matches(v.labels, labels))),
    usage: () =>
      this.run('get', 'disk usage', () => new Map([...this.volumeStore.keys()].map((n) => [n, this.volumeBytes.get(n) ?? 0])), false),
  };

  readonly images: DockerClients['images'] = {
    inspect: (ref) => this.run('inspect', `image ${ref}`, () => structuredClone(this.imageStore.get(ref) ?? null)),
    id: async (ref) => (await this.images.inspect(ref))?.id ?? null,
    ensure: (ref) =>
      this.run('pull', `image ${ref}`, () => {
        const img = this.imageStore.get(ref);
        // No registry behind the fake: a missing image cannot be pulled, as offline here.
        if (!img) throw new LoError('E_DOCKER', `image ${ref} is not present and could not be pulled: offline`);
        return img.id;
      }),
    hasPath: (ref, path) =>
      this.run(
        'inspect',
        `${path} in image ${ref}`,
        () => {
          if (!this.imageStore.has(ref)) throw new LoError('E_DOCKER', `No such image: ${ref}`);
          return !this.imagePathsMissing.get(ref)?.has(path);
        },
        false,
      ),
    build: (spec: BuildSpec) =>
      this.run('build', `image ${spec.tag}`, () => {
        this.addImage(spec.tag, { ...spec.labels });
      }),
    list: (labels) => this.run('list', 'images', () => [...this.imageStore.values()].filter((i) => matches(i.labels, labels))),
    remove: (ref) =>
      this.run('remove', `image ${ref}`, () => {
        const img = this.imageStore.get(ref);
        if (!img) return 'absent' as const;
        if ([...this.containerStore.values()].some((c) => c.state.imageId === img.id)) return 'in-use' as const;
        this.imageStore.delete(ref);
        return 'removed' as const;
      }),
  };

  readonly engine: DockerClients['engine'] = {
    version: () => this.run('get', 'version', () => ({ version: 'fake', apiVersion: '1.45' }), false),
  };

  /** Fake containers run no processes and hold no files: every command is "not found". */
  readonly exec: DockerClients['exec'] = {
    exec: (container, cmd) =>
      this.run('exec', `${cmd.join(' ')} in ${container}`, () => ({ exitCode: 127, stdout: '', stderr: `${cmd[0]}: not found` }), false),
    pathExists: () => this.run('inspect', 'path', () => false, false),
  };
}
