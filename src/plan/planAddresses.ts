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
): Map<string, string> {
  return spec.registries.shared.enabled
    ? allocateSharedIps(spec, observed, cidrs.shared, strict)
    : allocateProjectIps(spec.registries.mirrors, cidrs.project);
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

function allocateSharedIps(spec: ClusterSpec, observed: ObservedShared, shared: ParsedCidr, strict: boolean): Map<string, string> {
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
      if (strict) checkSameMirror(spec, m, existing);
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

function checkSameMirror(spec: ClusterSpec, m: MirrorSpec, existing: ObservedShared['mirrors'][number]): void {
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
}

function allocateProjectIps(mirrors: MirrorSpec[], project: ParsedCidr): Map<string, string> {
  const ips = new Map<string, string>();
  canonicalMirrorOrder(mirrors).forEach((m, i) => ips.set(m.name, hostAddress(project.base, HOST.projectMirrorFirst + i)));
  return ips;
}
