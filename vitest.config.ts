import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // e2e files share one Docker engine; run files one at a time, tests inside a file in order.
    fileParallelism: false,
    // Sets up the test bed (scripts/testbed.sh) when the e2e tests' engine or images are missing.
    globalSetup: ['./test/support/testbed.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/support/summaryReporter.ts'],
  },
});
