import { Ajv } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors/loError.js';
import { API_VERSION, DEFAULT_DOMAIN } from './constants.js';
import { defaultP2PEnabled, defaultRegistryFor, dropEmptySections } from './defaults.js';
import { ruleContext, SPEC_RULES } from './rules.js';
import { sizeBytes } from './size.js';
import { specSchema } from './schema.js';
import { schemaIssue } from './schemaMessages.js';
import { defaultProjectNetwork, slotOf } from './slot.js';
import { pruneRejected, type SpecDocument, type SpecIssue } from './specDoc.js';
import type { ClusterSpec, MirrorSpec } from './types.js';
import { formatPath, lineOf, type Segment } from './yamlPosition.js';

interface ParseOptions {
  /** Path shown in errors. */
  file: string;
  /** Domain the file was found under (`clusters/<domain>/`), if any. */
  domain?: string;
}

// useDefaults: ajv writes the schema's defaults into the document, the one place defaults come from.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictRequired: false, verbose: true });
const validateSchema = ajv.compile(specSchema);

/**
 * Parses and validates a spec file's text. Pure: no I/O. Throws ConfigError listing every problem at once,
 * each with its YAML path and line.
 */
export function parseSpec(text: string, opts: ParseOptions): ClusterSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const located = (issue: SpecIssue): ConfigIssue => ({
    file: opts.file,
    path: formatPath(issue.path),
    // Document-level problems (empty file, wrong top-level type) point at line 1.
    line: lineOf(doc, lineCounter, issue.path) ?? 1,
    message: issue.message,
    hint: issue.hint,
  });

  if (doc.errors.length > 0) {
    // An error at end of input (e.g. an unclosed `[`) points past the last line; report the last line instead.
    const lastLine = Math.max(1, text.trimEnd().split('\n').length);
    throw new ConfigError(
      doc.errors.map((e) => ({
        file: opts.file,
        path: '',
        line: Math.min((e.linePos?.[0] ?? lineCounter.linePos(e.pos[0])).line || 1, lastLine),
        message: `not valid YAML: ${e.message.split('\n')[0]}`,
        hint: 'fix the YAML syntax (indentation, quotes, colons) at that line',
      })),
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) {
    throw new ConfigError([
      located({
        path: [],
        message: 'the file is empty (no YAML document)',
        hint: `start from a copy of clusters/${DEFAULT_DOMAIN}/cluster.lok8s.yaml (reference: docs/spec.md)`,
      }),
    ]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([
      located({
        path: [],
        message: `expected a mapping with apiVersion, kind, metadata and spec, got ${Array.isArray(raw) ? 'a list' : typeof raw}`,
        hint: 'write the top level as `key: value` lines, not a `- item` list or a single value (reference: docs/spec.md)',
      }),
    ]);
  }

  const data = structuredClone(raw) as Record<string, unknown>;
  dropEmptySections(data);
  const valid = validateSchema(data);
  const schemaIssues = (validateSchema.errors ?? []).map(schemaIssue);
  const checked = pruneRejected(data, validateSchema.errors ?? []);
  const ctx = ruleContext(checked, opts.domain, (path) => wrote(raw, path));
  const issues = [...schemaIssues, ...SPEC_RULES.flatMap((rule) => rule(checked, ctx))].map(located);
  // In file order, so the report reads top to bottom (sort is stable: same-line issues keep their order).
  if (issues.length > 0) throw new ConfigError(dedupe(issues).sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  if (!valid) throw new Error('schema rejected a spec without an issue'); // unreachable: every ajv error is an issue
  return normalise(data as unknown as SpecDocument, opts);
}

/** Whether the file itself (not a default) has a value at `path`. */
function wrote(raw: unknown, path: Segment[]): boolean {
  let node = raw;
  for (const seg of path) {
    if (typeof node !== 'object' || node === null || !(seg in node)) return false;
    node = (node as Record<Segment, unknown>)[seg];
  }
  return true;
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

/** Turns a valid document (schema defaults applied) into the ClusterSpec, adding the derived defaults. */
function normalise(d: SpecDocument, opts: ParseOptions): ClusterSpec {
  const { spec } = d;
  const domain = spec.cluster.domain ?? opts.domain ?? DEFAULT_DOMAIN;
  const slot = slotOf(domain).slot;
  // A valid document without spec.network has a slot domain (rule domainHasSubnet).
  const network = spec.network ?? defaultProjectNetwork(d.metadata.name, slot!);
  const { nodes, registries: regs } = spec;
  const mirrors: MirrorSpec[] = regs.mirrors.map((m) => ({
    name: m.name,
    url: m.url.replace(/\/+$/, ''),
    registry: m.registry ?? defaultRegistryFor(m.name, m.url)!,
    ...(m.credentials ? { credentials: { usernameEnv: m.credentials.usernameEnv, passwordEnv: m.credentials.passwordEnv } } : {}),
  }));
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
      // The schema's pattern (SIZE_PATTERN) admits only sizes sizeBytes reads.
      ...(regs.cache.maxSize !== undefined ? { cache: { maxSizeBytes: sizeBytes(regs.cache.maxSize)! } } : {}),
      shared: { enabled: regs.shared.enabled, network: { name: regs.shared.network.name, cidr: regs.shared.network.cidr } },
      mirrors,
      p2p: {
        enabled: regs.p2p.enabled ?? defaultP2PEnabled(nodes),
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
