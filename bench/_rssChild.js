// Runs the CLI like bin/lo.js and reports the process's peak resident set size on stderr (for bench/images.js).
// The full bundle (dist/bundle/lo.cjs, what bin/lo.js loads for every command but plan and help), without the
// code cache.
import { createRequire } from 'node:module';

const { main } = createRequire(import.meta.url)('../dist/bundle/lo.cjs');
const code = await main(process.argv);
process.stderr.write(`\nLO_BENCH_MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
process.exitCode = code;
