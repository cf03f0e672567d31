// Bounded retry loops, shared by the tests and the benchmarks (bench/*.js, run by node without a build), so
// plain JS; types in poll.d.mts.

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
