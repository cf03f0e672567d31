import type Docker from 'dockerode';
import { call, dockerError, statusOf, type DockerConnection } from './client.js';

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

export interface ContainerSpec {
  name: string;
  image: string;
  entrypoint?: string[];
  cmd?: string[];
  labels: Record<string, string>;
  network: string;
  ip?: string;
  /** `container:<id>`: share that container's network namespace instead of joining `network`. */
  networkMode?: string;
  binds: Array<{ source: string; target: string; readOnly: boolean }>;
  volumes: Array<{ name: string; target: string }>;
  restart: 'always' | 'no';
}

/**
 * Narrow client for containers. 304 (already started/stopped), 404 (gone) and 409 (name taken, removal in
 * progress) come back as state, so the reconciler never parses error strings.
 */
export class Containers {
  constructor(private readonly conn: DockerConnection) {}

  async inspect(nameOrId: string): Promise<ContainerState | null> {
    try {
      return toState(await this.conn.docker.getContainer(nameOrId).inspect());
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw dockerError(`inspecting container ${nameOrId}`, err, this.conn.target);
    }
  }

  /** Containers (running or not) carrying all the given `key=value` labels. */
  async list(labels: string[]): Promise<ContainerState[]> {
    const raw = await call(this.conn, 'listing containers', () =>
      this.conn.docker.listContainers({ all: true, filters: { label: labels } }),
    );
    return raw.map(fromList);
  }

  /**
   * Creates the container. When the name is already taken (409, e.g. a concurrent `lo registry up` won the
   * race) it returns the existing container with created: false; the caller compares labels.
   */
  async create(spec: ContainerSpec): Promise<{ state: ContainerState; created: boolean }> {
    try {
      const c = await this.conn.docker.createContainer({
        name: spec.name,
        Image: spec.image,
        ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
        Labels: spec.labels,
        HostConfig: {
          NetworkMode: spec.networkMode ?? spec.network,
          RestartPolicy: { Name: spec.restart },
          Mounts: [
            ...spec.binds.map((b) => ({ Type: 'bind' as const, Source: b.source, Target: b.target, ReadOnly: b.readOnly })),
            ...spec.volumes.map((v) => ({ Type: 'volume' as const, Source: v.name, Target: v.target })),
          ],
        },
        ...(spec.networkMode
          ? {}
          : { NetworkingConfig: { EndpointsConfig: { [spec.network]: spec.ip ? { IPAMConfig: { IPv4Address: spec.ip } } : {} } } }),
      });
      // What was just asked for; no second round trip to read it back.
      const state: ContainerState = {
        id: c.id,
        name: spec.name,
        status: 'created',
        running: false,
        imageId: '',
        labels: spec.labels,
        networks: spec.networkMode ? {} : { [spec.network]: { ip: spec.ip ?? null } },
        volumes: spec.volumes.map((v) => ({ name: v.name, destination: v.target })),
        networkMode: spec.networkMode ?? spec.network,
      };
      return { state, created: true };
    } catch (err) {
      if (statusOf(err) === 409) {
        // Docker reserves the name before the winner's container can be inspected: look again, bounded.
        for (let i = 0; i < 30; i++) {
          const state = await this.inspect(spec.name);
          if (state) return { state, created: false };
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw dockerError(`creating container ${spec.name}`, err, this.conn.target);
    }
  }

  /** Starts it; already running (304) is fine. */
  async start(nameOrId: string): Promise<void> {
    try {
      await this.conn.docker.getContainer(nameOrId).start();
    } catch (err) {
      if (statusOf(err) === 304) return;
      throw dockerError(`starting container ${nameOrId}`, err, this.conn.target);
    }
  }

  /** Stops it; already stopped (304) or gone (404) is fine. */
  async stop(nameOrId: string, timeoutSeconds = 5): Promise<void> {
    try {
      await this.conn.docker.getContainer(nameOrId).stop({ t: timeoutSeconds });
    } catch (err) {
      const s = statusOf(err);
      if (s === 304 || s === 404) return;
      throw dockerError(`stopping container ${nameOrId}`, err, this.conn.target);
    }
  }

  /** Force-removes it (never its named volumes); gone (404) or already being removed (409) is fine. */
  async remove(nameOrId: string): Promise<boolean> {
    try {
      await this.conn.docker.getContainer(nameOrId).remove({ force: true, v: false });
      return true;
    } catch (err) {
      const s = statusOf(err);
      if (s === 404) return false;
      if (s === 409) {
        // "removal already in progress": wait (bounded) until it is gone.
        for (let i = 0; i < 50 && (await this.inspect(nameOrId)); i++) await new Promise((r) => setTimeout(r, 100));
        return false;
      }
      throw dockerError(`removing container ${nameOrId}`, err, this.conn.target);
    }
  }

  /** Waits until it exits; returns its exit code. */
  async wait(nameOrId: string): Promise<number> {
    const r = (await call(this.conn, `waiting for container ${nameOrId}`, () => this.conn.docker.getContainer(nameOrId).wait())) as {
      StatusCode: number;
    };
    return r.StatusCode;
  }

  /** Its log (stdout and stderr, demultiplexed), each line prefixed with Docker's RFC 3339 timestamp when asked. */
  async logs(nameOrId: string, opts: { timestamps?: boolean; tail?: number } = {}): Promise<string> {
    const buf = (await call(this.conn, `reading the log of container ${nameOrId}`, () =>
      this.conn.docker.getContainer(nameOrId).logs({
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
