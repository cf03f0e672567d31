import ipaddr from 'ipaddr.js';
import { cidrsOverlap, inSubnet, isProblem, parseSubnet24 } from '../util/cidr.js';
import { BUILD_HOSTNAME, CACHE_HOSTNAME, DEFAULT_DOMAIN, HOST, RESERVED_MIRROR_NAMES } from './constants.js';
import { defaultRegistryFor, SPEC_DEFAULTS } from './defaults.js';
import { slotOf, slotSubnet, type SlotResult } from './slot.js';
import type { CheckedDoc, SpecIssue } from './specDoc.js';
import type { Segment } from './yamlPosition.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REGISTRY_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$/;

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
}

/** A cross-field rule: reads the checked document and returns its issues, each with its YAML path. */
export type SpecRule = (doc: CheckedDoc, ctx: RuleContext) => SpecIssue[];

const valid24 = (cidr: string | undefined): cidr is string => typeof cidr === 'string' && !isProblem(parseSubnet24(cidr));

export function ruleContext(doc: CheckedDoc, dirDomain: string | undefined, wrote: (path: Segment[]) => boolean): RuleContext {
  const domain = doc.spec?.cluster?.domain ?? dirDomain ?? DEFAULT_DOMAIN;
  const slot = slotOf(domain);
  const network = doc.spec?.network;
  const projectCidr = network?.cidr ?? (slot.slot !== null ? slotSubnet(slot.slot) : undefined);
  const shared = doc.spec?.registries?.shared;
  const sharedEnabled = shared?.enabled !== false;
  const sharedCidr = shared?.network?.cidr ?? SPEC_DEFAULTS.sharedNetwork.cidr;
  const ownSubnets = [projectCidr, sharedEnabled ? sharedCidr : undefined].filter(valid24);
  return { ...(dirDomain ? { dirDomain } : {}), domain, slot, projectCidr, sharedEnabled, sharedCidr, ownSubnets, wrote };
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
    const problem = m?.url === undefined ? undefined : urlProblem(m.url);
    return problem ? [{ path: mirrorPath(i, 'url'), ...problem }] : [];
  });

/** The registry each mirror serves (written, or derived from a valid URL) must be free and outside lo's own. */
export const mirrorRegistriesAreValid: SpecRule = (doc, ctx) => {
  const issues: SpecIssue[] = [];
  const registries = new Map<string, number>();
  (doc.spec?.registries?.mirrors ?? []).forEach((m, i) => {
    if (!m) return;
    const written = m.registry !== undefined;
    const registry =
      m.registry ?? (m.name !== undefined && m.url !== undefined && !urlProblem(m.url) ? defaultRegistryFor(m.name, m.url) : undefined);
    if (written && !REGISTRY_NAME.test(m.registry!)) {
      issues.push({
        path: mirrorPath(i, 'registry'),
        message: `"${m.registry}" is not a registry host name`,
        hint: 'write the name containerd sees, e.g. docker.io or registry.example.com:5000',
      });
    }
    if (!registry) return;
    const at = mirrorPath(i, written ? 'registry' : 'url');
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
    (['usernameEnv', 'passwordEnv'] as const).flatMap((key) => {
      const v = m?.credentials?.[key];
      if (v === undefined || ENV_NAME.test(v)) return [];
      const example = key === 'usernameEnv' ? 'REGISTRY_USER' : 'REGISTRY_TOKEN';
      return [
        {
          path: mirrorPath(i, 'credentials', key),
          message: 'is not an environment variable name (it looks like a literal secret)',
          hint: `write the NAME of a variable, e.g. ${example}, and export the secret in it`,
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
    if (p?.listenAddress !== undefined && !ipaddr.isValid(p.listenAddress)) {
      issues.push({
        path: ['spec', 'nodes', 'hostPorts', i, 'listenAddress'],
        message: `"${p.listenAddress}" is not an IP address`,
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

export const p2pPortsDiffer: SpecRule = (doc, ctx) => {
  const p2p = doc.spec?.registries?.p2p;
  if (p2p?.port === undefined || p2p.port !== (p2p.routerPort ?? SPEC_DEFAULTS.p2p.routerPort)) return [];
  const written = ctx.wrote(['spec', 'registries', 'p2p', 'routerPort']) ? 'routerPort' : 'port';
  const { port, routerPort } = SPEC_DEFAULTS.p2p;
  return [
    {
      path: ['spec', 'registries', 'p2p', written],
      message: `routerPort ${p2p.port} is the same as p2p.port`,
      hint: `use two different ports (defaults: port ${port}, routerPort ${routerPort})`,
    },
  ];
};

/** Every cross-field rule, in the order their issues read within one line. */
export const SPEC_RULES: readonly SpecRule[] = [
  domainMatchesDirectory,
  domainHasSubnet,
  subnetsAreAligned24,
  subnetsDoNotOverlap,
  networkNamesDiffer,
  mirrorNamesAreFree,
  mirrorUrlsAreValid,
  mirrorRegistriesAreValid,
  mirrorCredentialsAreNames,
  mirrorsFit,
  hostPortsAreValid,
  p2pPortsDiffer,
];

function cidrIssues(path: Segment[], cidr: string | undefined): SpecIssue[] {
  if (cidr === undefined) return [];
  const parsed = parseSubnet24(cidr);
  if (!isProblem(parsed)) return [];
  if (parsed.kind === 'invalid') return [{ path, message: `"${cidr}" is not an IPv4 CIDR`, hint: 'write a /24 such as 10.125.50.0/24' }];
  if (parsed.kind === 'not-aligned') {
    const network = `${parsed.network}/${parsed.prefix}`;
    return [{ path, message: `"${cidr}" has host bits set; the network address is ${network}`, hint: `write ${network}` }];
  }
  return [{ path, message: `"${cidr}" is a /${parsed.prefix}; registry addresses need a /24`, hint: 'use a /24 such as 10.125.50.0/24' }];
}

/** Why a mirror URL is unusable, or undefined when it is fine. */
function urlProblem(url: string): { message: string; hint: string } | undefined {
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(url)) return { message: `"${url}" has no scheme`, hint: `write https://${url}` };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { message: `"${url}" is not a valid URL`, hint: 'write https://host[:port]' };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return { message: `scheme "${u.protocol.slice(0, -1)}" is not supported`, hint: 'use http:// or https://' };
  if (u.username || u.password) {
    return {
      message: 'contains a user name or password (a literal secret)',
      hint: 'remove it from the URL and use credentials.usernameEnv / credentials.passwordEnv',
    };
  }
  if (u.search || u.hash) return { message: 'must not have a query or fragment', hint: `write ${u.protocol}//${u.host}` };
  return undefined;
}
