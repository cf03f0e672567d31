import { dirname } from 'node:path';
import { DYNAMIC_RANGE_SUFFIX, HOST, MAX_BRIDGE_NAME } from '../spec/constants.js';
import type { ClusterSpec } from '../spec/types.js';
import { hostAddress, type ParsedCidr } from '../util/cidr.js';
import { specHash } from '../util/hash.js';
import { LO_VERSION } from '../version.js';
import { LABELS, MANAGED_BY, SHARED_PROJECT, type Scope } from './labels.js';
import type { NetworkPlan } from './types.js';

export type BaseLabels = (scope: Scope, role: string) => Record<string, string>;

/** The ownership labels every object of this project carries (plus the caller's extra labels). */
export function baseLabelsFor(spec: ClusterSpec, extra: Record<string, string>): BaseLabels {
  const owner = { [LABELS.projectId]: projectIdOf(spec), [LABELS.specDir]: specDirOf(spec) };
  return (scope, role) => ({
    ...extra,
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.project]: scope === 'shared' ? SHARED_PROJECT : spec.name,
    ...(scope === 'project' ? owner : {}),
    [LABELS.scope]: scope,
    [LABELS.role]: role,
    [LABELS.version]: LO_VERSION,
  });
}

/** The directory a project's spec lives in (the built-in spec's name stands for itself). */
export function specDirOf(spec: ClusterSpec): string {
  return spec.specDir ?? (spec.file.startsWith('<') ? spec.file : dirname(spec.file));
}

/**
 * Who owns a project's objects: two specs with the same metadata.name in different directories (or for
 * different domains) are different projects. Labels are outside the spec hash, so adding it recreates nothing.
 */
export function projectIdOf(spec: ClusterSpec): string {
  return specHash({ dir: specDirOf(spec), domain: spec.domain });
}

/** The project network and, with shared mirrors on, the shared registry network. */
export function planNetworks(spec: ClusterSpec, cidrs: { project: ParsedCidr; shared: ParsedCidr }, labels: BaseLabels): NetworkPlan[] {
  const networks = [networkPlan('project', spec.network.name, cidrs.project, spec.network.name, labels)];
  if (spec.registries.shared.enabled) {
    const name = spec.registries.shared.network.name;
    networks.push(networkPlan('shared', name, cidrs.shared, sharedBridgeName(name), labels));
  }
  return networks;
}

function networkPlan(role: 'project' | 'shared', name: string, cidr: ParsedCidr, bridgeName: string, labels: BaseLabels): NetworkPlan {
  const body = {
    role,
    name,
    subnet: `${cidr.network}/24`,
    gateway: hostAddress(cidr.base, HOST.gateway),
    ipRange: `${hostAddress(cidr.base, DYNAMIC_RANGE_SUFFIX.host)}/${DYNAMIC_RANGE_SUFFIX.prefix}`,
    bridgeName,
  };
  return { ...body, labels: { ...labels(role === 'shared' ? 'shared' : 'project', 'network'), [LABELS.specHash]: specHash(body) } };
}

/** Bridge names are at most 15 bytes; the shared network's default name is longer, so derive one. */
export function sharedBridgeName(networkName: string): string {
  return networkName.length <= MAX_BRIDGE_NAME ? networkName : `br-lo${specHash(networkName, 10)}`;
}
