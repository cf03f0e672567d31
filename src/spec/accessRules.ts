import { isAbsolute, join } from 'node:path';
import { inSubnet } from '../util/cidr.js';
import { BUILD_HOSTNAME, CACHE_HOSTNAME } from './constants.js';
import { shown } from './display.js';
import { checkMirrorUrl, ENV_NAME, looksLikeToken, registryNameProblem, type SpecRule } from './rules.js';
import type { CheckedDoc, SpecIssue } from './specDoc.js';
import type { Segment } from './yamlPosition.js';
import { rewriteProblem } from './rewrites.js';

/**
 * Rules for how registries are reached (issue 14): a mirror's upstream credentials and TLS, and the
 * `spec.registries.hosts` entries containerd uses itself (endpoints with TLS files, headers from the
 * environment, the `"*"` default). Pure, but for the injected file check (RuleContext.checkFile).
 */

/** The key of `spec.registries.hosts` that configures every registry without an entry of its own. */
export const WILDCARD_HOST = '*';

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

const mirrorPath = (i: number, ...rest: Segment[]): Segment[] => ['spec', 'registries', 'mirrors', i, ...rest];
const hostPath = (key: string, ...rest: Segment[]): Segment[] => ['spec', 'registries', 'hosts', key, ...rest];

/** A relative spec path resolved against the spec file's directory. */
export function specFilePath(baseDir: string, file: string): string {
  return isAbsolute(file) ? file : join(baseDir, file);
}

/** Credentials are usernameEnv + passwordEnv, or tokenEnv (alone or with usernameEnv). */
export const mirrorCredentialsAreComplete: SpecRule = (doc) =>
  (doc.spec?.registries?.mirrors ?? []).flatMap((m, i): SpecIssue[] => {
    const c = m?.credentials;
    if (!c) return [];
    const at = mirrorPath(i, 'credentials');
    if (c.passwordEnv !== undefined && c.tokenEnv !== undefined)
      return [
        {
          path: [...at, 'tokenEnv'],
          message: 'passwordEnv and tokenEnv are both given; registry:2 sends one secret',
          hint: 'keep passwordEnv (a password) or tokenEnv (an access token), not both',
        },
      ];
    if (c.passwordEnv !== undefined && c.usernameEnv === undefined)
      return [{ path: [...at, 'usernameEnv'], message: 'passwordEnv needs usernameEnv', hint: 'add usernameEnv: MY_USER_VAR' }];
    if (c.passwordEnv === undefined && c.tokenEnv === undefined)
      return [
        {
          path: at,
          message: 'names no secret: give passwordEnv (with usernameEnv) or tokenEnv',
          hint: 'add passwordEnv: MY_PASSWORD_VAR, or tokenEnv: MY_TOKEN_VAR, or remove credentials',
        },
      ];
    return [];
  });

/**
 * What registry:2 (distribution 2.8) can do towards its upstream: its proxy uses Go's default HTTP transport,
 * which reads the system CA bundle (lo mounts caFile there) but has no client certificate and no way to skip
 * verification (registry/proxy/proxyregistry.go uses http.DefaultTransport).
 */
export const mirrorTlsIsPossible: SpecRule = (doc) =>
  (doc.spec?.registries?.mirrors ?? []).flatMap((m, i): SpecIssue[] => {
    const tls = m?.tls;
    if (!tls) return [];
    const registry = m?.registry ?? registryOfUrl(m?.url) ?? 'REGISTRY';
    const endpointFix = (field: string): string =>
      `drop the mirror and give containerd an endpoint instead: spec.registries.hosts["${registry}"].endpoints: [{ url: ${m?.url ?? 'https://…'}, tls: { ${field} } }] (docs/registries.md#private-registries)`;
    const issues: SpecIssue[] = [];
    for (const key of ['certFile', 'keyFile'] as const) {
      if (tls[key] === undefined) continue;
      issues.push({
        path: mirrorPath(i, 'tls', key),
        message: 'registry:2 cannot present a client certificate to its upstream (its proxy has no such setting)',
        hint: endpointFix('certFile: ./client.pem, keyFile: ./client-key.pem'),
      });
    }
    if (tls.insecureSkipVerify === true)
      issues.push({
        path: mirrorPath(i, 'tls', 'insecureSkipVerify'),
        message: "registry:2 cannot skip verifying its upstream's certificate (its proxy always verifies)",
        hint: `give the upstream's CA as tls.caFile, or ${endpointFix('insecureSkipVerify: true')}`,
      });
    if (m?.url !== undefined && /^http:/i.test(m.url) && (tls.caFile !== undefined || tls.certFile !== undefined))
      issues.push({
        path: mirrorPath(i, 'tls'),
        message: `the upstream ${shown(m.url)} is plain http://, so there is no TLS to configure`,
        hint: 'use https:// in url, or remove tls',
      });
    return issues;
  });

function registryOfUrl(url: string | undefined): string | undefined {
  const checked = url === undefined ? undefined : checkMirrorUrl(url);
  return checked && 'url' in checked ? new URL(checked.url).host : undefined;
}

/** Keys of `hosts` are registry names containerd sees, or `"*"`; never lo's own registries. */
export const hostKeysAreRegistries: SpecRule = (doc, ctx) =>
  Object.keys(doc.spec?.registries?.hosts ?? {}).flatMap((key): SpecIssue[] => {
    if (key === WILDCARD_HOST) return [];
    const problem = registryNameProblem(key);
    if (problem)
      return [
        {
          path: hostPath(key),
          message: `${shown(key)} is not a registry name: ${problem}`,
          hint: 'use the name containerd sees (docker.io, harbor.corp.example:5000), or "*" for every registry',
        },
      ];
    if (ctx.ownSubnets.some((c) => inSubnet(key, c)))
      return [
        {
          path: hostPath(key),
          message: `${shown(key)} is an address inside lo's own registry subnets (${ctx.ownSubnets.join(', ')}); lo writes its hosts.toml`,
          hint: 'configure a registry outside those subnets',
        },
      ];
    if (key === BUILD_HOSTNAME || key === CACHE_HOSTNAME)
      return [
        {
          path: hostPath(key),
          message: `${shown(key)} is the project's own ${key === BUILD_HOSTNAME ? 'build' : 'cache'} registry; lo writes its hosts.toml`,
          hint: 'configure another registry',
        },
      ];
    return [];
  });

/** Each endpoint: a valid URL, TLS only on https://, a key with every certificate, headers from variables. */
export const endpointsAreValid: SpecRule = (doc) =>
  Object.entries(doc.spec?.registries?.hosts ?? {}).flatMap(([key, host]) =>
    (host?.endpoints ?? []).flatMap((e, i): SpecIssue[] => {
      if (!e) return [];
      const at = (...rest: Segment[]): Segment[] => hostPath(key, 'endpoints', i, ...rest);
      const issues: SpecIssue[] = [];
      const checked = e.url === undefined ? undefined : checkMirrorUrl(e.url);
      if (checked && 'message' in checked)
        issues.push({
          path: at('url'),
          message: checked.message,
          hint: checked.hint.replace(
            'credentials.usernameEnv / credentials.passwordEnv',
            'headers: { Authorization: { env: MY_AUTH_VAR } }',
          ),
        });
      const tls = e.tls ?? {};
      const plain = e.url !== undefined && /^http:/i.test(e.url);
      if (plain && (tls.caFile !== undefined || tls.certFile !== undefined || tls.insecureSkipVerify === true))
        issues.push({
          path: at('tls'),
          message: `${shown(e.url)} is plain http://, so there is no TLS to configure`,
          hint: 'use https:// in url, or remove tls',
        });
      if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
        const missing = tls.certFile === undefined ? 'certFile' : 'keyFile';
        issues.push({
          path: at('tls', missing),
          message: `${missing === 'certFile' ? 'keyFile' : 'certFile'} needs ${missing}: a client certificate is a certificate and its key`,
          hint: `add ${missing}: ./client${missing === 'keyFile' ? '-key' : ''}.pem`,
        });
      }
      for (const [name, value] of Object.entries(e.headers ?? {})) {
        if (!HEADER_NAME.test(name))
          issues.push({
            path: at('headers'),
            message: "has a header name that is not an HTTP token (letters, digits and !#$%&'*+.^_`|~-, at most 64)",
            hint: 'write a header name such as Authorization or X-JFrog-Art-Api',
          });
        const env = value?.env;
        if (env === undefined) continue;
        const fix = 'write the NAME of a variable, e.g. ART_AUTH, and export the header value in it';
        if (looksLikeToken(env))
          issues.push({ path: at('headers', name, 'env'), message: 'looks like a token or password, not a variable name', hint: fix });
        else if (!ENV_NAME.test(env))
          issues.push({
            path: at('headers', name, 'env'),
            message: 'is not an environment variable name (upper-case letters, digits and _, not starting with a digit)',
            hint: fix,
          });
      }
      return issues;
    }),
  );

/**
 * The endpoints of one entry are distinct URLs (after normalisation): hosts.toml has one `[host."<url>"]`
 * table per URL, so a second endpoint with the same URL would silently replace the first one's settings.
 */
export const endpointsAreDistinct: SpecRule = (doc) =>
  Object.entries(doc.spec?.registries?.hosts ?? {}).flatMap(([key, host]) => {
    const first = new Map<string, number>();
    return (host?.endpoints ?? []).flatMap((e, i): SpecIssue[] => {
      const checked = e?.url === undefined ? undefined : checkMirrorUrl(e.url);
      if (!checked || 'message' in checked) return [];
      const earlier = first.get(checked.url);
      if (earlier === undefined) {
        first.set(checked.url, i);
        return [];
      }
      return [
        {
          path: hostPath(key, 'endpoints', i, 'url'),
          message: `${shown(checked.url)} is also endpoints[${earlier}]: containerd's hosts.toml has one table per URL, so one would replace the other's settings`,
          hint: `merge the two into endpoints[${earlier}], or remove this one`,
        },
      ];
    });
  });

/**
 * Each rewrite rule (regex -> replacement on the repository name, K3s's `rewrite`): a regex that compiles in
 * JavaScript and means the same in Go's RE2, and a replacement naming only groups the regex has.
 */
export const rewritesAreValid: SpecRule = (doc) =>
  Object.entries(doc.spec?.registries?.hosts ?? {}).flatMap(([key, host]) =>
    Object.entries(host?.rewrite ?? {}).flatMap(([pattern, replacement]): SpecIssue[] => {
      if (typeof replacement !== 'string') return [];
      const problem = rewriteProblem(pattern, replacement);
      return problem ? [{ path: hostPath(key, 'rewrite', pattern), message: problem.message, hint: problem.hint }] : [];
    }),
  );

/** Every file the spec names for TLS, as the rules see it: path in the document and the file. */
function tlsFiles(doc: CheckedDoc): Array<{ path: Segment[]; file: string }> {
  const out: Array<{ path: Segment[]; file: string }> = [];
  const add = (tls: { caFile?: string; certFile?: string; keyFile?: string } | undefined, at: Segment[]): void => {
    for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
      const file = tls?.[key];
      if (typeof file === 'string' && file.length > 0) out.push({ path: [...at, key], file });
    }
  };
  (doc.spec?.registries?.mirrors ?? []).forEach((m, i) => add(m?.tls, mirrorPath(i, 'tls')));
  for (const [key, host] of Object.entries(doc.spec?.registries?.hosts ?? {}))
    (host?.endpoints ?? []).forEach((e, i) => add(e?.tls, hostPath(key, 'endpoints', i, 'tls')));
  return out;
}

/** Files named in the spec exist and can be read (checked when the spec is loaded from a file). */
export const tlsFilesAreReadable: SpecRule = (doc, ctx) => {
  const check = ctx.checkFile;
  if (!check) return [];
  return tlsFiles(doc).flatMap(({ path, file }): SpecIssue[] => {
    const problem = check(specFilePath(ctx.baseDir, file));
    return problem
      ? [{ path, message: `${shown(file)} ${problem}`, hint: "name a PEM file; a relative path is read from the spec file's directory" }]
      : [];
  });
};

export const ACCESS_RULES: readonly SpecRule[] = [
  mirrorCredentialsAreComplete,
  mirrorTlsIsPossible,
  hostKeysAreRegistries,
  endpointsAreValid,
  endpointsAreDistinct,
  rewritesAreValid,
  tlsFilesAreReadable,
];
