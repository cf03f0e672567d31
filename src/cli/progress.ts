import chalk from 'chalk';
import ora, { type Ora } from 'ora';
import type { StepReporter } from '../usecases/runSteps.js';
import { summarizeActions } from './printActions.js';
import { drawsSpinner, type OutStream } from './output.js';

/*
 * Progress on stderr with ora. Its own module, imported by a command only when it runs: ora and its
 * dependencies (cli-spinners' table, string-width, ...) cost ~15 ms to load, which `lo --help`, `lo plan`
 * and `lo registry status` without a terminal must not pay (bench/cli.js).
 */

/** Step progress (plain lines when stderr is not a terminal). */
export function oraReporter(stream: OutStream): StepReporter {
  let spinner: Ora | null = null;
  const line = (step: string, title: string): string => `${chalk.bold(step)} ${title}`;
  return {
    start(step, title) {
      // Without a terminal ora prints a line per start; show only the outcome then.
      const s = ora({ text: line(step, title), stream });
      // A terminal reporting zero columns (e.g. under `script`) makes ora clear lines forever: no spinner there.
      spinner = drawsSpinner(stream) ? s.start() : s;
    },
    succeed(step, title, actions, ms) {
      const what = summarizeActions(actions);
      (spinner ?? ora({ stream })).succeed(`${line(step, title)}${what ? ` - ${what}` : ''} ${chalk.dim(`(${ms} ms)`)}`);
      spinner = null;
    },
    skip(step, title, why) {
      ora({ stream }).info(`${line(step, title)} - skipped: ${why}`);
    },
    fail(step, title) {
      (spinner ?? ora({ stream })).fail(`${line(step, title)} - failed`);
      spinner = null;
    },
    warn(message) {
      const s = spinner;
      if (s) s.clear();
      ora({ stream }).warn(message);
      if (s) s.render();
    },
  };
}

/** A started spinner on `stream`. */
export function startSpinner(stream: OutStream): Ora {
  return ora({ stream }).start();
}
