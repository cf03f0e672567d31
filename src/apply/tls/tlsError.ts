import { ExitCode, LoError } from '../../errors/loError.js';

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
