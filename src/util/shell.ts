/**
 * Quotes one argument for a POSIX shell, so a hint's command line can be copied and pasted as is: words of
 * safe characters stay bare, anything else is single-quoted (a `'` inside becomes `'\''`). Control
 * characters are escaped by the message printer, never sent to the terminal raw.
 */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command line of quoted arguments. */
export function shellCommand(args: readonly string[]): string {
  return args.map(shellQuote).join(' ');
}
