import { escapeControl } from '../errors/loError.js';

/**
 * How values from a spec (or the command line) are echoed in messages: quoted, control characters escaped
 * and long values cut, so a file cannot write escape sequences to the terminal, fake extra message lines, or
 * have lo print a whole file back (e.g. `--config /etc/shadow`).
 */

/** Longest echoed value, in characters, before it is cut with `…`. */
export const MAX_ECHO = 48;

/** A value as messages show it: `"text"`, escaped and cut to MAX_ECHO characters. */
export function shown(value: unknown, max = MAX_ECHO): string {
  const text = typeof value === 'string' ? value : String(value);
  const chars = [...text];
  const cut = chars.length > max ? `${chars.slice(0, max).join('')}…` : text;
  return `"${escapeControl(cut).replace(/"/g, '\\"')}"`;
}

/** Like `shown` but without the quotes, for paths and names inside longer text. */
export function shownBare(value: string, max = 200): string {
  const chars = [...value];
  return escapeControl(chars.length > max ? `${chars.slice(0, max).join('')}…` : value);
}
