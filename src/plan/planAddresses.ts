import { DEFAULT_MIRRORS, HOST } from '../spec/constants.js';
import type { ClusterSpec, MirrorSpec } from '../spec/types.js';
import { PlanConflictError } from '../errors/loError.js';
import { hostAddress, hostPart, inSubnet, type ParsedCidr } from '../util/cidr.js';
import type { ObservedShared } from './types.js';

/**
 * Mirror addresses. On the shared network they must not depend on one project's list order, and running
 * mirrors keep theirs; in the project network they follow the canonical mirror order.
 */
export function planMirrorAddresses(
  spec: ClusterSpec,
  observed: ObservedShared,
  cidrs: { project: ParsedCidr; shared: ParsedCidr },
  strict: boolean,
  caDigests: UpstreamCaDigests = {},
): Map<string, string> {
  return spec.registries.shared.enabled
    ? allocateSharedIps(spec, observed, cidrs.shared, strict, caDigests)
    : allocateProjectIps(spec.registries.mirrors, cidrs.project);
}

/** sha256 (hex) of each mirror upstream CA file's content, by the file's path as the spec names it (absolute). */
export type UpstreamCaDigests = Readonly<Record<string, string>>;

/**
 * The `upstream-access` label of a mirror: `ca=sha256:<hex of the CA file's content>`, empty without a CA;
 * undefined when the spec names a CA whose content the planner was not given (then nothing is compared).
 * The CA's content only: never its path, never a credential.
 */
export function upstreamAccessLabel(m: Pick<MirrorSpec, 'tls'>, caDigests: UpstreamCaDigests): string | undefined {
  const ca = m.tls?.caFile;
  if (!ca) return '';
  const digest = caDigests[ca];
  return digest ? `ca=sha256:${digest}` : undefined;
}

/** `upstream CA sha256:0123456789abcdef…` or `no upstream CA`, from an upstream-access label. */
function describeUpstreamAccess(label: string): string {
  const m = /^ca=sha256:([0-9a-f]{64})$/.exec(label);
  if (m) return `upstream CA sha256:${m[1]!.slice(0, 16)}…`;
  return label === '' ? 'no upstream CA' : `upstream access ${label}`;
}

/** Default mirrors first in their fixed order, then the rest by name: independent of the spec's list order. */
export function canonicalMirrorOrder<T extends { name: string }>(mirrors: readonly T[]): T[] {
  const rank = (name: string): number => {
    const i = DEFAULT_MIRRORS.findIndex((d) => d.name === name);
    return i === -1 ? DEFAULT_MIRRORS.length : i;
  };
  return [...mirrors].sort((a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * `USER_VAR/PASS_VAR` (`USER_VAR/token:TOKEN_VAR`, `token:TOKEN_VAR` with a token), or empty without
 * credentials: names only, never values.
 */
export function credentialsLabel(c: MirrorSpec['credentials']): string {
  if (!c) return '';
  const secret = c.passwordEnv ?? `token:${c.tokenEnv ?? ''}`;
  return c.usernameEnv ? `${c.usernameEnv}/${secret}` : secret;
}

/** The variables a mirror's credentials are read from, e.g. `$CORP_USER and $CORP_PASS`. */
export function credentialVariables(c: NonNullable<MirrorSpec['credentials']>): string {
  return [c.usernameEnv, c.passwordEnv, c.tokenEnv]
    .filter((v) => v !== undefined)
    .map((v) => `$${v}`)
    .join(' and ');
}

function allocateSharedIps(
  spec: ClusterSpec,
  observed: ObservedShared,
  shared: ParsedCidr,
  strict: boolean,
  caDigests: UpstreamCaDigests,
): Map<string, string> {
  const scheme = spec.registries.tls ? 'https' : 'http';
  const running = new Map(observed.mirrors.map((m) => [m.name, m]));
  const mismatched = observed.mirrors.find((m) => m.scheme && m.scheme !== scheme);
  if (strict && mismatched && spec.registries.mirrors.length > 0) {
    const theirs = mismatched.scheme === 'https' ? 'true' : 'false';
    throw new PlanConflictError(
      `${spec.file}: spec.registries.tls is ${spec.registries.tls} but the shared mirrors already run with tls: ${theirs} (mirror ${mismatched.name}${mismatched.project ? `, created by project ${mismatched.project}` : ''})`,
      `set spec.registries.tls: ${theirs} to use the running mirrors, or recreate them with \`lo registry clean --shared\`, or set spec.registries.shared.enabled: false`,
    );
  }
  const taken = new Set<number>(
    [...observed.mirrors.map((m) => m.ip), ...(observed.usedAddresses ?? [])]
      .filter((ip) => inSubnet(ip, `${shared.network}/24`))
      .map(hostPart),
  );
  const ips = new Map<string, string>();
  for (const m of canonicalMirrorOrder(spec.registries.mirrors)) {
    const existing = running.get(m.name);
    if (existing) {
      if (strict) checkSameMirror(spec, m, existing, caDigests);
      ips.set(m.name, existing.ip);
      continue;
    }
    let host: number = HOST.sharedMirrorFirst;
    while (taken.has(host) && host <= HOST.staticLast) host++;
    if (host > HOST.staticLast) {
      throw new PlanConflictError(
        `${spec.file}: spec.registries.mirrors[${spec.registries.mirrors.indexOf(m)}]: no free shared mirror address for "${m.name}": .${HOST.sharedMirrorFirst}-.${HOST.staticLast} of ${shared.network}/24 are all in use`,
        'remove unused shared mirrors with `lo registry clean --shared`, or set spec.registries.shared.enabled: false',
      );
    }
    taken.add(host);
    ips.set(m.name, hostAddress(shared.base, host));
  }
  return ips;
}

function checkSameMirror(
  spec: ClusterSpec,
  m: MirrorSpec,
  existing: ObservedShared['mirrors'][number],
  caDigests: UpstreamCaDigests,
): void {
  const norm = (u: string): string => u.replace(/\/+$/, '');
  const owner = existing.project ? `project ${existing.project}` : 'another project';
  const at = `spec.registries.mirrors[${spec.registries.mirrors.indexOf(m)}]`;
  if (norm(existing.url) !== norm(m.url)) {
    throw new PlanConflictError(
      `${spec.file}: ${at}.url: shared mirror "${m.name}" already runs for ${owner} with url ${existing.url}; this spec asks for ${m.url}`,
      `use url ${existing.url} for "${m.name}", give this mirror another name, or set spec.registries.shared.enabled: false`,
    );
  }
  if (existing.registry && existing.registry !== m.registry) {
    throw new PlanConflictError(
      `${spec.file}: ${at}.registry: shared mirror "${m.name}" already runs for ${owner} as registry ${existing.registry}; this spec says ${m.registry}`,
      `use registry ${existing.registry} for "${m.name}", or give this mirror another name`,
    );
  }
  // Mirrors with different credentials would recreate each other on every `up` of either project.
  if (existing.credentials !== undefined && existing.credentials !== credentialsLabel(m.credentials)) {
    const theirs = existing.credentials
      ? `credentials from $${existing.credentials.replace('/', ' and $').replace('token:', '')}`
      : 'no credentials';
    const ours = m.credentials ? `credentials from ${credentialVariables(m.credentials)}` : 'no credentials';
    throw new PlanConflictError(
      `${spec.file}: ${at}.credentials: shared mirror "${m.name}" already runs for ${owner} with ${theirs}; this spec asks for ${ours}`,
      `use the same credentials variables for "${m.name}" in both specs, give this mirror another name, or set spec.registries.shared.enabled: false`,
    );
  }
  // Another CA would either be ignored (the running mirror reused: pulls fail against this project's
  // upstream) or recreate the mirror with it (the other project's pulls fail): both silently. Compared by
  // content, so the same CA at two paths is the same mirror. Mirrors made before the label are not compared.
  const ours = upstreamAccessLabel(m, caDigests);
  if (existing.upstreamAccess !== undefined && ours !== undefined && existing.upstreamAccess !== ours) {
    const asked = m.tls?.caFile ? `names ${m.tls.caFile} (${describeUpstreamAccess(ours)})` : 'names no upstream CA';
    throw new PlanConflictError(
      `${spec.file}: ${at}.tls.caFile: shared mirror "${m.name}" already runs for ${owner} with ${describeUpstreamAccess(existing.upstreamAccess)}; this spec ${asked}`,
      `give "${m.name}" the same CA (the same file content) in both specs' tls.caFile, give this mirror another name, or set spec.registries.shared.enabled: false; to move every project to the new CA, remove the running mirror first with \`lo registry down --shared\` (its cache volume is kept)`,
    );
  }
}

function allocateProjectIps(mirrors: MirrorSpec[], project: ParsedCidr): Map<string, string> {
  const ips = new Map<string, string>();
  canonicalMirrorOrder(mirrors).forEach((m, i) => ips.set(m.name, hostAddress(project.base, HOST.projectMirrorFirst + i)));
  return ips;
}
