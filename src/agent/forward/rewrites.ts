import { ExitCode, LoError } from '../../errors/loError.js';

/**
 * Image-name rewrites as K3s's `registries.yaml` has them (`mirrors.<registry>.rewrite`): a regular
 * expression on the repository name (never the tag or digest) and a replacement in Go's `Regexp.Expand`
 * syntax. Upstream containerd has no rewrite (containerd #5171, #11625), so the node agent applies them.
 *
 * Semantics follow K3s's containerd: the rules of a registry are tried in order and the first one that
 * changes the name wins (`ReplaceAllString`, so every match in the name is replaced); a registry without
 * rules of its own takes the `*` rules.
 *
 * Patterns are Go RE2 written for JavaScript's engine: `(?P<name>…)`, a leading `(?i)`/`(?s)`/`(?m)`, `\A`,
 * `\z` and `[[:alpha:]]`-style classes are translated; look-around and back-references (which RE2 refuses)
 * are refused too, so a rule means the same here as in K3s.
 */
export interface RewriteRule {
  /** The pattern as written (for messages). */
  pattern: string;
  replacement: string;
  regex: RegExp;
}

export type RewriteTable = ReadonlyMap<string, readonly RewriteRule[]>;

export interface Rewritten {
  repository: string;
  rule: RewriteRule;
}

function badRule(where: string, message: string, hint: string): LoError {
  return new LoError('E_USAGE', `--rewrites: ${where}: ${message}`, { hint, exitCode: ExitCode.badInput });
}

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

/** Translates a Go RE2 pattern to a JavaScript RegExp source and flags; throws a message on what RE2 refuses or JS lacks. */
export function goRegexToJs(pattern: string): { source: string; flags: string } {
  let src = pattern;
  let flags = '';
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(src);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === 'i' || f === 's' || f === 'm') flags += flags.includes(f) ? '' : f;
      else throw new Error(`flag ${f} in (?${lead[1]}) is not supported (only i, s and m)`);
    }
    src = src.slice(lead[0].length);
  }
  let out = '';
  let inClass = false;
  /** Where the current class's members start in `out` (after `[` or `[^`). */
  let classStart = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) throw new Error('trailing backslash');
      if (!inClass && n >= '1' && n <= '9') throw new Error(`back-reference \\${n}: RE2 has none`);
      if (n === 'Q') throw new Error('\\Q…\\E quoting is not supported: escape the characters instead');
      if (!inClass && n === 'A') out += '^';
      else if (!inClass && n === 'z') out += '$';
      else if (n === 'p' || n === 'P') throw new Error('Unicode classes (\\p) are not supported');
      else out += c + n;
      i++;
      continue;
    }
    if (inClass) {
      if (c === '[' && src[i + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(src.slice(i));
        const set = m ? POSIX_CLASSES[m[2]!] : undefined;
        if (!m || set === undefined) throw new Error(`unknown POSIX class at ${src.slice(i, i + 10)}`);
        if (m[1]) throw new Error(`negated POSIX class [:^${m[2]}:] is not supported`);
        out += set;
        i += m[0].length - 1;
        continue;
      }
      if (c === '^' && out.length === classStart && out.endsWith('[')) {
        out += c;
        classStart++;
        continue;
      }
      if (c === ']') {
        // RE2 takes a `]` first in a class as a member; JavaScript would end the class there.
        if (out.length === classStart) out += '\\]';
        else {
          inClass = false;
          out += c;
        }
        continue;
      }
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      classStart = out.length;
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      const rest = src.slice(i + 2);
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 3;
        continue;
      }
      if (rest.startsWith(':') || (rest.startsWith('<') && !/^<[=!]/.test(rest))) {
        out += '(?';
        i += 1;
        continue;
      }
      if (/^(<?[=!])/.test(rest)) throw new Error('look-around (?= (?! (?<= (?<! : RE2 has none');
      throw new Error(`inline flags ${src.slice(i, i + 6)}… are supported only at the start of the pattern`);
    }
    out += c;
  }
  if (inClass) throw new Error('missing ]');
  return { source: out, flags };
}

/** A `$name`/`${name}` reference of a Go template, parsed as Go's `extract` does; null: not a reference. */
function extractRef(s: string): { name: string; num: number; rest: string } | null {
  let str = s;
  const brace = str.startsWith('{');
  if (brace) str = str.slice(1);
  const m = /^[\p{L}\p{Nd}_]+/u.exec(str);
  if (!m) return null;
  const name = m[0];
  let i = name.length;
  if (brace) {
    if (str[i] !== '}') return null;
    i++;
  }
  let num = /^[0-9]+$/.test(name) && name.length <= 8 ? Number(name) : -1;
  if (name.length > 1 && name.startsWith('0')) num = -1;
  return { name, num, rest: str.slice(i) };
}

type TemplatePart = string | { num: number; name: string };

/** A replacement in Go's `Regexp.Expand` syntax: `$1`, `${1}`, `$name`, `${name}`, `$$`; a malformed `$` is literal. */
export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let t = template;
  let lit = '';
  for (;;) {
    const at = t.indexOf('$');
    if (at < 0) break;
    lit += t.slice(0, at);
    t = t.slice(at + 1);
    if (t.startsWith('$')) {
      lit += '$';
      t = t.slice(1);
      continue;
    }
    const ref = extractRef(t);
    if (!ref) {
      lit += '$';
      continue;
    }
    if (lit) parts.push(lit);
    lit = '';
    parts.push({ num: ref.num, name: ref.name });
    t = ref.rest;
  }
  lit += t;
  if (lit) parts.push(lit);
  return parts;
}

function groupCount(regex: RegExp): number {
  // A regex that matches the empty string once more, with one alternative for it: its groups are all undefined.
  return new RegExp(`${regex.source}|`).exec('')!.length - 1;
}

function groupNames(regex: RegExp): Set<string> {
  return new Set(Object.keys(new RegExp(`${regex.source}|`).exec('')!.groups ?? {}));
}

/**
 * Compiles one rule. A reference to a group the pattern does not have is refused: Go expands it to the
 * empty string, which is how `$1x` (group "1x") silently loses text; write `${1}x`.
 */
export function compileRule(pattern: string, replacement: string, where: string): RewriteRule {
  let regex: RegExp;
  try {
    const { source, flags } = goRegexToJs(pattern);
    regex = new RegExp(source, `${flags}g`);
  } catch (err) {
    throw badRule(
      where,
      `pattern ${JSON.stringify(pattern)} is not a valid regular expression: ${(err as Error).message}`,
      'write a Go RE2 regular expression, e.g. "^rancher/(.*)"',
    );
  }
  const groups = groupCount(regex);
  const names = groupNames(regex);
  for (const p of parseTemplate(replacement)) {
    if (typeof p === 'string') continue;
    const ok = p.num >= 0 ? p.num <= groups : names.has(p.name);
    if (!ok) {
      throw badRule(
        where,
        `replacement ${JSON.stringify(replacement)} refers to group ${JSON.stringify(p.name)}, which ${JSON.stringify(pattern)} does not have (${groups} group${groups === 1 ? '' : 's'})`,
        /^[0-9]/.test(p.name)
          ? `write \${${/^[0-9]+/.exec(p.name)![0]}} when letters follow the group number, as in "\${1}x"`
          : 'name a group of the pattern, or write $$ for a literal $',
      );
    }
  }
  return { pattern, replacement, regex };
}

/** Go's `Regexp.Expand` of a parsed template for one match. */
function expand(parts: TemplatePart[], match: RegExpExecArray): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') out += p;
    else if (p.num >= 0) out += match[p.num] ?? '';
    else out += match.groups?.[p.name] ?? '';
  }
  return out;
}

/** Go's `ReplaceAllString(src, repl)`: every non-overlapping match replaced by the expanded template. */
export function replaceAll(rule: RewriteRule, src: string): string {
  const parts = parseTemplate(rule.replacement);
  rule.regex.lastIndex = 0;
  return src.replace(rule.regex, (...args: unknown[]) => {
    // replace's callback: match, p1..pn, offset, string, [groups]
    const hasGroups = typeof args[args.length - 1] === 'object' && args[args.length - 1] !== null;
    const groups = hasGroups ? (args[args.length - 1] as Record<string, string>) : undefined;
    const caps = args.slice(0, hasGroups ? -3 : -2) as Array<string | undefined>;
    const m = Object.assign([...caps], { index: 0, input: src, groups }) as unknown as RegExpExecArray;
    return expand(parts, m);
  });
}

/**
 * Parses `--rewrites`: JSON `{"<registry>": [["<regex>", "<replacement>"], ...], ...}`. The empty string is
 * "no rewrites". Every error names the rule and exits 2.
 */
export function parseRewrites(json: string): RewriteTable {
  const table = new Map<string, RewriteRule[]>();
  if (json.trim() === '') return table;
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw badRule('the value', `is not JSON: ${(err as Error).message}`, 'pass {"<registry>": [["<regex>", "<replacement>"]]}');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    throw badRule('the value', 'must be a JSON object of registry names', 'pass {"docker.io": [["^rancher/(.*)", "mirror/rancher/${1}"]]}');
  for (const [registry, rules] of Object.entries(doc as Record<string, unknown>)) {
    if (!Array.isArray(rules)) throw badRule(registry, 'must be a list of [regex, replacement] pairs', 'write [["^a/(.*)", "b/${1}"]]');
    table.set(
      registry,
      rules.map((r: unknown, i) => {
        const where = `${registry}[${i}]`;
        if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string' || typeof r[1] !== 'string')
          throw badRule(where, `must be a [regex, replacement] pair of strings, got ${JSON.stringify(r)}`, 'write ["^a/(.*)", "b/${1}"]');
        if (r[0] === '') throw badRule(where, 'the pattern is empty', 'write a pattern such as "^rancher/(.*)"');
        return compileRule(r[0], r[1], where);
      }),
    );
  }
  return table;
}

/** The rules for a registry: its own, else `*`'s; undefined when neither exists (rewrites do not concern it). */
export function rulesFor(table: RewriteTable, registry: string): readonly RewriteRule[] | undefined {
  return table.get(registry) ?? table.get('*');
}

/** The new repository name by the first rule that changes it (K3s's order), or null when none does. */
export function rewriteRepository(rules: readonly RewriteRule[], repository: string): Rewritten | null {
  for (const rule of rules) {
    const out = replaceAll(rule, repository);
    if (out !== repository) return { repository: out, rule };
  }
  return null;
}
