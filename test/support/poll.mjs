// Bounded retry and poll loops, shared by the tests and the benchmarks (bench/*.js, run by node without a
// build), so plain JS; types in poll.d.mts.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Calls `fn` every 250 ms until it resolves; after `timeoutMs`, throws its last error. */
export async function eventually(fn, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await sleep(250);
    }
  }
}

/**
 * Calls `fn` every `everyMs` until `done(value)` holds or `timeoutMs` has passed, and returns the last value
 * either way: the caller asserts on it, so a failure shows what was last seen.
 */
export async function pollUntil(fn, done, { timeoutMs = 30_000, everyMs = 500 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (done(value) || Date.now() >= deadline) return value;
    await sleep(everyMs);
  }
}
