import { ExitCode, LoError } from '../errors/loError.js';
import { stepView, type Action, type StepAction } from '../apply/action.js';

/** The steps of `lo provision`, in order. */
export const PROVISION_STEPS = ['validate', 'networks', 'tls', 'certs.d', 'registries', 'kind', 'connect', 'configmaps', 'p2p'] as const;

/** Progress of a multi-step run; the CLI shows it with ora on stderr, the core never prints. */
export interface StepReporter {
  start(step: string, title: string): void;
  succeed(step: string, title: string, actions: readonly StepAction[], ms: number): void;
  skip(step: string, title: string, why: string): void;
  fail(step: string, title: string, err: unknown): void;
  warn(message: string): void;
}

export const silentReporter: StepReporter = { start() {}, succeed() {}, skip() {}, fail() {}, warn() {} };

export interface StepResult {
  step: string;
  title: string;
  status: 'done' | 'skipped';
  ms: number;
  actions: StepAction[];
  detail?: string;
}

/** A step failed: names the step, keeps the cause's hint; exit code 5 (bad input keeps its own code 2). */
export class StepFailedError extends LoError {
  readonly step: string;
  constructor(step: string, title: string, cause: unknown) {
    const inner = cause instanceof LoError ? cause : undefined;
    const msg = (cause as Error)?.message ?? String(cause);
    super('E_STEP', `step "${step}" (${title}) failed: ${msg}`, {
      hint: inner?.hint ?? 'fix the cause above and run the command again; finished steps are not repeated',
      exitCode: inner?.exitCode === ExitCode.badInput ? ExitCode.badInput : ExitCode.stepFailed,
      cause,
    });
    this.step = step;
  }

  override toJSON(): Record<string, unknown> {
    const cause = this.cause instanceof LoError ? this.cause.toJSON() : undefined;
    return { ...super.toJSON(), step: this.step, ...(cause ? { cause } : {}) };
  }
}

/** Runs one named step: reports progress, times it, wraps failures in StepFailedError. */
export async function runStep(
  reporter: StepReporter,
  results: StepResult[],
  step: string,
  title: string,
  fn: () => Promise<Action[]>,
  now: () => number = () => performance.now(),
): Promise<Action[]> {
  reporter.start(step, title);
  const t0 = now();
  try {
    const actions = await fn();
    stepDone(reporter, results, step, title, Math.round(now() - t0), actions);
    return actions;
  } catch (err) {
    reporter.fail(step, title, err);
    throw err instanceof StepFailedError ? err : new StepFailedError(step, title, err);
  }
}

/** The first step of `lo provision` and `lo destroy`: read and check the spec; the plan it gives. */
export async function validateStep<P>(reporter: StepReporter, results: StepResult[], loadPlan: () => Promise<P>): Promise<P> {
  let plan!: P;
  await runStep(reporter, results, 'validate', 'read and check the spec', async () => {
    plan = await loadPlan();
    return [];
  });
  return plan;
}

/** Records a finished step: its actions in the step view (`stepView`, the one mapping site). */
export function stepDone(
  reporter: StepReporter,
  results: StepResult[],
  step: string,
  title: string,
  ms: number,
  actions: readonly Action[],
): void {
  const r: StepResult = { step, title, status: 'done', ms, actions: actions.map(stepView) };
  results.push(r);
  reporter.succeed(step, title, r.actions, ms);
}

export function skipStep(reporter: StepReporter, results: StepResult[], step: string, title: string, why: string): void {
  results.push({ step, title, status: 'skipped', ms: 0, actions: [], detail: why });
  reporter.skip(step, title, why);
}
