import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { stringify as stringifyYaml } from 'yaml';
import { NODE_CERTS_DIR } from './planContainerd.js';
import { cacheHostEntry } from './offline.js';
import { endpointListing, registryAddress } from './render/renderConfigMaps.js';
import { planEndpointProbes } from './endpointProbes.js';
import { shellCommand } from '../util/shell.js';
import type { HostsFilePlan, Plan, RegistryPlan } from './types.js';

/**
 * `lo registries export`: lo's registries described for clients that are not lo's kind nodes (pure; the use
 * case writes the files). `k3s`: a K3s/k3d `registries.yaml`; `containerd`: a certs.d tree for a containerd on
 * the host; `docker`: the host Docker engine's `registry-mirrors` and `certs.d` steps. See docs/registries.md.
 */

/** A file of an export: its text, or a file to copy (lo's CA, a certificate of the certs.d tree). */
export interface ExportFile {
  /** Absolute path it is written to. */
  path: string;
  mode: number;
  content?: string;
  copyFrom?: string;
}

/** Where the K3s nodes find lo's CA unless `--ca-file` says otherwise (k3d: `--volume <ca>:<this path>`). */
export const K3S_CA_FILE = '/etc/rancher/k3s/lo-ca.crt';

/** A K3s registries.yaml (only fields K3s documents: test/fixtures/k3s/registries-fields.json). */
export interface K3sRegistriesDoc {
  mirrors: Record<string, { endpoint: string[]; rewrite?: Record<string, string> }>;
  configs?: Record<string, { tls: { ca_file: string } }>;
}

export interface K3sExport {
  doc: K3sRegistriesDoc;
  yaml: string;
  /** What the K3s side must do, and what is not exported. */
  notes: string[];
}

/**
 * lo's registries for K3s: every mirrored registry points at the project's cache (pinned images, with a path:
 * K3s sets override_path for it), the mirror and its replica; `lok8s.local` and `lok8s.cache` at the build and
 * cache registries. With TLS, each address gets `configs.<host>.tls.ca_file` (the nodes' path of lo's CA).
 */
export function renderK3sRegistries(plan: Plan, caFile = K3S_CA_FILE): K3sExport {
  const mirrors: K3sRegistriesDoc['mirrors'] = {};
  const hostsUsed = new Set<string>();
  const add = (registry: string, urls: string[]): void => {
    const list = (mirrors[registry] ??= { endpoint: [] }).endpoint;
    for (const u of urls) if (!list.includes(u)) list.push(u);
    for (const u of urls) hostsUsed.add(new URL(u).host);
  };
  const cache = plan.registries.find((r) => r.role === 'cache');
  for (const r of plan.registries) {
    if (r.role === 'mirror' && r.registry) {
      add(r.registry, [
        ...cacheHostEntry(cache, r.registry, undefined).map((h) => h.url),
        r.endpoint,
        ...(r.replica ? [r.replica.endpoint] : []),
      ]);
    } else for (const name of r.hostnames) add(name, [r.endpoint]);
  }
  // Rewrites (K3s applies them to every endpoint but the default one, as lo's node agent forwards them to lo's
  // registries): exported for the registries whose endpoints are exported, i.e. the ones lo mirrors.
  const unexported: string[] = [];
  for (const e of plan.containerd.endpoints) {
    if (e.rewrites.length === 0) continue;
    const m = mirrors[e.registry];
    if (m) m.rewrite = Object.fromEntries(e.rewrites.map((r) => [r.pattern, r.replacement]));
    else unexported.push(e.registry);
  }
  // Pulls by address (`10.125.125.101/app:1`) use the default endpoint, which needs the CA too.
  for (const r of plan.registries) hostsUsed.add(registryAddress(r));
  const doc: K3sRegistriesDoc = { mirrors };
  if (plan.tls.enabled) {
    doc.configs = Object.fromEntries([...hostsUsed].sort().map((h) => [h, { tls: { ca_file: caFile } }]));
  }
  const notes = [
    `the nodes need lo's CA at ${caFile} (k3d: --volume ${plan.tls.caCertPath}:${caFile})`,
    `the nodes must reach the registries: put them on the project network ${plan.cluster.network} (k3d: --network ${plan.cluster.network})` +
      (plan.registries.some((r) => r.scope === 'shared')
        ? ` and connect them to the shared network (docker network connect ${plan.networks.find((n) => n.role === 'shared')?.name} <node>)`
        : ''),
  ];
  if (plan.p2p.enabled) {
    notes.push("lo's P2P node mirror is not exported (K3s has its own embedded mirror)");
  }
  if (unexported.length > 0)
    notes.push(
      `the rewrites of ${unexported.map((r) => JSON.stringify(r)).join(', ')} are not exported: lo runs no mirror of ${unexported.length === 1 ? 'that registry' : 'those registries'}, so the K3s side would have no endpoint to apply them to (K3s does not rewrite pulls from the default endpoint)`,
    );
  if (endpointListing(plan).length > 0)
    notes.push("the endpoints of spec.registries.hosts are not exported (their TLS files and headers are this machine's)");
  if (!plan.tls.enabled) notes.push('TLS is off: the endpoints are http://');
  const header = `# K3s registries.yaml for lo project ${plan.project.name} (lo registries export --format k3s)\n`;
  return { doc, yaml: header + stringifyYaml(doc, { lineWidth: 0 }), notes };
}

/** The export of the certs.d tree: the files and the registries it covers. */
export interface ContainerdExport {
  files: ExportFile[];
  registries: string[];
  notes: string[];
}

const EXPORT_HEADER = '# Written by `lo registries export --format containerd`';

/**
 * The project's certs.d tree for a containerd on the host (`ctr images pull --hosts-dir DIR`, or
 * `config_path = DIR` in its CRI registry config): the same hosts.toml files in the same order, without the
 * P2P agent (it listens on each node's loopback), with every file a node reads under /etc/containerd/certs.d
 * (lo's CA, endpoint certificates) copied to `outDir` and named by that absolute path. `content` returns a
 * file's text (the use case passes the one `lo registry up` wrote when it holds header values).
 */
export function planContainerdExport(
  plan: Plan,
  outDir: string,
  content: (h: HostsFilePlan) => string = (h) => h.content,
): ContainerdExport {
  const files: ExportFile[] = [];
  const copies = new Map<string, ExportFile>();
  // The node agent (P2P, or forward-only for rewrites) listens on each node's loopback: never exported.
  const p2p = plan.p2p.agents.length > 0 ? new URL(plan.p2p.endpoint).origin : null;
  const remap = (value: unknown): unknown => {
    if (typeof value === 'string' && value.startsWith(`${NODE_CERTS_DIR}/`)) {
      const rel = value.slice(NODE_CERTS_DIR.length + 1);
      const target = join(outDir, rel);
      if (!copies.has(target)) {
        // lo's CA from the CA root; an endpoint's file from its copy in the project's tree, with its mode.
        const planned = plan.containerd.files?.find((f) => f.nodePath === value);
        const from = rel === '_lo/ca.crt' ? plan.tls.caCertPath : (planned?.path ?? join(plan.containerd.certsDir, rel));
        copies.set(target, { path: target, mode: planned?.mode ?? (/\.key$|key\.pem$/.test(rel) ? 0o600 : 0o644), copyFrom: from });
      }
      return target;
    }
    if (Array.isArray(value)) return value.map(remap);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, remap(v)]));
    return value;
  };
  for (const h of plan.containerd.hosts) {
    const doc = remap(parseToml(content(h))) as Record<string, unknown>;
    if (p2p && doc.host && typeof doc.host === 'object') {
      doc.host = Object.fromEntries(Object.entries(doc.host as Record<string, unknown>).filter(([url]) => new URL(url).origin !== p2p));
    }
    const text = `${EXPORT_HEADER} for lo project ${plan.project.name}.\n${stringifyToml(doc)}\n`;
    // A hosts.toml with a header value (e.g. Authorization from a variable) is as secret as the value.
    const secret = (h.headerEnv?.length ?? 0) > 0 || !!doc.header || hasHeader(doc.host);
    files.push({ path: join(outDir, h.host, 'hosts.toml'), mode: secret ? 0o600 : 0o644, content: text });
  }
  return {
    files: [...files, ...copies.values()],
    registries: plan.containerd.hosts.map((h) => h.host),
    notes: [...(plan.p2p.enabled ? ["lo's P2P node mirror is left out (it listens on each node's loopback)"] : []), ...rewriteNotes(plan)],
  };
}

/** Rewrites live in lo's node agent, which a host containerd does not have: named, not exported. */
function rewriteNotes(plan: Plan): string[] {
  const withRules = plan.containerd.endpoints.filter((e) => e.rewrites.length > 0).map((e) => JSON.stringify(e.registry));
  if (withRules.length === 0) return [];
  return [
    `the rewrites of ${withRules.join(', ')} are not exported: upstream containerd has no rewrite (lo's node agent applies them on the kind nodes, and a host containerd has no agent), so the host pulls those images under their own names`,
  ];
}

function hasHeader(hosts: unknown): boolean {
  return !!hosts && typeof hosts === 'object' && Object.values(hosts).some((t) => !!t && typeof t === 'object' && 'header' in t);
}

/** One file of `/etc/docker/certs.d/<host>/`: lo's CA, or an endpoint's CA, client certificate or key. */
export interface DockerCertFile {
  /** `host[:port]`, the directory name Docker looks up for a registry. */
  host: string;
  /** Where it goes: `/etc/docker/certs.d/<host>/ca.crt`, `client.cert` or `client.key`. */
  path: string;
  /** The file copied there: lo's CA, or the spec's TLS file of the endpoint. */
  source: string;
  /** 0644, or 0600 for a key. */
  mode: number;
}

export interface DockerExport {
  /** The fragment to merge into /etc/docker/daemon.json. */
  daemonJson: { 'registry-mirrors'?: string[]; 'insecure-registries'?: string[] };
  /** lo's CA for each registry address the engine talks to, and the TLS files of the spec's endpoints. */
  certs: DockerCertFile[];
  /** The steps as shell commands, in order. */
  steps: string[];
  notes: string[];
}

/**
 * The host Docker engine: `registry-mirrors` can only mirror Docker Hub
 * (https://docs.docker.com/docker-hub/image-library/mirror/), so only the docker.io mirror (and its replica)
 * goes there; every registry address gets lo's CA in /etc/docker/certs.d so pushes and pulls verify. Each
 * endpoint of `spec.registries.hosts` with TLS files gets them in its host's directory as Docker names them
 * (`ca.crt`, `client.cert`, `client.key`: https://docs.docker.com/engine/security/certificates/); what
 * Docker cannot do with an endpoint (stand in for a registry other than Docker Hub, a path prefix, static
 * headers, skip_verify) is said in the notes.
 */
export function renderDockerExport(plan: Plan, certsRoot = '/etc/docker/certs.d'): DockerExport {
  const hub = plan.registries.find((r) => r.role === 'mirror' && r.registry === 'docker.io');
  const mirrorUrls = hub ? [hub.endpoint, ...(hub.replica ? [hub.replica.endpoint] : [])] : [];
  const addresses = [
    ...new Set(
      plan.registries.flatMap((r: RegistryPlan) => [
        registryAddress(r),
        ...(r === hub && r.replica ? [new URL(r.replica.endpoint).host] : []),
      ]),
    ),
  ];
  const daemonJson: DockerExport['daemonJson'] = {};
  if (mirrorUrls.length > 0) daemonJson['registry-mirrors'] = mirrorUrls;
  if (!plan.tls.enabled) daemonJson['insecure-registries'] = addresses;
  const certs: DockerCertFile[] = plan.tls.enabled
    ? addresses.map((host) => ({ host, path: join(certsRoot, host, 'ca.crt'), source: plan.tls.caCertPath, mode: 0o644 }))
    : [];
  const endpoints = dockerEndpointFiles(plan, certsRoot, certs);
  const steps = [
    ...[...certs, ...endpoints.certs].map((c) => shellCommand(['sudo', 'install', '-D', '-m', `0${c.mode.toString(8)}`, c.source, c.path])),
    `# merge into /etc/docker/daemon.json: ${JSON.stringify(daemonJson)}`,
    '# then reload dockerd (registry-mirrors and insecure-registries are reloaded without a restart):',
    'sudo kill -HUP "$(pidof dockerd)"',
  ];
  const notes = hub ? [] : ['the spec has no docker.io mirror: nothing for registry-mirrors (Docker mirrors only Docker Hub)'];
  const others = plan.registries.filter((r) => r.role === 'mirror' && r !== hub).map((r) => r.registry);
  if (others.length > 0)
    notes.push(`Docker cannot mirror ${others.join(', ')} (registry-mirrors is for Docker Hub only); pull those by the mirror's address`);
  return { daemonJson, certs: [...certs, ...endpoints.certs], steps, notes: [...notes, ...endpoints.notes] };
}

/**
 * certs.d files and notes for the endpoints of `spec.registries.hosts`. Docker reads every `*.crt` of a
 * host's directory as a CA and every `*.cert` with its `*.key` as a client pair, so a second, different file
 * for the same host gets its own name (`ca-2.crt`, `client-2.cert`) instead of replacing the first.
 */
function dockerEndpointFiles(
  plan: Plan,
  certsRoot: string,
  taken: readonly DockerCertFile[],
): { certs: DockerCertFile[]; notes: string[] } {
  const certs: DockerCertFile[] = [];
  const notes: string[] = [];
  const add = (host: string, base: string, ext: string, source: string, mode: number): void => {
    const inHost = [...taken, ...certs].filter((c) => c.host === host);
    if (inHost.some((c) => c.source === source)) return;
    const names = new Set(inHost.map((c) => c.path));
    let n = 1;
    const name = (): string => join(certsRoot, host, n === 1 ? `${base}.${ext}` : `${base}-${n}.${ext}`);
    while (names.has(name())) n++;
    certs.push({ host, path: name(), source, mode });
  };
  for (const e of planEndpointProbes(plan)) {
    const u = new URL(e.url);
    const where = `${e.url} (endpoint ${e.position} of ${e.registry === '*' ? '"*"' : e.registry})`;
    if (u.protocol === 'https:') {
      if (e.caFile) add(u.host, 'ca', 'crt', e.caFile, 0o644);
      if (e.client) {
        // A pair shares its base name: client.cert goes with client.key, client-2.cert with client-2.key.
        const before = certs.length;
        add(u.host, 'client', 'cert', e.client.certFile, 0o644);
        const cert = certs.length > before ? certs[certs.length - 1]! : undefined;
        if (cert) certs.push({ host: u.host, path: cert.path.replace(/\.cert$/, '.key'), source: e.client.keyFile, mode: 0o600 });
      }
    }
    if (e.registry === '*') notes.push(`Docker has no default for every registry ("*"): ${where} is used only when you pull by ${u.host}`);
    else if (e.registry !== 'docker.io' || u.pathname !== '/')
      notes.push(
        e.registry === 'docker.io'
          ? `Docker's registry-mirrors takes no path prefix: ${where} cannot mirror Docker Hub; pull by ${u.host} and its repository path`
          : `Docker cannot send ${e.registry} pulls to another host (registry-mirrors is for Docker Hub only): pull by ${u.host}${u.pathname.replace(/^\/v2/, '').replace(/\/$/, '')}/<repository> from ${where}`,
      );
    else notes.push(`${where} is a Docker Hub mirror Docker can use: add ${e.url} to registry-mirrors yourself if you want it`);
    if (e.headers.length > 0)
      notes.push(
        `Docker sends no static headers (${e.headers.map((h) => h.name).join(', ')} of ${where}): log in with \`${shellCommand(['docker', 'login', u.host])}\` instead`,
      );
    if (e.skipVerify)
      notes.push(
        `Docker has no skip_verify per endpoint (${where}): give its CA as tls.caFile; insecure-registries would also allow plain HTTP`,
      );
    if (u.protocol === 'http:') notes.push(`${where} is plain HTTP: Docker needs ${u.host} in insecure-registries`);
  }
  return { certs, notes };
}
