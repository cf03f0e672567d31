import { specFilePath } from './accessRules.js';
import { formatPath } from './yamlPosition.js';
import { checkMirrorUrl } from './rules.js';
import type { SpecDocument } from './specDoc.js';
import type { EndpointSpec, HostSpec, MirrorSpec, TlsFilesSpec } from './types.js';

type RegistriesDoc = SpecDocument['spec']['registries'];
type TlsDoc = { caFile?: string; certFile?: string; keyFile?: string; insecureSkipVerify?: boolean };

/** A valid document's TLS block with its file paths made absolute against the spec's directory. */
function tlsFiles(tls: TlsDoc | undefined, baseDir: string): TlsFilesSpec {
  const file = (p: string | undefined): string | undefined => (p === undefined ? undefined : specFilePath(baseDir, p));
  const ca = file(tls?.caFile);
  const cert = file(tls?.certFile);
  const key = file(tls?.keyFile);
  return {
    ...(ca ? { caFile: ca } : {}),
    ...(cert ? { certFile: cert } : {}),
    ...(key ? { keyFile: key } : {}),
    insecureSkipVerify: tls?.insecureSkipVerify === true,
  };
}

/** `https://h/v2/docker-remote` has a path after /v2: containerd must use it as written (override_path). */
export function hasPathAfterV2(url: string): boolean {
  return /^\/v2\/.+/.test(new URL(url).pathname);
}

/**
 * The access part of a valid document (issue 14): each mirror's credentials and upstream TLS, and the
 * `hosts` entries with their endpoints, in the file's order, the per-registry default endpoint resolved
 * against the global one. Warnings for what is allowed but unsafe (skip_verify, a header over http://).
 */
export function normaliseAccess(
  regs: RegistriesDoc,
  baseDir: string,
): { mirrors: Array<Pick<MirrorSpec, 'credentials' | 'tls'>>; hosts: Record<string, HostSpec>; warnings: string[] } {
  const warnings: string[] = [];
  const mirrors = regs.mirrors.map((m) => {
    const c = m.credentials;
    return {
      ...(c
        ? {
            credentials: {
              ...(c.usernameEnv !== undefined ? { usernameEnv: c.usernameEnv } : {}),
              ...(c.passwordEnv !== undefined ? { passwordEnv: c.passwordEnv } : {}),
              ...(c.tokenEnv !== undefined ? { tokenEnv: c.tokenEnv } : {}),
            },
          }
        : {}),
      ...(m.tls ? { tls: tlsFiles(m.tls, baseDir) } : {}),
    };
  });
  const hosts: Record<string, HostSpec> = {};
  for (const [key, host] of Object.entries(regs.hosts)) {
    const endpoints = host.endpoints.map((e, i): EndpointSpec => {
      const url = (checkMirrorUrl(e.url) as { url: string }).url;
      const at = formatPath(['spec', 'registries', 'hosts', key, 'endpoints', i]);
      const tls = tlsFiles(e.tls, baseDir);
      if (tls.insecureSkipVerify)
        warnings.push(`${at}: insecureSkipVerify: containerd does not verify ${url}'s certificate, so anyone on the path can serve images`);
      const headers = Object.fromEntries(Object.entries(e.headers).map(([name, v]) => [name, { env: v.env }]));
      if (Object.keys(headers).length > 0 && url.startsWith('http://'))
        warnings.push(`${at} sends headers (${Object.keys(headers).join(', ')}) to ${url} without TLS: anyone on the path can read them`);
      return { url, capabilities: [...e.capabilities], overridePath: hasPathAfterV2(url), tls, headers };
    });
    hosts[key] = {
      endpoints,
      disableDefaultEndpoint: host.disableDefaultEndpoint ?? regs.disableDefaultEndpoint,
      rewrites: Object.entries(host.rewrite ?? {}).map(([pattern, replacement]) => ({ pattern, replacement })),
    };
  }
  return { mirrors, hosts, warnings };
}
