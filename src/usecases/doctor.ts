import { readFile } from 'node:fs/promises';
import { shellCommand, shellQuote } from '../util/shell.js';
import { dirname } from 'node:path';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KindCli } from '../adapters/kindCli.js';
import { KIND_INSTALL_HINT } from '../adapters/kindCli.js';
import type { Kubectl } from '../adapters/kubectl.js';
import { KUBECTL_INSTALL_HINT } from '../adapters/kubectl.js';
import type { Plan, RegistryPlan } from '../plan/types.js';
import { caScope } from '../apply/tls/ca.js';
import forge from 'node-forge';
import type { TrustStatus } from './provision.js';
import { TRUST_COMMAND } from './provision.js';
import type { NodeContainerdReport } from './nodeContainerd.js';
import { planEndpointProbes, type EndpointProbePlan } from '../plan/endpointProbes.js';
import { judgeEndpoint, probeEndpoint, type EndpointAnswer, type EndpointProblem } from './endpointProbe.js';

export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** How to fix it (absent when ok). */
  fix?: string;
  /** `endpoint` checks: what was asked and what answered (never a header value). */
  endpoint?: EndpointCheckInfo;
}

/** The `endpoint` field of an `endpoint <registry> #<n>` check (`lo doctor --json`, docs/provision.md). */
export interface EndpointCheckInfo {
  registry: string;
  position: number;
  url: string;
  probeUrl: string;
  /** HTTP status, when the endpoint answered. */
  httpStatus?: number;
  /** The socket or TLS error code, when it did not (e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ECONNREFUSED`). */
  errorCode?: string;
  problem?: EndpointProblem;
  ms?: number;
  /** The header names sent and the variables their values came from. */
  headers: string[];
}

export interface DoctorDeps {
  loadPlan: () => Promise<Plan>;
  /** Pings the engine and returns its version and where it is. */
  docker: () => Promise<{ version: string; target: string }>;
  kind: KindCli;
  kubectl: (kubeconfig: string) => Kubectl;
  checkTrust?: (plan: Plan) => Promise<TrustStatus>;
  /**
   * Whether a Docker network exists. A registry is probed only when its network does: without the bridge,
   * its address would be routed off this machine.
   */
  networkExists?: (name: string) => Promise<boolean>;
  /**
   * The project's P2P agent sidecars: node name and whether the agent runs. A node restart can leave its
   * agent stopped (Docker gives up restarting a container whose network namespace owner is not running yet).
   */
  p2pAgents?: (plan: Plan) => Promise<Array<{ node: string; agent: string; running: boolean }>>;
  /**
   * Each node's containerd as it really runs (`containerd config dump`, version, the hosts.toml files it
   * reads), checked for the silent bypasses `lo why` knows (src/plan/containerdChecks.ts).
   */
  nodeContainerd?: (plan: Plan) => Promise<NodeContainerdReport[]>;
  /**
   * With `spec.registries.disableDefaultEndpoint: true`, whether every image of the lock file can be served
   * without the internet (src/usecases/imagesLock.ts); null when the project is not air-gapped.
   */
  pinnedImages?: (plan: Plan) => Promise<Check | null>;
  /** GET /v2/ of one registry; resolves the HTTP status. */
  probe?: (registry: RegistryPlan, ca: string | null, timeoutMs: number) => Promise<number>;
  timeoutMs?: number;
  /** Where the endpoints' header values are read from (the process environment, from main). */
  env?: NodeJS.ProcessEnv;
  /** Asks one endpoint of `spec.registries.hosts` (default: probeEndpoint, the real request, at most 3 s). */
  probeEndpoint?: (p: EndpointProbePlan, env: NodeJS.ProcessEnv) => Promise<EndpointAnswer>;
}

export interface DoctorResult {
  project: string | null;
  ok: boolean;
  checks: Check[];
}

const errMsg = (err: unknown): string => ((err as Error)?.message ?? String(err)).split('\n')[0]!;

/**
 * Warns when the CA may vouch for any name (no X.509 name constraints, e.g. a reused mkcert CA, or one an
 * older lo created): its key, together with \`lo trust\`, lets anyone who can read it impersonate any site
 * to this host. lo leaves such a CA as it is; the fix says how to move to a constrained one. Pure.
 */
export function caScopeCheck(caPem: string, caCertPath: string, caKeyPath: string): Check {
  let scope;
  try {
    scope = caScope(forge.pki.certificateFromPem(caPem));
  } catch (err) {
    return {
      name: 'ca-scope',
      status: 'fail',
      detail: `${caCertPath} is not a readable certificate: ${errMsg(err)}`,
      fix: `restore ${caCertPath}`,
    };
  }
  if (scope) return { name: 'ca-scope', status: 'ok', detail: `the CA may certify only ${[...scope.ipRanges, ...scope.dns].join(', ')}` };
  return {
    name: 'ca-scope',
    status: 'warn',
    detail: `the CA ${caCertPath} has no name constraints: whoever reads ${caKeyPath} can certify any name (docker.io, any website) to every client that trusts it`,
    fix: `keep ${caKeyPath} private; or switch to a constrained CA: \`lo trust --uninstall --yes\`, move rootCA.pem and rootCA-key.pem out of ${dirname(caCertPath)}, then \`lo provision\` (lo creates a constrained CA and re-issues the certificates) and \`lo trust --yes\``,
  };
}

/** GET <endpoint>/v2/ verifying TLS against lo's CA only (no system store, no insecure flags). */
export function probeRegistry(r: RegistryPlan, ca: string | null, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL('/v2/', r.endpoint);
    const opts = { method: 'GET', timeout: timeoutMs, ...(ca ? { ca } : {}) };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, opts, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** `lo doctor`: checks Docker, kind, kubectl, CA trust, the registries and the cluster; each failure says how to fix it. */
export async function doctor(deps: DoctorDeps): Promise<DoctorResult> {
  const timeoutMs = deps.timeoutMs ?? 2000;
  const probe = deps.probe ?? probeRegistry;
  const checks: Check[] = [];
  let plan: Plan | null = null;
  try {
    plan = await deps.loadPlan();
    checks.push({ name: 'spec', status: 'ok', detail: `${plan.project.file} (project ${plan.project.name})` });
  } catch (err) {
    checks.push({
      name: 'spec',
      status: 'fail',
      detail: errMsg(err),
      fix: (err as { hint?: string }).hint ?? 'fix the spec; `lo plan` shows every problem',
    });
  }

  const [dockerCheck, kindCheck, kubectlCheck] = await Promise.all([
    deps.docker().then(
      (d): Check => ({ name: 'docker', status: 'ok', detail: `engine ${d.version} at ${d.target}` }),
      (err): Check => ({
        name: 'docker',
        status: 'fail',
        detail: errMsg(err),
        fix: (err as { hint?: string }).hint ?? 'start the Docker engine or set DOCKER_HOST',
      }),
    ),
    deps.kind.version().then(
      (v): Check => ({ name: 'kind', status: 'ok', detail: v }),
      (err): Check => ({ name: 'kind', status: 'fail', detail: errMsg(err), fix: KIND_INSTALL_HINT }),
    ),
    deps
      .kubectl(plan?.cluster.kubeconfigPath ?? '/dev/null')
      .version()
      .then(
        (v): Check => ({ name: 'kubectl', status: 'ok', detail: v }),
        (err): Check => ({ name: 'kubectl', status: 'fail', detail: errMsg(err), fix: KUBECTL_INSTALL_HINT }),
      ),
  ]);
  checks.push(dockerCheck, kindCheck, kubectlCheck);

  if (plan) {
    const p = plan;
    let ca: string | null = null;
    if (p.tls.enabled) {
      ca = await readFile(p.tls.caCertPath, 'utf8').catch(() => null);
      if (!ca)
        checks.push({
          name: 'ca',
          status: 'fail',
          detail: `no CA at ${p.tls.caCertPath}`,
          fix: 'run `lo provision` (or `lo registry up`) to create it',
        });
      else if (deps.checkTrust) {
        const t = await deps.checkTrust(p).catch((err: unknown) => ({ trusted: false, missing: [errMsg(err)] }));
        checks.push(
          t.trusted
            ? { name: 'ca-trust', status: 'ok', detail: `host trusts ${p.tls.caCertPath}` }
            : {
                name: 'ca-trust',
                status: 'warn',
                detail: `host does not trust lo's CA${t.missing?.length ? `: ${t.missing.join(', ')}` : ''}`,
                fix: `run \`${'command' in t && t.command ? t.command : TRUST_COMMAND}\``,
              },
        );
      } else checks.push({ name: 'ca', status: 'ok', detail: p.tls.caCertPath });
      if (ca) checks.push(caScopeCheck(ca, p.tls.caCertPath, p.tls.caKeyPath));
    }

    const networks = new Map<string, boolean>();
    for (const n of new Set(p.registries.map((r) => r.network))) {
      networks.set(n, deps.networkExists ? await deps.networkExists(n).catch(() => false) : true);
    }
    const endpointsAsked = endpointProbeChecks(p, deps.env ?? {}, deps.probeEndpoint ?? probeEndpoint);
    const reach = await Promise.all(
      p.registries.map(async (r): Promise<Check> => {
        const c = await reachable(r);
        if (c.status !== 'fail' || !r.replica || !networks.get(r.network)) return c;
        // A mirror whose proxy does not answer still serves its cache from its read-only replica (docs/offline.md).
        const replica = await probe({ ...r, endpoint: r.replica.endpoint, port: r.replica.port }, ca, timeoutMs).catch(() => 0);
        if (replica !== 200 && replica !== 401)
          return { ...c, detail: `${c.detail}; its read-only replica ${r.replica.endpoint} does not answer either` };
        return {
          name: c.name,
          status: 'warn',
          detail: `serving offline from its read-only replica ${r.replica.endpoint} (cached images only): the proxy ${c.detail}`,
          fix: `the proxy restarts by itself (at most 30 s apart) once its upstream ${r.upstream} answers; \`${shellCommand(['docker', 'logs', r.containerName])}\` says why it stopped`,
        };
      }),
    );
    checks.push(...reach, ...endpointChecks(p), ...(await endpointsAsked));
    const pinned = deps.pinnedImages
      ? await deps.pinnedImages(p).catch((err: unknown): Check => ({
          name: 'pinned-images',
          status: 'fail',
          detail: errMsg(err),
          fix: 'run `lo images lock` again',
        }))
      : null;
    if (pinned) checks.push(pinned);

    async function reachable(r: RegistryPlan): Promise<Check> {
      const name = `registry ${r.name}`;
      if (!networks.get(r.network)) {
        return {
          name,
          status: 'fail',
          detail: `network ${r.network} does not exist (or Docker is unreachable), so ${r.endpoint} cannot answer`,
          fix: 'run `lo provision` (or `lo registry up`)',
        };
      }
      try {
        const status = await probe(r, ca, timeoutMs);
        // 200, or 401 from a registry with auth: the registry API answered over verified TLS.
        if (status === 200 || status === 401) return { name, status: 'ok', detail: `${r.endpoint}/v2/ answered ${status}` };
        return {
          name,
          status: 'fail',
          detail: `${r.endpoint}/v2/ answered ${status}`,
          fix: `see \`${shellCommand(['docker', 'logs', r.containerName])}\``,
        };
      } catch (err) {
        const tlsProblem = /certificate|self.signed|CERT|altnames/i.test(errMsg(err));
        return {
          name,
          status: 'fail',
          detail: `${r.endpoint}/v2/: ${errMsg(err)}`,
          fix: tlsProblem
            ? "the registry serves a certificate lo's CA does not sign; run `lo provision` to re-issue it"
            : `run \`lo provision\` (or \`lo registry up\`); \`${shellCommand(['docker', 'ps', '-a', '--filter', `name=${r.containerName}`])}\` shows its state`,
        };
      }
    }

    if (kindCheck.status === 'ok') {
      try {
        const exists = (await deps.kind.getClusters()).includes(p.cluster.name);
        checks.push(
          exists
            ? { name: 'cluster', status: 'ok', detail: `kind cluster ${p.cluster.name}` }
            : { name: 'cluster', status: 'warn', detail: `no kind cluster ${p.cluster.name}`, fix: 'run `lo provision`' },
        );
        // Agents run with P2P on, and forward-only (P2P off) when a rewrite is configured.
        if (exists && p.p2p.agents.length > 0 && deps.p2pAgents) {
          const agents = await deps.p2pAgents(p);
          const down = p.cluster.nodes.filter((n) => !agents.some((a) => a.node === n.name && a.running)).map((n) => n.name);
          const what = p.p2p.forwardOnly ? 'a forward-only agent (rewrites)' : 'an agent';
          checks.push(
            down.length === 0
              ? { name: 'p2p', status: 'ok', detail: `${what} runs on each of ${p.cluster.nodes.length} nodes` }
              : {
                  name: 'p2p',
                  status: 'fail',
                  detail: p.p2p.forwardOnly
                    ? `no running agent on ${down.join(', ')}: the rewrites are not applied there (images are pulled under their own names)`
                    : `no running P2P agent on ${down.join(', ')} (those nodes pull through the mirrors only)`,
                  fix: 'run `lo provision` to start the agents again',
                },
          );
        }
        if (exists && deps.nodeContainerd) checks.push(...containerdChecks(await deps.nodeContainerd(p)));
      } catch (err) {
        checks.push({ name: 'cluster', status: 'fail', detail: errMsg(err), fix: 'run `kind get clusters` to see why' });
      }
    }
  }
  return { project: plan?.project.name ?? null, ok: checks.every((c) => c.status !== 'fail'), checks };
}

/** One check per node: the worst finding decides; info findings only add to the detail. */
export function containerdChecks(reports: readonly NodeContainerdReport[]): Check[] {
  return reports.map((r): Check => {
    const mode = `containerd ${r.version.text}, CRI pull via ${r.mode === 'transfer' ? 'the transfer service' : 'local pull'}`;
    const worst = r.findings.find((f) => f.severity === 'fail') ?? r.findings.find((f) => f.severity === 'warn');
    const info = r.findings.filter((f) => f.severity === 'info').map((f) => f.message);
    if (!worst) return { name: `containerd ${r.node}`, status: 'ok', detail: [mode, ...info].join('; ') };
    const more = r.findings.filter((f) => f !== worst && f.severity !== 'info').length;
    return {
      name: `containerd ${r.node}`,
      status: worst.severity === 'fail' ? 'fail' : 'warn',
      detail: `${mode}: ${worst.message}${more ? ` (+${more} more: \`lo why IMAGE --node ${shellQuote(r.node)}\`)` : ''}`,
      ...(worst.fix ? { fix: worst.fix } : {}),
    };
  });
}

/**
 * One check per endpoint of `spec.registries.hosts`, asked from this machine in parallel (each at most 3 s)
 * with what containerd sends it: `GET` of its API root with its CA, client certificate, skip_verify and
 * header values from `env`. The checks hold the header names and variables, never the values.
 */
export async function endpointProbeChecks(
  p: Plan,
  env: NodeJS.ProcessEnv,
  ask: (e: EndpointProbePlan, env: NodeJS.ProcessEnv) => Promise<EndpointAnswer> = probeEndpoint,
): Promise<Check[]> {
  return Promise.all(
    planEndpointProbes(p).map(async (e): Promise<Check> => {
      const a = await ask(e, env).catch((err: unknown): EndpointAnswer => ({ kind: 'error', code: 'error', message: errMsg(err), ms: 0 }));
      const v = judgeEndpoint(e, a);
      return {
        name: `endpoint ${e.registry} #${e.position}`,
        status: v.status,
        detail: v.detail,
        ...(v.fix ? { fix: v.fix } : {}),
        endpoint: {
          registry: e.registry,
          position: e.position,
          url: e.url,
          probeUrl: e.probeUrl,
          ...(a.kind === 'http' ? { httpStatus: a.status, ms: a.ms } : {}),
          ...(a.kind === 'error' ? { errorCode: a.code, ms: a.ms } : {}),
          ...(v.problem ? { problem: v.problem } : {}),
          headers: e.headers.map((h) => `${h.name}: <from $${h.env}>`),
        },
      };
    }),
  );
}

/**
 * One check per `spec.registries.hosts` entry: the endpoints containerd tries, in order, with what each
 * carries (header names and variables, never values); a warning for every endpoint that skips verification.
 * And one per mirror with an upstream CA: lo mounts it, registry:2 verifies the upstream with it.
 */
export function endpointChecks(p: Plan): Check[] {
  const hosts = p.containerd.endpoints.map((e): Check => {
    const order = e.endpoints.map(
      (x) =>
        `${x.url}${x.overridePath ? ' (path as written)' : ''}${x.ca ? ' ca' : ''}${x.clientCertificate ? ' client-cert' : ''}${x.headers.length ? ` ${x.headers.join(', ')}` : ''}`,
    );
    const then =
      e.defaultEndpoint === null
        ? 'no default endpoint'
        : e.defaultEndpoint === 'per registry'
          ? "then each registry's own"
          : `then ${e.defaultEndpoint}`;
    const skip = e.endpoints.filter((x) => x.skipVerify).map((x) => x.url);
    return {
      name: `endpoints ${e.registry}`,
      status: skip.length > 0 ? 'warn' : 'ok',
      detail: `${e.host}/hosts.toml: ${order.join(' -> ')}; ${then}${skip.length ? `; ${skip.join(', ')} not verified (skip_verify)` : ''}`,
      ...(skip.length ? { fix: `give the endpoint's CA as tls.caFile and drop insecureSkipVerify for ${skip.join(', ')}` } : {}),
    };
  });
  const mirrors = p.registries
    .filter((r) => r.upstreamCa)
    .map((r): Check => ({
      name: `upstream-ca ${r.name}`,
      status: 'ok',
      detail: `${r.upstream} verified with ${r.upstreamCa!.source} (SSL_CERT_DIR in the mirror)`,
    }));
  return [...hosts, ...mirrors];
}
