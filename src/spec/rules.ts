import ipaddr from 'ipaddr.js';
import { cidrsOverlap, inSubnet, isProblem, parseSubnet24 } from '../util/cidr.js';
import {
  BUILD_HOSTNAME,
  CACHE_HOSTNAME,
  DEFAULT_DOMAIN,
  DOCKER_RESERVED_NETWORKS,
  HOST,
  KIND_POD_SUBNET,
  KIND_SERVICE_SUBNET,
  NODE_PORTS,
  RESERVED_MIRROR_NAMES,
  SHARED_MIRROR_PREFIX,
} from './constants.js';
import { defaultP2PEnabled } from './defaults.js';
import { shown } from './display.js';
import { defaultRegistryFor, SPEC_DEFAULTS } from './defaults.js';
import { slotOf, slotSubnet, type SlotResult } from './slot.js';
import type { CheckedDoc, SpecIssue } from './specDoc.js';
import type { Segment } from './yamlPosition.js';

/** Environment variable names lo reads credentials from: upper case, digits and underscores (POSIX). */
export const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** A DNS label: 1-63 lower-case letters, digits and inner dashes. */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** What the rules share: the resolved domain and subnets, and what the file itself says. */
export interface RuleContext {
  /** Domain of the directory the file was found under, if any. */
  dirDomain?: string;
  domain: string;
  slot: SlotResult;
  /** The project /24: spec.network.cidr, else the slot's subnet. */
  projectCidr?: string;
  sharedEnabled: boolean;
  sharedCidr: string;
  /** The project and (when enabled) shared subnets that are valid /24s. */
  ownSubnets: string[];
  /** Whether the file writes this path (rather than it coming from a default). */
  wrote(path: Segment[]): boolean;
  /** Directory relative file paths (tls.caFile, ...) are read from: the spec file's. */
  baseDir: string;
  /** Why a file named in the spec cannot be read (undefined: it can); absent: files are not checked (pure parse). */
  checkFile?: (absolutePath: string) => string | undefined;
}

/** A cross-field rule: reads the checked document and returns its issues, each with its YAML path. */
export type SpecRule = (doc: CheckedDoc, ctx: RuleContext) => SpecIssue[];

const valid24 = (cidr: string | undefined): cidr is string => typeof cidr === 'string' && !isProblem(parseSubnet24(cidr));

export function ruleContext(
  doc: CheckedDoc,
  dirDomain: string | undefined,
  wrote: (path: Segment[]) => boolean,
  files: Pick<RuleContext, 'baseDir' | 'checkFile'> = { baseDir: '.' },
): RuleContext {
  const domain = doc.spec?.cluster?.domain ?? dirDomain ?? DEFAULT_DOMAIN;
  const slot = slotOf(domain);
  const network = doc.spec?.network;
  const projectCidr = network?.cidr ?? (slot.slot !== null ? slotSubnet(slot.slot) : undefined);
  const shared = doc.spec?.registries?.shared;
  const sharedEnabled = shared?.enabled !== false;
  const sharedCidr = shared?.network?.cidr ?? SPEC_DEFAULTS.sharedNetwork.cidr;
  const ownSubnets = [projectCidr, sharedEnabled ? sharedCidr : undefined].filter(valid24);
  return { ...(dirDomain ? { dirDomain } : {}), domain, slot, projectCidr, sharedEnabled, sharedCidr, ownSubnets, wrote, ...files };
}

export const domainMatchesDirectory: SpecRule = (doc, ctx) => {
  const written = doc.spec?.cluster?.domain;
  if (!written || !ctx.dirDomain || written === ctx.dirDomain) return [];
  return [
    {
      path: ['spec', 'cluster', 'domain'],
      message: `says "${written}" but the file is under clusters/${ctx.dirDomain}/`,
      hint: `set it to ${ctx.dirDomain} or move the file to clusters/${written}/`,
    },
  ];
};

/** A lok8s.dev domain must be a valid slot; any other domain brings its own network. */
export const domainHasSubnet: SpecRule = (doc, ctx) => {
  if (ctx.slot.slot !== null) return [];
  if (ctx.slot.problem)
    return [{ path: doc.spec?.cluster?.domain ? ['spec', 'cluster', 'domain'] : [], message: ctx.slot.problem, hint: ctx.slot.hint }];
  if (doc.spec?.network) return [];
  return [
    {
      path: ['spec', 'network'],
      message: `domain "${ctx.domain}" has no lok8s slot, so the project network must be given`,
      hint: 'add spec.network with name (at most 15 characters) and cidr (a /24 such as 10.126.1.0/24)',
    },
  ];
};

export const subnetsAreAligned24: SpecRule = (doc) => [
  ...cidrIssues(['spec', 'network', 'cidr'], doc.spec?.network?.cidr),
  ...cidrIssues(['spec', 'registries', 'shared', 'network', 'cidr'], doc.spec?.registries?.shared?.network?.cidr),
];

export const subnetsDoNotOverlap: SpecRule = (doc, ctx) => {
  if (!ctx.sharedEnabled || !valid24(ctx.sharedCidr) || !valid24(ctx.projectCidr)) return [];
  if (!cidrsOverlap(ctx.projectCidr, ctx.sharedCidr)) return [];
  return [
    {
      path: doc.spec?.network ? ['spec', 'network', 'cidr'] : ['spec', 'registries', 'shared', 'network', 'cidr'],
      message: `project subnet ${ctx.projectCidr} overlaps the shared registry subnet ${ctx.sharedCidr}`,
      hint: 'give the project and the shared network different /24 subnets',
    },
  ];
};

export const networkNamesDiffer: SpecRule = (doc, ctx) => {
  const network = doc.spec?.network;
  const projectName = network?.name ?? doc.metadata?.name;
  const sharedName = doc.spec?.registries?.shared?.network?.name ?? SPEC_DEFAULTS.sharedNetwork.name;
  if (!ctx.sharedEnabled || !projectName || projectName !== sharedName) return [];
  return [
    {
      path: network ? ['spec', 'network', 'name'] : ['metadata', 'name'],
      message: `project network "${projectName}" has the same name as the shared registry network`,
      hint: 'choose another project network name',
    },
  ];
};

/** Docker's own networks (bridge, host, none) cannot be a project or shared network. */
export const networkNamesAreFree: SpecRule = (doc) => {
  const reserved = (name: string | undefined): boolean =>
    name !== undefined && (DOCKER_RESERVED_NETWORKS as readonly string[]).includes(name.toLowerCase());
  const issue = (path: Segment[], name: string, fix: string): SpecIssue => ({
    path,
    message: `"${name}" is one of Docker's own networks (${DOCKER_RESERVED_NETWORKS.join(', ')})`,
    hint: fix,
  });
  const issues: SpecIssue[] = [];
  const network = doc.spec?.network;
  if (network?.name !== undefined && reserved(network.name))
    issues.push(issue(['spec', 'network', 'name'], network.name, 'choose another network name, e.g. the project name'));
  // Without spec.network the project network is named after the project.
  if (!network && reserved(doc.metadata?.name))
    issues.push(issue(['metadata', 'name'], doc.metadata!.name!, 'choose another project name, or give spec.network.name'));
  // Registry containers are `<project network>-registry-<role>` and `<project network>-mirror-<mirror>`; shared
  // mirrors are `lok8s-registry-<mirror>`. A project network named `lok8s-registry…` is the only way the two
  // could meet (a project network `lok8s-registry-x` would own `lok8s-registry-x-registry-build`, the name of
  // a shared mirror called `x-registry-build`), so it is refused.
  const projectNet = network?.name ?? doc.metadata?.name;
  if (typeof projectNet === 'string' && projectNet.toLowerCase().startsWith(`${SHARED_MIRROR_PREFIX}-registry`))
    issues.push({
      path: network?.name !== undefined ? ['spec', 'network', 'name'] : ['metadata', 'name'],
      message: `project network "${projectNet}" starts with "${SHARED_MIRROR_PREFIX}-registry", the prefix of the shared mirror containers`,
      hint:
        network?.name !== undefined
          ? 'choose another network name, e.g. the project name'
          : 'choose another project name, or give spec.network.name',
    });
  const shared = doc.spec?.registries?.shared?.network?.name;
  if (reserved(shared))
    issues.push(
      issue(['spec', 'registries', 'shared', 'network', 'name'], shared!, `choose another name, e.g. ${SPEC_DEFAULTS.sharedNetwork.name}`),
    );
  return issues;
};

const mirrorPath = (i: number, ...rest: Segment[]): Segment[] => ['spec', 'registries', 'mirrors', i, ...rest];

export const mirrorNamesAreFree: SpecRule = (doc) => {
  const issues: SpecIssue[] = [];
  const names = new Map<string, number>();
  (doc.spec?.registries?.mirrors ?? []).forEach((m, i) => {
    if (m?.name === undefined) return;
    if ((RESERVED_MIRROR_NAMES as readonly string[]).includes(m.name)) {
      issues.push({
        path: mirrorPath(i, 'name'),
        message: `"${m.name}" is reserved for the project's ${m.name} registry`,
        hint: 'choose another mirror name, e.g. io-example',
      });
    }
    const prev = names.get(m.name);
    if (prev === undefined) names.set(m.name, i);
    else
      issues.push({
        path: mirrorPath(i, 'name'),
        message: `duplicate mirror name "${m.name}" (also mirrors[${prev}])`,
        hint: 'give every mirror its own name',
      });
  });
  return issues;
};

export const mirrorUrlsAreValid: SpecRule = (doc) =>
  (doc.spec?.registries?.mirrors ?? []).flatMap((m, i) => {
    const checked = m?.url === undefined ? undefined : checkMirrorUrl(m.url);
    return checked && 'message' in checked ? [{ path: mirrorPath(i, 'url'), ...checked }] : [];
  });

/** The registry each mirror serves (written, or derived from a valid URL) must be free and outside lo's own. */
export const mirrorRegistriesAreValid: SpecRule = (doc, ctx) => {
  const issues: SpecIssue[] = [];
  const registries = new Map<string, number>();
  (doc.spec?.registries?.mirrors ?? []).forEach((m, i) => {
    if (!m) return;
    const written = m.registry !== undefined;
    const url = m.url === undefined ? undefined : checkMirrorUrl(m.url);
    const registry = m.registry ?? (m.name !== undefined && url && 'url' in url ? defaultRegistryFor(m.name, url.url) : undefined);
    if (!registry) return;
    const at = mirrorPath(i, written ? 'registry' : 'url');
    // A derived name goes through the same check: it becomes a certs.d directory name.
    const nameProblem = registryNameProblem(registry);
    if (nameProblem) {
      issues.push({
        path: at,
        message: written
          ? `${shown(registry)} is not a registry host name: ${nameProblem}`
          : `its registry name ${shown(registry)} ${nameProblem}`,
        hint: written
          ? 'write the name containerd sees, e.g. docker.io or registry.example.com:5000'
          : 'use a URL whose host is a DNS name or dotted-quad address, or write registry: explicitly',
      });
      return;
    }
    // A bare address inside our own subnets would share its certs.d directory with a registry address.
    if (ctx.ownSubnets.some((c) => inSubnet(registry, c))) {
      issues.push({
        path: at,
        message: `"${registry}" is an address inside lo's own registry subnets (${ctx.ownSubnets.join(', ')})`,
        hint: 'mirror a registry outside those subnets',
      });
    }
    if (registry === BUILD_HOSTNAME || registry === CACHE_HOSTNAME) {
      issues.push({
        path: at,
        message: `"${registry}" is the project's own ${registry === BUILD_HOSTNAME ? 'build' : 'cache'} registry and cannot be mirrored`,
        hint: 'mirror another registry',
      });
    }
    const prev = registries.get(registry);
    if (prev === undefined) registries.set(registry, i);
    else
      issues.push({
        path: at,
        message: `registry "${registry}" is already mirrored by mirrors[${prev}]`,
        hint: 'keep one mirror per registry',
      });
  });
  return issues;
};

export const mirrorCredentialsAreNames: SpecRule = (doc) =>
  (doc.spec?.registries?.mirrors ?? []).flatMap((m, i) =>
    (['usernameEnv', 'passwordEnv', 'tokenEnv'] as const).flatMap((key) => {
      const v = m?.credentials?.[key];
      if (v === undefined) return [];
      const example = key === 'usernameEnv' ? 'REGISTRY_USER' : key === 'passwordEnv' ? 'REGISTRY_PASSWORD' : 'REGISTRY_TOKEN';
      // The value is never echoed: it may be the secret itself.
      const fix = `write the NAME of a variable, e.g. ${example}, and export the secret in it`;
      if (looksLikeToken(v))
        return [{ path: mirrorPath(i, 'credentials', key), message: 'looks like a token or password, not a variable name', hint: fix }];
      if (ENV_NAME.test(v)) return [];
      return [
        {
          path: mirrorPath(i, 'credentials', key),
          message: 'is not an environment variable name (upper-case letters, digits and _, not starting with a digit)',
          hint: fix,
        },
      ];
    }),
  );

/** Mirrors get static addresses below Docker's dynamic range: on the shared network, or on the project subnet. */
export const mirrorsFit: SpecRule = (doc, ctx) => {
  const mirrors = doc.spec?.registries?.mirrors;
  const first = ctx.sharedEnabled ? HOST.sharedMirrorFirst : HOST.projectMirrorFirst;
  const capacity = HOST.staticLast - first + 1;
  if (!mirrors || mirrors.length <= capacity) return [];
  const where = ctx.sharedEnabled ? 'the shared network has' : 'the project subnet has';
  return [
    {
      path: ['spec', 'registries', 'mirrors'],
      message: `${mirrors.length} mirrors do not fit: ${where} ${capacity} mirror addresses (.${first}-.${HOST.staticLast})`,
      hint: ctx.sharedEnabled ? 'remove mirrors' : 'remove mirrors or set registries.shared.enabled: true',
    },
  ];
};

export const hostPortsAreValid: SpecRule = (doc) => {
  const issues: SpecIssue[] = [];
  const seen = new Map<string, number>();
  (doc.spec?.nodes?.hostPorts ?? []).forEach((p, i) => {
    if (p?.listenAddress !== undefined && !isListenAddress(p.listenAddress)) {
      const readAs = ipaddr.IPv4.isValid(p.listenAddress)
        ? ` (a legacy form, read as ${ipaddr.IPv4.parse(p.listenAddress).toString()})`
        : '';
      issues.push({
        path: ['spec', 'nodes', 'hostPorts', i, 'listenAddress'],
        message: `${shown(p.listenAddress)} is not a dotted-quad IPv4 or an IPv6 address${readAs}`,
        hint: 'write 127.0.0.1 (local only) or 0.0.0.0 (all interfaces)',
      });
    }
    if (p?.hostPort === undefined) return;
    const key = `${p.listenAddress ?? SPEC_DEFAULTS.hostPort.listenAddress}:${p.hostPort}/${p.protocol ?? SPEC_DEFAULTS.hostPort.protocol}`;
    const prev = seen.get(key);
    if (prev === undefined) seen.set(key, i);
    else
      issues.push({
        path: ['spec', 'nodes', 'hostPorts', i, 'hostPort'],
        message: `host port ${key} is already mapped by hostPorts[${prev}]`,
        hint: 'use another host port',
      });
  });
  return issues;
};

const PORT_NAMES = { port: 'registry port (p2p.port)', routerPort: 'libp2p port (p2p.routerPort)', dataPort: 'data port (p2p.dataPort)' };
const P2P_PORT_KEYS = ['port', 'routerPort', 'metricsPort', 'dataPort'] as const;

/** The agent's four ports (registry, libp2p, metrics, data) must be four different ports. */
export const p2pPortsDiffer: SpecRule = (doc, ctx) => {
  const p2p = doc.spec?.registries?.p2p;
  if (!p2p) return [];
  const value = (k: (typeof P2P_PORT_KEYS)[number]): number => p2p[k] ?? SPEC_DEFAULTS.p2p[k];
  const issues: SpecIssue[] = [];
  P2P_PORT_KEYS.forEach((a, i) => {
    for (const b of P2P_PORT_KEYS.slice(i + 1)) {
      if (value(a) !== value(b) || (p2p[a] === undefined && p2p[b] === undefined)) continue;
      // Point at the one the user wrote (the later key when both are written).
      const written = ctx.wrote(['spec', 'registries', 'p2p', b]) ? b : a;
      const d = SPEC_DEFAULTS.p2p;
      issues.push({
        path: ['spec', 'registries', 'p2p', written],
        message: `${b} ${value(a)} is the same as p2p.${a}`,
        hint: `use different ports (defaults: port ${d.port}, routerPort ${d.routerPort}, metricsPort ${d.metricsPort}, dataPort ${d.dataPort})`,
      });
    }
  });
  return issues;
};

/**
 * The agent listens in the node's network namespace (host network of the node): its ports must not be
 * ones Kubernetes already listens on there, and no host port may forward onto them.
 */
export const p2pPortsAreFree: SpecRule = (doc) => {
  const p2p = doc.spec?.registries?.p2p;
  const ports = { port: p2p?.port, routerPort: p2p?.routerPort, dataPort: p2p?.dataPort };
  const issues: SpecIssue[] = [];
  for (const [key, port] of Object.entries({ ...ports, metricsPort: p2p?.metricsPort })) {
    if (port === undefined || NODE_PORTS[port] === undefined) continue;
    issues.push({
      path: ['spec', 'registries', 'p2p', key],
      message: `${port} is already taken by ${NODE_PORTS[port]} inside every kind node`,
      hint: `use a free port, e.g. the default ${SPEC_DEFAULTS.p2p[key as (typeof P2P_PORT_KEYS)[number]]}`,
    });
  }
  const nodes = doc.spec?.nodes;
  const enabled = p2p?.enabled ?? defaultP2PEnabled({ controlPlane: nodes?.controlPlane ?? 1, workers: nodes?.workers ?? 0 });
  if (!enabled) return issues;
  (nodes?.hostPorts ?? []).forEach((h, i) => {
    const hit = Object.entries(ports).find(([, port]) => port !== undefined && h?.containerPort === port);
    if (!hit) return;
    issues.push({
      path: ['spec', 'nodes', 'hostPorts', i, 'containerPort'],
      message: `${hit[1]} is the P2P agent's ${PORT_NAMES[hit[0] as keyof typeof PORT_NAMES]}: the host would reach the agent`,
      hint: 'map another container port, or move the agent with registries.p2p.port / routerPort / dataPort',
    });
  });
  return issues;
};

/** p2p.resolveTags names registries lo mirrors (the agent is only asked for those). */
export const resolveTagsAreMirrored: SpecRule = (doc) => {
  const list = doc.spec?.registries?.p2p?.resolveTags;
  if (!Array.isArray(list)) return [];
  const mirrors = doc.spec?.registries?.mirrors ?? [];
  const known = new Set(mirrors.map((m) => m?.registry ?? (m?.name && m.url ? defaultRegistryFor(m.name, m.url) : undefined)));
  // Without mirrors in the document the defaults apply (docker.io, quay.io, registry.k8s.io, ghcr.io).
  if (doc.spec?.registries?.mirrors === undefined) for (const m of SPEC_DEFAULTS.mirrors) known.add(defaultRegistryFor(m.name, m.url));
  return list.flatMap((r, i) =>
    typeof r === 'string' && !known.has(r)
      ? [
          {
            path: ['spec', 'registries', 'p2p', 'resolveTags', i],
            message: `${shown(r)} is not a mirrored registry (${[...known].filter(Boolean).sort().join(', ') || 'none'})`,
            hint: 'name the registry of one of spec.registries.mirrors, or write true for all of them',
          },
        ]
      : [],
  );
};

/** Every cross-field rule, in the order their issues read within one line. */
export const SPEC_RULES: readonly SpecRule[] = [
  domainMatchesDirectory,
  domainHasSubnet,
  subnetsAreAligned24,
  subnetsDoNotOverlap,
  networkNamesDiffer,
  networkNamesAreFree,
  mirrorNamesAreFree,
  mirrorUrlsAreValid,
  mirrorRegistriesAreValid,
  mirrorCredentialsAreNames,
  mirrorsFit,
  hostPortsAreValid,
  p2pPortsDiffer,
  p2pPortsAreFree,
  resolveTagsAreMirrored,
];

/** Address ranges a Docker network subnet cannot usefully take, with the reason. */
const UNUSABLE_RANGES: ReadonlyArray<[string, string]> = [
  ['0.0.0.0/8', 'is "this network" (0.0.0.0/8), which no host can be on'],
  ['127.0.0.0/8', 'is loopback (127.0.0.0/8): every container has its own'],
  ['169.254.0.0/16', 'is link-local (169.254.0.0/16), not routed'],
  ['224.0.0.0/4', 'is multicast (224.0.0.0/4)'],
  ['240.0.0.0/4', 'is reserved (240.0.0.0/4) and the broadcast address'],
];

function cidrIssues(path: Segment[], cidr: string | undefined): SpecIssue[] {
  if (cidr === undefined) return [];
  const parsed = parseSubnet24(cidr);
  if (isProblem(parsed)) return [cidrProblem(path, cidr, parsed)];
  const [bad, why] = UNUSABLE_RANGES.find(([range]) => cidrsOverlap(cidr, range)) ?? [];
  if (bad) return [{ path, message: `${shown(cidr)} ${why}`, hint: 'use a private /24 such as 10.126.1.0/24' }];
  const kind = [KIND_POD_SUBNET, KIND_SERVICE_SUBNET].find((range) => cidrsOverlap(cidr, range));
  if (kind) {
    const what = kind === KIND_POD_SUBNET ? 'pod' : 'service';
    return [
      {
        path,
        message: `${shown(cidr)} overlaps the kind ${what} subnet ${kind} that lo writes into the kind config`,
        hint: `use a /24 outside ${KIND_POD_SUBNET} and ${KIND_SERVICE_SUBNET}, e.g. 10.126.1.0/24`,
      },
    ];
  }
  return [];
}

function cidrProblem(path: Segment[], cidr: string, parsed: Exclude<ReturnType<typeof parseSubnet24>, { base: string }>): SpecIssue {
  switch (parsed.kind) {
    case 'invalid':
      return { path, message: `${shown(cidr)} is not an IPv4 CIDR`, hint: 'write a /24 such as 10.125.50.0/24' };
    case 'legacy':
      return {
        path,
        message: `${shown(cidr)} is not dotted-quad decimal (leading zeros are octal, hex and short forms are read as ${parsed.readAs})`,
        hint: 'write four decimal numbers without leading zeros and the prefix, e.g. 10.126.1.0/24',
      };
    case 'not-aligned': {
      const network = `${parsed.network}/${parsed.prefix}`;
      return { path, message: `${shown(cidr)} has host bits set; the network address is ${network}`, hint: `write ${network}` };
    }
    case 'prefix':
      return {
        path,
        message: `${shown(cidr)} is a /${parsed.prefix}; registry addresses need a /24`,
        hint: 'use a /24 such as 10.125.50.0/24',
      };
  }
}

/** Only dotted-quad decimal IPv4, or IPv6 (written with colons, no zone). */
function isListenAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || (text.includes(':') && !text.includes('%') && ipaddr.IPv6.isValid(text));
}

/** Why `name` (host[:port]) cannot be a registry name, i.e. a certs.d directory; undefined when it can. */
export function registryNameProblem(name: string): string | undefined {
  const m = /^([^:]*)(?::([0-9]+))?$/.exec(name);
  if (!m) return 'has an unexpected ":" (IPv6 registry names are not supported)';
  const [, host, port] = m as unknown as [string, string, string | undefined];
  if (port !== undefined && (!/^[1-9][0-9]{0,4}$/.test(port) || Number(port) > 65535)) return `has port ${shown(port)} (use 1-65535)`;
  if (host.length === 0) return 'has no host';
  if (host.length > 253) return 'is longer than 253 characters';
  const labels = host.split('.');
  if (labels.some((l) => l.length === 0)) return 'has an empty label (".." or a leading or trailing dot)';
  const bad = labels.find((l) => !DNS_LABEL.test(l));
  if (bad !== undefined) return `has the label ${shown(bad)} (DNS labels: a-z, 0-9 and inner dashes, at most 63)`;
  // A name whose last label is numeric is an address: only dotted-quad decimal is one.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!) && !ipaddr.IPv4.isValidFourPartDecimal(host)) {
    return 'is numeric but not a dotted-quad address';
  }
  return undefined;
}

/** Known token prefixes (GitHub, GitLab, AWS, Slack, Docker Hub, npm, PyPI, OpenAI-style keys, JWTs). */
const TOKEN_PREFIX = /^(gh[pousr]_|github_pat_|glpat-|gldt-|AKIA|ASIA|xox[abprs]-|dckr_pat_|npm_|pypi-|sk-|eyJ)/;

/** Whether a credentials value looks like a secret itself rather than the name of a variable holding one. */
export function looksLikeToken(value: string): boolean {
  if (TOKEN_PREFIX.test(value)) return true;
  // Long strings mixing lower case, upper case and digits are tokens, not variable names.
  return value.length >= 20 && /[a-z]/.test(value) && /[A-Z]/.test(value) && /[0-9]/.test(value);
}

/**
 * Checks a mirror URL and returns its normalised form (scheme://host[:port][/path], no trailing slash), or
 * the problem. The raw text must be what the URL parser read: no whitespace or control characters (the
 * parser silently drops TAB and LF), no `?` or `#` (even empty), no port 0, and a host that is a DNS name or a
 * dotted-quad address (the parser turns `010.1.1.1` or `0x7f.1` into another address).
 */
export function checkMirrorUrl(raw: string): { url: string } | { message: string; hint: string } {
  const cut = shown(raw);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f]/.test(raw))
    return { message: `${cut} contains a space, tab, line break or control character`, hint: 'write the URL on one line without spaces' };
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(raw);
  if (!m) return { message: `${cut} has no scheme`, hint: `write https://${raw.length > 60 ? 'host' : raw}` };
  const [, scheme, authority, path] = m as unknown as [string, string, string, string];
  if (!/^https?$/i.test(scheme)) return { message: `scheme ${shown(scheme)} is not supported`, hint: 'use http:// or https://' };
  if (authority.includes('@')) {
    return {
      message: 'contains a user name or password (a literal secret)',
      hint: 'remove it from the URL and use credentials.usernameEnv / credentials.passwordEnv',
    };
  }
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { message: `${cut} is not a valid URL`, hint: 'write https://host[:port]' };
  }
  if (raw.includes('?') || raw.includes('#'))
    return { message: 'must not have a query or fragment (not even an empty ? or #)', hint: `write ${u.protocol}//${u.host}` };
  const [, hostText, portText] = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority) ?? [];
  if (portText !== undefined && !/^[0-9]+$/.test(portText))
    return { message: `${cut} has an empty or non-numeric port`, hint: 'write host:port with a port from 1 to 65535, or no colon' };
  if (portText !== undefined && Number(portText) === 0)
    return { message: `${cut} has port 0`, hint: 'write a port from 1 to 65535, or none for the default' };
  const hostname = hostText ?? '';
  const host = hostname.toLowerCase();
  if (!host.startsWith('[')) {
    const labels = host.split('.');
    const numeric = /^[0-9]+$/.test(labels[labels.length - 1] ?? '') || /^0x/i.test(labels[labels.length - 1] ?? '');
    if (numeric && !ipaddr.IPv4.isValidFourPartDecimal(host))
      return {
        message: `${cut}: host ${shown(hostname)} is not a dotted-quad address (the URL parser reads it as ${u.hostname})`,
        hint: 'write the address as four decimal numbers without leading zeros',
      };
    if (!numeric && (host.length > 253 || !labels.every((l) => DNS_LABEL.test(l))))
      return {
        message: `${cut}: host ${shown(hostname)} is not a DNS name (empty label, leading or trailing dash, or other characters)`,
        hint: 'write the registry host name, e.g. https://registry.example.com',
      };
  }
  if (u.hostname !== host)
    return { message: `${cut}: the URL parser reads the host as ${shown(u.hostname)}`, hint: `write ${u.protocol}//${u.host}` };
  if (u.pathname.replace(/\/+$/, '') !== path.replace(/\/+$/, ''))
    return {
      message: `${cut}: the URL parser reads the path as ${shown(u.pathname)}`,
      hint: `write ${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`,
    };
  return { url: `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}` };
}
