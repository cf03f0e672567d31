import type { DockerClients, ExecClient } from '../adapters/docker/index.js';
import { shellCommand } from '../util/shell.js';
import { LoError, ExitCode } from '../errors/loError.js';
import type { Finding, PullMode } from '../plan/containerdChecks.js';
import { hostDirCandidates, MANIFEST_ACCEPT, manifestUrl, resolveHosts, type ResolvedHost } from '../plan/containerdHosts.js';
import { ImageRefError, parseImageRef, type ImageRef } from '../plan/imageRef.js';
import { REGISTRY_DATA_DIR } from '../plan/render/renderRegistryConfig.js';
import type { Plan } from '../plan/types.js';
import { kindNodes, nodeContainerd } from './nodeContainerd.js';

/**
 * `lo why IMAGE`: how one node's containerd would resolve an image reference, tried for real from inside the
 * node (its 127.0.0.1, its certs.d, its CA files): which certs.d directory matched, every host in order,
 * which answered, P2P and mirror-cache hit or miss, time per hop, the digest; plus the known silent
 * bypasses of that node's containerd configuration. Resolves manifests only (HEAD), never pulls layers.
 */

export type HopRole = 'p2p' | 'mirror' | 'replica' | 'build' | 'cache' | 'endpoint' | 'upstream';

export interface Hop {
  index: number;
  origin: string;
  url: string;
  role: HopRole;
  /** lo's name for it (mirror name, build, cache), when lo runs it. */
  name?: string;
  /** [host."…"] table, top-level server, or containerd's built-in default endpoint. */
  source: ResolvedHost['source'];
  /** What happened: answered (2xx), miss (404), error (could not connect/TLS/5xx), skipped (not tried). */
  outcome: 'answered' | 'miss' | 'error' | 'not tried' | 'skipped';
  status?: number;
  ms?: number;
  error?: string;
  digest?: string;
  mediaType?: string;
  /** For a mirror lo runs: whether its storage already held this manifest (cache hit) or had to fetch it. */
  cache?: 'hit' | 'miss';
}

export interface WhyResult {
  image: string;
  normalized: string;
  node: string;
  containerd: { version: string; pullMode: PullMode; because: string };
  certsDir: { tried: string[]; matched: string | null; file: string | null };
  hops: Hop[];
  answeredBy: { index: number; role: HopRole; name?: string; origin: string } | null;
  digest: string | null;
  findings: Finding[];
}

export interface WhyOptions {
  image: string;
  node?: string;
  /** Do not try the registry's own (internet) endpoint; report it as skipped. */
  noUpstream?: boolean;
}

export interface WhyDeps {
  loadPlan: () => Promise<Plan>;
  connect: () => Promise<Pick<DockerClients, 'containers' | 'exec'>>;
}

const MARK = '__lo_why__';

interface Probe {
  status: number;
  ms: number;
  headers: Record<string, string>;
  error?: string;
}

/** One manifest HEAD from inside the node with curl (kind's node image ships it). */
async function probe(exec: ExecClient, node: string, host: ResolvedHost, url: string, extra: string[] = []): Promise<Probe> {
  const connectTimeout = host.dialTimeout ? Math.max(0.2, parseDuration(host.dialTimeout) / 1000) : 2;
  const args = ['curl', '-sS', '-I', '-o', '/dev/null', '-D', '-', '-w', `\n${MARK} %{http_code} %{time_total}\n`];
  args.push('--connect-timeout', String(connectTimeout), '--max-time', '8', '-H', `Accept: ${MANIFEST_ACCEPT}`);
  if (host.scheme === 'https') {
    if (host.skipVerify) args.push('-k');
    for (const ca of host.ca) args.push('--cacert', ca);
  }
  for (const [k, vs] of Object.entries(host.header)) for (const v of vs) args.push('-H', `${k}: ${v}`);
  args.push(...extra, url);
  const r = await exec.exec(node, args, { timeoutMs: 15_000 });
  const markAt = r.stdout.lastIndexOf(MARK);
  if (markAt === -1) {
    if (r.exitCode === 127 || /executable file not found|no such file/i.test(r.stderr))
      throw new LoError('E_TOOL_MISSING', `node ${node} has no curl, which \`lo why\` runs inside the node`, {
        hint: 'kind node images ship curl; with a custom node image, install curl in it',
      });
    return { status: 0, ms: 0, headers: {}, error: r.stderr.trim() || `curl exited ${r.exitCode}` };
  }
  const [, code, seconds] = r.stdout.slice(markAt).trim().split(/\s+/);
  const headers: Record<string, string> = {};
  // With redirects or 100-continue there can be several header blocks: the last one counts.
  const blocks = r.stdout
    .slice(0, markAt)
    .split(/\r?\n\r?\n/)
    .filter((b) => /^HTTP\//.test(b.trim()));
  for (const line of (blocks.at(-1) ?? '').split(/\r?\n/).slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const status = Number(code);
  return {
    status,
    ms: Math.round(Number(seconds) * 1000),
    headers,
    ...(status === 0 ? { error: r.stderr.trim().replace(/^curl: \(\d+\) /, '') || `curl exited ${r.exitCode}` } : {}),
  };
}

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) return 2000;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

/** Bearer challenge -> anonymous token, as containerd does for public registries. */
async function anonymousToken(exec: ExecClient, node: string, challenge: string, host: ResolvedHost): Promise<string | null> {
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  if (!/^bearer/i.test(challenge) || !params.realm) return null;
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  if (params.scope) url.searchParams.set('scope', params.scope);
  const args = ['curl', '-sS', '--connect-timeout', '2', '--max-time', '8'];
  for (const ca of host.ca) args.push('--cacert', ca);
  const r = await exec.exec(node, [...args, url.toString()], { timeoutMs: 15_000 });
  try {
    const body = JSON.parse(r.stdout) as { token?: string; access_token?: string };
    return body.token ?? body.access_token ?? null;
  } catch {
    return null;
  }
}

/** Where registry:2 keeps a tag link or a manifest revision of a repository in its storage. */
function cachePath(ref: ImageRef): string {
  const repo = `${REGISTRY_DATA_DIR}/docker/registry/v2/repositories/${ref.repository}/_manifests`;
  if (ref.digest) return `${repo}/revisions/${ref.digest.replace(':', '/')}`;
  return `${repo}/tags/${ref.tag}/current/link`;
}

/** Which of lo's registries (or the P2P agent) a host is. */
function roleOf(plan: Plan, host: ResolvedHost, ref: ImageRef): { role: HopRole; name?: string } {
  if (plan.p2p.agents.length > 0 && host.origin === new URL(plan.p2p.endpoint).origin) return { role: 'p2p' };
  const reg = plan.registries.find((r) => new URL(r.endpoint).origin === host.origin);
  if (reg) return { role: reg.role, name: reg.name };
  // A mirror's read-only replica (docs/offline.md): named after its mirror.
  const mirrorOf = plan.registries.find((r) => r.replica && new URL(r.replica.endpoint).origin === host.origin);
  if (mirrorOf) return { role: 'replica', name: mirrorOf.name };
  // The top-level server (lo writes the mirror's upstream there) or containerd's default endpoint.
  if (host.source !== 'host') return { role: 'upstream' };
  if (host.host === ref.registry || (ref.registry === 'docker.io' && host.host === 'registry-1.docker.io')) return { role: 'upstream' };
  return { role: 'endpoint' };
}

export async function why(opts: WhyOptions, deps: WhyDeps): Promise<WhyResult> {
  let ref: ImageRef;
  try {
    ref = parseImageRef(opts.image);
  } catch (err) {
    if (err instanceof ImageRefError) throw new LoError('E_USAGE', err.message, { exitCode: ExitCode.badInput });
    throw err;
  }
  const plan = await deps.loadPlan();
  const docker = await deps.connect();
  const exec = docker.exec;
  const nodes = await kindNodes(docker, plan.cluster.name);
  if (nodes.length === 0)
    throw new LoError('E_STEP', `cluster ${plan.cluster.name} has no nodes`, { hint: 'create it with `lo provision`' });
  const node = opts.node ? nodes.find((n) => n.name === opts.node) : nodes[0];
  if (!node)
    throw new LoError('E_USAGE', `cluster ${plan.cluster.name} has no node ${opts.node}`, {
      hint: `nodes: ${nodes.map((n) => n.name).join(', ')}`,
      exitCode: ExitCode.badInput,
    });
  if (!node.running)
    throw new LoError('E_STEP', `node ${node.name} is not running`, {
      hint: `start it with \`${shellCommand(['docker', 'start', node.name])}\``,
    });

  // certs.d lookup exactly as containerd's HostDirFromRoot does it, on the node's own files.
  const root = plan.containerd.nodeCertsDir;
  const tried = hostDirCandidates(ref.registry);
  let matched: string | null = null;
  let text: string | null = null;
  const hostsFiles: Record<string, string> = {};
  for (const dir of tried) {
    const r = await exec.exec(node.name, ['cat', `${root}/${dir}/hosts.toml`]);
    if (r.exitCode === 0) {
      matched = dir;
      text = r.stdout;
      hostsFiles[dir] = r.stdout;
      break;
    }
  }
  let hosts: ResolvedHost[];
  const findings: Finding[] = [];
  try {
    hosts = resolveHosts(ref.registry, text);
  } catch (err) {
    findings.push({
      code: 'hosts-toml-invalid',
      severity: 'fail',
      message: `${matched}/hosts.toml does not parse: ${(err as Error).message}`,
    });
    hosts = resolveHosts(ref.registry, null);
  }
  const checks = await nodeContainerd(exec, node.name, plan, hostsFiles);
  findings.push(...checks.findings);

  const hops: Hop[] = [];
  let answered: Hop | null = null;
  for (const [i, host] of hosts.entries()) {
    const { role, name } = roleOf(plan, host, ref);
    const url = manifestUrl(host, ref.registry, ref.repository, ref.reference);
    const hop: Hop = { index: i + 1, origin: host.origin, url, role, ...(name ? { name } : {}), source: host.source, outcome: 'not tried' };
    hops.push(hop);
    if (answered) continue;
    if (!host.capabilities.includes('resolve') && !ref.digest) {
      hop.outcome = 'skipped';
      hop.error = 'no resolve capability (tags are not resolved here)';
      continue;
    }
    if (role === 'upstream' && opts.noUpstream) {
      hop.outcome = 'skipped';
      hop.error = '--no-upstream';
      continue;
    }
    // Mirror cache: did the mirror's storage hold the reference before this request? (A proxy HEAD caches
    // the manifest, so look first.) Read from its volume through Docker's archive API: no request made.
    // A replica reads the same volume in the same container: its cache is the mirror's.
    const reg = role === 'mirror' || role === 'replica' ? plan.registries.find((r) => r.role === 'mirror' && r.name === name) : undefined;
    const holder = reg?.containerName;
    const cachedBefore = holder ? await exec.pathExists(holder, cachePath(ref)).catch(() => undefined) : undefined;
    let p = await probe(exec, node.name, host, url);
    if (p.status === 401 && p.headers['www-authenticate']) {
      const token = await anonymousToken(exec, node.name, p.headers['www-authenticate'], host);
      if (token) {
        const again = await probe(exec, node.name, host, url, ['-H', `Authorization: Bearer ${token}`]);
        p = { ...again, ms: p.ms + again.ms };
      }
    }
    hop.ms = p.ms;
    if (p.status) hop.status = p.status;
    const contentType = p.headers['content-type'] ?? '';
    if (/text\/html/i.test(contentType)) {
      findings.push({
        code: 'html-response',
        severity: 'fail',
        message: `${host.origin} answered ${p.status} with an HTML page (a rate-limit, login or captive-portal page), not a registry response`,
        fix: 'check that the URL is a registry endpoint; for Docker Hub rate limits, pull through lo’s mirror with credentials',
      });
    }
    if (p.status >= 200 && p.status < 300 && !/text\/html/i.test(contentType)) {
      hop.outcome = 'answered';
      if (p.headers['docker-content-digest']) hop.digest = p.headers['docker-content-digest'];
      if (contentType) hop.mediaType = contentType;
      if (cachedBefore !== undefined) hop.cache = cachedBefore ? 'hit' : 'miss';
      answered = hop;
    } else if (p.status === 404) hop.outcome = 'miss';
    else {
      hop.outcome = 'error';
      hop.error = p.error ?? `HTTP ${p.status}`;
    }
  }
  const digest = answered?.digest ?? ref.digest ?? null;

  return {
    image: opts.image,
    normalized: ref.normalized,
    node: node.name,
    containerd: { version: checks.version.text, pullMode: checks.mode, because: checks.because },
    certsDir: { tried, matched, file: matched ? `${root}/${matched}/hosts.toml` : null },
    hops,
    answeredBy: answered
      ? { index: answered.index, role: answered.role, ...(answered.name ? { name: answered.name } : {}), origin: answered.origin }
      : null,
    digest,
    findings,
  };
}
