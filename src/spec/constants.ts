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
