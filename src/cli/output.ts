import chalk from 'chalk';
import { escapeControl, LoError } from '../errors/loError.js';

/** A stream lo writes to; `isTTY`/`columns` decide whether a spinner is drawn. */
export type OutStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
/** The stream confirmations are read from. */
export type InStream = NodeJS.ReadableStream & { isTTY?: boolean };

/** The streams main injects (the process's, or a test's captured ones); nothing below main uses process.std*. */
export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  stdin: InStream;
}

/** Results go to stdout; progress and logs go to stderr. */
export interface Output {
  readonly io: CliIo;
  printJson(value: unknown): void;
  printLine(line?: string): void;
  logErr(line: string): void;
  /** The single top-level error handler: known errors briefly, unknown ones with their stack; returns the exit code. */
  reportError(err: unknown, json: boolean): number;
}

export function createOutput(io: CliIo): Output {
  const printJson = (value: unknown): void => void io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  const printLine = (line = ''): void => void io.stdout.write(`${line}\n`);
  const logErr = (line: string): void => void io.stderr.write(`${line}\n`);
  return {
    io,
    printJson,
    printLine,
    logErr,
    reportError(err, json) {
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
    },
  };
}

/** Whether a spinner may draw on this stream (a terminal that reports no width would make ora clear lines forever). */
export function drawsSpinner(s: OutStream): boolean {
  return Boolean(s.isTTY) && (s.columns ?? 0) > 0;
}
