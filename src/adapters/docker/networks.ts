import type { NetworkPlan } from '../../plan/types.js';
import { dockerError, statusOf, unless404, type DockerCalls } from './client.js';
import type { NetworksClient, NetworkState } from './types.js';

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
export class Networks implements NetworksClient {
  constructor(private readonly calls: DockerCalls) {}

  async inspect(name: string): Promise<NetworkState | null> {
    return this.calls.run('inspect', `network ${name}`, (docker) =>
      unless404(async () => toState((await docker.getNetwork(name).inspect()) as RawNetwork), null),
    );
  }

  /**
   * Creates the network; when another process created it first (409, or the subnet pool is already taken by
   * it), re-inspects and returns what exists. `created` says whether this call made it.
   */
  async ensure(plan: NetworkPlan): Promise<{ state: NetworkState; created: boolean }> {
    const made = await this.calls.run('create', `network ${plan.name} (${plan.subnet})`, async (docker) => {
      try {
        await docker.createNetwork({
          Name: plan.name,
          Driver: 'bridge',
          // API < 1.44 defaults to false, which lets two concurrent creates make two networks of one name.
          CheckDuplicate: true,
          Labels: plan.labels,
          Options: { [BRIDGE_NAME_OPTION]: plan.bridgeName },
          IPAM: { Driver: 'default', Config: [{ Subnet: plan.subnet, Gateway: plan.gateway, IPRange: plan.ipRange }] },
        });
        return { created: true as const };
      } catch (err) {
        // 409: name taken; 403/500: pool overlaps (a concurrent create of the same subnet won). Either way,
        // what counts is what exists now; other errors (no status) are not Docker's answer.
        if (statusOf(err) === undefined) throw err;
        return { created: false as const, err };
      }
    });
    // The winner may still be registering its network (the pool is claimed first): look again, bounded.
    for (let i = 0; i < 20; i++) {
      const state = await this.inspect(plan.name);
      if (state) return { state, created: made.created };
      if (made.created) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const why = made.created ? new Error('created but not found') : made.err;
    throw dockerError(`creating network ${plan.name} (${plan.subnet})`, why, this.calls.target);
  }

  async remove(name: string): Promise<boolean> {
    return this.calls.run('remove', `network ${name}`, (docker) =>
      unless404(async () => {
        await docker.getNetwork(name).remove();
        return true;
      }, false),
    );
  }

  async connect(network: string, container: string, ip?: string): Promise<boolean> {
    const answer = await this.calls.run('connect', `${container} to network ${network}`, async (docker) => {
      try {
        await docker
          .getNetwork(network)
          .connect({ Container: container, ...(ip ? { EndpointConfig: { IPAMConfig: { IPv4Address: ip } } } : {}) });
        return { connected: true as const };
      } catch (err) {
        const s = statusOf(err);
        // "endpoint already exists" (403/409): a concurrent run may have attached it first; checked below.
        if (s === 403 || s === 409) return { connected: false as const, err };
        throw err;
      }
    });
    if (answer.connected) return true;
    const n = await this.inspect(network);
    if (n?.containers.some((c) => c.name === container || c.id.startsWith(container))) return false;
    throw dockerError(`connecting ${container} to network ${network}`, answer.err, this.calls.target);
  }

  async list(labels: string[]): Promise<NetworkState[]> {
    const raw = await this.calls.run('list', `networks ${labels.join(',')}`, (docker) =>
      docker.listNetworks({ filters: { label: labels } }),
    );
    const full = await Promise.all(raw.map((n) => this.inspect(n.Id)));
    return full.filter((n): n is NetworkState => n !== null);
  }
}
