import type { ErrorObject } from 'ajv';
import { SPEC_DEFAULTS } from './defaults.js';
import { shown } from './display.js';
import { specSchema, type SchemaNode } from './schema.js';
import type { SpecIssue } from './specDoc.js';
import { formatPath, type Segment } from './yamlPosition.js';

/** ajv's JSON pointer `/spec/registries/mirrors/2` -> `['spec','registries','mirrors',2]`. */
export function pointerToSegments(pointer: string): Segment[] {
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
    'use lower-case letters, digits and dashes, at most 15 characters: ' + 'it becomes the Linux bridge name of the project network',
  'spec.network.name': 'at most 15 characters: the network name becomes the Linux bridge name',
  'spec.kubernetes.version': `write a kind node version such as ${SPEC_DEFAULTS.kubernetesVersion}`,
  'spec.cluster.domain': 'write a lower-case DNS name such as lok8s.dev, 50.lok8s.dev or dev.example.test',
  'spec.registries.mirrors[].name': 'use lower-case letters, digits and dashes, starting with a letter or digit, e.g. io-example',
  'spec.registries.shared.network.name': `use letters, digits, dots, dashes and underscores, e.g. ${SPEC_DEFAULTS.sharedNetwork.name}`,
  'spec.registries.p2p.resolveTags': 'write true (every mirrored registry), false, or a list of registries such as [docker.io]',
  'spec.registries.p2p.dialTimeout': `write a duration in ms or s, e.g. ${SPEC_DEFAULTS.p2p.dialTimeout}`,
  'spec.registries.mirrors':
    'write one "- name: ... / url: ..." item per mirror, [] for no mirrors, or remove the line for the four default mirrors',
};

const RANGE_HINTS: Record<string, string> = {
  controlPlane: 'use 1 to 9 control-plane nodes',
  workers: 'use 0 to 99 workers',
  maxConcurrentDownloads: 'use 1 to 64',
};

/** Turns one ajv error into an issue in the user's words: the field, what is wrong with it, how to fix it. */
export function schemaIssue(err: ErrorObject): SpecIssue {
  const path = pointerToSegments(err.instancePath);
  const pathText = formatPath(path.map((s) => (typeof s === 'number' ? 0 : s))).replace(/\[0\]/g, '[]');
  const fieldHint = FIELD_HINTS[formatPath(path)] ?? FIELD_HINTS[pathText];
  // ajv reports on the data it validated; the message only needs the offending scalar.
  const value = (err.data as unknown) ?? path[path.length - 1];
  // A value under credentials may be a secret written by mistake: never echo it.
  // So may a header value (headers take { env: NAME } only).
  const secret = path.includes('credentials') || path.includes('headers');
  const val = secret ? 'the value' : shown(value);
  switch (err.keyword) {
    case 'anyOf': {
      // One of several shapes (e.g. p2p.resolveTags: true/false or a list): name them all once.
      const branches = ((err.parentSchema as { anyOf?: Array<{ type?: string }> } | undefined)?.anyOf ?? []).map((b) => b.type ?? '');
      const words = branches.map((t) => TYPE_WORDS[t] ?? t).join(', or ');
      return {
        path,
        message: `must be ${words || 'one of the allowed shapes'}, got ${describeValue(value)}`,
        hint: fieldHint ?? 'see docs/spec.md for the allowed values',
      };
    }
    case 'additionalProperties': {
      const field = String((err.params as { additionalProperty: string }).additionalProperty);
      if (path[path.length - 1] === 'credentials') {
        // A field name that is not a plain word may be the secret itself: neither message nor path shows it.
        const plain = /^[a-zA-Z]{1,20}$/.test(field);
        return {
          path: plain ? [...path, field] : path,
          message: `${plain ? `"${field}"` : 'a field'} looks like a literal secret; credentials take environment variable names only`,
          hint: 'write usernameEnv: MY_USER_VAR and passwordEnv: MY_TOKEN_VAR and export those variables',
        };
      }
      const known = Object.keys(propertiesAt(path));
      // Suggestions only for key-sized fields: the edit distance is quadratic in the length.
      const close =
        field.length <= MAX_SUGGEST
          ? known.find(
              (k) => k.toLowerCase() === field.toLowerCase() || (Math.abs(k.length - field.length) <= 2 && levenshtein(k, field) <= 2),
            )
          : undefined;
      return {
        path: [...path, field],
        message: `unknown field ${shown(field)}`,
        hint: close ? `did you mean "${close}"?` : known.length ? `allowed fields here: ${known.join(', ')}` : 'remove it',
      };
    }
    case 'required': {
      const missing = String((err.params as { missingProperty: string }).missingProperty);
      return {
        path: [...path, missing],
        message: `required field "${missing}" is missing`,
        hint: `add ${missing}: under ${formatPath(path) || 'the top level'}`,
      };
    }
    case 'type': {
      const want = (err.params as { type: string }).type;
      const words = TYPE_WORDS[want] ?? want;
      const header = path[path.length - 2] === 'headers' ? path[path.length - 1] : undefined;
      if (header !== undefined && want === 'object')
        return {
          path,
          message: 'a header value must come from an environment variable, not be written in the spec',
          hint: `write ${String(header)}: { env: MY_HEADER_VAR } and export the value in MY_HEADER_VAR`,
        };
      return {
        path,
        message: `must be ${words}, got ${secret ? 'another type' : describeValue(err.data)}`,
        hint: fieldHint ?? TYPE_HINTS[want] ?? `write ${words}`,
      };
    }
    case 'const': {
      const allowed = JSON.stringify((err.params as { allowedValue: unknown }).allowedValue);
      return { path, message: `must be ${allowed}`, hint: `write ${allowed}` };
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.join(', ');
      return { path, message: `${val} is not one of ${allowed}`, hint: `write one of ${allowed}` };
    }
    case 'pattern':
      return {
        path,
        message: `${val} is not allowed here (must match ${(err.params as { pattern: string }).pattern})`,
        hint: fieldHint ?? 'change the value to match the pattern (see docs/spec.md)',
      };
    case 'maxLength': {
      const limit = (err.params as { limit: number }).limit;
      return {
        path,
        message: `${val} is longer than ${limit} characters`,
        hint: fieldHint ?? `shorten it to at most ${limit} characters`,
      };
    }
    case 'minimum':
    case 'maximum':
      return {
        path,
        message: `${String(value)} is out of range (${err.keyword} ${(err.params as { limit: number }).limit})`,
        hint: rangeHint(path, err.parentSchema),
      };
    default:
      return { path, message: err.message ?? 'is invalid', hint: 'see docs/spec.md for the allowed values' };
  }
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${typeof v === 'string' ? shown(v) : String(v)}`;
}

function rangeHint(path: Segment[], schema: unknown): string {
  const key = path[path.length - 1];
  const s = schema as { minimum?: number; maximum?: number } | undefined;
  return (typeof key === 'string' ? RANGE_HINTS[key] : undefined) ?? `use a number from ${s?.minimum ?? '-'} to ${s?.maximum ?? '-'}`;
}

function propertiesAt(path: Segment[]): Record<string, unknown> {
  let node: SchemaNode | undefined = specSchema as SchemaNode;
  for (const seg of path) {
    if (typeof seg === 'number') node = node?.items;
    else node = node?.properties?.[seg];
  }
  return node?.properties ?? {};
}

/** Longest unknown field name that gets a "did you mean" suggestion. */
const MAX_SUGGEST = 32;

function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return dp[a.length]![b.length]!;
}
