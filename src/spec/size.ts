import { ExitCode, LoError } from '../errors/loError.js';

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
};

/** The pattern the schema accepts for sizes: a number and an optional unit (B, KB…TB, KiB…TiB). */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([KMGT]i?B|B)?$';

export const SIZE_HINT = 'write a number with an optional unit, e.g. 20GiB, 500MB or 1073741824';

/** "20GiB" -> 21474836480, "500MB" -> 500000000, "1024" -> 1024; null when it is not a size. */
export function sizeBytes(text: string): number | null {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?$/i.exec(text.trim());
  const unit = UNITS[(m?.[2] ?? '').toUpperCase()];
  return !m || unit === undefined ? null : Math.floor(Number(m[1]) * unit);
}

/** As sizeBytes; a bad size is a typed bad-input error (for flags such as --max-size). */
export function parseSize(text: string, where = 'size'): number {
  const bytes = sizeBytes(text);
  if (bytes === null) {
    throw new LoError('E_CONFIG', `${where}: "${text}" is not a size`, { hint: SIZE_HINT, exitCode: ExitCode.badInput });
  }
  return bytes;
}
