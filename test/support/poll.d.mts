// Types for poll.mjs (plain JS so the benchmarks use it without a build).
/** Calls `fn` every 250 ms until it resolves; after `timeoutMs` (default 20 s), throws its last error. */
export declare function eventually<T>(fn: () => Promise<T>, timeoutMs?: number): Promise<T>;
/** Calls `fn` every `everyMs` until `done(value)` or `timeoutMs` passed; returns the last value either way. */
export declare function pollUntil<T>(
  fn: () => Promise<T>,
  done: (value: T) => boolean,
  o?: { timeoutMs?: number; everyMs?: number },
): Promise<T>;
