import { join } from 'node:path';
import type { LoPaths } from '../runtime/paths.js';
import type { ClusterSpec } from '../spec/types.js';
import { parseSubnet24, type ParsedCidr } from '../util/cidr.js';
import { specHash } from '../util/hash.js';
import { planMirrorAddresses, type UpstreamCaDigests } from './planAddresses.js';
import { planContainerd } from './planContainerd.js';
import { planFiles } from './planFiles.js';
import { planClusterBase, planKindConfig } from './planKind.js';
import { baseLabelsFor, planNetworks, projectIdOf, specDirOf } from './planNetworks.js';
import { planP2P } from './planP2P.js';
import { DEFAULT_REGISTRY_IMAGE, planRegistries } from './planRegistries.js';
import { planTls } from './planTls.js';
import { renderConfigMaps } from './render/renderConfigMaps.js';
import type { KindConfigOptions } from './render/renderKindConfig.js';
import type { ObservedShared, Plan } from './types.js';
import { EMPTY_OBSERVED } from './types.js';

export { canonicalMirrorOrder, credentialsLabel } from './planAddresses.js';
export { NODE_CA_FILE, NODE_CERTS_DIR } from './planContainerd.js';
export { sharedBridgeName } from './planNetworks.js';
export { DEFAULT_REGISTRY_IMAGE } from './planRegistries.js';

export interface PlanOptions {
  paths: LoPaths;
  /** What already runs on the shared network (empty when nothing runs). */
  observed?: ObservedShared;
  registryImage?: string;
  /** Extra labels on every object (tests add a run id so they can clean up after themselves). */
  extraLabels?: Record<string, string>;
  /**
   * false: plan for status and teardown, where a conflict with the running shared mirrors (TLS setting, URL,
   * credentials) must not stop the user from looking or cleaning up. Default true.
   */
  strict?: boolean;
  /** Extra kind config settings (pod and service subnets). */
  kindConfig?: KindConfigOptions;
  /**
   * sha256 of each mirror's upstream CA file (by its path), read by the caller (`loadPlan`): the mirrors'
   * `upstream-access` label and the conflict check against running shared mirrors. A CA without a digest is
   * neither labelled nor compared.
   */
  upstreamCaDigests?: UpstreamCaDigests;
}

/**
 * Turns a validated spec and the observed shared-network state into the whole desired state: networks,
 * registries and their containers, certificates, containerd hosts, the kind config, the ConfigMaps, the P2P
 * agents and the files. Pure: no I/O, deterministic. Each part is planned by its own function.
 */
export function planCluster(spec: ClusterSpec, opts: PlanOptions): Plan {
  const observed = opts.observed ?? EMPTY_OBSERVED;
  const { stateDir, caRoot } = opts.paths;
  const projectDir = join(stateDir, 'projects', spec.name);
  const sharedDir = join(stateDir, 'shared');
  const cidrs = {
    project: parseSubnet24(spec.network.cidr) as ParsedCidr,
    shared: parseSubnet24(spec.registries.shared.network.cidr) as ParsedCidr,
  };
  const labels = baseLabelsFor(spec, opts.extraLabels ?? {});

  const networks = planNetworks(spec, cidrs, labels);
  const caDigests = opts.upstreamCaDigests ?? {};
  const mirrorIps = planMirrorAddresses(spec, observed, cidrs, opts.strict ?? true, caDigests);
  const registries = planRegistries({
    spec,
    projectDir,
    sharedDir,
    project: cidrs.project,
    mirrorIps,
    image: opts.registryImage ?? DEFAULT_REGISTRY_IMAGE,
    labels,
    ...(observed.projectMirrors ? { kept: observed.projectMirrors } : {}),
    upstreamCaDigests: caDigests,
  });
  const tls = planTls(spec.registries.tls, { projectDir, sharedDir, caRoot }, registries);
  const containerd = planContainerd(spec, projectDir, registries);
  const cluster = planClusterBase(spec, projectDir);
  const p2p = planP2P(spec, projectDir, cluster.nodes, registries);
  const files = planFiles({
    tls: spec.registries.tls,
    p2p,
    containerd,
    registries,
    certificates: tls.certificates,
    kindConfigPath: cluster.kindConfigPath,
  });

  const { file: _file, specDir: _specDir, ...specForHash } = spec;
  const base = {
    apiVersion: 'lo.lok8s.dev/plan/v1' as const,
    project: {
      name: spec.name,
      id: projectIdOf(spec),
      domain: spec.domain,
      slot: spec.slot,
      file: spec.file,
      specDir: specDirOf(spec),
      specHash: specHash(specForHash),
    },
    paths: { stateDir, projectDir, sharedDir, caRoot },
    networks,
    registries,
    tls,
    containerd,
    cluster: { ...cluster, kindConfig: '' },
    p2p,
    files,
  };
  const withKind = { ...base, cluster: { ...cluster, kindConfig: planKindConfig(base, opts.kindConfig) } };
  return { ...withKind, configMaps: renderConfigMaps(withKind as Plan) };
}
