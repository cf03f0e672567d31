import { parse as parseToml } from 'smol-toml';
import type { Plan } from './types.js';

/**
 * What `lo doctor` sends to one endpoint of `spec.registries.hosts`, from the same hosts.toml containerd reads
 * (so the probe carries what containerd will carry): the API root containerd uses, the TLS files on this
 * machine (the spec's, which `lo registry up` copies for the nodes), skip_verify, and the header names with
 * the variables their values come from (never the values).
 */
export interface EndpointProbePlan {
  /** The spec's key: a registry name or `*`. */
  registry: string;
  /** 1-based position among the entry's endpoints (containerd's order). */
  position: number;
  url: string;
  /**
   * `GET` target: `<url>/` with override_path (containerd uses the path as written), else `<url>/v2/`
   * (containerd appends /v2 unless the path ends with it), the registry API's version check.
   */
  probeUrl: string;
  overridePath: boolean;
  skipVerify: boolean;
  /** The CA the endpoint is verified with (file on this machine), or null for the system CAs. */
  caFile: string | null;
  client: { certFile: string; keyFile: string } | null;
  headers: Array<{ name: string; env: string }>;
}

const PLACEHOLDER = /^<from \$([A-Za-z_][A-Za-z0-9_]*)>$/;

/** The API root containerd requests under for an endpoint URL (containerd remotes/docker/config/hosts.go). */
export function endpointApiRoot(url: string, overridePath: boolean): string {
  const u = url.replace(/\/+$/, '');
  if (overridePath) return `${u}/`;
  return new URL(u).pathname.endsWith('/v2') ? `${u}/` : `${u}/v2/`;
}

type HostTable = {
  ca?: string | string[];
  client?: string | string[] | string[][];
  skip_verify?: boolean;
  override_path?: boolean;
  header?: Record<string, string | string[]>;
};

/** Pure: one probe per endpoint of each `hosts` entry, in the entries' and endpoints' order. */
export function planEndpointProbes(plan: Plan): EndpointProbePlan[] {
  const files = plan.containerd.files ?? [];
  const source = (nodePath: string | undefined): string | null =>
    nodePath === undefined ? null : (files.find((f) => f.nodePath === nodePath)?.source ?? null);
  return plan.containerd.endpoints.flatMap((entry) => {
    const file = plan.containerd.hosts.find((h) => h.host === entry.host);
    const doc = file ? (parseToml(file.content) as { host?: Record<string, HostTable> }) : {};
    return entry.endpoints.map((e, i): EndpointProbePlan => {
      const t = doc.host?.[e.url] ?? {};
      const ca = Array.isArray(t.ca) ? t.ca[0] : t.ca;
      const pair = Array.isArray(t.client) ? (Array.isArray(t.client[0]) ? t.client[0] : (t.client as string[])) : undefined;
      const certFile = source(pair?.[0]);
      const keyFile = source(pair?.[1]);
      const headers = Object.entries(t.header ?? {}).flatMap(([name, v]) => {
        const env = PLACEHOLDER.exec(Array.isArray(v) ? (v[0] ?? '') : v)?.[1];
        return env ? [{ name, env }] : [];
      });
      return {
        registry: entry.registry,
        position: i + 1,
        url: e.url,
        probeUrl: endpointApiRoot(e.url, e.overridePath),
        overridePath: e.overridePath,
        skipVerify: e.skipVerify,
        caFile: source(ca),
        client: certFile && keyFile ? { certFile, keyFile } : null,
        headers,
      };
    });
  });
}
