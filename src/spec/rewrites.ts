/**
 * Checks of one image-name rewrite rule (`spec.registries.hosts.<registry>.rewrite`, K3s's
 * `mirrors.<registry>.rewrite`): a regex on the repository name and a Go-style replacement. K3s applies them
 * with Go's regexp (RE2); lo's node agent with JavaScript's RegExp. The rule must compile as JavaScript and use
 * nothing RE2 lacks (lookaround, backreferences) or JavaScript reads differently (Go-only syntax), so a rule
 * means the same in K3s and in lo. Whether a replacement yields a valid repository name depends on the name
 * requested: the agent checks that per request. Pure.
 */

/** What is wrong with a rule, and how to fix it. */
export interface RewriteProblem {
  message: string;
  hint: string;
}

/** Constructs a pattern may not use, found by a scan that skips escapes and character classes. */
function unsupportedConstruct(pattern: string): RewriteProblem | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    const rest = pattern.slice(i);
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(next))
        return {
          message: `uses the backreference \\${next}, which Go's regexp (RE2, as K3s uses) does not have`,
          hint: 'match the text again explicitly, or capture it once and repeat it in the replacement ($1)',
        };
      if (next === 'k' && pattern[i + 2] === '<')
        return {
          message: "uses a named backreference (\\k<name>), which Go's regexp (RE2, as K3s uses) does not have",
          hint: 'match the text again explicitly, or use the group in the replacement (${name})',
        };
      if (/[AzQEC]/.test(next))
        return {
          message: `uses \\${next}, which JavaScript's RegExp (lo's node agent) does not read as Go does`,
          hint:
            next === 'A'
              ? 'write ^ instead of \\A'
              : next === 'z'
                ? 'write $ instead of \\z'
                : 'escape each special character with \\ instead',
        };
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      if (/^\[\[:[a-z]+:\]/.test(rest))
        return {
          message: "uses a POSIX class such as [[:alpha:]], which JavaScript's RegExp (lo's node agent) reads differently",
          hint: 'write the class out, e.g. [a-zA-Z] for [[:alpha:]] or [0-9] for [[:digit:]]',
        };
      inClass = true;
      // A `]` right after `[` or `[^` is a literal in Go; JavaScript reads `[]` as an empty class.
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']')
        return { message: 'has a character class that starts with ], which Go and JavaScript read differently', hint: 'escape it: [\\]…]' };
      continue;
    }
    if (c !== '(' || pattern[i + 1] !== '?') continue;
    if (/^\(\?<?[=!]/.test(rest))
      return {
        message: `uses a ${rest[2] === '<' ? 'lookbehind' : 'lookahead'} (${rest.slice(0, rest[2] === '<' ? 4 : 3)}…), which Go's regexp (RE2, as K3s uses) does not have`,
        hint: 'match the repository name without it: anchor with ^ and $ and capture the part to keep',
      };
    if (rest.startsWith('(?P<'))
      return { message: "uses Go's (?P<name>…) group syntax, which JavaScript's RegExp lacks", hint: 'write (?<name>…): Go reads it too' };
    if (/^\(\?[imsU-]+[):]/.test(rest))
      return {
        message: `uses inline flags (${/^\(\?[imsU-]+/.exec(rest)![0]}…), which JavaScript's RegExp (Node 20) does not have`,
        hint: 'write the cases out, e.g. [Rr]ancher for (?i)rancher (repository names are lower case anyway)',
      };
  }
  return undefined;
}

/** The capturing groups of a compiled pattern: how many, and their names. */
function groupsOf(re: RegExp): { count: number; names: Set<string> } {
  const m = new RegExp(`${re.source}|`).exec('')!;
  return { count: m.length - 1, names: new Set(Object.keys(m.groups ?? {})) };
}

/**
 * The groups a Go replacement template names (regexp.Expand): `$$` is a literal `$`, `${name}` and `$name`
 * name a group (`name` is the longest run of letters, digits and `_`, so `$1x` is group `1x`), any other `$`
 * is literal.
 */
export function replacementGroups(replacement: string): Array<{ ref: string; name: string; braced: boolean }> {
  const out: Array<{ ref: string; name: string; braced: boolean }> = [];
  for (const m of replacement.matchAll(/\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g)) {
    if (m[0] === '$$') continue;
    out.push({ ref: m[0], name: (m[1] ?? m[2])!, braced: m[1] !== undefined });
  }
  return out;
}

/** Why a rule cannot be used, or undefined when it can. */
export function rewriteProblem(pattern: string, replacement: string): RewriteProblem | undefined {
  if (pattern.length === 0)
    return { message: 'is an empty regex (it matches every repository name)', hint: 'write a regex such as "^rancher/(.*)"' };
  const construct = unsupportedConstruct(pattern);
  if (construct) return construct;
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    return {
      message: `is not a valid regex: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`,
      hint: 'fix the regex (Go RE2 syntax that JavaScript also reads: groups (…), classes […], anchors ^ $, quantifiers * + ? {n,m})',
    };
  }
  const { count, names } = groupsOf(re);
  for (const g of replacementGroups(replacement)) {
    const known = /^\d+$/.test(g.name) ? Number(g.name) <= count : names.has(g.name);
    if (known) continue;
    const digits = /^(\d+)(.+)$/.exec(g.name);
    return {
      message: `the replacement ${JSON.stringify(replacement)} names group ${JSON.stringify(g.name)} (${g.ref}), which the regex does not have (${count} group${count === 1 ? '' : 's'}${names.size > 0 ? `: ${[...names].join(', ')}` : ''}); Go would put nothing there`,
      hint:
        digits && !g.braced && Number(digits[1]) <= count
          ? `Go reads ${g.ref} as group "${g.name}": write \${${digits[1]}}${digits[2]}`
          : `add the group to the regex, or use one it has ($1 … $${Math.max(count, 1)}; $$ is a literal $)`,
    };
  }
  return undefined;
}
