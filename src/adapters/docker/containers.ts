import type Docker from 'dockerode';
import { dockerError, statusOf, unless404, type DockerCalls } from './client.js';
import type { ContainerSpec, ContainersClient, ContainerState } from './types.js';

type Inspect = Awaited<ReturnType<Docker.Container['inspect']>>;

/** Address per network: the static address lo asked for (IPAMConfig) when there is one, else Docker's. */
function networksOf(networks: Record<string, { IPAddress?: string }> | undefined): Record<string, { ip: string | null }> {
  const nets: Record<string, { ip: string | null }> = {};
  for (const [name, n] of Object.entries(networks ?? {})) {
    const ipam = (n as { IPAMConfig?: { IPv4Address?: string } | null }).IPAMConfig;
    nets[name] = { ip: ipam?.IPv4Address || n.IPAddress || null };
  }
  return nets;
}

function toState(c: Inspect): ContainerState {
  const nets = networksOf(c.NetworkSettings?.Networks);
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    status: c.State.Status,
    running: c.State.Running,
    imageId: c.Image,
    labels: c.Config.Labels ?? {},
    networks: nets,
    volumes: (c.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => ({ name: m.Name!, destination: m.Destination })),
    networkMode: c.HostConfig?.NetworkMode ?? '',
  };
}

type Listed = Awaited<ReturnType<Docker['listContainers']>>[number];

/** The list answer already holds labels, state, networks (with IPAMConfig) and mounts: no inspect per container. */
function fromList(c: Listed): ContainerState {
  const nets = networksOf(c.NetworkSettings?.Networks);
  return {
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    status: c.State,
    // as inspect's State.Running: true while paused or restarting
    running: c.State === 'running' || c.State === 'paused' || c.State === 'restarting',
    imageId: c.ImageID,
    labels: c.Labels ?? {},
    networks: nets,
    volumes: (c.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => ({ name: m.Name!, destination: m.Destination })),
    networkMode: c.HostConfig?.NetworkMode ?? '',
  };
}

/** Docker's create options for a ContainerSpec. */
function createOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const sharesNetwork = spec.network.startsWith('container:');
  return {
    name: spec.name,
    Image: spec.image,
    ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    ...(spec.cmd ? { Cmd: spec.cmd } : {}),
    ...(spec.env ? { Env: spec.env } : {}),
    Labels: spec.labels,
    HostConfig: {
      NetworkMode: spec.network,
      ...(spec.pid ? { PidMode: spec.pid } : {}),
      ...(spec.capAdd ? { CapAdd: spec.capAdd } : {}),
      ...(spec.securityOpt ? { SecurityOpt: spec.securityOpt } : {}),
      RestartPolicy: { Name: spec.restart },
      Mounts: [
        ...spec.binds.map((b) => ({ Type: 'bind' as const, Source: b.source, Target: b.target, ReadOnly: b.readOnly })),
        ...spec.volumes.map((v) => ({ Type: 'volume' as const, Source: v.name, Target: v.target })),
      ],
    },
    ...(sharesNetwork
      ? {}
      : { NetworkingConfig: { EndpointsConfig: { [spec.network]: spec.ip ? { IPAMConfig: { IPv4Address: spec.ip } } : {} } } }),
  };
}

/**
 * Narrow client for containers. 304 (already started/stopped), 404 (gone) and 409 (name taken, removal in
 * progress) come back as state, so the reconciler never parses error strings.
 */
export class Containers implements ContainersClient {
  constructor(private readonly calls: DockerCalls) {}

  async inspect(nameOrId: string): Promise<ContainerState | null> {
    return this.calls.run('inspect', `container ${nameOrId}`, (docker) =>
      unless404(async () => toState(await docker.getContainer(nameOrId).inspect()), null),
    );
  }

  async list(labels: string[]): Promise<ContainerState[]> {
    const raw = await this.calls.run('list', `containers ${labels.join(',')}`, (docker) =>
      docker.listContainers({ all: true, filters: { label: labels } }),
    );
    return raw.map(fromList);
  }

  /**
   * Creates the container. When the name is already taken (409, e.g. a concurrent `lo registry up` won the
   * race) it returns the existing container with created: false; the caller compares labels.
   */
  async create(spec: ContainerSpec): Promise<{ state: ContainerState; created: boolean }> {
    const made = await this.calls.run('create', `container ${spec.name}`, async (docker) => {
      try {
        return { id: (await docker.createContainer(createOptions(spec))).id as string };
      } catch (err) {
        if (statusOf(err) === 409) return { taken: err };
        throw err;
      }
    });
    if (made.id !== undefined) {
      // What was just asked for; no second round trip to read it back.
      const state: ContainerState = {
        id: made.id,
        name: spec.name,
        status: 'created',
        running: false,
        imageId: '',
        labels: spec.labels,
        networks: spec.network.startsWith('container:') ? {} : { [spec.network]: { ip: spec.ip ?? null } },
        volumes: spec.volumes.map((v) => ({ name: v.name, destination: v.target })),
        networkMode: spec.network,
      };
      return { state, created: true };
    }
    // Docker reserves the name before the winner's container can be inspected: look again, bounded.
    for (let i = 0; i < 30; i++) {
      const state = await this.inspect(spec.name);
      if (state) return { state, created: false };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw dockerError(`creating container ${spec.name}`, made.taken, this.calls.target);
  }

  async start(nameOrId: string): Promise<void> {
    await this.calls.run('start', `container ${nameOrId}`, async (docker) => {
      try {
        await docker.getContainer(nameOrId).start();
      } catch (err) {
        if (statusOf(err) !== 304) throw err;
      }
    });
  }

  async stop(nameOrId: string, timeoutSeconds = 5): Promise<void> {
    await this.calls.run('stop', `container ${nameOrId}`, async (docker) => {
      try {
        await docker.getContainer(nameOrId).stop({ t: timeoutSeconds });
      } catch (err) {
        const s = statusOf(err);
        if (s !== 304 && s !== 404) throw err;
      }
    });
  }

  async remove(nameOrId: string): Promise<boolean> {
    const answer = await this.calls.run('remove', `container ${nameOrId}`, async (docker) => {
      try {
        await docker.getContainer(nameOrId).remove({ force: true, v: false });
        return 'removed' as const;
      } catch (err) {
        const s = statusOf(err);
        if (s === 404) return 'absent' as const;
        if (s === 409) return 'in-progress' as const;
        throw err;
      }
    });
    // "removal already in progress": wait (bounded) until it is gone.
    if (answer === 'in-progress')
      for (let i = 0; i < 50 && (await this.inspect(nameOrId)); i++) await new Promise((r) => setTimeout(r, 100));
    return answer === 'removed';
  }

  async wait(nameOrId: string): Promise<number> {
    const r = (await this.calls.run('wait', `container ${nameOrId}`, (docker) => docker.getContainer(nameOrId).wait())) as {
      StatusCode: number;
    };
    return r.StatusCode;
  }

  async logs(nameOrId: string, opts: { timestamps?: boolean; tail?: number } = {}): Promise<string> {
    const buf = (await this.calls.run('logs', `container ${nameOrId}`, (docker) =>
      docker.getContainer(nameOrId).logs({
        stdout: true,
        stderr: true,
        follow: false,
        timestamps: opts.timestamps ?? false,
        ...(opts.tail ? { tail: opts.tail } : {}),
      }),
    )) as unknown as Buffer;
    return demux(buf);
  }
}

/** Docker's multiplexed log stream (8-byte frame headers) as text; a TTY container's plain stream as is. */
function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0) {
    const len = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return i === 0 ? buf.toString('utf8') : Buffer.concat(parts).toString('utf8');
}
