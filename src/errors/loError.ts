/**
 * Typed errors with a stable code, an exit code and a one-line hint.
 * The CLI's single handler prints known errors briefly and unknown ones with their stack.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  badInput: 2,
  conflict: 3,
  dockerUnavailable: 4,
  stepFailed: 5,
} as const;

type ErrorCode =
  | 'E_CONFIG'
  | 'E_CONFIG_NOT_FOUND'
  | 'E_PLAN_CONFLICT'
  | 'E_DOCKER_UNREACHABLE'
  | 'E_DOCKER'
  | 'E_NETWORK_MISMATCH'
  | 'E_PROJECT_CONFLICT'
  | 'E_PROJECT_LOCKED'
  | 'E_REGISTRY_IMAGE'
  | 'E_TLS'
  | 'E_STEP'
  | 'E_TOOL_MISSING'
  | 'E_USAGE';

/**
 * Marks every LoError, so that one made by another copy of this module is still recognised: the CLI bundle
 * (dist/bundle/lo.cjs) and the agent modules it imports from dist/agent/ each have their own LoError class.
 */
const LO_ERROR = Symbol.for('dev.lok8s.lo.LoError');

export class LoError extends Error {
  /** `err instanceof LoError` holds for a LoError of any copy of this module; subclasses check as usual. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== LoError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[LO_ERROR] === true;
  }

  readonly code: ErrorCode;
  readonly hint?: string;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? ExitCode.failure;
    Object.defineProperty(this, LO_ERROR, { value: true });
  }

  /** A stable JSON shape for `--json` consumers. */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, exitCode: this.exitCode };
  }
}

/** One problem in a spec file: where it is, what is wrong and how to fix it. */
export interface ConfigIssue {
  file: string;
  /** Dotted YAML path, e.g. `spec.registries.mirrors[2].name`; empty for the whole document. */
  path: string;
  line?: number;
  message: string;
  hint?: string;
}

/**
 * Control characters escaped (`\n`, `\u001b`): C0, DEL, C1, the Unicode line separators and the bidi
 * controls, so a file name or value cannot fake message lines, reorder text or write terminal escapes.
 */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function formatIssue(issue: ConfigIssue): string {
  const where = `${escapeControl(issue.file)}${issue.line ? `:${issue.line}` : ''}`;
  const path = issue.path ? `${issue.path}: ` : '';
  return escapeControl(`${where}: ${path}${issue.message}${issue.hint ? ` (fix: ${issue.hint})` : ''}`);
}

/** At most this many issues are listed (in the message and in --json); the rest are counted. */
export const MAX_LISTED_ISSUES = 50;

/** Every problem found in one spec file, reported together (the first MAX_LISTED_ISSUES of them); exit code 2. */
export class ConfigError extends LoError {
  readonly issues: ConfigIssue[];
  /** How many issues were found beyond the listed ones. */
  readonly omitted: number;

  /** `total`: how many problems were found, when more than `all` (the rest were counted, not worded). */
  constructor(all: ConfigIssue[], total = all.length) {
    const issues = all.slice(0, MAX_LISTED_ISSUES);
    const omitted = Math.max(total, all.length) - issues.length;
    const count = issues.length + omitted;
    const head = count === 1 ? '1 problem' : `${count} problems`;
    const rest = omitted > 0 ? `\n  ... and ${omitted} more` : '';
    super('E_CONFIG', `invalid spec (${head}):\n${issues.map((i) => `  - ${formatIssue(i)}`).join('\n')}${rest}`, {
      exitCode: ExitCode.badInput,
      hint: 'edit the file as each line says, then run `lo plan` to check it',
    });
    this.issues = issues;
    this.omitted = omitted;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), issues: this.issues, ...(this.omitted > 0 ? { omitted: this.omitted } : {}) };
  }
}

/** The spec is valid on its own but conflicts with what already runs (e.g. shared mirrors). */
export class PlanConflictError extends LoError {
  constructor(message: string, hint: string) {
    super('E_PLAN_CONFLICT', message, { hint, exitCode: ExitCode.badInput });
  }
}
