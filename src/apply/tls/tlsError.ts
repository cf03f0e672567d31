import { ExitCode, LoError } from '../../errors/loError.js';
import { readIfExists } from '../files.js';

/** A TLS problem (CA, certificate, trust store). Names the file involved so the user can act on it. */
export class TlsError extends LoError {
  /** The file or directory the problem is about, when there is one. */
  readonly file?: string;

  constructor(message: string, opts: { file?: string; hint?: string; cause?: unknown; exitCode?: number } = {}) {
    super('E_TLS', message, {
      exitCode: opts.exitCode ?? ExitCode.failure,
      ...(opts.hint ? { hint: opts.hint } : {}),
      ...(opts.cause === undefined ? {} : { cause: opts.cause }),
    });
    if (opts.file) this.file = opts.file;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...(this.file ? { file: this.file } : {}) };
  }
}

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function isPermissionError(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

/**
 * Reads a file of lo's TLS material: its text, or null when it does not exist. Any other failure is a TlsError
 * naming the file, with `hints.permission` for a permission problem and `hints.other` otherwise.
 */
export async function readTlsFile(path: string, hints: { permission: string; other: string }): Promise<string | null> {
  try {
    return await readIfExists(path);
  } catch (err) {
    throw new TlsError(`cannot read ${path}: ${(err as Error).message}`, {
      file: path,
      cause: err,
      hint: isPermissionError(err) ? hints.permission : hints.other,
    });
  }
}
