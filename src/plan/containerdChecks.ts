import { parse } from 'smol-toml';

/**
 * Known ways a node's containerd silently ignores lo's registry configuration, found in `containerd config
 * dump` and the hosts.toml files. Pure; used by `lo why` and `lo doctor`. Sources: containerd
 * docs/cri/config.md "Image Pull Configuration (since containerd v2.1)", internal/cri/config/config.go
 * `CheckLocalImagePullConfigs`, internal/cri/server/images/image_pull.go (the transfer service gets
 * `config_path` as ONE directory; local pull splits it on ':'), docs/hosts.md.
 */

export interface Finding {
  code: string;
  severity: 'fail' | 'warn' | 'info';
  message: string;
  fix?: string;
}

export type PullMode = 'transfer' | 'local';

export interface Version {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

/** `containerd github.com/containerd/containerd/v2 v2.1.4 <commit>` or `containerd containerd.io 1.7.24 …`. */
export function parseContainerdVersion(output: string): Version | null {
  const m = /\bv?(\d+)\.(\d+)\.(\d+)(?:[-+~][\w.~+-]*)?\b/.exec(output.replace(/^containerd\s+/, ''));
  return m ? { major: +m[1]!, minor: +m[2]!, patch: +m[3]!, text: m[0] } : null;
}

const atLeast = (v: Version, major: number, minor: number): boolean => v.major > major || (v.major === major && v.minor >= minor);

type Table = Record<string, unknown>;
const table = (v: unknown): Table => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Table) : {});

/** The CRI image settings of a config dump, from the v3 (2.x) or v2 (1.x) layout. */
export interface CriImageConfig {
  configPath: string;
  discardUnpackedLayers: boolean;
  disableSnapshotAnnotations: boolean;
  maxConcurrentDownloads: number;
  useLocalImagePull: boolean;
  imagePullWithSyncFs: boolean;
  /** Deprecated registry.mirrors / configs / auths entries, by table name. */
  legacyRegistry: { mirrors: string[]; configs: string[]; auths: string[] };
}

export function criImageConfig(dump: Table): CriImageConfig {
  const plugins = table(dump.plugins);
  const v3 = table(plugins['io.containerd.cri.v1.images']);
  const v2 = table(plugins['io.containerd.grpc.v1.cri']);
  const isV3 = Object.keys(v3).length > 0;
  const images = isV3 ? v3 : v2;
  const registry = table(images.registry);
  const v2containerd = table(v2.containerd);
  const num = (v: unknown, d: number): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : d);
  return {
    configPath: typeof registry.config_path === 'string' ? registry.config_path : '',
    discardUnpackedLayers: (isV3 ? images.discard_unpacked_layers : v2containerd.discard_unpacked_layers) === true,
    disableSnapshotAnnotations: (isV3 ? images.disable_snapshot_annotations : v2containerd.disable_snapshot_annotations) !== false,
    maxConcurrentDownloads: num(images.max_concurrent_downloads, 3),
    useLocalImagePull: images.use_local_image_pull === true,
    imagePullWithSyncFs: images.image_pull_with_sync_fs === true,
    legacyRegistry: {
      mirrors: Object.keys(table(registry.mirrors)),
      configs: Object.keys(table(registry.configs)),
      auths: Object.keys(table(registry.auths)),
    },
  };
}

/**
 * Which pull path the CRI takes. Before 2.1 always the client ("local") pull; from 2.1 the transfer service,
 * unless `use_local_image_pull` or a setting the transfer service does not support makes containerd fall back.
 */
export function pullMode(version: Version, c: CriImageConfig): { mode: PullMode; because: string } {
  if (!atLeast(version, 2, 1)) return { mode: 'local', because: `containerd ${version.text} predates the transfer-service CRI pull (2.1)` };
  if (c.useLocalImagePull) return { mode: 'local', because: 'use_local_image_pull = true' };
  const triggers: string[] = [];
  if (!c.disableSnapshotAnnotations) triggers.push('disable_snapshot_annotations = false');
  if (c.discardUnpackedLayers) triggers.push('discard_unpacked_layers = true');
  if (c.maxConcurrentDownloads !== 3) triggers.push(`max_concurrent_downloads = ${c.maxConcurrentDownloads} (not 3)`);
  if (c.imagePullWithSyncFs) triggers.push('image_pull_with_sync_fs = true');
  if (c.legacyRegistry.mirrors.length + c.legacyRegistry.configs.length + c.legacyRegistry.auths.length > 0)
    triggers.push('registry.mirrors/configs/auths');
  if (triggers.length > 0) return { mode: 'local', because: `falls back from the transfer service: ${triggers.join(', ')}` };
  return { mode: 'transfer', because: 'containerd 2.1+ default (transfer service)' };
}

export interface CheckInput {
  version: Version;
  /** Parsed `containerd config dump`. */
  dump: Table;
  /** Where lo mounts its certs.d tree in the node. */
  nodeCertsDir: string;
  p2pEnabled: boolean;
  /** hosts.toml files as the node reads them: directory name -> text. */
  hostsFiles: Record<string, string>;
}

/** Every known silent bypass in one node's configuration. */
export function checkContainerdConfig(input: CheckInput): { mode: PullMode; because: string; findings: Finding[] } {
  const c = criImageConfig(input.dump);
  const { mode, because } = pullMode(input.version, c);
  const findings: Finding[] = [];
  const dirs = c.configPath.split(':').filter(Boolean);
  if (!dirs.includes(input.nodeCertsDir)) {
    findings.push({
      code: 'config-path',
      severity: 'fail',
      message: `config_path is "${c.configPath}", not lo's ${input.nodeCertsDir}: containerd ignores every hosts.toml lo writes and pulls from the upstream`,
      fix: 'recreate the cluster with `lo destroy` and `lo provision` (the kind config sets config_path)',
    });
  } else if (mode === 'transfer' && dirs.length > 1) {
    findings.push({
      code: 'config-path-list',
      severity: 'fail',
      message: `the transfer service (the CRI pull path on containerd ${input.version.text}) reads config_path "${c.configPath}" as one directory, so no hosts.toml is found and pulls go to the upstream`,
      fix: `set config_path to the single directory ${input.nodeCertsDir}, or use_local_image_pull = true`,
    });
  }
  if (input.p2pEnabled && c.discardUnpackedLayers) {
    findings.push({
      code: 'discard-unpacked-layers',
      severity: 'fail',
      message:
        'discard_unpacked_layers = true with P2P on: containerd deletes compressed layers after unpacking, so the node agent has nothing to serve to its peers',
      fix: 'set discard_unpacked_layers = false (lo provision writes it into the kind config)',
    });
  }
  if (atLeast(input.version, 2, 1) && c.maxConcurrentDownloads !== 3 && !c.useLocalImagePull) {
    findings.push({
      code: 'max-concurrent-downloads-mode',
      severity: 'info',
      message: `max_concurrent_downloads = ${c.maxConcurrentDownloads} makes containerd ${input.version.text} leave the transfer service for the local pull path (the transfer service takes it from plugins."io.containerd.transfer.v1.local")`,
      fix: 'keep spec.nodes.maxConcurrentDownloads at 3 to stay on the transfer service, or accept the local pull path',
    });
  }
  const legacy = [...c.legacyRegistry.mirrors, ...c.legacyRegistry.configs, ...c.legacyRegistry.auths];
  if (legacy.length > 0) {
    findings.push({
      code: 'legacy-registry',
      severity: 'warn',
      message: `deprecated registry.mirrors/configs/auths entries (${[...new Set(legacy)].join(', ')}) are ignored while config_path is set${atLeast(input.version, 2, 1) ? ', and force the local pull path' : ''}; a CA or credentials there never apply`,
      fix: 'move them into certs.d/<host>/hosts.toml (lo: spec.registries)',
    });
  }
  for (const [dir, text] of Object.entries(input.hostsFiles)) {
    let doc: Table;
    try {
      doc = parse(text) as Table;
    } catch (err) {
      findings.push({
        code: 'hosts-toml-invalid',
        severity: 'fail',
        message: `${dir}/hosts.toml does not parse (${(err as Error).message}); containerd then uses the default endpoint only`,
        fix: 'run `lo provision` to rewrite it',
      });
      continue;
    }
    const hosts = table(doc.host);
    if (Object.keys(hosts).length === 0 && !atLeast(input.version, 1, 7)) {
      findings.push({
        code: 'hosts-toml-no-host',
        severity: 'fail',
        message: `${dir}/hosts.toml has no [host] table: containerd ${input.version.text} rejects it and uses the registry's default endpoint`,
        fix: 'run `lo provision` to rewrite it',
      });
    }
    const dialTimeouts = Object.entries(hosts).filter(([, t]) => typeof table(t).dial_timeout === 'string');
    if (dialTimeouts.length > 0 && !atLeast(input.version, 2, 1)) {
      findings.push({
        code: 'dial-timeout-ignored',
        severity: 'warn',
        message: `${dir}/hosts.toml sets dial_timeout, which containerd ${input.version.text} ignores (honoured from 2.1): a stopped host costs the full TCP connect timeout before the next one`,
        fix: 'use kind node images with containerd 2.1+ (kind v0.30+), or keep the mirrors running',
      });
    }
    if (typeof doc.ca !== 'undefined') {
      const uncovered = Object.entries(hosts).filter(([url, t]) => url.startsWith('https') && table(t).ca === undefined);
      if (uncovered.length > 0) {
        findings.push({
          code: 'ca-wrong-table',
          severity: 'warn',
          message: `${dir}/hosts.toml has a top-level ca, which applies only to server; ${uncovered.map(([u]) => u).join(', ')} get no CA and fail TLS verification`,
          fix: 'put `ca = …` inside each [host."https://…"] table',
        });
      }
    }
  }
  return { mode, because, findings };
}
