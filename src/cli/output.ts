import chalk from 'chalk';
import { LoError } from '../errors/loError.js';

/** Results go to stdout; progress and logs go to stderr. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function logErr(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The single top-level error handler: known errors briefly, unknown ones with their stack. */
export function reportError(err: unknown, json: boolean): number {
  if (err instanceof LoError) {
    if (json) printJson({ error: err.toJSON() });
    else {
      logErr(`${chalk.red('error')} ${err.message}`);
      if (err.hint) logErr(`${chalk.yellow('hint')}  ${err.hint}`);
    }
    return err.exitCode;
  }
  const e = err as Error;
  if (json) printJson({ error: { code: 'E_INTERNAL', message: e?.message ?? String(err) } });
  else logErr(`${chalk.red('internal error')} ${e?.stack ?? String(err)}`);
  return 1;
}
