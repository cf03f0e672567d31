import chalk from 'chalk';
import { escapeControl, LoError } from '../errors/loError.js';

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
      // Messages are multi-line; every other control character is escaped so echoed input cannot reach the terminal raw.
      logErr(`${chalk.red('error')} ${err.message.split('\n').map(escapeControl).join('\n')}`);
      if (err.hint) logErr(`${chalk.yellow('hint')}  ${escapeControl(err.hint)}`);
    }
    return err.exitCode;
  }
  const e = err as Error;
  if (json) printJson({ error: { code: 'E_INTERNAL', message: e?.message ?? String(err) } });
  else logErr(`${chalk.red('internal error')} ${e?.stack ?? String(err)}`);
  return 1;
}
