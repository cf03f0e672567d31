import { parseSize } from './size.js';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors/loError.js';
import ipaddr from 'ipaddr.js';
import { cidrsOverlap, inSubnet, isProblem, parseSubnet24 } from '../util/cidr.js';
import {
  API_VERSION,
  DEFAULT_DOMAIN,
  DEFAULT_MIRRORS,
  DEFAULT_SLOT,
  HOST,
  MAX_SLOT,
  MIN_SLOT,
  RESERVED_MIRROR_NAMES,
  BUILD_HOSTNAME,
  CACHE_HOSTNAME,
} from './constants.js';
import { specSchema } from './schema.js';
import type { ClusterSpec, MirrorSpec } from './types.js';

export interface ParseOptions {
  /** Path shown in errors. */
  file: string;
  /** Domain the file was found under (`clusters/<domain>/`), if any. */
  domain?: string;
}

type Segment = string | number;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictRequired: false, verbose: true });
const validateSchema = ajv.compile(specSchema);

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REGISTRY_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$/;

/** `['spec','registries','mirrors',2,'name']` -> `spec.registries.mirrors[2].name` */
export function formatPath(segments: Segment[]): string {
  return segments.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}

/**
 * Parses and validates a spec file's text. Pure: no I/O. Throws ConfigError listing every problem at once,
 * each with its YAML path and line.
 */
export function parseSpec(text: string, opts: ParseOptions): ClusterSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const issues: ConfigIssue[] = [];
  const add = (path: Segment[], message: string, hint?: string): void => {
    // Document-level problems (empty file, wrong top-level type) point at line 1.
    issues.push({ file: opts.file, path: formatPath(path), line: lineOf(doc, lineCounter, path) ?? 1, message, hint });
  };

  if (doc.errors.length > 0) {
    // An error at end of input (e.g. an unclosed `[`) points past the last line; report the last line instead.
    const lastLine = Math.max(1, text.trimEnd().split('\n').length);
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      issues.push({
        file: opts.file,
        path: '',
        line: Math.min(pos.line || 1, lastLine),
        message: `not valid YAML: ${e.message.split('\n')[0]}`,
        hint: 'fix the YAML syntax (indentation, quotes, colons) at that line',
      });
    }
    throw new ConfigError(issues);
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) {
    add(
      [],
      'the file is empty (no YAML document)',
      `start from a copy of clusters/${DEFAULT_DOMAIN}/cluster.lok8s.yaml (reference: docs/spec.md)`,
    );
    throw new ConfigError(issues);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    add(
      [],
      `expected a mapping with apiVersion, kind, metadata and spec, got ${Array.isArray(raw) ? 'a list' : typeof raw}`,
      'write the top level as `key: value` lines, not a `- item` list or a single value (reference: docs/spec.md)',
    );
    throw new ConfigError(issues);
  }

  const data = structuredClone(raw) as Record<string, any>;
  dropEmptySections(data, specSchema);
  if (!validateSchema(data)) {
    for (const err of validateSchema.errors ?? []) schemaIssue(err, add);
  }
  semanticChecks(data, raw as Record<string, any>, opts, add);
  // In file order, so the report reads top to bottom (sort is stable: same-line issues keep their order).
  if (issues.length > 0) throw new ConfigError(dedupe(issues).sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  return normalise(data, opts);
}

/**
 * `spec:` or `nodes:` with nothing under it is YAML null; treat an empty section as absent so its defaults
 * apply, as the user meant. Only mapping sections: `mirrors:` (null) stays an error, since "none" is `[]`.
 */
function dropEmptySections(data: Record<string, any>, schema: any): void {
  for (const [key, sub] of Object.entries<any>(schema?.properties ?? {})) {
    if (sub?.type !== 'object') continue;
    if (data[key] === null && sub.default !== undefined) delete data[key];
    else if (isObj(data[key])) dropEmptySections(data[key], sub);
  }
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}|${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function pointerToSegments(pointer: string): Segment[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping (key: value lines)',
  array: 'a list (- item lines)',
};
const TYPE_HINTS: Record<string, string> = {
  integer: 'write a whole number without quotes, e.g. 3',
  boolean: 'write true or false without quotes',
  string: 'write a text value (quote it if it looks like a number)',
  object: 'write the field with indented key: value lines under it',
  array: 'write a list with one "- " item per line, or [] for none',
};

const FIELD_HINTS: Record<string, string> = {
  'metadata.name':
    'use lower-case letters, digits and dashes, at most 15 characters: it becomes the Linux bridge name of the project network',
  'spec.network.name': 'at most 15 characters: the network name becomes the Linux bridge name',
  'spec.kubernetes.version': 'write a kind node version such as v1.34.0',
  'spec.cluster.domain': 'write a lower-case DNS name such as lok8s.dev, 50.lok8s.dev or dev.example.test',
  'spec.registries.mirrors[].name': 'use lower-case letters, digits and dashes, starting with a letter or digit, e.g. io-example',
  'spec.registries.shared.network.name': 'use letters, digits, dots, dashes and underscores, e.g. lok8s-registries',
  'spec.registries.p2p.dialTimeout': 'write a duration in ms or s, e.g. 200ms',
  'spec.registries.mirrors':
    'write one "- name: ... / url: ..." item per mirror, [] for no mirrors, or remove the line for the four default mirrors',
};

function schemaIssue(err: ErrorObject, add: (path: Segment[], message: string, hint?: string) => void): void {
  const path = pointerToSegments(err.instancePath);
  const pathText = formatPath(path.map((s) => (typeof s === 'number' ? 0 : s))).replace(/\[0\]/g, '[]');
  const fieldHint = FIELD_HINTS[formatPath(path)] ?? FIELD_HINTS[pathText];
  switch (err.keyword) {
    case 'additionalProperties': {
      const field = String((err.params as { additionalProperty: string }).additionalProperty);
      const parent = path[path.length - 1];
      if (parent === 'credentials') {
        add(
          [...path, field],
          `"${field}" looks like a literal secret; credentials take environment variable names only`,
          'write usernameEnv: MY_USER_VAR and passwordEnv: MY_TOKEN_VAR and export those variables',
        );
        return;
      }
      const known = Object.keys(propertiesAt(path));
      const close = known.find((k) => k.toLowerCase() === field.toLowerCase() || levenshtein(k, field) <= 2);
      add(
        [...path, field],
        `unknown field "${field}"`,
        close ? `did you mean "${close}"?` : known.length ? `allowed fields here: ${known.join(', ')}` : 'remove it',
      );
      return;
    }
    case 'required': {
      const missing = String((err.params as { missingProperty: string }).missingProperty);
      add([...path, missing], `required field "${missing}" is missing`, `add ${missing}: under ${formatPath(path) || 'the top level'}`);
      return;
    }
    case 'type': {
      const want = (err.params as { type: string }).type;
      const got =
        err.data === null
          ? 'null'
          : Array.isArray(err.data)
            ? 'a list'
            : typeof err.data === 'object'
              ? 'a mapping'
              : `${typeof err.data} ${JSON.stringify(err.data)}`;
      add(path, `must be ${TYPE_WORDS[want] ?? want}, got ${got}`, fieldHint ?? TYPE_HINTS[want] ?? `write ${TYPE_WORDS[want] ?? want}`);
      return;
    }
    case 'const':
      add(
        path,
        `must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}`,
        `write ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}`,
      );
      return;
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.join(', ');
      add(path, `${JSON.stringify(err.data)} is not one of ${allowed}`, `write one of ${allowed}`);
      return;
    }
    case 'pattern':
      add(
        path,
        `"${String(valueAt(path))}" is not allowed here (must match ${(err.params as { pattern: string }).pattern})`,
        fieldHint ?? 'change the value to match the pattern (see docs/spec.md)',
      );
      return;
    case 'maxLength':
      add(
        path,
        `"${String(valueAt(path))}" is longer than ${(err.params as { limit: number }).limit} characters`,
        fieldHint ?? `shorten it to at most ${(err.params as { limit: number }).limit} characters`,
      );
      return;
    case 'minimum':
    case 'maximum':
      add(
        path,
        `${String(valueAt(path))} is out of range (${err.keyword} ${(err.params as { limit: number }).limit})`,
        rangeHint(path, err.parentSchema),
      );
      return;
    default:
      add(path, err.message ?? 'is invalid', 'see docs/spec.md for the allowed values');
  }

  function valueAt(p: Segment[]): unknown {
    // ajv reports on the data it validated; the message only needs the offending scalar.
    return (err.data as unknown) ?? p[p.length - 1];
  }
}

function rangeHint(path: Segment[], schema: unknown): string | undefined {
  const key = path[path.length - 1];
  const ranges: Record<string, string> = {
    controlPlane: 'use 1 to 9 control-plane nodes',
    workers: 'use 0 to 99 workers',
    maxConcurrentDownloads: 'use 1 to 64',
  };
  const s = schema as { minimum?: number; maximum?: number } | undefined;
  return (typeof key === 'string' ? ranges[key] : undefined) ?? `use a number from ${s?.minimum ?? '-'} to ${s?.maximum ?? '-'}`;
}

function propertiesAt(path: Segment[]): Record<string, unknown> {
  let node: any = specSchema;
  for (const seg of path) {
    if (typeof seg === 'number') node = node?.items;
    else node = node?.properties?.[seg];
  }
  return (node?.properties as Record<string, unknown>) ?? {};
}

function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return dp[a.length]![b.length]!;
}

/** Line of the deepest node along `path` that exists in the document (a missing key points at its parent). */
function lineOf(doc: Document, lc: LineCounter, path: Segment[]): number | undefined {
  let node: unknown = doc.contents;
  let best: number | undefined = rangeLine(node, lc);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      best = rangeLine(pair.key, lc) ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      best = rangeLine(node, lc) ?? best;
    } else break;
  }
  return best;
}

function rangeLine(node: unknown, lc: LineCounter): number | undefined {
  const range = (node as Node | undefined)?.range;
  return range ? lc.linePos(range[0]).line : undefined;
}

/** Resolves the slot of a domain, or says why it has none. */
export function slotOf(domain: string): { slot: number } | { slot: null; problem?: string; hint?: string } {
  if (domain === DEFAULT_DOMAIN) return { slot: DEFAULT_SLOT };
  if (!domain.endsWith(`.${DEFAULT_DOMAIN}`)) return { slot: null };
  const label = domain.slice(0, -(DEFAULT_DOMAIN.length + 1));
  if (!/^[0-9]+$/.test(label)) {
    return {
      slot: null,
      problem: `"${domain}" is not a slot domain: only lok8s.dev and N.lok8s.dev (N = 2..199) exist`,
      hint: 'use a number, e.g. 50.lok8s.dev',
    };
  }
  if (label.length > 1 && label.startsWith('0')) {
    return { slot: null, problem: `slot "${label}" has a leading zero`, hint: `write ${Number(label)}.lok8s.dev` };
  }
  const n = Number(label);
  if (n === DEFAULT_SLOT)
    return { slot: null, problem: `slot ${n} belongs to lok8s.dev itself`, hint: 'use lok8s.dev, or another number from 2 to 199' };
  if (n < MIN_SLOT || n > MAX_SLOT) {
    return {
      slot: null,
      problem: `slot ${n} is out of range (2..199; 200 is the shared registry network)`,
      hint: 'pick a number from 2 to 199',
    };
  }
  return { slot: n };
}

/** Default `registry` for a mirror: fixed for the four defaults, else the URL's host. */
export function defaultRegistryFor(name: string, url: string): string | undefined {
  const known = DEFAULT_MIRRORS.find((m) => m.name === name);
  if (known) return known.registry;
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

/** `d` has the schema defaults applied; `raw` is what the file says (to point at the field the user wrote). */
function semanticChecks(
  d: Record<string, any>,
  raw: Record<string, any>,
  opts: ParseOptions,
  add: (path: Segment[], message: string, hint?: string) => void,
): void {
  const spec = isObj(d.spec) ? d.spec : {};
  const fileDomain = isObj(spec.cluster) && typeof spec.cluster.domain === 'string' ? (spec.cluster.domain as string) : undefined;
  if (fileDomain && opts.domain && fileDomain !== opts.domain) {
    add(
      ['spec', 'cluster', 'domain'],
      `says "${fileDomain}" but the file is under clusters/${opts.domain}/`,
      `set it to ${opts.domain} or move the file to clusters/${fileDomain}/`,
    );
  }
  const domain = fileDomain ?? opts.domain ?? DEFAULT_DOMAIN;
  const slot = slotOf(domain);
  const hasNetwork = isObj(spec.network);
  if (slot.slot === null) {
    if (slot.problem) add(fileDomain ? ['spec', 'cluster', 'domain'] : [], slot.problem, slot.hint);
    else if (!hasNetwork) {
      add(
        ['spec', 'network'],
        `domain "${domain}" has no lok8s slot, so the project network must be given`,
        'add spec.network with name (at most 15 characters) and cidr (a /24 such as 10.126.1.0/24)',
      );
    }
  }

  const projectCidr =
    hasNetwork && typeof spec.network.cidr === 'string'
      ? (spec.network.cidr as string)
      : slot.slot !== null
        ? `10.125.${slot.slot}.0/24`
        : undefined;
  if (hasNetwork && typeof spec.network.cidr === 'string') checkCidr(['spec', 'network', 'cidr'], spec.network.cidr, add);

  const regs = isObj(spec.registries) ? spec.registries : {};
  const shared = isObj(regs.shared) ? regs.shared : {};
  const sharedEnabled = shared.enabled !== false;
  const sharedNet = isObj(shared.network) ? shared.network : {};
  const sharedCidr = typeof sharedNet.cidr === 'string' ? (sharedNet.cidr as string) : '10.125.200.0/24';
  const sharedCidrOk =
    typeof sharedNet.cidr === 'string' ? checkCidr(['spec', 'registries', 'shared', 'network', 'cidr'], sharedNet.cidr, add) : true;
  if (sharedEnabled && sharedCidrOk && projectCidr && !isProblem(parseSubnet24(projectCidr)) && cidrsOverlap(projectCidr, sharedCidr)) {
    add(
      hasNetwork ? ['spec', 'network', 'cidr'] : ['spec', 'registries', 'shared', 'network', 'cidr'],
      `project subnet ${projectCidr} overlaps the shared registry subnet ${sharedCidr}`,
      'give the project and the shared network different /24 subnets',
    );
  }
  const projectNetName =
    hasNetwork && typeof spec.network.name === 'string' ? spec.network.name : isObj(d.metadata) ? d.metadata.name : undefined;
  const sharedNetName = typeof sharedNet.name === 'string' ? sharedNet.name : 'lok8s-registries';
  if (sharedEnabled && projectNetName && projectNetName === sharedNetName) {
    add(
      hasNetwork ? ['spec', 'network', 'name'] : ['metadata', 'name'],
      `project network "${projectNetName}" has the same name as the shared registry network`,
      'choose another project network name',
    );
  }

  if (Array.isArray(regs.mirrors)) {
    const names = new Map<string, number>();
    const registries = new Map<string, number>();
    regs.mirrors.forEach((m: unknown, i: number) => {
      if (!isObj(m)) return;
      const at = (...rest: Segment[]): Segment[] => ['spec', 'registries', 'mirrors', i, ...rest];
      if (typeof m.name === 'string') {
        if ((RESERVED_MIRROR_NAMES as readonly string[]).includes(m.name)) {
          add(at('name'), `"${m.name}" is reserved for the project's ${m.name} registry`, 'choose another mirror name, e.g. io-example');
        }
        const prev = names.get(m.name);
        if (prev !== undefined)
          add(at('name'), `duplicate mirror name "${m.name}" (also mirrors[${prev}])`, 'give every mirror its own name');
        else names.set(m.name, i);
      }
      let urlOk = false;
      if (typeof m.url === 'string') urlOk = checkUrl(at('url'), m.url, add);
      const registry =
        typeof m.registry === 'string' ? m.registry : typeof m.name === 'string' && urlOk ? defaultRegistryFor(m.name, m.url) : undefined;
      if (typeof m.registry === 'string' && !REGISTRY_NAME.test(m.registry)) {
        add(
          at('registry'),
          `"${m.registry}" is not a registry host name`,
          'write the name containerd sees, e.g. docker.io or registry.example.com:5000',
        );
      }
      if (registry) {
        // A bare address inside our own subnets would share its certs.d directory with a registry address.
        const ownSubnets = [projectCidr, sharedEnabled ? sharedCidr : undefined].filter(
          (c): c is string => typeof c === 'string' && !isProblem(parseSubnet24(c)),
        );
        if (ownSubnets.some((c) => inSubnet(registry, c))) {
          add(
            at(typeof m.registry === 'string' ? 'registry' : 'url'),
            `"${registry}" is an address inside lo's own registry subnets (${ownSubnets.join(', ')})`,
            'mirror a registry outside those subnets',
          );
        }
        if (registry === BUILD_HOSTNAME || registry === CACHE_HOSTNAME) {
          add(
            at(typeof m.registry === 'string' ? 'registry' : 'url'),
            `"${registry}" is the project's own ${registry === BUILD_HOSTNAME ? 'build' : 'cache'} registry and cannot be mirrored`,
            'mirror another registry',
          );
        }
        const prev = registries.get(registry);
        if (prev !== undefined)
          add(
            at(typeof m.registry === 'string' ? 'registry' : 'url'),
            `registry "${registry}" is already mirrored by mirrors[${prev}]`,
            'keep one mirror per registry',
          );
        else registries.set(registry, i);
      }
      if (isObj(m.credentials)) {
        for (const key of ['usernameEnv', 'passwordEnv'] as const) {
          const v = m.credentials[key];
          if (typeof v === 'string' && !ENV_NAME.test(v)) {
            add(
              at('credentials', key),
              'is not an environment variable name (it looks like a literal secret)',
              `write the NAME of a variable, e.g. ${key === 'usernameEnv' ? 'REGISTRY_USER' : 'REGISTRY_TOKEN'}, and export the secret in it`,
            );
          }
        }
      }
    });
    const capacity = sharedEnabled ? HOST.staticLast - HOST.sharedMirrorFirst + 1 : HOST.staticLast - HOST.projectMirrorFirst + 1;
    if (regs.mirrors.length > capacity) {
      add(
        ['spec', 'registries', 'mirrors'],
        `${regs.mirrors.length} mirrors do not fit: ${sharedEnabled ? 'the shared network has' : 'the project subnet has'} ${capacity} mirror addresses (.${sharedEnabled ? HOST.sharedMirrorFirst : HOST.projectMirrorFirst}-.${HOST.staticLast})`,
        sharedEnabled ? 'remove mirrors' : 'remove mirrors or set registries.shared.enabled: true',
      );
    }
  }

  const nodes = isObj(spec.nodes) ? spec.nodes : {};
  if (Array.isArray(nodes.hostPorts)) {
    const seen = new Map<string, number>();
    nodes.hostPorts.forEach((p: unknown, i: number) => {
      if (isObj(p) && typeof p.listenAddress === 'string' && !ipaddr.isValid(p.listenAddress)) {
        add(
          ['spec', 'nodes', 'hostPorts', i, 'listenAddress'],
          `"${p.listenAddress}" is not an IP address`,
          'write 127.0.0.1 (local only) or 0.0.0.0 (all interfaces)',
        );
      }
      if (!isObj(p) || typeof p.hostPort !== 'number') return;
      const key = `${p.listenAddress ?? '127.0.0.1'}:${p.hostPort}/${p.protocol ?? 'TCP'}`;
      const prev = seen.get(key);
      if (prev !== undefined)
        add(
          ['spec', 'nodes', 'hostPorts', i, 'hostPort'],
          `host port ${key} is already mapped by hostPorts[${prev}]`,
          'use another host port',
        );
      else seen.set(key, i);
    });
  }
  const p2p = isObj(regs.p2p) ? regs.p2p : {};
  if (typeof p2p.port === 'number' && p2p.port === (p2p.routerPort ?? 30021)) {
    const rawP2p = raw.spec?.registries?.p2p;
    const written = isObj(rawP2p) && 'routerPort' in rawP2p ? 'routerPort' : 'port';
    add(
      ['spec', 'registries', 'p2p', written],
      `routerPort ${p2p.port} is the same as p2p.port`,
      'use two different ports (defaults: port 30020, routerPort 30021)',
    );
  }
}

function checkCidr(path: Segment[], cidr: string, add: (path: Segment[], message: string, hint?: string) => void): boolean {
  const parsed = parseSubnet24(cidr);
  if (!isProblem(parsed)) return true;
  if (parsed.kind === 'invalid') add(path, `"${cidr}" is not an IPv4 CIDR`, 'write a /24 such as 10.125.50.0/24');
  else if (parsed.kind === 'not-aligned')
    add(
      path,
      `"${cidr}" has host bits set; the network address is ${parsed.network}/${parsed.prefix}`,
      `write ${parsed.network}/${parsed.prefix}`,
    );
  else add(path, `"${cidr}" is a /${parsed.prefix}; registry addresses need a /24`, 'use a /24 such as 10.125.50.0/24');
  return false;
}

function checkUrl(path: Segment[], url: string, add: (path: Segment[], message: string, hint?: string) => void): boolean {
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(url)) {
    add(path, `"${url}" has no scheme`, `write https://${url}`);
    return false;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    add(path, `"${url}" is not a valid URL`, 'write https://host[:port]');
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    add(path, `scheme "${u.protocol.slice(0, -1)}" is not supported`, 'use http:// or https://');
    return false;
  }
  if (u.username || u.password) {
    add(
      path,
      'contains a user name or password (a literal secret)',
      'remove it from the URL and use credentials.usernameEnv / credentials.passwordEnv',
    );
    return false;
  }
  if (u.search || u.hash) {
    add(path, 'must not have a query or fragment', `write ${u.protocol}//${u.host}`);
    return false;
  }
  return true;
}

function isObj(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Applies the derived defaults (slot network, mirror registries, p2p) to a schema-valid document. */
function normalise(d: Record<string, any>, opts: ParseOptions): ClusterSpec {
  const spec = d.spec;
  const domain: string = spec.cluster.domain ?? opts.domain ?? DEFAULT_DOMAIN;
  const slot = slotOf(domain).slot;
  const network = spec.network ?? { name: d.metadata.name, cidr: `10.125.${slot}.0/24` };
  const nodes = spec.nodes;
  const regs = spec.registries;
  const mirrors: MirrorSpec[] = (regs.mirrors as any[]).map((m) => ({
    name: m.name,
    url: m.url.replace(/\/+$/, ''),
    registry: m.registry ?? defaultRegistryFor(m.name, m.url)!,
    ...(m.credentials ? { credentials: { usernameEnv: m.credentials.usernameEnv, passwordEnv: m.credentials.passwordEnv } } : {}),
  }));
  const nodeCount = nodes.controlPlane + nodes.workers;
  return {
    file: opts.file,
    name: d.metadata.name,
    domain,
    slot,
    kubernetesVersion: spec.kubernetes.version,
    network: { name: network.name, cidr: network.cidr },
    nodes: {
      controlPlane: nodes.controlPlane,
      workers: nodes.workers,
      hostPorts: nodes.hostPorts,
      maxConcurrentDownloads: nodes.maxConcurrentDownloads,
    },
    registries: {
      tls: regs.tls,
      disableDefaultEndpoint: regs.disableDefaultEndpoint,
      ...(typeof regs.cache?.maxSize === 'string'
        ? { cache: { maxSizeBytes: parseSize(regs.cache.maxSize, `${opts.file}: spec.registries.cache.maxSize`) } }
        : {}),
      shared: { enabled: regs.shared.enabled, network: { name: regs.shared.network.name, cidr: regs.shared.network.cidr } },
      mirrors,
      p2p: {
        enabled: regs.p2p.enabled ?? nodeCount > 1,
        port: regs.p2p.port,
        routerPort: regs.p2p.routerPort,
        resolveTimeoutMs: regs.p2p.resolveTimeoutMs,
        resolveLatest: regs.p2p.resolveLatest,
        dialTimeout: regs.p2p.dialTimeout,
      },
    },
  };
}

/** The built-in default spec text for lok8s.dev, used when no file exists. */
export const BUILT_IN_SPEC = `apiVersion: ${API_VERSION}
kind: Lo
metadata:
  name: lok8s
spec:
  cluster:
    domain: ${DEFAULT_DOMAIN}
`;
