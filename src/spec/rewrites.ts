import { goRegexToJs, parseTemplate } from '../agent/forward/rewrites.js';

/**
 * Checks of one image-name rewrite rule (`spec.registries.hosts.<registry>.rewrite`, K3s's
 * `mirrors.<registry>.rewrite`): a regex on the repository name and a Go-style replacement. K3s applies them
 * with Go's regexp (RE2); lo's node agent translates the pattern to a JavaScript RegExp (goRegexToJs in
 * src/agent/forward/rewrites.ts: `(?P<name>…)`, a leading `(?i)`, `\A`, `\z`, POSIX classes) and refuses what RE2
 * lacks (lookaround, backreferences) or it cannot translate. The spec is checked with that same translation,
 * so a spec lo accepts is one its agents start with, and a rule means the same as in K3s. Whether a
 * replacement yields a valid repository name depends on the name requested: the agent checks that per
 * request. Pure.
 */

/** What is wrong with a rule, and how to fix it. */
export interface RewriteProblem {
  message: string;
  hint: string;
}

/** The capturing groups of a compiled pattern: how many, and their names. */
function groupsOf(re: RegExp): { count: number; names: Set<string> } {
  const m = new RegExp(`${re.source}|`).exec('')!;
  return { count: m.length - 1, names: new Set(Object.keys(m.groups ?? {})) };
}

/** Why a rule cannot be used, or undefined when it can. */
export function rewriteProblem(pattern: string, replacement: string): RewriteProblem | undefined {
  if (pattern.length === 0)
    return { message: 'is an empty regex (it matches every repository name)', hint: 'write a regex such as "^rancher/(.*)"' };
  let translated: { source: string; flags: string };
  try {
    translated = goRegexToJs(pattern);
  } catch (err) {
    return {
      message: `is not a regex lo's node agent can apply as Go's RE2 (K3s) does: ${(err as Error).message}`,
      hint: 'write it without that construct: anchor with ^ and $, capture the part to keep with (…), use it as $1 in the replacement',
    };
  }
  let re: RegExp;
  try {
    re = new RegExp(translated.source, translated.flags);
  } catch (err) {
    return {
      message: `is not a valid regex: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`,
      hint: 'fix the regex (Go RE2 syntax: groups (…), classes […], anchors ^ $, quantifiers * + ? {n,m})',
    };
  }
  const { count, names } = groupsOf(re);
  for (const part of parseTemplate(replacement)) {
    if (typeof part === 'string') continue;
    if (part.num >= 0 ? part.num <= count : names.has(part.name)) continue;
    const digits = /^(\d+)(.+)$/.exec(part.name);
    return {
      message: `the replacement ${JSON.stringify(replacement)} names group ${JSON.stringify(part.name)}, which the regex does not have (${count} group${count === 1 ? '' : 's'}${names.size > 0 ? `: ${[...names].join(', ')}` : ''}); Go would put nothing there`,
      hint:
        digits && Number(digits[1]) <= count
          ? `Go reads $${part.name} as group "${part.name}": write \${${digits[1]}}${digits[2]}`
          : `add the group to the regex, or use one it has ($1 … $${Math.max(count, 1)}; $$ is a literal $)`,
    };
  }
  return undefined;
}
