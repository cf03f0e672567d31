import type { NetworkPlan } from '../../plan/types.js';
import { call, dockerError, statusOf, type DockerConnection } from './client.js';

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

interface RawNetwork {
  Id: string;
  Name: string;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string; IPRange?: string }> | null };
  Containers?: Record<string, { Name: string; IPv4Address?: string }> | null;
}

export const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';

function toState(n: RawNetwork): NetworkState {
  const ipam = n.IPAM?.Config?.find((c) => c.Subnet && !c.Subnet.includes(':'));
  return {
    id: n.Id,
    name: n.Name,
    subnet: ipam?.Subnet ?? null,
    gateway: ipam?.Gateway ?? null,
    ipRange: ipam?.IPRange ?? null,
    bridgeName: n.Options?.[BRIDGE_NAME_OPTION] ?? null,
    labels: n.Labels ?? {},
    containers: Object.entries(n.Containers ?? {}).map(([id, c]) => ({
      id,
      name: c.Name,
      ip: c.IPv4Address ? c.IPv4Address.split('/')[0]! : null,
    })),
  };
}

/** Narrow client for networks: Docker's 404/409 answers become state, never string parsing in callers. */
export class Networks {
  constructor(private readonly conn: DockerConnection) {}

  /** The network by name, or null when it does not exist. */
  async inspect(name: string): Promise<NetworkState | null> {
    try {
      return toState((await this.conn.docker.getNetwork(name).inspect()) as RawNetwork);
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw dockerError(`inspecting network ${name}`, err, this.conn.target);
    }
  }

  /**
   * Creates the network; when another process created it first (409, or the subnet pool is already taken by
   * it), re-inspects and returns what exists. `created` says whether this call made it.
   */
  async ensure(plan: NetworkPlan): Promise<{ state: NetworkState; created: boolean }> {
    try {
      await this.conn.docker.createNetwork({
        Name: plan.name,
        Driver: 'bridge',
        // API < 1.44 defaults to false, which lets two concurrent creates make two networks of one name.
        CheckDuplicate: true,
        Labels: plan.labels,
        Options: { [BRIDGE_NAME_OPTION]: plan.bridgeName },
        IPAM: { Driver: 'default', Config: [{ Subnet: plan.subnet, Gateway: plan.gateway, IPRange: plan.ipRange }] },
      });
      const state = await this.inspect(plan.name);
      if (!state) throw dockerError(`creating network ${plan.name}`, new Error('created but not found'));
      return { state, created: true };
    } catch (err) {
      // 409: name taken; 403/500: pool overlaps (a concurrent create of the same subnet won). Either way,
      // what counts is what exists now.
      // The winner may still be registering its network (the pool is claimed first): look again, bounded.
      for (let i = 0; i < 20; i++) {
        const state = await this.inspect(plan.name);
        if (state) return { state, created: false };
        if (statusOf(err) === undefined) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw dockerError(`creating network ${plan.name} (${plan.subnet})`, err, this.conn.target);
    }
  }

  /** Removes the network; absent is fine. Returns false when it was already gone. */
  async remove(name: string): Promise<boolean> {
    try {
      await this.conn.docker.getNetwork(name).remove();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw dockerError(`removing network ${name}`, err, this.conn.target);
    }
  }

  /** Connects a container; already connected is fine. */
  async connect(network: string, container: string, ip?: string): Promise<void> {
    try {
      await this.conn.docker
        .getNetwork(network)
        .connect({ Container: container, ...(ip ? { EndpointConfig: { IPAMConfig: { IPv4Address: ip } } } : {}) });
    } catch (err) {
      const s = statusOf(err);
      if (s === 403 || s === 409) {
        const n = await this.inspect(network);
        if (n?.containers.some((c) => c.name === container || c.id.startsWith(container))) return;
      }
      throw dockerError(`connecting ${container} to ${network}`, err, this.conn.target);
    }
  }

  async list(labels: string[]): Promise<NetworkState[]> {
    const raw = await call(this.conn, 'listing networks', () => this.conn.docker.listNetworks({ filters: { label: labels } }));
    const full = await Promise.all(raw.map((n) => this.inspect(n.Id)));
    return full.filter((n): n is NetworkState => n !== null);
  }
}
