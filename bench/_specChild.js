/**
 * Child process of the `spec` bench section: runs the built `lo` CLI in-process on argv, then writes its exit
 * code, this process's peak RSS (process.resourceUsage().maxRSS, KiB) and its CPU time (user + system, ms, start-up
 * included) as JSON to $LO_BENCH_RSS_FILE.
 */
import { writeFileSync } from 'node:fs';
import { main } from '../dist/cli/main.js';

const code = await main(process.argv);
const usage = process.resourceUsage();
writeFileSync(
  process.env.LO_BENCH_RSS_FILE,
  JSON.stringify({ code, maxRssKiB: usage.maxRSS, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000 }),
);
process.exitCode = code;
