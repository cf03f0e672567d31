import { isScalar, LineCounter, parseDocument, visit, type Alias, type ErrorCode, type Node } from 'yaml';
import { ConfigError, MAX_LISTED_ISSUES, type ConfigIssue } from '../errors/loError.js';
import { API_VERSION, DEFAULT_DOMAIN } from './constants.js';
import { defaultP2PEnabled, defaultRegistryFor, dropEmptySections } from './defaults.js';
import { checkMirrorUrl, ruleContext, SPEC_RULES } from './rules.js';
import { ACCESS_RULES } from './accessRules.js';
import { normaliseAccess } from './normaliseAccess.js';
import { sizeBytes } from './size.js';
import { schemaIssue } from './schemaMessages.js';
import { validateSchema } from './validator.js';
import { defaultProjectNetwork, slotOf } from './slot.js';
import { pruneRejected, type SpecDocument, type SpecIssue } from './specDoc.js';
import type { ClusterSpec, MirrorSpec } from './types.js';
import { dirname } from 'node:path';
import { shown, shownBare } from './display.js';
import { formatPath, lineOf, pathAt, type Segment } from './yamlPosition.js';

interface ParseOptions {
  /** Path shown in errors. */
  file: string;
  /** Domain the file was found under (`clusters/<domain>/`), if any. */
  domain?: string;
  /** Directory relative file paths in the spec are read from (default: the directory of `file`). */
  baseDir?: string;
  /** Why a file the spec names cannot be read; absent: not checked (loadSpec passes one). */
  checkFile?: (absolutePath: string) => string | undefined;
}

/**
 * Parses and validates a spec file's text. Pure: no I/O. Throws ConfigError listing every problem at once,
 * each with its YAML path and line.
 */
export function parseSpec(text: string, opts: ParseOptions): ClusterSpec {
  const lineCounter = new LineCounter();
  const at = (index: number, message: string, hint: string, path: Segment[] = []): ConfigIssue => ({
    file: opts.file,
    path: formatPath(path),
    line: lineCounter.linePos(index).line || 1,
    message,
    hint,
  });
  const forbidden = FORBIDDEN_CHAR.exec(text);
  if (forbidden) {
    const lines = text.slice(0, forbidden.index).split('\n').length;
    const code = forbidden[0].charCodeAt(0);
    throw new ConfigError([
      {
        file: opts.file,
        path: '',
        line: lines,
        message: code === 0 ? 'contains a NUL byte (not a text file?)' : `contains the control character U+${hex4(code)}`,
        hint: 'remove it: a spec is plain text, YAML allows only tab, line feed and carriage return as control characters',
      },
    ]);
  }
  const size = sizeProblem(text);
  if (size) throw new ConfigError([{ file: opts.file, path: '', ...size }]);
  // uniqueKeys off: yaml's own check compares every key with every earlier one (quadratic: minutes for a
  // 1 MiB file of keys); duplicateKeys below does the same check with a set per mapping.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
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
    const seen = new Set<string>();
    const issues = doc.errors.flatMap((e): ConfigIssue[] => {
      // Deep nesting fails once per level; one issue says it.
      if (seen.has(e.code)) return [];
      seen.add(e.code);
      const issue = at(e.pos[0], ...yamlErrorWords(e.code, e.message));
      return [{ ...issue, line: Math.min(issue.line ?? 1, lastLine) }];
    });
    throw new ConfigError(issues);
  }
  const aliases: Alias[] = [];
  const duplicates: number[] = [];
  visit(doc, {
    Alias(_key, alias) {
      aliases.push(alias);
    },
    Map(_key, map) {
      const keys = new Set<unknown>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (keys.has(key) && duplicates.length < MAX_LISTED_ISSUES) duplicates.push((pair.key as Node | null)?.range?.[0] ?? 0);
        keys.add(key);
      }
    },
  });
  if (duplicates.length > 0) {
    throw new ConfigError(
      duplicates.map((offset) => {
        const path = pathAt(doc, offset);
        const key = path[path.length - 1];
        return at(
          offset,
          `key ${key === undefined ? '' : `${shown(key)} `}appears twice in the same mapping`,
          'keep one of the two (the second would silently replace the first)',
          path,
        );
      }),
    );
  }
  // Each alias is resolved by a walk of the document: more aliases than yaml would expand is a bomb already.
  if (aliases.length > MAX_ALIAS_COUNT) throw aliasBomb(opts.file, lineCounter.linePos(aliases[MAX_ALIAS_COUNT]!.range?.[0] ?? 0).line);
  const aliasIssues: ConfigIssue[] = [];
  for (const alias of aliases) {
    const start = alias.range?.[0] ?? 0;
    const target = alias.resolve(doc);
    const path = pathAt(doc, start);
    if (!target) {
      aliasIssues.push(
        at(
          start,
          `alias *${shownBare(alias.source, 40)} has no anchor &${shownBare(alias.source, 40)} before it`,
          'define the anchor (&name) before using the alias (*name), or write the value out',
          path,
        ),
      );
    } else if (target.range && target.range[0] <= start && start < target.range[2]) {
      aliasIssues.push(
        at(
          start,
          `alias *${shownBare(alias.source, 40)} is inside its own anchor, so the value would contain itself`,
          'write the value out instead of the alias',
          path,
        ),
      );
    }
  }
  if (aliasIssues.length > 0) throw new ConfigError(aliasIssues);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // yaml throws a ReferenceError for alias resource exhaustion (an "alias bomb").
    if (!(err instanceof ReferenceError)) throw err;
    throw aliasBomb(opts.file, 1);
  }
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
  if (!('apiVersion' in raw) && !('kind' in raw)) {
    // Not a spec at all (another YAML file, or `--config /etc/shadow`): say so once, echo nothing of it.
    throw new ConfigError([
      located({
        path: [],
        message: `is not a lo spec (it has neither apiVersion: ${API_VERSION} nor kind: Lo)`,
        hint: `check the --config path, or start from a copy of clusters/${DEFAULT_DOMAIN}/cluster.lok8s.yaml`,
      }),
    ]);
  }
  const valueIssues = scanValues(raw).map(located);
  if (valueIssues.length > 0) throw new ConfigError(valueIssues);

  const data = structuredClone(raw) as Record<string, unknown>;
  dropEmptySections(data);
  const valid = validateSchema(data);
  // Only the first MAX_ISSUE_WORK schema errors become worded issues (a 1 MiB file can hold ~50k); the rest are counted.
  const schemaErrors = validateSchema.errors ?? [];
  // A field with alternatives (anyOf: true/false or a list) fails every branch: report it once, by its anyOf error.
  const alternatives = new Set(schemaErrors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const schemaIssues = schemaErrors
    .filter((e) => e.keyword === 'anyOf' || !alternatives.has(e.instancePath))
    .slice(0, MAX_ISSUE_WORK)
    .map(schemaIssue);
  const checked = pruneRejected(data, validateSchema.errors ?? []);
  const ctx = ruleContext(checked, opts.domain, (path) => wrote(raw, path), {
    baseDir: baseDirOf(opts),
    ...(opts.checkFile ? { checkFile: opts.checkFile } : {}),
  });
  const issues = [...schemaIssues, ...[...SPEC_RULES, ...ACCESS_RULES].flatMap((rule) => rule(checked, ctx))].map(located);
  // In file order, so the report reads top to bottom (sort is stable: same-line issues keep their order).
  const unworded = Math.max(0, schemaErrors.length - MAX_ISSUE_WORK);
  if (issues.length > 0) {
    const listed = dedupe(issues).sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(listed, listed.length + unworded);
  }
  if (!valid) throw new Error('schema rejected a spec without an issue'); // unreachable: every ajv error is an issue
  return normalise(data as unknown as SpecDocument, opts);
}

/**
 * Characters YAML does not allow in a stream (c-printable, YAML 1.2.2 section 5.1): C0 controls other than
 * tab, LF and CR, DEL, C1 controls other than NEL, and the non-characters U+FFFE/U+FFFF.
 */
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u0084\u0086-\u009f\ufffe\uffff]/;
/**
 * Most entries (non-blank, non-comment lines plus flow `,` `[` `{`) a spec may have. A full spec is a few
 * hundred lines; the YAML parser needs about 2 s and 150 MB for the ~50k entries 1 MiB can hold, so the
 * count is checked first, in one pass over the text, as is the flow nesting depth (which the parser would
 * otherwise follow until its stack runs out).
 */
export const MAX_SPEC_ENTRIES = 5_000;

/** One linear pass: too many entries, or flow collections nested deeper than MAX_DEPTH. */
function sizeProblem(text: string): { line: number; message: string; hint: string } | undefined {
  let entries = 0;
  let depth = 0;
  let line = 1;
  let content = false;
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      if (content) entries++;
      line++;
      content = false;
      comment = false;
      continue;
    }
    if (comment) continue;
    if (c === 35 /* # */ && (i === 0 || text.charCodeAt(i - 1) <= 32)) {
      comment = true;
      continue;
    }
    if (c > 32) content = true;
    if (c === 91 /* [ */ || c === 123 /* { */) {
      entries++;
      if (++depth > MAX_DEPTH)
        return {
          line,
          message: `is nested too deeply: more than ${MAX_DEPTH} [ or { inside each other (no spec field is)`,
          hint: 'remove the extra [ { levels (see docs/spec.md for the layout)',
        };
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth = Math.max(0, depth - 1);
    else if (c === 44 /* , */) entries++;
    if (entries > MAX_SPEC_ENTRIES)
      return {
        line,
        message: `has more than ${MAX_SPEC_ENTRIES} entries (lines or flow items); a spec has a few hundred`,
        hint: 'check that --config names the spec file, or remove the repeated entries',
      };
  }
  return undefined;
}

/** How many schema errors are worded and located at most; enough to fill the listed issues after sorting. */
const MAX_ISSUE_WORK = 4 * MAX_LISTED_ISSUES;
/** yaml's limit on alias expansion (its own default, written out): an alias bomb ends in a spec error. */
const MAX_ALIAS_COUNT = 100;
/** Deepest nesting a spec may have; the schema's deepest field (mirrors[].credentials.passwordEnv) is at 6. */
export const MAX_DEPTH = 16;

const hex4 = (code: number): string => code.toString(16).toUpperCase().padStart(4, '0');

function aliasBomb(file: string, line: number): ConfigError {
  return new ConfigError([
    {
      file,
      path: '',
      line,
      message: `its aliases (*name) expand to too many values (an alias bomb; at most ${MAX_ALIAS_COUNT} are read)`,
      hint: 'write the values out, or use fewer aliases: a spec needs none',
    },
  ]);
}

/** A yaml error code in the user's words: what is wrong and how to fix it. */
function yamlErrorWords(code: ErrorCode, message: string): [string, string] {
  switch (code) {
    case 'MULTIPLE_DOCS':
      return [
        'holds more than one YAML document (a `---` line starts another)',
        'keep one spec per file: remove the `---` line and what follows it',
      ];
    case 'RESOURCE_EXHAUSTION':
      return [`is nested too deeply to read (a spec is at most ${MAX_DEPTH} levels deep)`, 'remove the extra [ { or indentation levels'];
    default:
      return [
        `not valid YAML: ${shownBare(message.split('\n')[0] ?? '', 120)}`,
        'fix the YAML syntax (indentation, quotes, colons) at that line',
      ];
  }
}

/**
 * Issues the schema cannot see in the parsed values: nesting deeper than MAX_DEPTH, and `.inf` / `.nan`
 * (JSON has neither, so ajv would only say "null"). Iterative, so any depth is safe.
 */
function scanValues(root: object): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const stack: Array<{ value: unknown; path: Segment[] }> = [{ value: root, path: [] }];
  let deep = false;
  while (stack.length > 0 && issues.length < 100) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'number' && !Number.isFinite(value)) {
      issues.push({
        path,
        message: `${Number.isNaN(value) ? '.nan (not a number)' : 'an infinite number (.inf or too large)'} is not a value lo can use`,
        hint: 'write a whole number such as 3, or quote the value if you meant text',
      });
    } else if (typeof value === 'object' && value !== null) {
      if (path.length >= MAX_DEPTH) {
        if (!deep)
          issues.push({
            path,
            message: `is nested more than ${MAX_DEPTH} levels deep; no spec field is`,
            hint: 'remove the extra nesting (see docs/spec.md for the layout)',
          });
        deep = true;
        continue;
      }
      const entries: Array<[Segment, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i]![1], path: [...path, entries[i]![0]] });
    }
  }
  return issues;
}

/**
 * Decodes a spec file's bytes as UTF-8 (a leading BOM is dropped). Bytes that are not UTF-8 are an issue
 * at their line, not U+FFFD replacement characters sent on to the parser.
 */
export function decodeSpec(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const lossy = new TextDecoder('utf-8').decode(bytes);
    const bad = lossy.indexOf('\ufffd');
    throw new ConfigError([
      {
        file,
        path: '',
        line: lossy.slice(0, Math.max(0, bad)).split('\n').length,
        message: 'is not UTF-8 text (it has bytes that are not UTF-8)',
        hint: 'save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8), or check that --config names the spec',
      },
    ]);
  }
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
  const access = normaliseAccess(regs, baseDirOf(opts));
  const mirrors: MirrorSpec[] = regs.mirrors.map((m, i) => {
    // The normalised URL (rule mirrorUrlsAreValid passed it), never the raw text.
    const url = (checkMirrorUrl(m.url) as { url: string }).url;
    return {
      name: m.name,
      url,
      registry: m.registry ?? defaultRegistryFor(m.name, url)!,
      ...access.mirrors[i],
    };
  });
  const warnings = [
    ...mirrors.flatMap((m, i) =>
      m.credentials && m.url.startsWith('http://')
        ? [`spec.registries.mirrors[${i}] sends credentials to ${m.url} without TLS: anyone on the path can read them (use https://)`]
        : [],
    ),
    ...access.warnings,
  ];
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
      hosts: access.hosts,
      p2p: {
        enabled: regs.p2p.enabled ?? defaultP2PEnabled(nodes),
        port: regs.p2p.port,
        routerPort: regs.p2p.routerPort,
        metricsPort: regs.p2p.metricsPort,
        dataPort: regs.p2p.dataPort,
        resolveTimeoutMs: regs.p2p.resolveTimeoutMs,
        resolveLatest: regs.p2p.resolveLatest,
        resolveTags: resolveTagsOf(regs.p2p.resolveTags, mirrors),
        dialTimeout: regs.p2p.dialTimeout,
      },
    },
    warnings,
  };
}

/** p2p.resolveTags as the registries it names: `true` is every mirrored registry, `false` none. Sorted, unique. */
function resolveTagsOf(value: boolean | string[], mirrors: readonly MirrorSpec[]): string[] {
  const list = value === true ? mirrors.map((m) => m.registry) : value === false ? [] : value;
  return [...new Set(list)].sort();
}

function baseDirOf(opts: ParseOptions): string {
  return opts.baseDir ?? dirname(opts.file);
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
