// Runs the CLI like bin/lo.js and reports the process's peak resident set size on stderr (for bench/images.js).
import { main } from '../dist/bundle/main.js';

const code = await main(process.argv);
process.stderr.write(`\nLO_BENCH_MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
process.exitCode = code;
