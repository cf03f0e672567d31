import type { Action, ActionVerb, StepAction } from '../apply/action.js';
import type { Output } from './output.js';

/**
 * The one printer of actions, for every command: `lo registry up/down/clean` print Actions, provision and
 * destroy their steps' actions (the step view). One verb table, one line format.
 */
const DONE: Record<ActionVerb, string> = {
  create: 'created',
  recreate: 'recreated',
  update: 'updated',
  noop: 'unchanged',
  remove: 'removed',
  warn: 'warning',
};
const WOULD: Record<ActionVerb, string> = {
  create: 'would create',
  recreate: 'would recreate',
  update: 'would update',
  noop: 'unchanged',
  remove: 'would remove',
  warn: 'warning',
};

export const actionVerb = (a: ActionVerb, dryRun: boolean): string => (dryRun ? WOULD : DONE)[a];

/** "2 created, 5 unchanged" */
export function summarizeActions(actions: ReadonlyArray<{ action: ActionVerb }>): string {
  const counts = new Map<string, number>();
  for (const a of actions) counts.set(DONE[a.action], (counts.get(DONE[a.action]) ?? 0) + 1);
  return [...counts].map(([w, n]) => `${n} ${w}`).join(', ');
}

/** One line: verb, what (kind and name, or a step view's object), why. */
function line(prefix: string, verb: string, what: string, why: string | undefined): string {
  return `${prefix}${verb.padEnd(14)} ${what}${why ? `  (${why})` : ''}`;
}

/** Registry actions: what changed (and noops with a reason), then a count of the unchanged rest. */
export function printActions(out: Output, actions: readonly Action[], dryRun: boolean): void {
  const { printLine } = out;
  const shown = actions.filter((a) => a.action !== 'noop' || a.reason);
  if (actions.length === 0) return printLine('nothing to do');
  if (shown.length === 0) return printLine(`nothing to do: ${actions.length} objects already match the plan`);
  for (const a of shown) printLine(line('', actionVerb(a.action, dryRun), `${a.kind.padEnd(11)} ${a.name}`, a.reason));
  const noops = actions.length - shown.length;
  if (noops > 0) printLine(`${noops} other objects unchanged`);
}

/** Step actions (provision, destroy): the changed ones, each with its step, then a count of the unchanged. */
export function printStepActions(
  out: Output,
  title: string,
  steps: ReadonlyArray<{ step: string; actions: readonly StepAction[] }>,
  dryRun: boolean,
): void {
  const { printLine } = out;
  const todo = steps.flatMap((s) => s.actions.filter((a) => a.action !== 'noop').map((a) => ({ step: s.step, a })));
  printLine(`${title}${todo.length ? ':' : ''}`);
  for (const { step, a } of todo) printLine(line(`  ${step.padEnd(10)} `, actionVerb(a.action, dryRun), a.object, a.detail));
  const same = steps.reduce((n, s) => n + s.actions.filter((a) => a.action === 'noop').length, 0);
  if (same > 0 && dryRun) printLine(`  ${same} other objects already match the plan`);
}
