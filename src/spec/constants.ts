import { SPEC_DEFAULTS } from './defaults.js';

/** Fixed names and numbers of the lok8s address design. Keep these exactly. */
export const DEFAULT_DOMAIN = 'lok8s.dev';
export const DEFAULT_SLOT = 125;
export const MIN_SLOT = 2;
export const MAX_SLOT = 199;
export const API_VERSION = 'cluster.lok8s.dev/v1beta1';
export const SPEC_FILE = 'cluster.lok8s.yaml';
export const BUILD_HOSTNAME = 'lok8s.local';
export const CACHE_HOSTNAME = 'lok8s.cache';
export const RESERVED_MIRROR_NAMES = ['build', 'cache'] as const;
/** Linux interface names (and so bridge names) are at most 15 bytes (IFNAMSIZ - 1). */
export const MAX_BRIDGE_NAME = 15;

/** Host part of the registry addresses inside a /24. */
export const HOST = {
  gateway: 1,
  build: 101,
  cache: 102,
  /** First shared mirror on the shared network. */
  sharedMirrorFirst: 2,
  /** First mirror on the project subnet when shared mirrors are off. */
  projectMirrorFirst: 103,
  /**
   * Last static address. Docker hands out container addresses (kind nodes, anything else attached) from
   * the dynamic range `.128/25`, so static registry addresses stay below it and never collide.
   */
  staticLast: 127,
} as const;
export const DYNAMIC_RANGE_SUFFIX = { host: 128, prefix: 25 } as const;

/** The four default mirrors (from the schema), in the order that gives them .2-.5 on an empty shared network. */
export const DEFAULT_MIRRORS = SPEC_DEFAULTS.mirrors;
/** Largest spec file lo reads (`--config` or clusters/<domain>/): a spec is a few KiB. */
export const MAX_SPEC_BYTES = 1024 * 1024;
/**
 * Pod and service CIDRs lo writes into every kind config. kind's defaults are 10.244.0.0/16 and 10.96.0.0/16;
 * lo keeps the pod range and moves services to 10.245.0.0/16 so neither overlaps the lok8s registry networks
 * (10.125.0.0/16), the commonly used kubeadm service range (10.96.0.0/12) or Docker's default pools
 * (172.17.0.0/16 and up, 192.168.0.0/16). Pods reach registries through their node, so an overlap with a
 * registry subnet would make those addresses unreachable from pods: the spec rules refuse one.
 */
export const KIND_POD_SUBNET = '10.244.0.0/16';
export const KIND_SERVICE_SUBNET = '10.245.0.0/16';
/** Network names Docker itself owns: a project or shared network cannot take them. */
export const DOCKER_RESERVED_NETWORKS = ['bridge', 'host', 'none'] as const;
/**
 * Ports that already listen in a kind node's network namespace, where the P2P agent binds its ports:
 * kube-apiserver, kubelet (API and healthz), kube-proxy (metrics and healthz), kube-controller-manager,
 * kube-scheduler, and etcd (client and peer).
 */
export const NODE_PORTS: Readonly<Record<number, string>> = {
  6443: 'the API server',
  10250: 'the kubelet API',
  10248: "the kubelet's healthz",
  10249: "kube-proxy's metrics",
  10256: "kube-proxy's healthz",
  10257: 'kube-controller-manager',
  10259: 'kube-scheduler',
  2379: "etcd's client port",
  2380: "etcd's peer port",
};

/** Shared mirror containers are `lok8s-registry-<mirror>`; no project network may start with `lok8s-registry`. */
export const SHARED_MIRROR_PREFIX = 'lok8s';
